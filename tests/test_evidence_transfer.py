"""The transfer evidence experiment (``optax-warmup evidence transfer``), a seconds-long run checked against hand
computations."""

import importlib.util
import math
import os

import numpy as np
import pytest

from optax_warmup import sweep
from optax_warmup.sweep.evidence import _common as C
from optax_warmup.sweep.evidence import transfer

needs_digits = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                                  reason="the digits task needs scikit-learn")


def test_transfer_smoke(tmp_path):
    cache = str(tmp_path / "cache")
    summary = transfer.run("tiny", out=str(tmp_path / "out"), progress=False, cache_dir=cache)
    assert summary["pretrain"]["cached"] is False and len(os.listdir(cache)) == 1
    again = transfer.finetune(**transfer.SIZES["tiny"]["task"], pretrain_settings=transfer.SIZES["tiny"]["pretrain"],
                              cache_dir=cache)
    assert again.info["pretrain"]["cached"] is True
    result = sweep.load(str(tmp_path / "out" / "finetune" / "results.json"))
    steps = transfer.SIZES["tiny"]["steps"]
    # every config starts from the pretrained model: the same losses at step 0
    assert np.ptp(result.eval["loss"][:, 0]) == 0 and np.ptp(result.eval["code_loss"][:, 0]) == 0
    # forgetting = final code loss minus the pretrained model's, by hand
    row = next(r for r in summary["table"] if r["warmup"] == "none" and r["variant"] == "uniform")
    idx = C.members(result, variant="uniform", warmup_steps=0, peak_value=row["peak_value"])
    want = result.eval["code_loss"][idx, -1] - result.eval["code_loss"][idx, 0]
    np.testing.assert_allclose(row["forgetting"]["per_seed"], want, rtol=1e-6)
    # the per-group schedules, read from the optimizer state: closed forms
    t = np.arange(steps)
    for i, c in enumerate(result.configs):
        cosine = c["peak_value"] * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * t / steps)))
        ramp = np.minimum(t / c["warmup_steps"], 1.0) if c["warmup_steps"] else np.ones(steps)
        if c["variant"] == "lower_low":
            np.testing.assert_allclose(result.curves["lr/lower"][i], 0.1 * result.curves["lr/upper"][i], rtol=1e-6)
            np.testing.assert_allclose(result.curves["lr/upper"][i], ramp * cosine, rtol=1e-5, atol=1e-9)
        if c["variant"] == "lower_long":
            long = math.ceil(transfer.WARMUPS["long"] * steps)
            np.testing.assert_allclose(result.curves["lr/lower"][i], np.minimum(t / long, 1) * cosine, rtol=1e-5,
                                       atol=1e-9)
    assert "Paired differences" in open(tmp_path / "out" / "report.md").read()
