"""The evidence experiments (``optax-warmup evidence``): the spike-test replay equals adaptive_warmup, the seed
statistics, the injected spike, and a seconds-long run of each experiment checked against hand computations."""

import importlib.util
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow
from optax_warmup import sweep
from optax_warmup.sweep.evidence import _common as C
from optax_warmup.sweep.evidence import adaptive, methods, transfer
from optax_warmup.sweep.evidence._replay import replay

needs_digits = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                                  reason="the digits task needs scikit-learn")

SETTINGS = [dict(decay=0.99, zscore=3.5, norm_ratio=2.0, loss_ratio=1.2, min_observations=5),
            dict(decay=0.9, zscore=2.0, norm_ratio=1.2, loss_ratio=1.05, min_observations=3),
            dict(decay=0.5, zscore=0.0, norm_ratio=3.0, loss_ratio=1.5, min_observations=8)]


def trajectories(n=6, steps=60, seed=0):
    rng = np.random.default_rng(seed)
    norms = np.exp(rng.normal(0, 0.4, (n, steps)) - np.linspace(0, 2, steps)) * 3.0
    norms[:, :4] *= [30.0, 3.0, 10.0, 1.0]  # an early transient
    norms[1, 30] *= 40.0  # spikes
    norms[2, 45] *= 8.0
    norms[3, 20] = 0.0  # a zero gradient: not observed
    norms[4, 50:] = np.nan  # a run that stopped
    losses = 3.0 - np.linspace(0, 1, steps) + rng.normal(0, 0.05, (n, steps))
    losses[5, 40] += 2.0  # a loss spike
    return norms.astype(np.float32), losses.astype(np.float32)


def library_flags(norms, losses, setting):
    """adaptive_warmup itself over the trajectories: spikes per step."""
    def one(ns, ls):
        tx = ow.adaptive_warmup(None, 10, **setting)
        state = tx.init(jnp.zeros(1))

        def step(s, nl):
            extra = {} if losses is None else {"value": nl[1]}
            _, new = tx.update(jnp.array([nl[0]]), s, **extra)
            return new, new.num_spikes > s.num_spikes

        return jax.lax.scan(step, state, (ns, jnp.zeros_like(ns) if ls is None else ls))[1]

    return np.asarray(jax.vmap(one)(jnp.asarray(norms), None if losses is None else jnp.asarray(losses)))


@pytest.mark.parametrize("with_loss", [True, False])
def test_the_replay_flags_exactly_what_adaptive_warmup_flags(with_loss):
    norms, losses = trajectories()
    losses = losses if with_loss else None
    fields = {k: np.array([s[k] for s in SETTINGS], np.float64) for k in SETTINGS[0]}
    fields["burn"] = fields["min_observations"]  # the library's statistics' warm-up
    out = replay(norms, losses, fields)
    for j, setting in enumerate(SETTINGS):
        want = library_flags(norms, losses, setting)
        np.testing.assert_array_equal(out["flags"][j], want, err_msg=str(setting))
    assert out["flags"].sum() > 0 and not out["flags"].all()


def test_the_replay_threshold_is_the_smallest_spike_adaptive_warmup_flags():
    norms = trajectories()[0][:1]
    setting = SETTINGS[0]
    fields = {k: np.array([v], np.float64) for k, v in setting.items()}
    fields["burn"] = fields["min_observations"]
    threshold = replay(norms, None, fields)["threshold"][0, 0]
    assert np.isinf(threshold[:9]).all() and np.isfinite(threshold[10:50]).all()
    for step in (12, 33):
        for scale, flagged in ((1.01, True), (0.99, False)):
            spiked = norms.copy()
            spiked[0, step] *= threshold[step] * scale
            assert bool(library_flags(spiked, None, setting)[0, step]) == flagged, (step, scale)


def test_seed_statistics_by_hand():
    s = C.seed_stats([1.0, 2.0, 6.0])
    assert s["mean"] == 3.0 and (s["min"], s["max"]) == (1.0, 6.0) and s["per_seed"] == [1.0, 2.0, 6.0]
    assert 1.0 <= s["ci95"][0] < 3.0 < s["ci95"][1] <= 6.0
    d = C.paired([3.0, 4.0, 2.0], [1.0, 1.0, 1.0])
    assert d["mean"] == 2.0 and d["same_sign"] == 3 and not C.inside_noise(d)
    mixed = C.paired([3.0, 0.0], [1.0, 1.0])
    assert mixed["same_sign"] == 1 and C.inside_noise(mixed)
    assert C.fmt(s) == "3.000 (1.000-6.000)" and C.fmt(C.seed_stats([1.0, float("nan")])) == "diverged (1/2)"


def test_the_injected_spike_multiplies_one_update_only():
    tx = adaptive.gradient_spike(2, 1000.0)
    state = tx.init(jnp.zeros(2))
    out = []
    for _ in range(4):
        u, state = tx.update(jnp.ones(2), state)
        out.append(float(u[0]))
    assert out == [1.0, 1.0, 1000.0, 1.0]


# ---------------------------------------------------------------------------------- the experiments, tiny


@pytest.fixture(scope="module")
def methods_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("methods")
    return methods.run("tiny", out=str(out), progress=False), str(out)


@needs_digits
def test_methods_smoke(methods_run):
    summary, out = methods_run
    result = sweep.load(os.path.join(out, "digits", "results.json"))
    size = methods.SIZES["tiny"]["digits"]
    table = summary["tasks"]["digits"]["table"]
    assert list(table) == ["none @ b2=0.95", "linear 10% @ b2=0.95", "untuned @ b2=0.95", "adaptive 10% @ b2=0.95"]
    final, init = result.final_loss, result.initial_loss
    for name, (_, m, w, b2) in zip(table, methods.settings_of(size), strict=True):
        per_seed = []
        for seed in range(size["seeds"]):
            idx = [C.members(result, warmup_method=m, warmup_steps=w, b2=b2, peak_value=lr, seed=seed)[0]
                   for lr in size["lrs"]]
            capped = [min(final[i], init[i]) if math.isfinite(final[i]) else init[i] for i in idx]
            per_seed.append(np.mean(capped) - np.min(capped))  # Wortsman's LR sensitivity, by hand
        np.testing.assert_allclose(table[name]["sensitivity"]["per_seed"], per_seed, rtol=1e-6)
        top = C.members(result, warmup_method=m, warmup_steps=w, b2=b2, peak_value=size["lrs"][-1])
        np.testing.assert_allclose(table[name]["top"]["per_seed"], final[top], rtol=1e-6)
    backoffs = table["adaptive 10% @ b2=0.95"]["backoffs"]["per_lr_per_seed"]
    assert np.shape(backoffs) == (2, 2) and all(b >= 0 for row in backoffs for b in row)
    assert table["none @ b2=0.95"]["backoffs"] is None
    untuned = summary["tasks"]["digits"]["untuned_vs_best_fixed"]["b2=0.95"]
    assert untuned["best_fixed"] == "linear 10%" and untuned["untuned_steps"] == pytest.approx(40.0)
    report = open(os.path.join(out, "report.md")).read()
    assert "untuned ≈ best tuned" in report and "LR sensitivity" in report
    for name in ("methods_heatmap_digits.png", "methods_curves_digits.png"):
        assert open(os.path.join(out, name), "rb").read(4) == b"\x89PNG"


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


def test_the_command_line_calls_the_experiment_and_prints_its_report(tmp_path, capsys, monkeypatch):
    from optax_warmup.cli import main

    calls = []

    def fake_run(size, out, figures, progress):
        calls.append((size, out, figures, progress))
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "report.md"), "w") as f:
            f.write("## the report\n")
        return {"timing": {"wall_s": 1.5}}

    monkeypatch.setattr(transfer, "run", fake_run)
    argv = ["evidence", "transfer", "--size", "quick", "--out", str(tmp_path), "--figures", "figs", "--no-progress"]
    assert main(argv) == 0
    assert calls == [("quick", str(tmp_path), "figs", False)]
    out = capsys.readouterr().out
    assert "## the report" in out and '"wall_s": 1.5' in out
    with pytest.raises(SystemExit):
        main(["evidence", "nonsense"])


def test_a_spike_transform_composes_with_the_sweep_factory():
    tx = adaptive.with_spike(lambda hp: optax.sgd(1.0))({"spike_step": 0, "spike_factor": 3.0})
    u, _ = tx.update(jnp.ones(1), tx.init(jnp.zeros(1)))
    assert float(u[0]) == -3.0
