// auglift view: the page's viewer. Data: the JSON in #auglift-meta (clips, layers, skeleton) and one
// deflated, base64 block per clip (#clip-N), decoded when the clip is first shown. Every array in a
// block is stored channel-major as differences between consecutive frames: uint16 levels of a
// [lo, lo + 65534 * step] range (65535 = NaN) or exact int32 values.
"use strict";
(() => {
  const META = JSON.parse(document.getElementById("auglift-meta").textContent);
  const $ = (id) => document.getElementById(id);
  const J = META.joints.length;
  const BONES = META.parents.flatMap((p, c) => (p >= 0 ? [[c, p]] : []));
  const SIDE = {l: [0.16, 0.55, 0.9], r: [1.0, 0.55, 0.16], c: [0.35, 0.78, 0.35]};
  const LAYER_TINT = [[0.3, 0.6, 1.0], [0.8, 0.4, 1.0], [0.2, 0.85, 0.85], [1.0, 0.8, 0.2], [1.0, 0.4, 0.6]];
  const GT = [0.92, 0.92, 0.92];
  const FAR = [0, 0, -1000]; // where missing (NaN) joints go: behind the camera, beyond the far plane
  const state = {ci: -1, clip: null, data: null, i: 0, t: 0, playing: false, speed: 1, view: "world",
                 hover: null, last: 0};
  const stats = {renders: 0, updates: 0, updateMs: 0, renderMs: 0};

  // ------------------------------------------------------------------ data
  async function inflate(id) {
    const text = document.getElementById(id).textContent.trim();
    const bytes = Uint8Array.fromBase64 ? Uint8Array.fromBase64(text)
      : Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer();
  }

  function decodeArray(buf, a) {
    const n = a.shape[0], size = a.shape.reduce((x, y) => x * y, 1), k = n ? size / n : 0;
    const out = new Float32Array(size);
    const u16 = a.kind === "u16";
    const q = u16 ? new Uint16Array(buf, a.offset, size) : new Int32Array(buf, a.offset, size);
    for (let c = 0; c < k; c++) {
      let acc = 0;
      for (let f = 0, s = c * n; f < n; f++) {
        if (u16) {
          acc = (acc + q[s + f]) & 0xffff;
          out[f * k + c] = acc === 0xffff ? NaN : a.lo + acc * a.step;
        } else {
          acc = (acc + q[s + f]) | 0;
          out[f * k + c] = acc;
        }
      }
    }
    return out;
  }

  const cache = new Map(); // clip index -> Promise of {name: Float32Array}; the last 8 clips stay decoded
  function clipData(ci) {
    if (!cache.has(ci)) {
      const clip = META.clips[ci];
      cache.set(ci, inflate(clip.block).then((buf) =>
        Object.fromEntries(clip.arrays.map((a) => [a.name, decodeArray(buf, a)]))));
      if (cache.size > 8) cache.delete(cache.keys().next().value);
    }
    return cache.get(ci);
  }

  // ------------------------------------------------------------------ scene
  const view3d = $("view3d");
  let renderer;
  try {
    renderer = new THREE.WebGLRenderer({antialias: true});
  } catch (err) {
    view3d.textContent = "This browser cannot draw WebGL: " + err.message;
    return;
  }
  renderer.setPixelRatio(window.devicePixelRatio);
  renderer.outputColorSpace = "srgb-linear"; // colours are drawn as given (no sRGB conversion)
  view3d.appendChild(renderer.domElement);
  const scene = new THREE.Scene();
  scene.background = new THREE.Color().setRGB(0x15 / 255, 0x18 / 255, 0x1c / 255);
  const camera = new THREE.PerspectiveCamera(40, 1, 0.05, 200);
  const controls = new THREE.OrbitControls(camera, renderer.domElement);
  controls.maxDistance = 50;
  // the data's camera frame (x right, y down, z forward) turned into three.js's (y up, z backward)
  const world = new THREE.Group();
  world.rotation.x = Math.PI;
  scene.add(world);
  const grid = new THREE.GridHelper(6, 12, 0x666666, 0x333333);
  scene.add(grid);

  function attribute(count) {
    return new THREE.BufferAttribute(new Float32Array(count * 3), 3);
  }

  const layers = META.layers.map((L, li) => {
    const pts = new THREE.BufferGeometry();
    pts.setAttribute("position", attribute(J));
    pts.setAttribute("color", attribute(J));
    const lines = new THREE.BufferGeometry();
    lines.setAttribute("position", attribute(2 * BONES.length));
    lines.setAttribute("color", attribute(2 * BONES.length));
    const points = new THREE.Points(pts, new THREE.PointsMaterial({size: 9, sizeAttenuation: false, vertexColors: true}));
    const bones = new THREE.LineSegments(lines, new THREE.LineBasicMaterial({vertexColors: true}));
    points.frustumCulled = bones.frustumCulled = false;
    points.userData.layer = li;
    world.add(points, bones);
    const tint = LAYER_TINT[(li - (META.layers[0].role === "gt" ? 1 : 0)) % LAYER_TINT.length];
    const colour = (j) => (L.role === "pose" ? SIDE[META.side[j]] : L.role === "gt" ? GT : tint);
    const jc = pts.attributes.color.array, bc = lines.attributes.color.array;
    for (let j = 0; j < J; j++) jc.set(colour(j), 3 * j);
    BONES.forEach(([c], b) => { bc.set(colour(c), 6 * b); bc.set(colour(c), 6 * b + 3); });
    return {...L, index: li, points, bones, tint};
  });

  function errorColour(mm) { // green (0 mm) -> yellow -> red (>= META.error_scale_mm)
    const t = Math.min(Math.max(mm / META.error_scale_mm, 0), 1);
    return t < 0.5 ? [2 * t, 0.85, 0.2] : [1, 0.85 * (2 - 2 * t), 0.2];
  }

  // ------------------------------------------------------------------ drawing one frame
  function update() {
    const t0 = performance.now();
    const d = state.data, i = state.i, onCamera = state.view === "camera";
    for (const L of layers) {
      const src = d["pose" + L.index], err = d["err" + L.index];
      const pos = L.points.geometry.attributes.position.array;
      for (let j = 0; j < J; j++) {
        const o = (i * J + j) * 3;
        if (Number.isNaN(src[o])) { pos.set(FAR, 3 * j); continue; }
        for (let k = 0; k < 3; k++) pos[3 * j + k] = src[o + k] + (onCamera ? d.root[3 * i + k] : 0);
      }
      const seg = L.bones.geometry.attributes.position.array;
      BONES.forEach(([c, p], b) => {
        const far = pos[3 * c + 2] === FAR[2] || pos[3 * p + 2] === FAR[2];
        seg.set(far ? FAR : pos.subarray(3 * c, 3 * c + 3), 6 * b);
        seg.set(far ? FAR : pos.subarray(3 * p, 3 * p + 3), 6 * b + 3);
      });
      if (err) {
        const col = L.points.geometry.attributes.color.array;
        for (let j = 0; j < J; j++) col.set(Number.isNaN(err[i * J + j]) ? L.tint : errorColour(err[i * J + j]), 3 * j);
        L.points.geometry.attributes.color.needsUpdate = true;
      }
      L.points.geometry.attributes.position.needsUpdate = true;
      L.bones.geometry.attributes.position.needsUpdate = true;
      L.points.geometry.boundingSphere = null; // recomputed for hovering
    }
    $("scrub").value = i;
    $("frame").textContent = `frame ${d.frame[i]} (${i + 1} / ${state.clip.frames})`;
    draw2d();
    showHover();
    stats.updates++;
    stats.updateMs += performance.now() - t0;
  }

  function setFrame(i) {
    state.i = Math.max(0, Math.min(state.clip.frames - 1, i | 0));
    state.t = state.i;
    update();
  }

  // ------------------------------------------------------------------ 2D panel
  const images = new Map();
  function frameImage(frame) { // the embedded image of this frame, or of the nearest earlier embedded one
    const frames = META.images ? META.images.frames : [];
    let lo = 0, hi = frames.length - 1, k = -1;
    while (lo <= hi) { const m = (lo + hi) >> 1; if (frames[m] <= frame) { k = m; lo = m + 1; } else hi = m - 1; }
    if (k < 0) return null;
    if (!images.has(k)) {
      const img = new Image();
      img.onload = () => draw2d();
      img.src = "data:image/jpeg;base64," + document.getElementById("img-" + k).textContent.trim();
      images.set(k, img);
    }
    return images.get(k);
  }

  function draw2d() {
    const canvas = $("view2d"), clip = state.clip, d = state.data;
    const w = canvas.clientWidth, h = Math.round(w * clip.height / clip.width);
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const g = canvas.getContext("2d"), s = w / clip.width;
    g.fillStyle = "#22262b";
    g.fillRect(0, 0, w, h);
    const img = frameImage(d.frame[state.i]);
    if (img && img.complete) g.drawImage(img, 0, 0, w, h);
    if (!d.kp2d) return;
    const kp = (j) => [d.kp2d[(state.i * J + j) * 2] * s, d.kp2d[(state.i * J + j) * 2 + 1] * s];
    const conf = (j) => (d.conf ? d.conf[state.i * J + j] : 1);
    const rgb = (c) => `rgb(${c.map((v) => Math.round(255 * v)).join(",")})`;
    g.lineWidth = 2;
    for (const [c, p] of BONES) {
      const [a, b] = [kp(c), kp(p)];
      if ([...a, ...b].some(Number.isNaN)) continue;
      g.globalAlpha = 0.35 + 0.65 * Math.min(conf(c), conf(p));
      g.strokeStyle = rgb(SIDE[META.side[c]]);
      g.beginPath(); g.moveTo(...a); g.lineTo(...b); g.stroke();
    }
    for (let j = 0; j < J; j++) {
      const [x, y] = kp(j);
      if (Number.isNaN(x)) continue;
      g.globalAlpha = 0.35 + 0.65 * conf(j);
      g.fillStyle = rgb(SIDE[META.side[j]]);
      g.beginPath(); g.arc(x, y, 3, 0, 2 * Math.PI); g.fill();
    }
    g.globalAlpha = 1;
  }

  // ------------------------------------------------------------------ hover: the joint's values
  const ray = new THREE.Raycaster();
  ray.params.Points.threshold = 0.04;
  renderer.domElement.addEventListener("pointermove", (e) => {
    const r = renderer.domElement.getBoundingClientRect();
    ray.setFromCamera(new THREE.Vector2(((e.clientX - r.left) / r.width) * 2 - 1,
                                        -((e.clientY - r.top) / r.height) * 2 + 1), camera);
    const hit = ray.intersectObjects(layers.filter((L) => L.points.visible).map((L) => L.points))[0];
    state.hover = hit ? {layer: hit.object.userData.layer, joint: hit.index} : null;
    showHover();
  });

  function showHover() {
    const box = $("hover");
    if (!state.hover || !state.data) { box.textContent = "Hover over a joint to see its values."; return; }
    const {layer, joint} = state.hover, d = state.data, i = state.i, o = i * J + joint;
    const num = (a, k, n, digits, scale = 1) =>
      Array.from({length: n}, (_, c) => (scale * a[k * n + c]).toFixed(digits)).join(", ");
    const lines = [`${META.joints[joint]} — ${META.layers[layer].label}`,
                   `position (mm, root-relative): ${num(d["pose" + layer], o, 3, 0, 1000)}`];
    if (d["err" + layer]) lines.push(`error: ${d["err" + layer][o].toFixed(1)} mm`);
    if (d.kp2d) lines.push(`2D: ${num(d.kp2d, o, 2, 1)} px` + (d.conf ? `, confidence ${d.conf[o].toFixed(2)}` : ""));
    const units = META.uadd_units ? ` (${META.uadd_units})` : "";
    if (d.uadd) lines.push(`depth descriptor d, d_min, d_max${units}: ${num(d.uadd, o, 3, 3)}`);
    box.textContent = lines.join("\n");
  }

  // ------------------------------------------------------------------ views, clips, playback
  function setView(view) {
    state.view = view;
    $("view").value = view;
    const clip = state.clip;
    grid.visible = view === "world";
    if (view === "camera") { // the recording camera: at the origin, its vertical field of view
      camera.fov = clip.fov;
      camera.position.set(0, 0, 0);
      controls.target.set(0, 0, -clip.depth);
    } else { // upright (camera axes, y up), orbiting the pelvis, floor under the feet
      camera.fov = 40;
      camera.position.set(0, 0.3, 3.3);
      controls.target.set(0, 0, 0);
      grid.position.y = clip.floor;
    }
    camera.updateProjectionMatrix();
    controls.update();
    update();
  }

  async function selectClip(ci, i = 0) {
    const data = await clipData(ci);
    Object.assign(state, {ci, clip: META.clips[ci], data});
    $("clip").value = String(ci);
    $("scrub").max = String(state.clip.frames - 1);
    state.i = Math.max(0, Math.min(state.clip.frames - 1, i));
    state.t = state.i;
    setView(state.view);
  }

  function resize() {
    const w = view3d.clientWidth, h = view3d.clientHeight;
    renderer.setSize(w, h);
    camera.aspect = w / Math.max(h, 1);
    camera.updateProjectionMatrix();
    if (state.data) draw2d();
  }
  new ResizeObserver(resize).observe(view3d);

  function loop(now) {
    requestAnimationFrame(loop);
    if (state.playing && state.data) {
      state.t = (state.t + ((now - state.last) / 1000) * (state.clip.fps / state.clip.stride) * state.speed)
        % state.clip.frames;
      if ((state.t | 0) !== state.i) { state.i = state.t | 0; update(); }
    }
    state.last = now;
    const t0 = performance.now();
    controls.update();
    renderer.render(scene, camera);
    stats.renders++;
    stats.renderMs += performance.now() - t0;
  }

  function play(on) {
    state.playing = on;
    $("play").textContent = on ? "Pause" : "Play";
  }

  // ------------------------------------------------------------------ controls
  $("title").textContent = META.title;
  document.title = "auglift view: " + META.title;
  META.clips.forEach((clip, ci) => $("clip").add(new Option(`${clip.name} (${clip.frames} frames)`, String(ci))));
  $("clip").addEventListener("change", (e) => selectClip(Number(e.target.value)));
  $("play").addEventListener("click", () => play(!state.playing));
  $("scrub").addEventListener("input", (e) => setFrame(Number(e.target.value)));
  $("speed").addEventListener("change", (e) => { state.speed = Number(e.target.value); });
  $("view").addEventListener("change", (e) => setView(e.target.value));
  window.addEventListener("keydown", (e) => {
    if (e.target.tagName === "SELECT" || e.target.tagName === "INPUT" && e.target.type !== "range") return;
    if (e.key === " ") { e.preventDefault(); play(!state.playing); }
    if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      e.preventDefault();
      setFrame(state.i + (e.key === "ArrowRight" ? 1 : -1));
    }
  });
  for (const L of layers) {
    const label = document.createElement("label"), box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.addEventListener("change", () => { L.points.visible = L.bones.visible = box.checked; });
    label.append(box, " " + L.label);
    $("layers").append(label);
  }
  for (const group of META.worst) {
    const head = document.createElement("h3"), list = document.createElement("ol");
    head.textContent = `Worst frames: ${group.label}`;
    for (const w of group.frames) {
      const item = document.createElement("li"), link = document.createElement("a");
      link.href = "#";
      link.textContent = `${META.clips[w.clip].name}, frame ${w.frame}: ${w.mm.toFixed(1)} mm`;
      link.addEventListener("click", (e) => { e.preventDefault(); play(false); selectClip(w.clip, w.index); });
      item.append(link);
      list.append(item);
    }
    $("worst").append(head, list);
  }
  $("notes").textContent = META.notes.join("\n");
  if (META.layers.some((L) => L.role === "pred")) $("legend").hidden = false;

  window.auglift = {state, stats, clipData, selectClip, setFrame, setView, play, ready: false};
  resize();
  requestAnimationFrame((now) => { state.last = now; loop(now); });
  selectClip(0).then(() => { window.auglift.ready = true; });
})();
