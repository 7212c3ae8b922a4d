export { BufferAttribute, BufferGeometry, Color, GridHelper, Group, LineBasicMaterial, LineSegments,
         PerspectiveCamera, Points, PointsMaterial, Raycaster, Scene, Vector2, WebGLRenderer } from "three";
export { OrbitControls } from "three/addons/controls/OrbitControls.js";
