"""warmup_stable_decay_cycles_schedule (WSD-S): golden values from its formula in float64, clamping, Levanter's
cycle rule, tracing, and a compiled program that does not grow per cycle."""

from __future__ import annotations

import doctest
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from schedule_cases import wsd_cycles_reference as _reference

import optax_warmup as ow
from optax_warmup import _wsd_cycles

CONFIGS = {
    "two-cycles": dict(init=0.0, peak=1.0, end=0.0, warmup=10, lengths=[100, 100], fraction=0.2, shape="1-sqrt",
                       rewarmup=5),
    "three-uneven": dict(init=0.1, peak=3e-4 * 1e4, end=0.3, warmup=25, lengths=[120, 80, 200], fraction=0.15,
                         shape="cosine", rewarmup=12, rewarm_value=0.5),
    "warmup-longer-than-cycle": dict(init=0.0, peak=2.0, end=0.1, warmup=150, lengths=[100, 60, 90], fraction=0.5,
                                     shape="linear", rewarmup=70),
    "decay-squeezed": dict(init=1.0, peak=4.0, end=1.0, warmup=60, lengths=[80, 50], fraction=0.5, shape="square",
                           rewarmup=45, warmup_shape="polynomial", k=3.0),
    "no-decay": dict(init=0.0, peak=1.0, end=0.0, warmup=10, lengths=[40, 40], fraction=0.0, shape="1-sqrt"),
    "all-decay": dict(init=0.0, peak=1.0, end=0.2, warmup=0, lengths=[30, 30, 30], fraction=1.0, shape="linear",
                      warmup_shape="cosine"),
}


def _build(cfg, **overrides):
    kw = dict(
        init_value=cfg["init"], peak_value=cfg["peak"], warmup_steps=cfg["warmup"], cycle_lengths=cfg["lengths"],
        end_value=cfg["end"], decay_fraction=cfg["fraction"], decay_shape=cfg["shape"],
        rewarmup_steps=cfg.get("rewarmup", 0), rewarmup_value=cfg.get("rewarm_value"),
        warmup_shape=cfg.get("warmup_shape", "linear"), warmup_exponent=cfg.get("k", 2.0),
    )
    return ow.warmup_stable_decay_cycles_schedule(**{**kw, **overrides})


def _golden(cfg, counts):
    ref_kw = {k: cfg[k] for k in ("init", "peak", "end", "warmup", "lengths", "fraction", "shape")}
    ref_kw.update({k: cfg[k] for k in ("rewarmup", "rewarm_value", "warmup_shape", "k") if k in cfg})
    return np.asarray([_reference(t, **ref_kw) for t in counts])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_golden_values_from_the_formula_in_float64(name):
    cfg = CONFIGS[name]
    counts = np.arange(0, sum(cfg["lengths"]) + 20)
    want = _golden(cfg, counts)
    with jax.enable_x64(True):
        got = np.asarray(_build(cfg)(jnp.asarray(counts)))
        assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(_build(cfg)(counts)), want, rtol=2e-6, atol=1e-6)  # float32


def test_hand_worked_values():
    # Cycle 0: warmup 10 (0 -> 1), stable 70, 1-sqrt decay 20 (1 -> 0).
    # Cycle 1: re-warmup 5 from 0, stable 75, decay 20.
    s = _build(CONFIGS["two-cycles"])
    got = [float(s(t)) for t in (0, 5, 10, 79, 80, 85, 95, 100, 102, 105, 180, 190, 200, 10**6)]
    want = [0, 0.5, 1, 1, 1, 1 - math.sqrt(0.25), 1 - math.sqrt(0.75), 0, 0.4, 1, 1, 1 - math.sqrt(0.5), 0, 0]
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_boundaries_and_lengths_are_the_same_schedule():
    cfg = CONFIGS["three-uneven"]
    a = _build(cfg)
    b = _build(cfg, cycle_lengths=None, boundaries=list(np.cumsum(cfg["lengths"])))
    counts = np.arange(0, 450)
    np.testing.assert_array_equal(np.asarray(a(counts)), np.asarray(b(counts)))


def test_warmup_clamped_to_its_cycle_leaves_no_overflow():
    """marin PR #3086: a warmup longer than the cycle fills it and the next cycle still starts on time."""
    s = ow.warmup_stable_decay_cycles_schedule(0.0, 1.0, warmup_steps=500, cycle_lengths=[100, 100], rewarmup_steps=0)
    np.testing.assert_allclose(float(s(50)), 0.5)  # the ramp over the 100 steps of cycle 0
    np.testing.assert_allclose(float(s(100)), 1.0)  # cycle 1 starts at the peak (cycle 0 had no decay left)
    np.testing.assert_allclose(float(s(190)), 1 - math.sqrt(0.5), rtol=1e-6)  # cycle 1 decays over its last 20
    np.testing.assert_allclose(float(s(200)), 0.0)


def test_durations_go_through_the_duration_rule():
    base = dict(init_value=0.0, peak_value=1.0, cycle_lengths=[25, 25], rewarmup_steps="10%")
    a = ow.warmup_stable_decay_cycles_schedule(warmup_steps=0.1, **base)
    b = ow.warmup_stable_decay_cycles_schedule(warmup_steps="10%", **base)
    c = ow.warmup_stable_decay_cycles_schedule(warmup_steps={"fraction": 0.1}, **base)
    d = ow.warmup_stable_decay_cycles_schedule(warmup_steps=3, **{**base, "rewarmup_steps": 3})
    counts = np.arange(60)
    for s in (a, b, c):
        np.testing.assert_array_equal(np.asarray(s(counts)), np.asarray(d(counts)))  # 10% of 25 steps is 3
    with pytest.raises(ValueError, match="warmup_steps"):
        ow.warmup_stable_decay_cycles_schedule(0.0, 1.0, warmup_steps=2.5, cycle_lengths=[25])


def test_one_cycle_is_warmup_stable_decay_schedule():
    ours = ow.warmup_stable_decay_cycles_schedule(0.1, 1.0, 20, [200], end_value=0.05, decay_fraction=0.25)
    single = ow.warmup_stable_decay_schedule(0.1, 1.0, 20, 130, 50, end_value=0.05, decay_shape="1-sqrt")
    counts = np.arange(0, 260)
    np.testing.assert_array_equal(np.asarray(ours(counts)), np.asarray(single(counts)))


def test_the_single_cycle_schedule_keeps_its_linear_default():
    s = ow.warmup_stable_decay_schedule(0.0, 1.0, 10, 80, 10)
    assert float(s(95)) == pytest.approx(0.5)  # linear, not 1-sqrt (0.2929): its behaviour does not change


def _levanter_lr(t, lr, min_lr, warmup_frac, rewarmup_frac, decay_frac, cycle_ends):
    """Levanter's OptimizerConfig.lr_scheduler with cycles (src/levanter/optim/config.py), linear decay, rewritten
    from its rule: per cycle, a linear warmup from the previous cycle's final value (int(frac * cycle) steps), a
    stable phase, then optax.linear_schedule(lr, min_lr, int(decay * cycle)); joined at the cycle boundaries."""
    points = [0, *cycle_ends]
    previous_end = 0.0
    for i, (start, end) in enumerate(zip(points[:-1], points[1:], strict=True)):
        length = end - start
        w = int((warmup_frac if i == 0 else rewarmup_frac) * length)
        d = int(decay_frac * length)
        s = length - w - d
        if t < end or i == len(points) - 2:
            u = t - start
            if u < w:
                return previous_end + (lr - previous_end) * u / w
            if u < w + s:
                return lr
            return lr + (min_lr - lr) * min(u - w - s, d) / d
        previous_end = min_lr
    raise AssertionError


def test_matches_levanters_cycles_with_rewarmup():
    """Fractions that are exact in steps, so Levanter's int() and our ceil agree."""
    lr, min_lr, ends = 6e-4, 6e-5, [200, 400, 600]
    ours = ow.warmup_stable_decay_cycles_schedule(
        0.0, lr, 0.05, boundaries=ends, end_value=min_lr, decay_fraction=0.2, decay_shape="linear",
        rewarmup_steps=0.1,
    )
    counts = np.arange(0, 600)
    want = [_levanter_lr(t, lr, min_lr, 0.05, 0.1, 0.2, ends) for t in counts]
    np.testing.assert_allclose(np.asarray(ours(counts)), want, rtol=1e-5, atol=1e-10)


def test_every_length_and_value_traced_matches_eager():
    cfg = CONFIGS["three-uneven"]
    counts = jnp.arange(0, 420)

    def build(init, peak, end, warmup, l0, l1, l2, fraction, rewarmup, rewarm_value):
        return ow.warmup_stable_decay_cycles_schedule(
            init, peak, warmup, [l0, l1, l2], end, fraction, "cosine", rewarmup_steps=rewarmup,
            rewarmup_value=rewarm_value,
        )(counts)

    args = (cfg["init"], cfg["peak"], cfg["end"], cfg["warmup"], *cfg["lengths"], 0.25, cfg["rewarmup"], 0.5)
    traced = np.asarray(jax.jit(build)(*[jnp.float32(a) for a in args]))
    eager = np.asarray(build(*args))
    np.testing.assert_allclose(traced, eager, rtol=1e-6, atol=1e-6)


def test_vmap_over_decay_fraction_and_cycle_length_and_grad_wrt_peak():
    def value(fraction, length, t):
        return ow.warmup_stable_decay_cycles_schedule(0.0, 1.0, 10, [length, length], decay_fraction=fraction)(t)

    got = jax.jit(jax.vmap(value, in_axes=(0, 0, None)))(jnp.asarray([0.5, 0.25]), jnp.asarray([100.0, 200.0]), 75)
    np.testing.assert_allclose(np.asarray(got), [1 - math.sqrt(0.5), 1.0], rtol=1e-6)
    g = jax.grad(lambda p: ow.warmup_stable_decay_cycles_schedule(0.0, p, 10, [100, 100])(jnp.float32(185.0)))(2.0)
    assert float(g) == pytest.approx(1 - math.sqrt(0.25), rel=1e-6)


def _ops(schedule):
    text = jax.jit(schedule).lower(jnp.int32(5)).as_text()
    return sum(1 for line in text.splitlines() if " = " in line)


def test_compiled_program_does_not_grow_per_cycle():
    def cycles(n, traced=False):
        lengths = [100 + 10 * i for i in range(n)]
        s = lambda lengths: ow.warmup_stable_decay_cycles_schedule(0.0, 1.0, 10, lengths, rewarmup_steps=5)  # noqa: E731
        if not traced:
            return _ops(s(lengths))
        text = jax.jit(lambda ls, c: s(list(ls))(c)).lower(jnp.asarray(lengths, jnp.float32), jnp.int32(5)).as_text()
        return sum(1 for line in text.splitlines() if " = " in line)

    concrete = {n: cycles(n) for n in (2, 32)}
    assert concrete[32] <= 1.25 * concrete[2], concrete
    traced = {n: cycles(n, traced=True) for n in (2, 32)}
    # Traced lengths: the lengths are split in one array computation and evaluated once; what grows is the phase
    # list handed to the engine (a slice per field per phase), under 40 operations a cycle.
    assert traced[32] - traced[2] < 40 * 30, traced
    joined = _ops(optax.join_schedules(
        [optax.linear_schedule(0.0, 1.0, 10) if i % 2 == 0 else optax.constant_schedule(1.0) for i in range(64)],
        [10 * i for i in range(1, 64)]))
    assert concrete[32] < joined / 5


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(cycle_lengths=None), "cycle_lengths"),
        (dict(boundaries=[100]), "boundaries"),
        (dict(cycle_lengths=[]), "cycle_lengths"),
        (dict(cycle_lengths=[100, -5]), "cycle_lengths[1]"),
        (dict(cycle_lengths=None, boundaries=[100, 100]), "boundaries[1]"),
        (dict(decay_fraction=1.5), "decay_fraction"),
        (dict(decay_shape="exponential"), "end_value"),
        (dict(warmup_shape="exponential"), "warmup_shape"),
        (dict(warmup_shape="geometric", init_value=0.0), "init_value"),
        (dict(warmup_shape="geometric", init_value=0.1, rewarmup_value=0.0), "rewarmup_value"),
        (dict(rewarmup_steps=-1), "rewarmup_steps"),
        (dict(rewarmup_value=math.nan), "rewarmup_value"),
    ],
)
def test_bad_arguments_raise_naming_them(kwargs, name):
    base = dict(init_value=0.0, peak_value=1.0, warmup_steps=10, cycle_lengths=[100, 100])
    with pytest.raises(ValueError, match=name.replace("[", r"\[").replace("]", r"\]")):
        ow.warmup_stable_decay_cycles_schedule(**{**base, **kwargs})


def test_docstring_examples():
    assert doctest.testmod(_wsd_cycles, optionflags=doctest.ELLIPSIS).failed == 0
