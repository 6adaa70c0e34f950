"""The adaptive evidence experiment (``optax-warmup evidence adaptive``): its protections as unit tests, and a
seconds-long run checked against hand computations from its results files."""

import importlib.util
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optax_warmup import sweep
from optax_warmup.sweep import stats
from optax_warmup.sweep.evidence import _common as C
from optax_warmup.sweep.evidence import adaptive
from optax_warmup.sweep.evidence._replay import replay

needs_digits = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                                  reason="the digits task needs scikit-learn")


# ------------------------------------------------------------------------------------------ the protections


def test_skip_large_gradients_leaves_parameters_and_inner_state_unchanged_on_a_skipped_step():
    params = {"a": jnp.ones(3), "b": jnp.zeros(2)}
    tx = adaptive.skip_large_gradients(optax.adam(0.1), max_norm=5.0)
    state = tx.init(params)
    small = {"a": jnp.full(3, 0.5), "b": jnp.full(2, -0.5)}  # norm 1.1: applied
    updates, state = tx.update(small, state, params)
    params = optax.apply_updates(params, updates)
    assert not np.allclose(params["a"], 1.0)
    big = jax.tree.map(lambda g: g * 1000.0, small)  # norm 1118: skipped
    updates, new_state = tx.update(big, state, params)
    after = optax.apply_updates(params, updates)
    for k in params:
        np.testing.assert_array_equal(after[k], params[k])
    for old, new in zip(jax.tree.leaves(state), jax.tree.leaves(new_state), strict=True):
        np.testing.assert_array_equal(old, new)  # Adam's count and moments did not see the gradient
    updates, _ = tx.update(small, new_state, params)  # and the next ordinary step is applied
    assert float(optax.tree.norm(updates)) > 0


def test_the_clip_protection_bounds_the_update_norm_and_the_skip_protection_drops_the_spike():
    factory = adaptive.with_spike(lambda hp: optax.sgd(1.0))
    grads = {"a": jnp.full(4, 0.3), "b": jnp.full(3, -0.2)}
    for c in (0.1, 0.5, 1.0):
        tx = factory({"protection": "clip", "protect_at": c, "spike_step": 0, "spike_factor": 1000.0})
        updates, _ = tx.update(grads, tx.init(grads))
        assert float(optax.tree.norm(updates)) <= c * (1 + 1e-6)
    tx = factory({"protection": "skip", "protect_at": 2.0, "spike_step": 1, "spike_factor": 1000.0})
    state = tx.init(grads)
    norms = []
    for _ in range(3):
        updates, state = tx.update(grads, state)
        norms.append(float(optax.tree.norm(updates)))
    assert norms[0] == pytest.approx(float(optax.tree.norm(grads))) and norms[1] == 0.0 and norms[2] == norms[0]
    with pytest.raises(ValueError, match="protection"):
        factory({"protection": "nonsense", "protect_at": 1.0})


# --------------------------------------------------------------------------------------------- a tiny run


@pytest.fixture(scope="module")
def adaptive_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("adaptive")
    return adaptive.run("tiny", out=str(out), progress=False), str(out)


def _load(out, name):
    return sweep.load(os.path.join(out, name, "results.json"))


@needs_digits
def test_the_rule_reads_only_the_choose_seeds(adaptive_run):
    summary, out = adaptive_run
    assert summary["library_defaults"] == dict(decay=0.99, zscore=3.5, norm_ratio=2.0, loss_ratio=1.2,
                                               min_observations=5, warmup=True)
    choosing = [t for t, s in adaptive.SIZES["tiny"].items() if not s.get("heldout")]
    assert list(summary["choice_scores"]) == choosing
    settings = adaptive.candidate_settings()
    rows = {}
    for t in choosing:
        clean = _load(out, f"clean_{t}")
        choose = summary["seeds"][t]["choose"]
        assert choose == list(range(adaptive.SIZES["tiny"][t]["choose_seeds"]))
        rows[t] = adaptive.score_settings(clean, settings, adaptive.SIZES["tiny"][t]["spike_step"], choose)
        ok = [i for i in range(len(clean)) if clean.given[i]["seed"] in choose and clean.diverged_step[i] < 0]
        assert rows[t][0]["runs"] == len(ok) < len(clean)
        # one number by hand: the library defaults' 10x detection, a per-run fraction of steps, then the mean
        thr = replay(clean.curves["grad_norm"][ok], clean.curves["loss"][ok],
                     adaptive._replay_fields([summary["library_defaults"]]))["threshold"][0]
        by_hand = np.mean(np.mean(thr[:, adaptive.SCORED[0]:adaptive.SCORED[1]] < 10.0, axis=1))
        assert summary["choice_scores"][t][1]["detect_10x"]["mean"] == pytest.approx(by_hand)
        assert summary["choice_scores"][t][1]["setting"] == summary["library_defaults"]
    # the rule by hand: calm back-offs <= 0.1 per run on every task, then the best detection (first on a tie)
    best, best_score = None, -1.0
    for j in range(len(settings)):
        if all(rows[t][j]["calm_flags"]["mean"] <= adaptive.CALM_FLAGS for t in choosing):
            score = np.mean([rows[t][j][f"detect_{int(f)}x"]["mean"] for t in choosing for f in adaptive.SPIKE_SIZES])
            if score > best_score:
                best, best_score = j, score
    assert summary["rule_choice"] == settings[best]
    assert summary["rule_matches_library"] == (settings[best] == summary["library_defaults"])
    # the frozen settings are measured on the report seeds' runs, the held-out task included
    for t, per in summary["evaluation"].items():
        clean = _load(out, f"clean_{t}")
        report = set(summary["seeds"][t]["report"])
        ok = [i for i in range(len(clean)) if clean.given[i]["seed"] in report and clean.diverged_step[i] < 0]
        assert {clean.given[i]["seed"] for i in range(len(clean))} >= report
        for row in per.values():
            assert row["runs"] == len(ok) and len(row["detect_10x"]["per_run"]) == len(ok)
    assert "bytelm_no_qk" in summary["evaluation"] and "bytelm_no_qk" not in summary["choice_scores"]
    held = _load(out, "clean_bytelm_no_qk")
    assert {g["seed"] for g in held.given} == set(summary["seeds"]["bytelm_no_qk"]["report"])
    assert held.task["model"]["qk_norm"] is False


def _per_seed_lists(tree, path=""):
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == "per_seed":
                yield path, v
            else:
                yield from _per_seed_lists(v, f"{path}/{k}")


@needs_digits
def test_the_real_runs_report_the_report_seeds_by_hand(adaptive_run):
    summary, out = adaptive_run
    size = adaptive.SIZES["tiny"]["digits"]
    report = summary["seeds"]["digits"]["report"]
    lists = list(_per_seed_lists(summary["real"]))
    assert len(lists) > 20 and all(len(v) == size["report_seeds"] for _, v in lists)
    real = _load(out, "real_digits")
    clean = _load(out, "clean_digits")
    assert {g["seed"] for g in real.given} == set(report)
    picks = summary["picks"]["digits"]
    assert picks["mid_lr"] != picks["high_lr"]  # the too-short and the spike runs are different configs
    # the clipping threshold: the median pre-spike gradient norm of the choose seeds' clean linear-10% runs
    step = size["spike_step"]
    idx = C.members(clean, warmup_method="linear", warmup_steps=0.1, peak_value=picks["mid_lr"], seed=0)
    pre = clean.curves["grad_norm"][idx, max(0, step - 40):step]
    assert picks["clip_median"] == pytest.approx(float(np.median(pre)))
    final = np.where(np.isfinite(real.final_loss), real.final_loss, real.initial_loss)

    def at(**fixed):
        return np.asarray([final[C.members(real, seed=s, **fixed)[0]] for s in report])

    short = summary["real"]["digits"]["short"]
    np.testing.assert_allclose(short["none"]["final_loss"]["per_seed"],
                               at(warmup_method="none", peak_value=picks["high_lr"], spike_factor=1.0), rtol=1e-6)
    for label, m, protection, kind, skip in adaptive.PROTECTIONS:
        fixed = dict(warmup_method=m, warmup_steps=0.1, protection=protection, skip_spikes=skip,
                     peak_value=picks["mid_lr"], protect_at=adaptive._protect_at(kind, picks))
        row = summary["real"]["digits"]["spike"][label]
        np.testing.assert_allclose(row["final_cost"]["per_seed"],
                                   at(spike_factor=1000.0, **fixed) - at(spike_factor=1.0, **fixed), rtol=1e-5,
                                   atol=1e-7)
        assert (row["flagged"] is None) == (m != "adaptive")
    # Holm within each table equals stats.holm of its raw p-values
    tables = [list(summary["real"]["digits"]["comparisons"].values()),
              [v["final_cost"] for v in summary["real"]["digits"]["spike"].values()],
              list(summary["real"]["digits"]["protection_vs_none"].values())]
    for table in tables:
        raw = [C._num(r["p"]) for r in table]
        np.testing.assert_allclose([C._num(r["p_holm"]) for r in table], stats.holm(raw), equal_nan=True)
    # the too-short adaptive warmup's factor, recorded per step: the linear ramp until its first back-off
    w = math.ceil(adaptive.TOO_SHORT * size["steps"])
    for i in C.members(real, warmup_method="adaptive", warmup_steps=adaptive.TOO_SHORT):
        first = int(np.argmax(real.curves["num_spikes"][i] > 0)) if real.curves["num_spikes"][i, -1] else size["steps"]
        np.testing.assert_allclose(real.curves["factor"][i, :first], np.minimum(np.arange(first) / w, 1.0))
    # the injected spike changed the runs it hit, and only from its step on
    fixed = dict(warmup_method="linear", warmup_steps=0.1, peak_value=picks["mid_lr"], protection="none")
    hit = C.members(real, spike_factor=1000.0, **fixed)
    calm = C.members(real, spike_factor=1.0, **fixed)
    np.testing.assert_array_equal(real.curves["loss"][hit, : step + 1], real.curves["loss"][calm, : step + 1])
    assert not np.allclose(real.curves["loss"][hit, step + 1:], real.curves["loss"][calm, step + 1:])


@needs_digits
def test_the_report_and_figures(adaptive_run):
    summary, out = adaptive_run
    text = open(os.path.join(out, "report.md")).read()
    assert "Rule's choice on the choose seeds" in text and "held out" in text and "p_Holm" in text
    names = adaptive.figure_names(summary)
    assert names == ["adaptive_factor_digits.png", "adaptive_spike.png", "adaptive_detection.png"]
    for name in names:
        assert open(os.path.join(out, name), "rb").read(4) == b"\x89PNG"
    assert summary["scale"]["bytelm_no_qk"]["tokens"] == 24 * 4 * 8
    again = adaptive.replot(out)
    assert again["rule_choice"] == summary["rule_choice"]
    assert open(os.path.join(out, "report.md")).read() == text


@needs_digits
def test_the_qk_control_is_lr_sensitivity_by_hand(adaptive_run):
    """The control's arithmetic on two clean grids (here the tiny digits grid, given as both architectures:
    every difference is then exactly 0 and the table is the same sensitivity twice)."""
    summary, out = adaptive_run
    clean = sweep.load(os.path.join(out, "clean_digits", "results.json"))
    size = adaptive.SIZES["tiny"]["digits"]
    _, report = C.seeds(size)
    q = adaptive.qk_control(clean, clean, size, report)
    learnt = np.where(np.isfinite(clean.final_loss), clean.final_loss, clean.initial_loss)
    for m, w in adaptive.CLEAN:
        label = adaptive._clean_label(m, w)
        per_seed = []
        for seed in report:
            idx = [C.members(clean, seed=seed, peak_value=lr, warmup_method=m, warmup_steps=w)[0]
                   for lr in size["lrs"]]
            capped = [min(learnt[i], clean.initial_loss[i]) for i in idx]
            per_seed.append(np.mean(capped) - np.min(capped))
        for arch in ("with", "without"):
            np.testing.assert_allclose(q["table"][f"{label}, {arch} QK-LayerNorm"]["sensitivity"]["per_seed"],
                                       per_seed, rtol=1e-9)
    same = [r for r in q["comparisons"] if "without - with" in r["comparison"]]
    assert len(same) == 2 * len(adaptive.CLEAN) and all(r["difference"] == 0.0 for r in same)
