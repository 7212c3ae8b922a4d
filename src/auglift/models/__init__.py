"""2D-to-3D lifters with one interface, for any number of input channels per joint.

Every lifter is an ``nn.Module`` built by :func:`build` and maps an input window
``x (B, T, J, C_in)`` (normalised 2D + optional confidence/depth channels, see
:mod:`auglift.encoding`) to root-relative 3D joints ``(B, T_out, J, 3)`` in metres:

* ``T_out == 1`` for many-to-one lifters (the target is the window's centre frame, or
  its last frame when causal), ``T_out == T`` for many-to-many ones (MotionBERT);
* ``model.receptive_field`` is the window length ``T`` the model expects (1 for
  single-frame models), ``model.many_to_many`` and ``model.causal`` describe the target.

Only the input layer depends on ``C_in``; with the original channel count each model has the
published architecture, and :func:`load_official` loads the original projects' checkpoint
files (VideoPose3D ``.bin``, PoseFormer ``.bin``/``.pth``, MotionBERT ``.bin``): parameter
names are the originals', so a checkpoint needs no more than its container unwrapped.
"""

from __future__ import annotations

from auglift.models.layers import set_bn_momentum
from auglift.models.official import load_official
from auglift.models.registry import MODELS, build, register

__all__ = ["MODELS", "build", "load_official", "register", "set_bn_momentum"]
