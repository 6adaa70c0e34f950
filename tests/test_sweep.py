"""The built-in tasks on the engine: the byte LM's learning rates, divergence and isolation; the digits task."""

import json
import math
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from optax_warmup import sweep
from optax_warmup.sweep.optimizers import warmup_adamw
from optax_warmup.sweep.tasks.bytelm import bytelm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(d_model=16, n_layers=1, n_heads=2, context=16, batch_size=4, valid_windows=32, max_files=30)
STEPS = 12
# 2 shapes x 3 warmups x (2 lrs + an absurd one) = 18 configs, one seed, one device (lax.map)
MIXED = {"warmup_shape": ["linear", "cosine"], "warmup_steps": [0, 4, 0.5], "peak_value": [1e-2, 3e-2, 1e30]}


@pytest.fixture(scope="module")
def mixed():
    return sweep.run(bytelm(**TINY), warmup_adamw(STEPS), STEPS, MIXED, progress=False, strategy="loop")


def closed_form(t, peak, warmup, steps, shape, end_fraction=0.1):
    """warmup_cosine_decay_schedule(0, peak, warmup, steps, end_fraction * peak) written out by hand."""
    end = end_fraction * peak
    if t < warmup:
        p = t / warmup
        return peak * (p if shape == "linear" else 0.5 * (1 - math.cos(math.pi * p)))
    return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * (t - warmup) / (steps - warmup)))


def test_each_config_trains_with_its_own_closed_form_learning_rate(mixed):
    lr = mixed.curves["lr"]
    assert lr.shape == (18, STEPS)
    for i, (c, g) in enumerate(zip(mixed.configs, mixed.given, strict=True)):
        assert c["warmup_steps"] == {0: 0, 4: 4, 0.5: 6}[g["warmup_steps"]]
        if c["peak_value"] == 1e30:
            continue  # frozen after its first step
        for t in (0, 1, 3, 5, 6, 9, 11):
            expected = closed_form(t, c["peak_value"], c["warmup_steps"], STEPS, c["warmup_shape"])
            np.testing.assert_allclose(lr[i, t], expected, rtol=1e-5, atol=1e-9, err_msg=f"{c} at step {t}")


def test_absurd_learning_rate_is_marked_diverged_and_does_not_touch_other_configs(mixed):
    # (whether a sane config also ends stuck at the unigram loss depends on the Python's standard library, the
    # corpus: on 3.12 one does; so only non-finite runs are asserted here)
    reasons = mixed.divergence()
    nonfinite = [bool(r and r.startswith("non-finite at step")) for r in reasons]
    assert nonfinite == [c["peak_value"] == 1e30 for c in mixed.configs]
    final, init = mixed.final_loss, mixed.initial_loss
    for bad, f, i0 in zip(nonfinite, final, init, strict=True):
        assert math.isnan(f) if bad else (np.isfinite(f) and f < i0)
    assert "1/1" in mixed.table()

    # the sane configs' runs are exactly what they are without the diverging neighbours (each config's own
    # program with strategy="loop"; batched with vmap, to float rounding)
    alone = sweep.run(bytelm(**TINY), warmup_adamw(STEPS), STEPS, dict(MIXED, peak_value=[1e-2, 3e-2]),
                      progress=False, strategy="loop")
    sane = [i for i, r in enumerate(reasons) if not r]
    assert [mixed.configs[i] for i in sane] == alone.configs
    np.testing.assert_array_equal(mixed.curves["loss"][sane], alone.curves["loss"])
    np.testing.assert_array_equal(mixed.eval["loss"][sane], alone.eval["loss"])


def test_bytelm_task_parameters_and_batches_follow_the_numpy_streams():
    task = bytelm(**TINY)
    leaves = lambda seed: jax.tree.leaves(task.init(seed))  # noqa: E731
    assert all(np.array_equal(x, y) for x, y in zip(leaves(0), leaves(0), strict=True))
    assert not np.array_equal(leaves(0)[-1], leaves(1)[-1])
    weights = np.concatenate([x.ravel() for x in leaves(0) if x.ndim == 2])
    assert abs(weights.std() - 0.02) < 0.001  # N(0, 0.02), as model.init would draw
    stream = task.batches(1)
    first, second = next(stream), next(stream)
    assert first.shape == (4, 17) and first.dtype == np.int32 and not np.array_equal(first, second)
    np.testing.assert_array_equal(next(task.batches(1)), first)  # a stream is the same each time it is made
    assert 0 < task.baseline_loss < math.log(256) and task.info["train_files"] + task.info["valid_files"] == 30
    with pytest.raises(ValueError, match="multiple of n_heads"):
        bytelm(**dict(TINY, d_model=15))


def test_digits_task_learns():
    pytest.importorskip("sklearn")
    from optax_warmup.sweep.tasks.digits import digits, load

    x_train, y_train, x_valid, y_valid = load()
    assert x_train.shape == (1438, 64) and x_valid.shape == (359, 64) and set(np.unique(y_train)) == set(range(10))
    r = sweep.run(digits(hidden=(32,)), warmup_adamw(100), 100, {"peak_value": [1e-2], "warmup_steps": [0, 10]},
                  progress=False)
    assert r.task["baseline_loss"] == pytest.approx(math.log(10))
    assert np.all(r.eval["accuracy"][:, -1] > 0.9) and np.all(r.eval["loss"][:, 0] > 1.5)
    assert np.all(r.final_loss < 0.4)


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

    single = sweep.run(bytelm(**TINY), warmup_adamw(6), 6,
                       {"warmup_shape": ["linear"], "warmup_steps": [0, 3], "peak_value": [1e-2, 3e-2, 1e30],
                        "seed": [0]}, progress=False)
    multi = sweep.load(tmp_path / "mh" / "results.json")
    assert multi.settings["devices"] == 4 and multi.settings["processes"] == 2
    np.testing.assert_allclose(multi.curves["loss"], single.curves["loss"], rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(multi.eval["loss"], single.eval["loss"], rtol=2e-5, atol=1e-6)
    assert json.loads((tmp_path / "mh" / "results.json").read_text())["task"]["name"] == "bytelm"
