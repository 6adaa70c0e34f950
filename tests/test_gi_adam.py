"""GI-Adam (Kalra & Barkeshli, 2024): against its formula in float64, and against optax.adamw where they must agree."""

from __future__ import annotations

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow
from optax_warmup import _gi_adam

RNG = np.random.default_rng(0)
GRADS = [RNG.normal(size=4) * s for s in (1.0, 0.3, 2.0, 0.7, 1.5, 0.1, 1.0)]


def _reference(grads, b1, b2, eps, eps_root):
    """The formula by hand, float64: Adam with v_0 = g_1**2 and the standard bias corrections."""
    m, v = np.zeros_like(grads[0]), np.square(grads[0])
    out = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        out.append((m_hat / (np.sqrt(v_hat + eps_root) + eps), m, v))
    return out


def _run(tx, grads, params=None):
    state = tx.init(jnp.zeros_like(grads[0]) if params is None else params)
    out = []
    for g in grads:
        u, state = tx.update(jnp.asarray(g), state, params)
        out.append((u, state))
    return out


@pytest.mark.parametrize("b1,b2,eps,eps_root", [(0.9, 0.999, 1e-8, 0.0), (0.5, 0.9, 1e-3, 1e-6), (0.0, 0.99, 0.0, 0.0)])
def test_matches_the_formula_in_float64(b1, b2, eps, eps_root):
    with jax.enable_x64(True):
        got = _run(ow.scale_by_gi_adam(b1, b2, eps, eps_root), [jnp.asarray(g, jnp.float64) for g in GRADS])
        for (u, state), (u_ref, m_ref, v_ref) in zip(got, _reference(GRADS, b1, b2, eps, eps_root), strict=True):
            assert u.dtype == jnp.float64
            np.testing.assert_allclose(np.asarray(u), u_ref, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(np.asarray(state.mu), m_ref, rtol=1e-12)
            np.testing.assert_allclose(np.asarray(state.nu), v_ref, rtol=1e-12)


def test_second_moment_is_adams_plus_the_decayed_first_gradient_squared():
    """v_t = v_t(Adam) + b2**t g_1**2, exactly the initialization's contribution."""
    b2 = 0.95
    with jax.enable_x64(True):
        grads = [jnp.asarray(g, jnp.float64) for g in GRADS]
        ours = _run(ow.scale_by_gi_adam(b2=b2), grads)
        adam = _run(optax.scale_by_adam(b2=b2), grads)
        for t, ((_, s), (_, s_adam)) in enumerate(zip(ours, adam, strict=True), start=1):
            np.testing.assert_allclose(np.asarray(s.nu - s_adam.nu), b2**t * GRADS[0] ** 2, rtol=1e-10)
            np.testing.assert_array_equal(np.asarray(s.mu), np.asarray(s_adam.mu))
            assert int(s.count) == int(s_adam.count) == t


def test_equals_adamw_when_b2_is_zero():
    params = jnp.linspace(-1.0, 1.0, 4)
    kw = dict(learning_rate=0.1, b2=0.0, weight_decay=0.01)
    for (u, s), (u_ref, s_ref) in zip(
        _run(ow.gi_adamw(**kw), GRADS, params), _run(optax.adamw(**kw), GRADS, params), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(u_ref))
        jax.tree.map(np.testing.assert_array_equal, s, s_ref)


def test_equals_adamw_after_a_zero_first_gradient():
    """v_0 = g_1**2 = 0: nothing differs from Adam, ever."""
    params = jnp.ones(4)
    grads = [np.zeros(4), *GRADS]
    for (u, _), (u_ref, _) in zip(
        _run(ow.gi_adamw(0.05), grads, params), _run(optax.adamw(0.05), grads, params), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(u_ref))


def test_constant_gradient_is_adam_times_sqrt_one_minus_b2_power_t():
    """The built-in warmup: with g constant and eps = 0, u_t = u_t(Adam) sqrt(1 - b2**t)."""
    b2 = 0.99
    with jax.enable_x64(True):
        g = jnp.asarray([0.5, -2.0, 3.0], jnp.float64)
        ours = _run(ow.scale_by_gi_adam(b2=b2, eps=0.0), [g] * 300)
        adam = _run(optax.scale_by_adam(b2=b2, eps=0.0), [g] * 300)
        for t, ((u, _), (u_adam, _)) in enumerate(zip(ours, adam, strict=True), start=1):
            np.testing.assert_allclose(np.asarray(u), np.asarray(u_adam) * np.sqrt(1 - b2**t), rtol=1e-12)
    # 1, 10 and 300 steps in: 10%, 31% and 98% of Adam's step.
    assert [round(float(np.sqrt(1 - b2**t)), 2) for t in (1, 10, 300)] == [0.1, 0.31, 0.98]


def test_adamw_alias_is_the_transformation_plus_decoupled_weight_decay():
    params = jnp.asarray([1.0, -2.0, 0.5, 3.0])
    lr, wd = ow.warmup_constant_schedule(0.0, 0.1, 3), 0.05
    ours = _run(ow.gi_adamw(lr, b1=0.8, b2=0.9, weight_decay=wd), GRADS, params)
    direction = _run(ow.scale_by_gi_adam(b1=0.8, b2=0.9), GRADS)
    for t, ((u, _), (d, _)) in enumerate(zip(ours, direction, strict=True)):
        np.testing.assert_allclose(np.asarray(u), -float(lr(t)) * (np.asarray(d) + wd * np.asarray(params)), rtol=1e-6)


def test_signature_follows_optax_adamw():
    import inspect

    ours = list(inspect.signature(ow.gi_adamw).parameters)
    theirs = list(inspect.signature(optax.adamw).parameters)
    assert ours == theirs
    assert list(inspect.signature(ow.scale_by_gi_adam).parameters) == list(
        inspect.signature(optax.scale_by_adam).parameters
    )


def test_traced_hyperparameters_vmap_and_jit_match_eager():
    params = jnp.ones(4)
    rows = dict(
        learning_rate=np.asarray([1e-3, 1e-2, 0.1], np.float32),
        b1=np.asarray([0.9, 0.5, 0.0], np.float32),
        b2=np.asarray([0.999, 0.9, 0.5], np.float32),
        eps=np.asarray([1e-8, 1e-3, 1e-6], np.float32),
        weight_decay=np.asarray([0.0, 0.1, 1e-4], np.float32),
    )

    def last_update(hp):
        return _run(ow.gi_adamw(**hp), GRADS[:3], params)[-1][0]

    traced = np.asarray(jax.jit(jax.vmap(last_update))(rows))
    for i in range(3):
        eager = last_update({k: float(v[i]) for k, v in rows.items()})
        np.testing.assert_allclose(traced[i], np.asarray(eager), rtol=2e-5)


def test_grad_through_the_learning_rate_and_b2():
    def final_loss(lr, b2):
        tx = ow.gi_adamw(lr, b2=b2, weight_decay=0.0)
        p = jnp.asarray([2.0, -1.0])
        state = tx.init(p)
        for _ in range(5):
            u, state = tx.update(2 * p, state, p)
            p = optax.apply_updates(p, u)
        return jnp.sum(p**2)

    g = jax.grad(final_loss, argnums=(0, 1))(0.1, 0.9)
    assert all(np.isfinite(float(x)) for x in g)
    assert float(g[0]) < 0  # a larger step moves further towards 0 here


def test_traced_decay_rates_at_and_beyond_one_stay_finite():
    def update(b2):
        tx = ow.scale_by_gi_adam(b2=b2)
        return _run(tx, GRADS[:3])[-1][0]

    out = np.asarray(jax.jit(jax.vmap(update))(jnp.asarray([1.0, 2.0, jnp.nan, -1.0, jnp.inf])))
    assert np.isfinite(out).all()


def test_bf16_params_keep_their_dtype():
    params = jnp.ones(3, jnp.bfloat16)
    u, state = ow.gi_adamw(1e-2).update(jnp.full(3, 0.5, jnp.bfloat16), ow.gi_adamw(1e-2).init(params), params)
    assert u.dtype == jnp.bfloat16 and state[0].nu.dtype == jnp.bfloat16


@pytest.mark.parametrize("name,value", [("b1", 1.0), ("b2", -0.1), ("eps", -1.0), ("eps_root", float("nan"))])
def test_bad_concrete_arguments_raise_naming_them(name, value):
    with pytest.raises(ValueError, match=name):
        ow.gi_adamw(1e-3, **{name: value})


def test_docstring_examples():
    assert doctest.testmod(_gi_adam, optionflags=doctest.ELLIPSIS).failed == 0
