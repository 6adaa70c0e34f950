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
from optax_warmup.sweep import stats
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
    # mean 3, sd sqrt(7), t(0.975, 2) = 4.3027: half-width 4.3027 * sqrt(7) / sqrt(3) = 6.572
    s = C.describe([1.0, 2.0, 6.0])
    assert s["mean"] == 3.0 and s["per_seed"] == [1.0, 2.0, 6.0] and s["diverged"] == 0
    assert (s["high"] - s["low"]) / 2 == pytest.approx(4.302653 * math.sqrt(7 / 3), rel=1e-6)
    assert C.fmt(s) == "3.000 ± 6.572"
    filled = C.describe([1.0, float("nan"), 3.0], fill=[9.0, 5.0, 9.0])  # a diverged seed counts as its fill
    assert filled["per_seed"] == [1.0, 5.0, 3.0] and filled["diverged"] == 1 and filled["mean"] == 3.0
    assert C.fmt(C.describe([1.0, float("nan")])) == "diverged (1/2)"
    # differences 2, 3, 1: mean 2, sd 1, t = 2 / (1 / sqrt 3) = 3.464, two-sided p (2 dof) = 0.0742, d_z 2
    d = C.compare([3.0, 4.0, 2.0], [1.0, 1.0, 1.0])
    assert d["difference"] == 2.0 and d["p"] == pytest.approx(0.07418, abs=1e-4) and d["d_z"] == 2.0
    e = C.compare([1.0, 2.0, 3.0], [1.2, 2.1, 3.3])  # differences -0.2, -0.1, -0.3: the same t, p = 0.0742
    rows = C.correct([d, e])  # Holm: both 2 x 0.0742 = 0.148
    assert rows[1]["p_holm"] == pytest.approx(2 * rows[1]["p"], rel=1e-9) and rows[0]["p_holm"] == rows[1]["p_holm"]
    assert not any(r["distinguishable"] for r in rows) and C.fmt_diff(d).endswith("~")
    big = C.correct([C.compare([3.0, 4.0, 2.0, 3.1, 2.9], [0.0, 1.1, -0.9, 0.0, 0.0])])[0]
    assert big["distinguishable"] and not C.fmt_diff(big).endswith("~")
    # a trailing mean starts at step 0: the first value is the first step's
    np.testing.assert_allclose(C.trailing_mean(np.array([[1.0, 3.0, 5.0, 7.0]]), 2), [[1.0, 2.0, 4.0, 6.0]])


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
    choose, report = C.seeds(size)
    assert (choose, report) == ([0], [1, 2, 3])
    t = summary["tasks"]["digits"]
    table = t["table"]
    assert list(table) == ["none @ b2=0.95", "linear 10% @ b2=0.95", "untuned @ b2=0.95", "adaptive 10% @ b2=0.95"]
    final, init = result.final_loss, result.initial_loss
    learnt = np.where(np.isfinite(final), final, init)
    lrs = size["lrs"]
    for name, (_, m, w, b2) in zip(table, methods.settings_of(size), strict=True):
        fixed = dict(warmup_method=m, warmup_steps=w, b2=b2)

        def at(seed, lr, fixed=fixed):
            return C.members(result, seed=seed, peak_value=lr, **fixed)[0]

        # the best LR is chosen on seed 0 alone
        assert table[name]["best_lr"] == lrs[int(np.argmin([learnt[at(0, lr)] for lr in lrs]))]
        # every reported number comes from seeds 1-3: Wortsman's LR sensitivity, by hand
        per_seed = []
        for seed in report:
            capped = [min(learnt[at(seed, lr)], init[at(seed, lr)]) for lr in lrs]
            per_seed.append(np.mean(capped) - np.min(capped))
        np.testing.assert_allclose(table[name]["sensitivity"]["per_seed"], per_seed, rtol=1e-6)
        np.testing.assert_allclose(table[name]["top"]["per_seed"], [learnt[at(s, lrs[-1])] for s in report],
                                   rtol=1e-6)
        best = [learnt[at(s, table[name]["best_lr"])] for s in report]
        assert table[name]["best"]["mean"] == pytest.approx(np.mean(best), rel=1e-9)
        half = 4.302653 * np.std(best, ddof=1) / np.sqrt(3)  # t(0.975, 2)
        assert (table[name]["best"]["high"] - table[name]["best"]["low"]) / 2 == pytest.approx(half, rel=1e-5)
    backoffs = table["adaptive 10% @ b2=0.95"]["backoffs"]["per_lr_per_seed"]
    assert np.shape(backoffs) == (2, 3) and all(b >= 0 for row in backoffs for b in row)
    assert table["none @ b2=0.95"]["backoffs"] is None
    # the comparisons: paired over seeds 1-3, and Holm over each table
    row = next(r for r in t["vs_none"] if r["comparison"] == "untuned - none" and r["measure"] == "top")
    d = np.subtract(table["untuned @ b2=0.95"]["top"]["per_seed"], table["none @ b2=0.95"]["top"]["per_seed"])
    assert row["difference"] == pytest.approx(d.mean(), abs=1e-12) and row["per_seed"] == pytest.approx(list(d))
    assert [r["p_holm"] for r in t["vs_none"]] == pytest.approx(stats.holm([r["p"] for r in t["vs_none"]]),
                                                                nan_ok=True)
    assert t["best_fixed"] == {"0.95": "linear 10%"}  # the only fixed warmup of the tiny size
    # the long run: the LR the digits runs chose for linear 10%, the best fixed warmup chosen on seed 0
    long = summary["tasks"]["long"]
    assert long["peak_value"] == table["linear 10% @ b2=0.95"]["best_lr"]
    lres = sweep.load(os.path.join(out, "long", "results.json"))
    assert lres.steps == 60 and set(c["peak_value"] for c in lres.configs) == {long["peak_value"]}
    assert long["untuned_steps"] == pytest.approx(10.0)  # 2 / (1 - 0.8)
    llearnt = np.where(np.isfinite(lres.final_loss), lres.final_loss, lres.initial_loss)
    fixed = [lab for lab, m, w in methods.LONG if m == "linear"]
    by_seed0 = {lab: llearnt[C.members(lres, seed=0, warmup_method="linear",
                                       warmup_steps=dict((x[0], x[2]) for x in methods.LONG)[lab])[0]]
                for lab in fixed}
    assert long["best_fixed"] == min(by_seed0, key=by_seed0.get)
    report_md = open(os.path.join(out, "report.md")).read()
    assert "p_Holm" in report_md and "LR sensitivity" in report_md and "parameters" in report_md
    for name in ("methods_heatmap_digits.png", "methods_curves_digits.png", "methods_long.png"):
        assert open(os.path.join(out, name), "rb").read(4) == b"\x89PNG"


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


def test_the_evidence_page_shows_every_evidence_image_and_only_existing_ones():
    """No image in docs/img/evidence that the page does not show (stale figures), none shown that is missing."""
    import re

    root = os.path.join(os.path.dirname(__file__), "..", "docs")
    shown = set(re.findall(r"\(img/evidence/([\w.-]+\.png)\)", open(os.path.join(root, "evidence.md")).read()))
    on_disk = set(os.listdir(os.path.join(root, "img", "evidence")))
    assert shown == on_disk, dict(not_shown=sorted(on_disk - shown), missing=sorted(shown - on_disk))
