"""Real motion capture (BVH, ASF/AMC) as a motion source for the embedded world.

Read a file, run forward kinematics, retarget to H36M-17::

    from auglift.datasets.mocap import load_motion

    clip = load_motion("02_01.amc", fps=30)     # finds 02.asf beside it
    clip.kp3d        # (F, 17, 3) metres, world frame: z up, floor z = 0
    clip.fps, clip.skeleton, clip.height, clip.info

* :mod:`~auglift.datasets.mocap.bvh` — BVH reader/writer (any channel order and count, any
  rotation order, units detected or given).
* :mod:`~auglift.datasets.mocap.asf_amc` — Acclaim ASF/AMC reader (CMU/Vicon conventions).
* :mod:`~auglift.datasets.mocap.kinematics` — :class:`Motion`, vectorised forward kinematics,
  slerp resampling, unit detection.
* :mod:`~auglift.datasets.mocap.retarget` — joint-name tables (CMU ASF, CMU BVH, Mixamo,
  MotionBuilder, Biovision) or a user mapping, up axis, height, floor, frame rate.
* :mod:`~auglift.datasets.mocap.source` — the synthetic world's motion source:
  :func:`film_motion` films the files with a domain's cameras, depth errors and detector;
  :func:`generate_mixed` mixes them with the procedural activities by a share of the frames.
"""

from auglift.datasets.mocap.asf_amc import AsfSkeleton, find_asf, load_amc, parse_amc, parse_asf, read_asf
from auglift.datasets.mocap.bvh import BvhFile, format_bvh, load_bvh, parse_bvh, read_bvh, to_motion, write_bvh
from auglift.datasets.mocap.kinematics import (
    UNITS,
    Motion,
    Skeleton,
    detect_unit_scale,
    euler_matrices,
    forward_kinematics,
    resample,
)
from auglift.datasets.mocap.retarget import (
    H36M_HEAD_LENGTHS,
    HEIGHT_RANGE_M,
    SKELETON_MAPS,
    MocapClip,
    SkeletonMap,
    detect_skeleton,
    find_motion_files,
    h36m_head,
    load_mapping,
    load_motion,
    load_motions,
    mapping_matrix,
    retarget,
)
from auglift.datasets.mocap.source import film_motion, generate_mixed, motion_clips, subject_of, to_motion_clip

__all__ = [
    "H36M_HEAD_LENGTHS",
    "HEIGHT_RANGE_M",
    "SKELETON_MAPS",
    "UNITS",
    "AsfSkeleton",
    "BvhFile",
    "MocapClip",
    "Motion",
    "Skeleton",
    "SkeletonMap",
    "detect_skeleton",
    "detect_unit_scale",
    "euler_matrices",
    "film_motion",
    "find_asf",
    "find_motion_files",
    "format_bvh",
    "forward_kinematics",
    "generate_mixed",
    "h36m_head",
    "load_amc",
    "load_bvh",
    "load_mapping",
    "load_motion",
    "load_motions",
    "mapping_matrix",
    "motion_clips",
    "parse_amc",
    "parse_asf",
    "parse_bvh",
    "read_asf",
    "read_bvh",
    "resample",
    "retarget",
    "subject_of",
    "to_motion",
    "to_motion_clip",
    "write_bvh",
]
