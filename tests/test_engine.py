"""One construction path: every factory returns the engine's PhaseSchedule, and compositions of them merge.

Values are checked against the compositions written out by hand (the reference each factory documents), so a
merge that changed the arithmetic would fail here.
"""

from __future__ import annotations

import inspect
import math

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow
from optax_warmup import _registry, compat

T = np.arange(0, 400)


def values(schedule, counts=T):
    return np.asarray(schedule(jnp.asarray(counts)), np.float64)


# Every factory of the registry with literal arguments, plus the peers.
BUILT = {
    "constant_schedule": ow.constant_schedule(0.3),
    "linear_schedule": ow.linear_schedule(0.0, 1.0, 100, 20),
    "polynomial_schedule": ow.polynomial_schedule(1.0, 0.1, 2.0, 200),
    "cosine_decay_schedule": ow.cosine_decay_schedule(1.0, 300, 0.1),
    "exponential_decay": ow.exponential_decay(1.0, 50, 0.5, 10, True, 0.01),
    "piecewise_constant_schedule": ow.piecewise_constant_schedule(1.0, {100: 0.5, 200: 0.1}),
    "piecewise_interpolate_schedule": ow.piecewise_interpolate_schedule("cosine", 1.0, {100: 0.5}),
    "linear_onecycle_schedule": ow.linear_onecycle_schedule(300, 1.0),
    "cosine_onecycle_schedule": ow.cosine_onecycle_schedule(300, 1.0),
    "warmup_schedule": ow.warmup_schedule(0.0, 1.0, 50, warmup_shape="exponential"),
    "warmup_factor": ow.warmup_factor(50, 0.1, warmup_shape="cosine"),
    "warmup_constant_schedule": ow.warmup_constant_schedule(0.0, 1.0, 50),
    "warmup_cosine_decay_schedule": ow.warmup_cosine_decay_schedule(0.0, 1.0, 50, 300, 0.1),
    "warmup_linear_decay_schedule": ow.warmup_linear_decay_schedule(0.0, 1.0, 50, 300),
    "warmup_polynomial_decay_schedule": ow.warmup_polynomial_decay_schedule(0.0, 1.0, 50, 300, power=2.0),
    "warmup_exponential_decay_schedule": ow.warmup_exponential_decay_schedule(0.0, 1.0, 50, 50, 0.5),
    "warmup_rsqrt_schedule": ow.warmup_rsqrt_schedule(0.0, 1.0, 50),
    "noam_schedule": ow.noam_schedule(512, 50),
    "warmup_stable_decay_schedule": ow.warmup_stable_decay_schedule(0.0, 1.0, 50, 100, 100),
    "warmup_cosine_restarts_schedule": ow.warmup_cosine_restarts_schedule(0.0, 1.0, 20, 100, 2.0, 0.5),
    "sgdr_schedule": ow.sgdr_schedule([dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=100)] * 2),
    "warmup_stable_decay_cycles_schedule": ow.warmup_stable_decay_cycles_schedule(0.0, 1.0, 10, [100, 100]),
    "power_schedule": ow.power_schedule(0.02, 50, 300, 30, batch_size=64, seq_len=512),
    "untuned_warmup": ow.untuned_warmup(0.99),
    "radam_warmup": ow.radam_warmup(0.99),
}
COMPOSED = {
    "phase_schedule": ow.phase_schedule([ow.Phase(10, 0.0, 1.0)]),
    "join_schedules": ow.join_schedules([optax.constant_schedule(1.0), ow.noam_schedule(64, 10)], [20]),
    "with_warmup": ow.with_warmup(optax.cosine_decay_schedule(1.0, 100), 10),
    "warmup_overlay": ow.warmup_overlay(optax.cosine_decay_schedule(1.0, 100), 10, warmup_shape="exponential"),
    "hf_schedule": compat.hf_schedule("cosine", 1.0, 10, 100),
    "torch_schedule": compat.torch_schedule("StepLR", 1.0, step_size=10),
    "timm_schedule": compat.timm_schedule("cosine", 1.0, t_initial=100),
    "keras_schedule": compat.keras_schedule("CosineDecay", initial_learning_rate=1.0, decay_steps=100),
    "pytorch_warmup_schedule": compat.pytorch_warmup_schedule("LinearWarmup", 1.0, warmup_period=10),
    "schedule_in_tokens": ow.schedule_in_tokens(ow.warmup_cosine_decay_schedule(0.0, 1.0, 1e6, 1e8), 4096),
}


def test_the_registry_holds_every_schedule_factory_built_from_plain_values():
    assert set(_registry.SCHEDULES) == set(BUILT)
    for name, fn in _registry.SCHEDULES.items():
        assert getattr(ow, name) is fn


@pytest.mark.parametrize("name", sorted(BUILT) + sorted(COMPOSED))
def test_every_factory_returns_a_phase_schedule(name):
    schedule = {**BUILT, **COMPOSED}[name]
    assert isinstance(schedule, ow.PhaseSchedule), type(schedule)
    out = schedule(jnp.arange(5))
    assert out.dtype == jnp.float32 and out.shape == (5,)


@pytest.mark.parametrize("name", sorted(_registry.SCHEDULES) + ["phase_schedule", "join_schedules", "with_warmup",
                                                                 "warmup_overlay", "schedule_in_tokens"])
def test_every_public_factory_is_annotated_to_return_a_phase_schedule(name):
    annotation = inspect.signature(getattr(ow, name)).return_annotation
    assert annotation in ("PhaseSchedule", ow.PhaseSchedule), annotation


# --- joins and warmups of the library's own schedules are one phase list -------------------------------------------

PIECES = {
    "rsqrt": lambda: ow.warmup_rsqrt_schedule(0.1, 1.0, 10, 20.0),
    "noam": lambda: ow.noam_schedule(64, 10, 2.0),
    "exponential warmup": lambda: ow.warmup_cosine_decay_schedule(0.0, 1.0, 10, 90, 0.1, warmup_shape="exponential"),
    "exponential decay": lambda: ow.exponential_decay(1.0, 10, 0.7, 5, False, 0.2),
    "staircase": lambda: ow.exponential_decay(2.0, 10, 0.5, 0, True),
    "piecewise constant": lambda: ow.piecewise_constant_schedule(1.0, {10: 0.5, 30: 0.1}),
    "restarts": lambda: ow.warmup_cosine_restarts_schedule(0.0, 1.0, 5, 30, 1.5, 0.8),
    "power": lambda: ow.power_schedule(0.02, 10, 90, 10, batch_size=8, seq_len=64),
    "overlay": lambda: ow.warmup_overlay(ow.linear_schedule(1.0, 0.0, 90), 10, 0.5, warmup_shape="exponential"),
}


def _join_reference(pieces, bounds, t):
    """Optax's rule, evaluated piece by piece: piece i on [b_{i-1}, b_i) sees t - b_{i-1}."""
    t = np.asarray(t)
    edges = [0, *bounds]
    piece = np.searchsorted(np.asarray(edges), t, side="right") - 1
    out = np.empty(len(t))
    for i, schedule in enumerate(pieces):
        mine = piece == i
        if mine.any():
            out[mine] = np.asarray(schedule(jnp.asarray(t[mine] - edges[i])), np.float64)
    return out


@pytest.mark.parametrize("name", sorted(PIECES))
def test_join_of_library_pieces_merges_and_matches_the_piecewise_rule(name):
    pieces = [PIECES[name](), ow.linear_schedule(0.3, 0.1, 40), PIECES[name]()]
    joined = ow.join_schedules(pieces, [60, 130])
    assert isinstance(joined, ow.PhaseSchedule)
    np.testing.assert_allclose(values(joined, T), _join_reference(pieces, [60, 130], T), rtol=3e-6, atol=1e-7)


@pytest.mark.parametrize("shape", ow.WARMUP_SHAPES)
@pytest.mark.parametrize("name", sorted(PIECES))
def test_with_warmup_of_library_pieces_matches_ramp_then_shifted_schedule(name, shape):
    base = PIECES[name]()
    target = float(base(0))
    if shape == "geometric" and target <= 0:
        with pytest.raises(ValueError, match="schedule"):
            ow.with_warmup(base, 25, 0.05, warmup_shape=shape)
        return
    s = ow.with_warmup(base, 25, 0.05, warmup_shape=shape, warmup_exponent=3.0)
    ramp = ow.warmup_schedule(0.05, target, 25, warmup_shape=shape, warmup_exponent=3.0)
    if shape == "exponential":  # the factor lies over the held target, then over the shifted schedule
        after = np.where(T < 25, target, values(base, np.maximum(T - 25, 0)))
        want = 0.05 + (after - 0.05) * (1 - np.exp(-T / 12.5))
    else:
        want = np.where(T < 25, values(ramp, T), values(base, np.maximum(T - 25, 0)))
    # atol: float32 cancellation where a decay reaches 0 (1 - t/T near t = T), vectorized vs scalar rounding.
    np.testing.assert_allclose(values(s, T), want, rtol=3e-6, atol=1e-7)


def test_a_cut_piece_followed_by_its_own_end_value_is_not_held_past_the_boundary():
    # Regression: the plan dropped the constant piece (equal to the first piece's end) although the first
    # piece was cut at 50, before reaching its end: values at 50..99 followed the ramp instead of 1.
    s = ow.join_schedules([ow.linear_schedule(0.0, 1.0, 100), ow.constant_schedule(1.0)], [50])
    np.testing.assert_allclose(values(s, [25, 49, 50, 75, 150]), [0.25, 0.49, 1.0, 1.0, 1.0], rtol=1e-6)


# --- foreign pieces ---------------------------------------------------------------------------------------------


def _sub_jaxprs(value):
    """The jaxprs inside one equation parameter (cond's branches, a scan's body, ...), on every JAX we support
    (jax.extend.core.jaxprs_in_params is newer than our lowest jax, 0.8.1)."""
    if hasattr(value, "eqns"):
        yield value
    elif hasattr(value, "jaxpr") and hasattr(value.jaxpr, "eqns"):  # a ClosedJaxpr
        yield value.jaxpr
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _sub_jaxprs(v)


def _primitives(jaxpr):
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for param in eqn.params.values():
            for sub in _sub_jaxprs(param):
                names |= _primitives(sub)
    return names


@pytest.mark.parametrize("n", [2, 3, 8, 32])
def test_a_join_of_foreign_pieces_evaluates_only_the_active_one_for_a_scalar_count(n):
    pieces = [optax.linear_schedule(0.0, 1.0, 100) if i % 2 == 0 else optax.cosine_decay_schedule(1.0, 100)
              for i in range(n)]
    bounds = [100 * i for i in range(1, n)]
    ours, theirs = ow.join_schedules(pieces, bounds), optax.join_schedules(pieces, bounds)
    jaxpr = jax.make_jaxpr(ours)(jnp.int32(7)).jaxpr
    cond = [e for e in jaxpr.eqns if e.primitive.name == "cond"]
    assert len(cond) == 1 and len(cond[0].params["branches"]) == n
    counts = np.linspace(0, 100 * n + 50, 41).astype(np.int32)
    want = jax.jit(jax.vmap(theirs))(counts)
    scalar = jax.jit(ours)
    np.testing.assert_allclose([float(scalar(c)) for c in counts], want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(values(ours, counts), want, rtol=1e-6, atol=1e-7)  # an array: every piece, selected
    np.testing.assert_allclose(jax.vmap(ours)(counts), want, rtol=1e-6, atol=1e-7)


def test_a_mixed_join_switches_between_the_closed_forms_and_each_foreign_piece():
    pieces = [ow.warmup_cosine_decay_schedule(0.0, 1.0, 10, 50), optax.exponential_decay(1.0, 10, 0.5)] * 3
    bounds = [50, 100, 150, 200, 250]
    s = ow.join_schedules(pieces, bounds)
    assert "cond" in _primitives(jax.make_jaxpr(s)(jnp.int32(3)).jaxpr)
    np.testing.assert_allclose(values(s, T), _join_reference(pieces, bounds, T), rtol=3e-6, atol=1e-7)
    scalar = jax.jit(s)
    np.testing.assert_allclose([float(scalar(c)) for c in T[::13]],
                               _join_reference(pieces, bounds, T[::13]), rtol=3e-6, atol=1e-7)


def test_foreign_pieces_see_the_count_since_their_boundary():
    def identity(count):
        return jnp.asarray(count, jnp.float32)

    s = ow.join_schedules([ow.constant_schedule(-1.0), identity, identity], [10, 30])
    np.testing.assert_array_equal(values(s, [0, 9, 10, 12, 29, 30, 35]), [-1, -1, 0, 2, 19, 0, 5])
    np.testing.assert_array_equal([float(jax.jit(s)(jnp.int32(c))) for c in (9, 12, 35)], [-1, 2, 5])


def test_a_wrapped_foreign_schedule_sees_its_count_unchanged():
    s = ow.join_schedules([optax.cosine_decay_schedule(1.0, 100)], [])
    assert isinstance(s, ow.PhaseSchedule)
    # Optax's cosine mirrors at negative counts; alone, its schedule is called as it is.
    assert float(s(-10)) == pytest.approx(float(optax.cosine_decay_schedule(1.0, 100)(-10)))


# --- the engine's node kinds ----------------------------------------------------------------------------------------


def test_power_law_tail_is_general_enough_for_rsqrt_noam_and_the_power_scheduler():
    # rsqrt: P sqrt(tau / (t - W + tau)); Noam: d**-0.5 min(n**-0.5, n W**-1.5); power: min(lr_max, B a T**b).
    t = np.arange(10, 2000, 37)
    np.testing.assert_allclose(values(ow.warmup_rsqrt_schedule(0.0, 2.0, 10, 30.0), t),
                               2.0 * np.sqrt(30.0 / (t - 10 + 30.0)), rtol=2e-6)
    n = t + 1.0
    np.testing.assert_allclose(values(ow.noam_schedule(64, 10), t), 64**-0.5 * np.minimum(n**-0.5, n * 10**-1.5),
                               rtol=2e-6)
    s = ow.power_schedule(0.02, 10, batch_size=16, seq_len=256)
    np.testing.assert_allclose(values(s, t), np.minimum(0.02, 16 * 4.6 * (t * 16 * 256.0) ** -0.51), rtol=1e-5)


def test_exponential_to_end_shape_leaves_start_and_lands_on_end_exactly():
    s = ow.phase_schedule([ow.Phase(100, 2.0, 0.5, "exponential_to_end")])
    p = T[:101] / 100
    want = 0.5 + 1.5 * np.expm1(1 - p) / np.expm1(1.0)
    got = values(s, T[:101])
    np.testing.assert_allclose(got, want, rtol=2e-6)
    assert got[0] == 2.0 and got[100] == 0.5


def test_layers_of_layers_apply_inside_out():
    base = ow.warmup_cosine_decay_schedule(0.1, 1.0, 20, 200, warmup_shape="exponential")
    s = ow.warmup_overlay(base, 40, 0.5, warmup_shape="exponential")
    want = values(base) * (0.5 + 0.5 * (1 - np.exp(-T / 20.0)))
    np.testing.assert_allclose(values(s), want, rtol=3e-6, atol=1e-9)
    joined = ow.join_schedules([s, ow.constant_schedule(0.2)], [300])
    np.testing.assert_allclose(values(joined), np.where(T < 300, want, 0.2), rtol=3e-6, atol=1e-9)


def test_traced_phases_in_a_join_follow_the_same_rule():
    def build(w, b):
        return ow.join_schedules([ow.warmup_rsqrt_schedule(0.0, 1.0, w), ow.noam_schedule(64.0, w)], [b])

    got = jax.jit(lambda w, b: build(w, b)(jnp.asarray(T)))(10.0, 120.0)
    np.testing.assert_allclose(got, values(build(10, 120)), rtol=2e-6, atol=1e-9)
    assert math.isfinite(float(jnp.max(jnp.abs(jax.grad(lambda w: build(w, 120.0)(50))(10.0)))))


def test_every_public_function_has_a_return_annotation():
    from optax_warmup import config

    for module, names in ((ow, ow.__all__), (compat, compat.__all__), (config, config.__all__)):
        for name in names:
            fn = getattr(module, name)
            if callable(fn) and not isinstance(fn, type) and not inspect.ismodule(fn):
                assert inspect.signature(fn).return_annotation is not inspect.Signature.empty, name


# --- each argument is checked and clamped once, at the public boundary ------------------------------------------------


class _Marked(float):
    """A float whose passes through _validate can be counted (identity, not value)."""


@pytest.mark.parametrize(
    "build",
    [
        lambda w: ow.warmup_cosine_decay_schedule(0.0, 1.0, w, 100),
        lambda w: ow.warmup_stable_decay_schedule(0.0, 1.0, w, 10, 10),
        lambda w: ow.warmup_rsqrt_schedule(0.0, 1.0, w),
        lambda w: ow.warmup_exponential_decay_schedule(0.0, 1.0, w, 10, 0.5),
        lambda w: ow.warmup_cosine_restarts_schedule(0.0, 1.0, w, 100),
        lambda w: ow.warmup_schedule(0.0, 1.0, w, warmup_shape="exponential"),
        lambda w: ow.power_schedule(0.02, w, 100, 10, batch_size=8, seq_len=64),
        lambda w: ow.scale_by_warmup(w),
    ],
)
def test_warmup_steps_is_checked_and_clamped_once(build, monkeypatch):
    from optax_warmup import _validate as V

    w = _Marked(10.0)
    seen = {"checked": 0, "clamped": 0}
    concrete, sanitize = V.concrete, V.sanitize_length

    def counting_concrete(name, x):
        seen["checked"] += x is w
        return concrete(name, x)

    def counting_sanitize(xp, x):
        seen["clamped"] += x is w
        return sanitize(xp, x)

    monkeypatch.setattr(V, "concrete", counting_concrete)
    monkeypatch.setattr(V, "sanitize_length", counting_sanitize)
    build(w)
    # Its own check, plus at most one check of its relation to another argument (decay_steps > warmup_steps).
    assert 1 <= seen["checked"] <= 2 and seen["clamped"] == 1, seen
