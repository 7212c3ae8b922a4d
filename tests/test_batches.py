"""Training batches: the frame-encoding cache gives the per-batch encoder's inputs bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import auglift.batches
from _train_fixtures import add_uadd, moving_poseset
from auglift.batches import WindowSet
from auglift.encoding import encode, fit


@pytest.mark.parametrize("options", [{"channels": "uadd", "scale_norm": "bbox"}, {"channels": "xy"},
                                     {"channels": "uadd", "depth_kind": "relative", "relative_norm": "torso"}])
@pytest.mark.parametrize("window", [1, 9])
def test_cached_inputs_equal_encoding_each_batch(options, window, monkeypatch):
    ps = add_uadd(moving_poseset(4, 30, seed=3), depth_model="oracle-metric")
    state = fit(ps, options)
    w = ps.windows(window, stride=1, anchor="center", pad="edge", clips=np.array([0, 2, 3]))
    sel = np.arange(0, len(w), 2)
    cached = WindowSet(ps, w, sel, state)
    cached.inputs(sel[:1])  # builds the cache (on first use)
    monkeypatch.setattr(auglift.batches, "ENCODE_CACHE_MAX_BYTES", 0)  # too big to cache: encoded per batch
    direct = WindowSet(ps, w, sel, state)
    rng = np.random.default_rng(0)
    for _ in range(4):
        idx = np.sort(rng.choice(sel, 16, replace=False))
        want = encode(ps, w.rows(idx), state)
        got = cached.batch(idx, np.zeros(16, bool)).x
        assert got.shape == want.shape == (16, window, 17, len(state.channels)) and got.dtype == np.float32
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
        assert np.array_equal(direct.inputs(idx).view(np.uint32), want.view(np.uint32))
    # the cache holds the frames of the selected windows' clips only
    rows, x = cached._cache
    assert set(np.unique(ps.clip[rows])) == {0, 2, 3} and len(x) == len(rows)
    assert direct._cache is False
