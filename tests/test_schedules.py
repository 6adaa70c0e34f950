"""The schedules Optax lacks, against closed forms worked out by hand."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

import optax_warmup as ow


def values(sched, counts):
    return np.asarray(sched(jnp.asarray(counts)), dtype=np.float64)


# --- warmup shapes ----------------------------------------------------------------------------------------------


def test_warmup_shapes_closed_forms():
    t = np.arange(0, 201)
    W, I, P = 100.0, 0.1, 2.0
    p = np.minimum(t / W, 1.0)
    expected = {
        "linear": I + (P - I) * p,
        "cosine": I + (P - I) * (1 - np.cos(np.pi * p)) / 2,
        "polynomial": I + (P - I) * p**3,
        "geometric": I * (P / I) ** p,
        "exponential": I + (P - I) * (1 - np.exp(-t / (W / 2))),
    }
    for shape, want in expected.items():
        got = values(ow.warmup_schedule(I, P, W, warmup_shape=shape, warmup_exponent=3.0), t)
        np.testing.assert_allclose(got, want, rtol=2e-6, err_msg=shape)


@pytest.mark.parametrize("shape", ["linear", "cosine", "polynomial", "geometric"])
def test_non_exponential_shapes_reach_peak_exactly_at_warmup_steps(shape):
    s = ow.warmup_schedule(0.01, 0.7, 37, warmup_shape=shape)
    assert float(s(37)) == np.float32(0.7)
    assert float(s(36)) < np.float32(0.7)
    assert float(s(10**6)) == np.float32(0.7)


def test_exponential_shape_tau_is_half_the_warmup():
    s = ow.warmup_schedule(0.0, 1.0, 200, warmup_shape="exponential")
    np.testing.assert_allclose(float(s(200)), 1 - math.exp(-2), rtol=1e-6)
    np.testing.assert_allclose(float(s(100)), 1 - math.exp(-1), rtol=1e-6)


def test_exponential_warmup_is_an_overlay_over_the_decay():
    """v = I + (S - I)(1 - exp(-2t/W)) with S the schedule that holds the peak during the warmup."""
    I, P, W, D, E = 0.0, 1.0, 100, 1000, 0.1
    s = ow.warmup_cosine_decay_schedule(I, P, W, D, E, warmup_shape="exponential")
    t = np.array([0, 50, 100, 150, 550, 1000, 2000])
    base = np.where(t < W, P, E + (P - E) * 0.5 * (1 + np.cos(np.pi * np.clip((t - W) / (D - W), 0, 1))))
    np.testing.assert_allclose(values(s, t), I + (base - I) * (1 - np.exp(-t / (W / 2))), rtol=2e-6, atol=1e-7)


def test_zero_warmup_starts_at_peak_for_every_shape():
    for shape in ow.WARMUP_SHAPES:
        s = ow.warmup_cosine_decay_schedule(0.5, 1.0, 0, 100, warmup_shape=shape)
        assert float(s(0)) == 1.0, shape


def test_warmup_factor():
    f = ow.warmup_factor(8, init_factor=0.2, warmup_shape="linear")
    np.testing.assert_allclose(values(f, [0, 4, 8, 100]), [0.2, 0.6, 1.0, 1.0], rtol=1e-6)


# --- composites ---------------------------------------------------------------------------------------------------


def test_warmup_linear_decay():
    s = ow.warmup_linear_decay_schedule(0.0, 2.0, 10, 110, end_value=0.2)
    np.testing.assert_allclose(values(s, [0, 5, 10, 60, 110, 500]), [0.0, 1.0, 2.0, 1.1, 0.2, 0.2], rtol=1e-6)


def test_warmup_polynomial_decay():
    s = ow.warmup_polynomial_decay_schedule(0.0, 1.0, 20, 220, end_value=0.0, power=2.0)
    # t = 120 is halfway through the 200 decay steps: (1 - 0.5)**2 = 0.25.
    np.testing.assert_allclose(values(s, [10, 20, 120, 170, 220]), [0.5, 1.0, 0.25, 0.0625, 0.0], atol=1e-7)


def test_warmup_rsqrt():
    s = ow.warmup_rsqrt_schedule(0.0, 1.0, 100)
    t = np.array([0, 50, 100, 400, 1000, 10_000])
    want = np.where(t < 100, t / 100, np.sqrt(100 / np.maximum(t, 1)))
    np.testing.assert_allclose(values(s, t), want, rtol=1e-6)
    assert float(s(400)) == pytest.approx(0.5)


def test_warmup_rsqrt_timescale_and_zero_warmup():
    s = ow.warmup_rsqrt_schedule(0.0, 3.0, 0, timescale=10.0)
    np.testing.assert_allclose(values(s, [0, 30, 90]), [3.0, 1.5, 3.0 * math.sqrt(10 / 100)], rtol=1e-6)
    # timescale defaults to max(warmup_steps, 1): no division by zero without warmup.
    np.testing.assert_allclose(values(ow.warmup_rsqrt_schedule(0.0, 1.0, 0), [0, 3]), [1.0, 0.5], rtol=1e-6)


def test_noam_schedule():
    d, W = 512, 4000
    s = ow.noam_schedule(d, W)
    for k in [0, 99, 3999, 15999]:
        n = k + 1
        assert float(s(k)) == pytest.approx(d**-0.5 * min(n**-0.5, n * W**-1.5), rel=1e-6)
    assert float(s(3999)) == pytest.approx(1 / math.sqrt(d * W), rel=1e-6)
    assert float(ow.noam_schedule(16, 0, scale=2.0)(3)) == pytest.approx(2.0 / 4.0 / 2.0, rel=1e-6)


@pytest.mark.parametrize(
    "decay_shape,g",
    [
        ("linear", lambda p: 1 - p),
        ("cosine", lambda p: 0.5 * (1 + np.cos(np.pi * p))),
        ("1-sqrt", lambda p: 1 - np.sqrt(p)),
        ("square", lambda p: 1 - p**2),
    ],
)
def test_warmup_stable_decay(decay_shape, g):
    I, P, W, S, D, E = 0.0, 1.0, 10, 50, 40, 0.1
    s = ow.warmup_stable_decay_schedule(I, P, W, S, D, E, decay_shape=decay_shape)
    t = np.arange(0, 130)
    p = np.clip((t - W - S) / D, 0, 1)
    want = np.where(t < W, t / W, np.where(t < W + S, P, E + (P - E) * g(p)))
    np.testing.assert_allclose(values(s, t), want, rtol=2e-6, atol=1e-7)


def test_wsd_exponential_decay_is_geometric():
    s = ow.warmup_stable_decay_schedule(0.0, 1.0, 10, 10, 100, end_value=0.01, decay_shape="exponential")
    np.testing.assert_allclose(values(s, [20, 70, 120, 500]), [1.0, 0.1, 0.01, 0.01], rtol=1e-5)
    with pytest.raises(ValueError, match="end_value"):
        ow.warmup_stable_decay_schedule(0.0, 1.0, 10, 10, 100, decay_shape="exponential")


def test_wsd_1_sqrt_midpoint():
    """Research note: 1-sqrt at mid-cooldown = 1 - sqrt(0.5) = 0.2929 of the peak (final 0)."""
    s = ow.warmup_stable_decay_schedule(0.0, 1.0, 0, 0, 100, decay_shape="1-sqrt")
    assert float(s(50)) == pytest.approx(1 - math.sqrt(0.5), rel=1e-6)


def _restarts_reference(t, I, P, W, T0, mult, decay, E, num_cycles=None):
    # Walk the cycles one by one (independent of the closed-form cycle index of the library).
    start, length, i = 0.0, float(T0), 0
    while t >= start + length:
        start, length, i = start + length, length * mult, i + 1
    if num_cycles is not None and i >= num_cycles:
        return E
    local, peak, w = t - start, P * decay**i, min(W, length)
    if local < w:
        return I + (peak - I) * local / w
    p = (local - w) / (length - w) if length > w else 1.0
    return E + (peak - E) * 0.5 * (1 + math.cos(math.pi * p))


@pytest.mark.parametrize("mult,decay,num_cycles", [(1.0, 1.0, None), (2.0, 0.5, None), (1.5, 0.8, 3)])
def test_warmup_cosine_restarts(mult, decay, num_cycles):
    args = dict(
        init_value=0.0,
        peak_value=1.0,
        warmup_steps=10,
        cycle_steps=100,
        cycle_mult=mult,
        peak_decay=decay,
        end_value=0.05,
        num_cycles=num_cycles,
    )
    s = ow.warmup_cosine_restarts_schedule(**args)
    t = np.arange(0, 2000)
    want = [_restarts_reference(float(k), 0.0, 1.0, 10, 100, mult, decay, 0.05, num_cycles) for k in t]
    np.testing.assert_allclose(values(s, t), want, rtol=1e-5, atol=5e-6)


def test_restarts_rewarm_at_every_cycle_start():
    s = ow.warmup_cosine_restarts_schedule(0.0, 1.0, 10, 100, cycle_mult=2.0)
    # Cycles start at 0, 100, 300, 700, 1500: the value there is the init value again.
    np.testing.assert_array_equal(values(s, [0, 100, 300, 700, 1500]), 0.0)
    np.testing.assert_allclose(values(s, [110, 310, 710]), 1.0, rtol=1e-6)


# --- composition -----------------------------------------------------------------------------------------------------


def test_with_warmup_shifts_any_schedule():
    import optax

    base = optax.exponential_decay(1.0, 10, 0.5)
    s = ow.with_warmup(base, warmup_steps=20, init_value=0.0)
    np.testing.assert_allclose(values(s, [0, 10, 20, 30, 40]), [0.0, 0.5, 1.0, 0.5, 0.25], rtol=1e-6)


def test_with_warmup_on_phase_schedule_merges_and_matches_generic_path():
    base = ow.cosine_decay_schedule(2.0, 100, alpha=0.1)
    merged = ow.with_warmup(base, 25, init_value=0.2, warmup_shape="cosine")
    assert isinstance(merged, ow.PhaseSchedule)
    t = np.arange(0, 200)
    want = np.where(
        t < 25,
        0.2 + (2.0 - 0.2) * (1 - np.cos(np.pi * t / 25)) / 2,
        2.0 * (0.9 * 0.5 * (1 + np.cos(np.pi * np.clip((t - 25) / 100, 0, 1))) + 0.1),
    )
    np.testing.assert_allclose(values(merged, t), want, rtol=2e-6, atol=1e-7)


def test_warmup_overlay_multiplies_without_shifting():
    s = ow.warmup_overlay(ow.linear_schedule(1.0, 0.0, 100), warmup_steps=10, init_factor=0.5)
    t = np.array([0, 5, 10, 50])
    np.testing.assert_allclose(values(s, t), (0.5 + 0.5 * np.minimum(t / 10, 1)) * (1 - t / 100), rtol=1e-6)


def test_phase_schedule_skips_zero_length_phases():
    s = ow.phase_schedule([ow.Phase(10, 0.0, 1.0), ow.Phase(0, 5.0, 5.0), ow.Phase(10, 1.0, 0.0, "cosine")])
    np.testing.assert_allclose(values(s, [5, 10, 15, 20, 99]), [0.5, 1.0, 0.5, 0.0, 0.0], atol=1e-7)


def test_join_of_many_pieces_matches_piecewise_reference():
    pieces, bounds, ref = [], [], []
    for i in range(32):
        if i % 2 == 0:
            pieces.append(ow.linear_schedule(0.0, 1.0, 100))
            ref.append(lambda t: np.minimum(t / 100, 1.0))
        else:
            pieces.append(ow.cosine_decay_schedule(1.0, 100))
            ref.append(lambda t: 0.5 * (1 + np.cos(np.pi * np.minimum(t / 100, 1.0))))
        if i:
            bounds.append(100 * i)
    s = ow.join_schedules(pieces, bounds)
    assert isinstance(s, ow.PhaseSchedule)
    t = np.arange(0, 3400)
    piece = np.minimum(t // 100, 31)
    want = np.array([ref[k](tt - 100 * k) for tt, k in zip(t, piece, strict=True)])
    np.testing.assert_allclose(values(s, t), want, atol=2e-6)


def test_join_cuts_a_long_piece_short_and_holds_a_short_one():
    # Piece 0 is a 100-step ramp cut at 50; piece 1 is a 10-step ramp that then holds until 80.
    s = ow.join_schedules(
        [ow.linear_schedule(0.0, 1.0, 100), ow.linear_schedule(2.0, 3.0, 10), ow.constant_schedule(-1.0)], [50, 80]
    )
    np.testing.assert_allclose(values(s, [49, 50, 55, 60, 79, 80]), [0.49, 2.0, 2.5, 3.0, 3.0, -1.0], rtol=1e-6)


@pytest.mark.parametrize("shape", ["linear", "cosine", "polynomial", "geometric"])
def test_every_shape_starts_exactly_at_init_value(shape):
    assert float(ow.warmup_schedule(0.1, 1.0, 10, warmup_shape=shape)(0)) == np.float32(0.1)
    assert float(ow.polynomial_schedule(0.1, 1.0, 2, 10)(0)) == np.float32(0.1)
    assert float(ow.cosine_decay_schedule(0.1, 10, alpha=3.0)(0)) == np.float32(0.1)


def test_error_messages_use_the_callers_argument_names():
    with pytest.raises(ValueError, match=r"^warmup_shape must be one of"):
        ow.warmup_schedule(0.0, 1.0, 10, warmup_shape="sigmoid")
    with pytest.raises(ValueError, match=r"^init_factor"):
        ow.warmup_factor(10, init_factor=float("nan"))
    with pytest.raises(ValueError, match=r"^warmup_exponent"):
        ow.warmup_factor(10, warmup_shape="polynomial", warmup_exponent=-1.0)
