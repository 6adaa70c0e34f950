"""Every Optax drop-in returns Optax's values (float32 rounding) over thousands of counts, eager and jitted."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow

COUNTS = np.arange(0, 3000)

# (name, kwargs): each is built by optax.<name>(**kwargs) and ow.<name>(**kwargs).
CASES = [
    ("constant_schedule", dict(value=0.3)),
    ("linear_schedule", dict(init_value=0.0, end_value=1e-3, transition_steps=1000)),
    ("linear_schedule", dict(init_value=1.0, end_value=0.1, transition_steps=700, transition_begin=250)),
    ("polynomial_schedule", dict(init_value=1.0, end_value=0.01, power=2.0, transition_steps=1500)),
    ("polynomial_schedule", dict(init_value=0.5, end_value=1.5, power=0.5, transition_steps=333, transition_begin=17)),
    ("cosine_decay_schedule", dict(init_value=1e-3, decay_steps=2000)),
    ("cosine_decay_schedule", dict(init_value=2.0, decay_steps=1234, alpha=0.1, exponent=2.0)),
    ("exponential_decay", dict(init_value=1.0, transition_steps=100, decay_rate=0.9)),
    ("exponential_decay", dict(init_value=1.0, transition_steps=250, decay_rate=0.5, transition_begin=100,
                               staircase=True)),
    ("exponential_decay", dict(init_value=1.0, transition_steps=100, decay_rate=0.5, end_value=0.05)),
    ("exponential_decay", dict(init_value=0.01, transition_steps=300, decay_rate=2.0, end_value=0.2)),
    ("piecewise_constant_schedule", dict(init_value=1.0, boundaries_and_scales={500: 0.1, 1000: 0.5, 2500: 2.0})),
    ("piecewise_interpolate_schedule", dict(interpolate_type="linear", init_value=1.0,
                                            boundaries_and_scales={300: 0.5, 900: 4.0, 2000: 0.01})),
    ("piecewise_interpolate_schedule", dict(interpolate_type="cosine", init_value=2.0,
                                            boundaries_and_scales={0: 0.5, 1000: 0.1})),
    ("warmup_constant_schedule", dict(init_value=0.0, peak_value=3e-4, warmup_steps=500)),
    ("warmup_cosine_decay_schedule", dict(init_value=0.0, peak_value=1e-3, warmup_steps=200, decay_steps=2500)),
    ("warmup_cosine_decay_schedule", dict(init_value=1e-5, peak_value=1.0, warmup_steps=0, decay_steps=1000,
                                          end_value=0.1, exponent=1.5)),
    ("warmup_cosine_decay_schedule", dict(init_value=0.1, peak_value=1.0, warmup_steps=777, decay_steps=2999,
                                          end_value=0.25)),
    ("warmup_exponential_decay_schedule", dict(init_value=0.0, peak_value=1.0, warmup_steps=300,
                                               transition_steps=200, decay_rate=0.5)),
    ("warmup_exponential_decay_schedule", dict(init_value=0.1, peak_value=1.0, warmup_steps=50,
                                               transition_steps=100, decay_rate=0.8, transition_begin=20,
                                               staircase=True, end_value=0.3)),
    ("linear_onecycle_schedule", dict(transition_steps=2000, peak_value=1e-2)),
    ("linear_onecycle_schedule", dict(transition_steps=1001, peak_value=1.0, pct_start=0.25, pct_final=0.6,
                                      div_factor=10.0, final_div_factor=100.0)),
    ("cosine_onecycle_schedule", dict(transition_steps=2000, peak_value=1e-2)),
    ("cosine_onecycle_schedule", dict(transition_steps=999, peak_value=3.0, pct_start=0.45, div_factor=5.0,
                                      final_div_factor=50.0)),
]

SGDR_KWARGS = [
    dict(init_value=0.0, peak_value=1.0, warmup_steps=100, decay_steps=1000),
    dict(init_value=0.0, peak_value=0.5, warmup_steps=50, decay_steps=700, end_value=0.01),
    dict(init_value=0.1, peak_value=0.25, warmup_steps=0, decay_steps=900),
]


def _optax_curve(sched, counts):
    # Optax's piecewise_interpolate and one-cycle schedules do not take an array of counts: vmap them.
    return np.asarray(jax.vmap(lambda c: jnp.asarray(sched(c), jnp.float32))(jnp.asarray(counts)))


def _assert_close(ours, theirs, rtol=2e-6, atol=1e-7):
    scale = max(1.0, float(np.max(np.abs(theirs))))
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol * scale)


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
@pytest.mark.parametrize("wrap", [lambda f: f, jax.jit, lambda f: jax.jit(jax.vmap(f))], ids=["eager", "jit", "vmap"])
def test_dropin_equals_optax(name, kwargs, wrap):
    ours = getattr(ow, name)(**kwargs)
    theirs = getattr(optax, name)(**kwargs)
    got = np.asarray(wrap(ours)(jnp.asarray(COUNTS)))
    assert got.shape == COUNTS.shape
    _assert_close(got, _optax_curve(theirs, COUNTS))


def test_sgdr_equals_optax():
    got = np.asarray(ow.sgdr_schedule(SGDR_KWARGS)(jnp.asarray(COUNTS)))
    _assert_close(got, _optax_curve(optax.sgdr_schedule(SGDR_KWARGS), COUNTS))


def test_join_schedules_equals_optax():
    pieces_ow = [ow.linear_schedule(0.0, 1.0, 100), ow.cosine_decay_schedule(1.0, 400, 0.1), ow.constant_schedule(0.3)]
    pieces_ox = [optax.linear_schedule(0.0, 1.0, 100), optax.cosine_decay_schedule(1.0, 400, 0.1),
                 optax.constant_schedule(0.3)]
    got = np.asarray(ow.join_schedules(pieces_ow, [100, 600])(jnp.asarray(COUNTS)))
    _assert_close(got, _optax_curve(optax.join_schedules(pieces_ox, [100, 600]), COUNTS))


def test_join_accepts_optax_pieces():
    """A piece from Optax (not a phase schedule) goes through the generic path and still matches."""
    pieces = [optax.linear_schedule(0.0, 1.0, 100), ow.cosine_decay_schedule(1.0, 400)]
    got = np.asarray(ow.join_schedules(pieces, [150])(jnp.asarray(COUNTS)))
    _assert_close(got, _optax_curve(optax.join_schedules(pieces, [150]), COUNTS))


def test_dropin_signatures_match_optax():
    """Same argument names, order and defaults as Optax (keyword-only extras of ours come after)."""
    import inspect

    names = {n for n, _ in CASES} | {"sgdr_schedule", "join_schedules"}
    for name in sorted(names):
        theirs = inspect.signature(getattr(optax, name)).parameters
        ours = inspect.signature(getattr(ow, name)).parameters
        ours_positional = [p for p in ours.values() if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        assert [p.name for p in ours_positional] == list(theirs), name
        for p in ours_positional:
            assert p.default == theirs[p.name].default, (name, p.name)


def test_giant_python_int_steps_do_not_overflow():
    """Python ints beyond int32 work for every step argument (Optax: only cosine_decay_schedule)."""
    s = ow.linear_schedule(0.0, 1.0, transition_steps=10**10)
    np.testing.assert_allclose(float(s(10**9)), 0.1, rtol=1e-6)
    c = ow.cosine_decay_schedule(1.0, decay_steps=10**10)
    np.testing.assert_allclose(float(c(10**9)), 0.5 * (1 + np.cos(np.pi * 0.1)), rtol=1e-6)


# --- the deliberate differences (documented in the module docstrings) --------------------------------------------


def test_zero_warmup_constant_gives_peak():
    """Optax's warmup_constant_schedule(warmup_steps=0) returns init_value forever; ours starts at the peak."""
    assert float(optax.warmup_constant_schedule(0.0, 1.0, 0)(10)) == 0.0
    np.testing.assert_array_equal(np.asarray(ow.warmup_constant_schedule(0.0, 1.0, 0)(jnp.arange(5))), 1.0)


def test_zero_transition_linear_gives_end_value():
    s = ow.linear_schedule(2.0, 5.0, transition_steps=0, transition_begin=3)
    np.testing.assert_array_equal(np.asarray(s(jnp.arange(6))), [2.0, 2.0, 2.0, 5.0, 5.0, 5.0])


def test_negative_counts_give_count_zero_value():
    for sched in [ow.cosine_decay_schedule(1.0, 100, 0.1), ow.cosine_onecycle_schedule(100, 1.0),
                  ow.piecewise_interpolate_schedule("linear", 2.0, {10: 0.5})]:
        np.testing.assert_array_equal(np.asarray(sched(jnp.array([-50, -2**31]))), float(sched(0)))
