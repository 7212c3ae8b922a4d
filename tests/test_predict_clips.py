"""Whole-clip TCN prediction (dilated path over runs of frames, edge-padded at clip ends) equals the
per-window strided prediction, with and without the flip test, at clip edges and for any selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from _train_fixtures import moving_poseset
from auglift.encoding import make_state
from auglift.models.tcn import TCN
from auglift.predict import predict_windows

# clips longer and shorter than the window, one of a single frame
PS = moving_poseset(6, [70, 5, 23, 1, 41, 12], seed=3)
STATE = make_state({"channels": "xyc"})


def _tcn(causal: bool) -> TCN:
    torch.manual_seed(0)
    model = TCN(in_channels=3, filter_widths=[3, 3], channels=48, dropout=0.0, causal=causal)
    for bn in (model.expand_bn, *model.layers_bn):  # non-trivial running statistics
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _both(model: TCN, sel: np.ndarray | None, **kw) -> tuple[np.ndarray, np.ndarray]:
    anchor = "causal" if model.causal else "center"
    w = PS.windows(model.receptive_field, anchor=anchor)
    clips = predict_windows(model, STATE, PS, w, sel, **kw)
    model.whole_clip = False  # the instance attribute hides the class's: per-window strided path
    try:
        windows = predict_windows(model, STATE, PS, w, sel, **kw)
    finally:
        del model.whole_clip
    return clips, windows


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("flip", ["none", "root", "image"])
def test_whole_clip_equals_windows(causal, flip):
    model = _tcn(causal)
    # clip_frames=40: a 70-frame clip is cut into chunks, several chunks share a batch
    clips, windows = _both(model, None, flip_test=flip != "none", flip_center=flip if flip != "none" else "root",
                           clip_frames=40)
    assert clips.shape == (len(PS), 1, 17, 3)
    np.testing.assert_allclose(clips, windows, atol=2e-5, rtol=1e-4)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, len(PS) - 1), max_size=60), st.integers(12, 200))
def test_any_selection_of_windows(sel, clip_frames):
    sel = np.asarray(sel, dtype=np.int64)  # unsorted, repeats, runs and isolated windows
    clips, windows = _both(_tcn(False), sel, flip_test=True, clip_frames=clip_frames)
    assert clips.shape == (len(sel), 1, 17, 3)
    np.testing.assert_allclose(clips, windows, atol=2e-5, rtol=1e-4)
