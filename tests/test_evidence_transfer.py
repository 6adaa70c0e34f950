"""The transfer evidence experiment (``optax-warmup evidence transfer``), a seconds-long run checked against hand
computations from the sweep's results.json."""

import math
import os

import jax
import numpy as np
import pytest

from optax_warmup import sweep
from optax_warmup.sweep import stats
from optax_warmup.sweep.evidence import _common as C
from optax_warmup.sweep.evidence import transfer

TINY = transfer.SIZES["tiny"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("transfer")
    cache = str(root / "cache")
    summary = transfer.run("tiny", out=str(root / "out"), progress=False, cache_dir=cache)
    result = sweep.load(str(root / "out" / "finetune" / "results.json"))
    return root, cache, summary, result


def _idx(result, row, seed_list, lr=None):
    return [C.members(result, variant=row["variant"], warmup_steps=transfer.WARMUPS[row["warmup"]],
                      peak_value=row["peak_value"] if lr is None else lr, seed=s)[0] for s in seed_list]


def test_transfer_cache_and_outputs(tiny):
    root, cache, summary, result = tiny
    assert summary["pretrain"]["cached"] is False and len(os.listdir(cache)) == 1
    again = transfer.finetune(**TINY["task"], pretrain_settings=TINY["pretrain"], cache_dir=cache)
    assert again.info["pretrain"]["cached"] is True
    # the grid runs every seed of every setting at every LR
    assert len(result) == len(transfer.SETTINGS) * len(TINY["lrs"]) * len(C.all_seeds(TINY))
    # every config starts from the pretrained model: the same losses at step 0, evaluated from step 0
    assert result.eval_steps[0] == 0
    assert np.ptp(result.eval["loss"][:, 0]) == 0 and np.ptp(result.eval["code_loss"][:, 0]) == 0
    # the scale: parameters counted from the task's initial params, tokens = steps x batch x context
    sc = summary["scale"]
    n = sum(np.size(x) for x in jax.tree.leaves(again.init(0)))
    assert sc["parameters"] == n > 0
    assert sc["tokens"] == TINY["steps"] * TINY["task"]["batch_size"] * TINY["task"]["context"]
    report = open(root / "out" / "report.md").read()
    for text in ("Scale:", f"{n:,} parameters", "own best LR (chosen on seeds 0)", "At the high LR",
                 "Paired differences", "Control", "upper_long", "LR sensitivity", C.STATS_NOTE, "Wall time"):
        assert text in report, text
    assert sorted(os.listdir(root / "out")) == ["finetune", "report.md", "summary.json", "transfer_code_curves.png",
                                                 "transfer_forgetting_heatmap.png", "transfer_prose_curves.png"]
    # replot draws the same report from the files alone
    transfer.replot(str(root / "out"))
    assert open(root / "out" / "report.md").read() == report


def test_transfer_choices_on_choose_seeds(tiny):
    _, _, summary, result = tiny
    choose, report = C.seeds(TINY)
    assert choose == [0] and report == [1, 2, 3]
    final = result.eval["loss"][:, -1].astype(np.float64)
    final = np.where(result.diverged_step >= 0, result.eval["loss"][:, 0], final)
    best = {(r["warmup"], r["variant"]): r["peak_value"] for r in summary["tables"]["best_lr"]}
    for w, v in transfer.SETTINGS:
        means = [np.mean([final[i] for i in _idx(result, dict(warmup=w, variant=v, peak_value=lr), choose)])
                 for lr in TINY["lrs"]]
        assert best[(w, v)] == TINY["lrs"][int(np.argmin(means))]
    for row in summary["tables"]["own_best"]:
        assert row["peak_value"] == best[(row["warmup"], row["variant"])]
    assert all(r["peak_value"] == TINY["lrs"][-1] for r in summary["tables"]["high"])


def test_transfer_reported_numbers_by_hand(tiny):
    _, _, summary, result = tiny
    _, report = C.seeds(TINY)
    code, prose = result.eval["code_loss"], result.eval["loss"]
    for point in ("own_best", "high"):
        for row in summary["tables"][point]:
            idx = _idx(result, row, report)
            # forgetting per report seed = final code loss - step-0 code loss
            np.testing.assert_allclose(row["forgetting"]["per_seed"], code[idx, -1] - code[idx, 0], rtol=1e-6)
            np.testing.assert_allclose(row["prose"]["per_seed"], prose[idx, -1], rtol=1e-6)
            iv = stats.interval(row["prose"]["per_seed"])
            assert row["prose"]["mean"] == pytest.approx(iv.mean) and row["prose"]["low"] == pytest.approx(iv.low)
    # every reported per-seed list has one entry per report seed
    def walk(x):
        if isinstance(x, dict):
            if "per_seed" in x:
                assert len(x["per_seed"]) == len(report) and x["n"] == len(report)
            for y in x.values():
                walk(y)
        elif isinstance(x, list):
            for y in x:
                walk(y)
    walk(summary["tables"])
    # paired comparison with none/uniform, at each one's own best LR, by hand
    ref = next(r for r in summary["tables"]["own_best"] if (r["warmup"], r["variant"]) == ("none", "uniform"))
    c = next(c for c in summary["tables"]["own_best_vs_reference"]
             if (c["warmup"], c["variant"], c["metric"]) == ("none", "upper_long", "forgetting"))
    row = next(r for r in summary["tables"]["own_best"] if (r["warmup"], r["variant"]) == ("none", "upper_long"))
    want = np.asarray(row["forgetting"]["per_seed"]) - np.asarray(ref["forgetting"]["per_seed"])
    np.testing.assert_allclose(c["per_seed"], want, rtol=1e-6, atol=1e-12)
    assert c["difference"] == pytest.approx(want.mean())
    # Holm within each comparison table
    for name in ("own_best_vs_reference", "high_vs_reference", "control_own_best", "lr_sensitivity_vs_reference"):
        table = summary["tables"][name]
        raw = [np.nan if c["p"] is None else c["p"] for c in table]
        got = [np.nan if c["p_holm"] is None else c["p_holm"] for c in table]
        np.testing.assert_allclose(got, stats.holm(raw), rtol=1e-12)
        assert all(c["distinguishable"] == bool(np.isfinite(p) and p < 0.05) for c, p in zip(table, got, strict=True))
    # LR sensitivity per report seed: mean over the LRs of min(L, L_init) minus the minimum
    for row in summary["tables"]["lr_sensitivity"]:
        capped = np.array([[min(prose[i, -1], prose[i, 0]) for i in _idx(result, row, report, lr)]
                           for lr in TINY["lrs"]])
        np.testing.assert_allclose(row["per_seed"], capped.mean(0) - capped.min(0), rtol=1e-6, atol=1e-12)


def test_transfer_per_group_schedules(tiny):
    _, _, _, result = tiny
    steps = TINY["steps"]
    t = np.arange(steps)
    long = math.ceil(transfer.WARMUPS["long"] * steps)
    seen = set()
    for i, c in enumerate(result.configs):
        cosine = c["peak_value"] * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * t / steps)))
        ramp = np.minimum(t / c["warmup_steps"], 1.0) if c["warmup_steps"] else np.ones(steps)
        long_ramp = np.minimum(t / long, 1)
        lower, upper = (result.curves.get(f"lr/{g}") for g in ("lower", "upper"))
        if c["variant"] == "lower_low":
            np.testing.assert_allclose(lower[i], 0.1 * upper[i], rtol=1e-6)
            np.testing.assert_allclose(upper[i], ramp * cosine, rtol=1e-5, atol=1e-9)
        if c["variant"] == "lower_long":
            np.testing.assert_allclose(lower[i], long_ramp * cosine, rtol=1e-5, atol=1e-9)
            np.testing.assert_allclose(upper[i], ramp * cosine, rtol=1e-5, atol=1e-9)
        if c["variant"] == "upper_long":
            np.testing.assert_allclose(upper[i], long_ramp * cosine, rtol=1e-5, atol=1e-9)
            np.testing.assert_allclose(lower[i], ramp * cosine, rtol=1e-5, atol=1e-9)
        seen.add(c["variant"])
    assert seen == {"uniform", "lower_long", "upper_long", "lower_low"}
