"""The batched sweep: the learning rate each config sees, divergence masking, sharding, report metrics."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from optax_warmup.sweep import report
from optax_warmup.sweep.train import TINY, SweepConfig, build_grid, run_sweep, warmup_steps_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 2 lrs x 3 warmups x 2 shapes + an absurd lr (12 + 6 = 18 configs), map strategy, one device
MIXED = dict(TINY, steps=12, lrs=(1e-2, 3e-2, 1e30), warmups=(0, 4, 0.5), shapes=("linear", "cosine"),
             strategy="map")


@pytest.fixture(scope="module")
def mixed():
    return run_sweep(SweepConfig(**MIXED), progress=False)


def closed_form(t, peak, warmup, steps, shape, end_fraction=0.1):
    """warmup_cosine_decay_schedule(0, peak, warmup, steps, end_fraction * peak) written out by hand."""
    end = end_fraction * peak
    if t < warmup:
        p = t / warmup
        return peak * (p if shape == "linear" else 0.5 * (1 - math.cos(math.pi * p)))
    return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * (t - warmup) / (steps - warmup)))


def test_each_config_trains_with_its_own_closed_form_learning_rate(mixed):
    lr = mixed["curves"]["lr"]
    assert lr.shape == (12, 3 * 3 * 2)
    for i, g in enumerate(mixed["grid"]):
        assert g["warmup_steps"] == {0: 0, 4: 4, 0.5: 6}[g["warmup"]]
        for t in (0, 1, 3, 5, 6, 9, 11):
            expected = closed_form(t, g["lr"], g["warmup_steps"], 12, g["shape"])
            np.testing.assert_allclose(lr[t, i], expected, rtol=1e-5, atol=1e-9, err_msg=f"{g} at step {t}")
    # what the optimizer used: zero at step 0 with a warmup, the peak at once without one
    first = {(g["warmup_steps"], g["shape"], g["lr"]): lr[0, i] for i, g in enumerate(mixed["grid"])}
    assert first[(4, "linear", 3e-2)] == 0.0 and first[(0, "cosine", 3e-2)] == pytest.approx(3e-2)


def test_absurd_learning_rate_is_marked_diverged_and_does_not_touch_other_configs(mixed):
    rows = report.per_config(mixed)
    assert [r["diverged"] for r in rows] == [r["lr"] == 1e30 for r in rows]
    for r in rows:
        if r["diverged"]:
            assert r["diverged_reason"].startswith("non-finite at step") and math.isnan(r["final_val_loss"])
        else:
            assert np.isfinite(r["final_val_loss"]) and r["final_val_loss"] < r["init_val_loss"]
    absurd = [i for i, r in enumerate(rows) if r["diverged"]]
    assert np.isnan(mixed["curves"]["loss"][-1, absurd]).all()  # frozen: no losses after divergence
    assert "3/3" not in report.format_table(mixed) and "1/1" in report.format_table(mixed)

    # the sane configs' runs are exactly what they are without the diverging neighbours
    alone = run_sweep(SweepConfig(**dict(MIXED, lrs=(1e-2, 3e-2))), progress=False)
    sane = [i for i, r in enumerate(rows) if not r["diverged"]]
    assert [mixed["grid"][i] for i in sane] == alone["grid"]
    np.testing.assert_allclose(mixed["curves"]["loss"][:, sane], alone["curves"]["loss"], rtol=1e-6)
    np.testing.assert_allclose(mixed["val_loss"][:, sane], alone["val_loss"], rtol=1e-6)


_SHARDED_SCRIPT = """
import json, sys
import jax
from optax_warmup.sweep.train import SweepConfig, run_sweep
settings = json.loads(sys.argv[1])
sharded = run_sweep(SweepConfig(**dict(settings, strategy="vmap")), progress=False)
single = run_sweep(SweepConfig(**dict(settings, strategy="map")), progress=False, devices=jax.devices()[:1])
nan_to_none = lambda a: [[None if x != x else x for x in row] for row in a.tolist()]
print(json.dumps({name: dict(devices=r["settings"]["devices"], strategy=r["settings"]["strategy_used"],
                             loss=nan_to_none(r["curves"]["loss"]), val=nan_to_none(r["val_loss"]))
                  for name, r in (("sharded", sharded), ("single", single))}))
"""


def test_sharded_over_four_devices_equals_single_device():
    # With 4 host devices: the 18 configs padded to 20 and sharded over all 4 (vmap on each), against the same
    # grid on one device (lax.map). One subprocess for both, so this test needs no in-process run.
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", _SHARDED_SCRIPT, json.dumps(MIXED)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads(proc.stdout.strip().splitlines()[-1])
    sharded, single = runs["sharded"], runs["single"]
    assert (sharded["devices"], sharded["strategy"], single["devices"], single["strategy"]) == (4, "vmap", 1, "map")

    as_array = lambda rows: np.array([[np.nan if x is None else x for x in row] for row in rows])
    assert np.isnan(as_array(single["loss"])).any()  # the absurd lr diverged, in both
    np.testing.assert_allclose(as_array(sharded["loss"]), as_array(single["loss"]), rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(as_array(sharded["val"]), as_array(single["val"]), rtol=2e-5, atol=1e-6)


def test_warmups_are_steps_or_fractions():
    assert [warmup_steps_of(w, 200) for w in (0, 10, 0.0, 0.1, 0.25, 1e2)] == [0, 10, 0, 20, 50, 100]
    with pytest.raises(ValueError, match="fraction"):
        warmup_steps_of(1.5, 200)
    with pytest.raises(ValueError, match=">= 0"):
        warmup_steps_of(-0.1, 200)
    grid = build_grid(SweepConfig(lrs=(1e-3, 1e-2), warmups=(0, 0.5), shapes=("linear",), seeds=3, steps=10))
    assert len(grid) == 12 and [g["seed"] for g in grid[:3]] == [0, 1, 2]


def _row(lr, warmup, seed, final, init=5.5, diverged=False):
    return dict(shape="linear", warmup=warmup, warmup_steps=warmup, lr=lr, seed=seed, final_val_loss=final,
                init_val_loss=init, diverged=diverged)


def test_lr_sensitivity_is_mean_of_clipped_losses_minus_best():
    rows = [_row(1e-3, 0, 0, 3.0), _row(1e-2, 0, 0, 2.5), _row(1e-1, 0, 0, 9.0),  # 9.0 is clipped to 5.5
            _row(1e-3, 0, 1, 3.0), _row(1e-2, 0, 1, 2.0), _row(1e-1, 0, 1, float("nan"), diverged=True),
            _row(1e-3, 10, 0, 2.6), _row(1e-2, 10, 0, 2.5), _row(1e-1, 10, 0, 3.2, diverged=True)]  # stuck
    got = {s["warmup"]: s for s in report.lr_sensitivity(rows)}
    seed0 = (3.0 + 2.5 + 5.5) / 3 - 2.5
    seed1 = (3.0 + 2.0 + 5.5) / 3 - 2.0
    assert got["0"]["sensitivity_per_seed"] == pytest.approx([seed0, seed1])
    assert got["0"]["sensitivity"] == pytest.approx((seed0 + seed1) / 2)
    assert got["10"]["sensitivity"] == pytest.approx((2.6 + 2.5 + 3.2) / 3 - 2.5)  # a finite loss counts as is


def test_loss_back_at_or_stuck_at_unigram_late_is_divergence_but_slow_learning_is_not():
    t = np.arange(100)
    slow = 5.5 - 0.01 * t  # still above the unigram loss (3.1) at the end, but never was lower
    spike = np.where(t < 50, 5.5 - 0.06 * t, 4.0)  # got to ~2.6, climbed back to 4.0
    good = 5.5 - 0.03 * t
    stuck = np.maximum(5.5 - 0.1 * t, 3.12)  # collapsed to the unigram loss by step 24, flat since
    curves = np.stack([slow, spike, good, stuck], axis=1).astype(np.float32)
    results = dict(curves=dict(loss=curves, grad_norm=np.ones_like(curves), lr=np.ones_like(curves)),
                   alive=np.ones_like(curves, bool), val_loss=np.stack([np.full(4, 5.5), curves[-1]]),
                   corpus=dict(unigram_cross_entropy=3.1),
                   grid=[dict(shape="linear", warmup=0, warmup_steps=0, lr=lr, seed=0) for lr in (1, 2, 3, 4)])
    rows = report.per_config(results)
    assert [r["diverged"] for r in rows] == [False, True, False, True]
    assert "climbed back" in rows[1]["diverged_reason"] and "stuck" in rows[3]["diverged_reason"]
    assert rows[1]["early_max_loss_jump"] == pytest.approx(-0.06, abs=1e-5)  # first 20%: a steady descent


@pytest.mark.slow  # two processes talking over gloo: opt in with `pytest -m slow`
def test_two_processes_with_distributed_equal_one_device(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    flags = ["--steps", "6", "--d-model", "16", "--layers", "1", "--heads", "2", "--context", "16",
             "--batch-size", "4", "--valid-windows", "32", "--max-files", "30", "--seeds", "1",
             "--lrs", "1e-2,3e-2,1e30", "--warmups", "0,3", "--no-progress"]
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    procs = [subprocess.Popen([sys.executable, "-m", "optax_warmup", "sweep", *flags, "--out", str(tmp_path / "mh"),
                               "--distributed", "--coordinator", f"localhost:{port}", "--num-processes", "2",
                               "--process-id", str(i)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert "outputs in" in outputs[0] and "outputs in" not in outputs[1]  # process 0 reports

    single = run_sweep(SweepConfig(**dict(TINY, steps=6, lrs=(1e-2, 3e-2, 1e30), warmups=(0, 3))), progress=False)
    multi = json.loads((tmp_path / "mh" / "results.json").read_text())
    assert multi["settings"]["devices"] == 4
    as_array = lambda rows: np.array([[np.nan if x is None else x for x in row] for row in rows]).T
    np.testing.assert_allclose(as_array(multi["curves"]["loss"]), single["curves"]["loss"], rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(as_array(multi["curves"]["val_loss"]), single["val_loss"], rtol=2e-5, atol=1e-6)
