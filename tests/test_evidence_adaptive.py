"""The adaptive evidence experiment (``optax-warmup evidence adaptive``), a seconds-long run checked against hand
computations."""

import importlib.util
import math
import os

import numpy as np
import pytest

from optax_warmup import sweep
from optax_warmup.sweep.evidence import _common as C
from optax_warmup.sweep.evidence import adaptive

needs_digits = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                                  reason="the digits task needs scikit-learn")


@pytest.fixture(scope="module")
def adaptive_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("adaptive")
    return adaptive.run("tiny", out=str(out), progress=False), str(out)


@needs_digits
def test_adaptive_smoke(adaptive_run):
    summary, out = adaptive_run
    assert summary["library_defaults"] == dict(decay=0.99, zscore=3.5, norm_ratio=2.0, loss_ratio=1.2,
                                               min_observations=5, warmup=True)
    rows = summary["scores"]["digits"]
    assert rows[0]["setting"] == adaptive.BEFORE and rows[1]["setting"] == summary["library_defaults"]
    for row in rows:
        assert all(0.0 <= row[k] <= 1.0 for k in row if k.startswith("detect"))
        assert row["calm_flags"] >= 0.0 and row["runs"] >= 1
    # the too-short adaptive warmup's factor, recorded per step: the linear ramp until its first back-off
    real = sweep.load(os.path.join(out, "real_digits", "results.json"))
    steps = adaptive.SIZES["tiny"]["digits"]["steps"]
    w = math.ceil(adaptive.TOO_SHORT * steps)
    for i in C.members(real, warmup_method="adaptive", warmup_steps=adaptive.TOO_SHORT):
        first = int(np.argmax(real.curves["num_spikes"][i] > 0)) if real.curves["num_spikes"][i, -1] else steps
        np.testing.assert_allclose(real.curves["factor"][i, :first], np.minimum(np.arange(first) / w, 1.0))
    # the injected spike changed the runs it hit, and only from its step on
    step = adaptive.SIZES["tiny"]["digits"]["spike_step"]
    lr = summary["picks"]["digits"]["mid_lr"]
    hit = C.members(real, warmup_method="linear", warmup_steps=0.1, peak_value=lr, spike_factor=1000.0)
    calm = C.members(real, warmup_method="linear", warmup_steps=0.1, peak_value=lr, spike_factor=1.0)
    np.testing.assert_array_equal(real.curves["loss"][hit, : step + 1], real.curves["loss"][calm, : step + 1])
    assert not np.allclose(real.curves["loss"][hit, step + 1:], real.curves["loss"][calm, step + 1:])
    assert "Rule's choice" in open(os.path.join(out, "report.md")).read()
    assert os.path.exists(os.path.join(out, "adaptive_detection.png"))
