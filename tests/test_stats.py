"""optax_warmup.sweep.stats against values computed by hand (t quantiles from a printed table)."""

import math

import pytest

from optax_warmup.sweep import stats

# Student-t quantiles t(0.975, df), as printed in any table
T975 = {2: 4.303, 4: 2.776, 7: 2.365}


def test_interval_is_mean_plus_minus_t_times_standard_error():
    values = [2, 4, 4, 4, 5, 5, 7, 9]  # mean 5, sum of squares 32, sd = sqrt(32 / 7)
    iv = stats.interval(values)
    sd = math.sqrt(32 / 7)
    assert iv.mean == 5 and iv.n == 8 and iv.sd == pytest.approx(sd)
    assert iv.half_width == pytest.approx(T975[7] * sd / math.sqrt(8), abs=2e-3)
    assert (iv.low, iv.high) == pytest.approx((5 - iv.half_width, 5 + iv.half_width))
    assert iv.known


def test_interval_at_another_confidence_is_narrower():
    wide, narrow = stats.interval([1, 2, 3, 4, 5]), stats.interval([1, 2, 3, 4, 5], confidence=0.8)
    # t(0.9, 4) = 1.533; sd = sqrt(2.5)
    assert narrow.half_width == pytest.approx(1.533 * math.sqrt(2.5) / math.sqrt(5), abs=2e-3)
    assert wide.half_width == pytest.approx(T975[4] * math.sqrt(2.5) / math.sqrt(5), abs=2e-3)


@pytest.mark.parametrize("values", [[1.0], [1.0, 2.0]], ids=["one", "two"])
def test_below_three_seeds_the_spread_is_unknown(values):
    iv = stats.interval(values)
    assert not iv.known and math.isnan(iv.low) and math.isnan(iv.high)
    assert iv.mean == pytest.approx(sum(values) / len(values))
    assert "spread unknown" in iv.format()


def test_paired_comparison_by_hand():
    a, b = [1.0, 2.0, 3.0, 4.0, 5.0], [1.2, 2.1, 3.5, 4.1, 5.6]
    # differences -0.2 -0.1 -0.5 -0.1 -0.6: mean -0.3, sd sqrt(0.22 / 4), t = -2.8604 on 4 df
    c = stats.paired(a, b)
    sd = math.sqrt(0.22 / 4)
    assert c.difference == pytest.approx(-0.3) and c.n == 5
    assert c.d_z == pytest.approx(-0.3 / sd)
    assert (c.high - c.low) / 2 == pytest.approx(T975[4] * sd / math.sqrt(5), abs=1e-3)
    assert c.p == pytest.approx(0.0459, abs=1e-4)  # two-sided, between t(0.975, 4) = 2.776 and t(0.99, 4) = 3.747
    assert c.distinguishable() and c.distinguishable(alpha=0.05) and not c.distinguishable(alpha=0.01)


def test_paired_with_identical_differences_has_zero_width():
    c = stats.paired([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])
    assert (c.difference, c.low, c.high, c.p) == (0.5, 0.5, 0.5, 0.0) and c.d_z == math.inf
    same = stats.paired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same.p == 1.0 and not same.distinguishable()


def test_paired_below_three_seeds_is_unknown_and_never_distinguishable():
    c = stats.paired([1.0, 2.0], [3.0, 5.0])
    assert c.difference == -2.5 and math.isnan(c.p) and not c.known and not c.distinguishable(alpha=0.5)


def test_holm_multiplies_the_sorted_p_values_and_keeps_them_monotone():
    # sorted 0.01 (x3) = 0.03, 0.03 (x2) = 0.06, 0.04 (x1) = 0.04 -> max with the previous: 0.06
    assert stats.holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
    assert stats.holm([0.5, 0.4]) == [0.8, 0.8]
    out = stats.holm([float("nan"), 0.02, 0.9])  # NaN is not counted in m = 2
    assert math.isnan(out[0]) and out[1:] == [0.04, 0.9]


@pytest.mark.parametrize("call, message", [
    (lambda: stats.interval([]), "at least one value"),
    (lambda: stats.interval([1.0, float("nan"), 2.0]), "finite"),
    (lambda: stats.interval([1.0, 2.0, 3.0], confidence=1.0), "confidence"),
    (lambda: stats.paired([1.0, 2.0, 3.0], [1.0, 2.0]), "one value per seed"),
    (lambda: stats.holm([0.1, 1.5]), r"\[0, 1\]"),
], ids=["empty", "nan", "confidence", "unpaired", "holm-range"])
def test_bad_input_is_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _sweep_result(final: dict):
    """A SweepResult whose configs end flat at the given losses: {(peak, seed): loss}."""
    import numpy as np

    from optax_warmup.sweep.result import SweepResult

    configs = [dict(peak_value=p, seed=s) for p, s in final]
    loss = np.array([[5.0] + [v] * 9 for v in final.values()], np.float32)
    peaks = list(dict.fromkeys(p for p, _ in final))
    return SweepResult(configs=configs, given=[dict(c) for c in configs],
                       axes=dict(peak_value=peaks, seed=sorted({s for _, s in final})), durations=[], steps=10,
                       completed_steps=10, curves={"loss": loss}, alive=np.ones_like(loss, bool), eval_steps=[],
                       eval={}, diverged_step=np.full(len(configs), -1))


def test_recommend_reports_a_t_interval_and_a_paired_holm_corrected_comparison():
    best = [1.0, 1.1, 1.2, 1.3]
    close = [1.05, 1.1, 1.3, 1.35]  # +0.05, 0, +0.1, +0.05: ahead on average but noisy
    far = [2.0, 2.1, 2.2, 2.35]  # +1, +1, +1, +1.05
    r = _sweep_result({**{(1e-3, s): v for s, v in enumerate(best)}, **{(1e-2, s): v for s, v in enumerate(close)},
                       **{(1e-1, s): v for s, v in enumerate(far)}})
    rec = r.recommend()
    assert rec["setting"] == {"peak_value": 1e-3} and rec["mean"] == pytest.approx(1.15, abs=1e-6)
    iv = stats.interval(best)
    assert rec["interval"]["low"] == pytest.approx(iv.low, abs=1e-6)
    up = rec["runner_up"]
    expected = stats.paired(close, best)
    assert up["setting"] == {"peak_value": 1e-2} and up["difference"] == pytest.approx(0.05, abs=1e-6)
    assert up["p"] == pytest.approx(expected.p, abs=1e-5)
    far_row = rec["comparisons"][1]
    # Holm over two comparisons: the smaller p doubled, the larger one kept at least as large
    assert far_row["p_holm"] == pytest.approx(min(1.0, 2 * far_row["p"]), rel=1e-6)
    assert up["p_holm"] == pytest.approx(max(far_row["p_holm"], up["p"]), rel=1e-6)
    assert [c["setting"] for c in rec["indistinguishable"]] == [{"peak_value": 1e-2}]  # p ~ 0.1
    table = r.table()
    assert "final loss 1.150 +- " in table and "(95% t-interval, 4 seeds)" in table
    assert "runner-up peak_value=0.01: 1.200, +0.050" in table and ": not distinguishable" in table
