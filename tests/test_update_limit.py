"""clip_by_param_norm_ratio: ||update|| <= ratio * max(||params||, min_norm), per leaf or globally."""

from __future__ import annotations

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow
from optax_warmup import _update_limit

RNG = np.random.default_rng(1)
PARAMS = {"w": RNG.normal(size=(3, 4)), "b": np.zeros(4), "g": np.full(2, 0.5)}
UPDATES = {"w": RNG.normal(size=(3, 4)) * 0.01, "b": RNG.normal(size=4), "g": np.asarray([0.3, -0.4])}


def _reference(updates, params, r, per_leaf, m):
    """The formula, float64: u * min(1, r max(||w||, m) / ||u||)."""
    def factor(u_norm, w_norm):
        bound = r * max(w_norm, m)
        return 1.0 if u_norm <= bound else bound / u_norm

    if per_leaf:
        return {k: updates[k] * factor(np.linalg.norm(updates[k]), np.linalg.norm(params[k])) for k in updates}
    u_norm = np.sqrt(sum(np.sum(u**2) for u in updates.values()))
    w_norm = np.sqrt(sum(np.sum(w**2) for w in params.values()))
    f = factor(u_norm, w_norm)
    return {k: u * f for k, u in updates.items()}


@pytest.mark.parametrize("per_leaf", [True, False])
@pytest.mark.parametrize("ratio,min_norm", [(0.01, 1e-3), (0.1, 0.0), (0.5, 1.0), (1e-4, 1e-3)])
def test_matches_the_formula_in_float64(per_leaf, ratio, min_norm):
    with jax.enable_x64(True):
        params = jax.tree.map(jnp.asarray, PARAMS)
        tx = ow.clip_by_param_norm_ratio(ratio, per_leaf=per_leaf, min_norm=min_norm)
        out, state = tx.update(jax.tree.map(jnp.asarray, UPDATES), tx.init(params), params)
        want = _reference(UPDATES, PARAMS, ratio, per_leaf, min_norm)
        for k in want:
            np.testing.assert_allclose(np.asarray(out[k]), want[k], rtol=1e-12, atol=1e-300)
        factors = [np.linalg.norm(want[k]) / np.linalg.norm(UPDATES[k]) for k in want if np.linalg.norm(UPDATES[k])]
        assert float(state.scale) == pytest.approx(min(1.0, *factors), rel=1e-12)
        assert float(state.ratio) == pytest.approx(ratio)


def test_golden_values_by_hand():
    # w = [3, 4] (norm 5), r = 0.01: bound 0.05; u = [0.3, 0.4] (norm 0.5) is cut to a tenth.
    # b = 0 (norm 0 -> floor 1e-3): bound 1e-5; u = [1, 1] (norm sqrt 2) becomes 1e-5 / sqrt(2) each.
    tx = ow.clip_by_param_norm_ratio(0.01)
    params = {"w": jnp.asarray([3.0, 4.0]), "b": jnp.zeros(2)}
    out, state = tx.update({"w": jnp.asarray([0.3, 0.4]), "b": jnp.ones(2)}, tx.init(params), params)
    np.testing.assert_allclose(np.asarray(out["w"]), [0.03, 0.04], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(out["b"]), [1e-5 / np.sqrt(2)] * 2, rtol=1e-6)
    assert float(state.scale) == pytest.approx(1e-5 / np.sqrt(2), rel=1e-6)


def test_unclipped_updates_come_back_bit_for_bit():
    params = {"w": jnp.ones(3)}
    u = {"w": jnp.asarray([1e-3, -2e-3, 3e-3], jnp.float32)}
    tx = ow.clip_by_param_norm_ratio(0.1)
    out, state = tx.update(u, tx.init(params), params)
    np.testing.assert_array_equal(np.asarray(out["w"]), np.asarray(u["w"]))
    assert float(state.scale) == 1.0


def test_zero_params_with_no_floor_are_frozen():
    params = {"b": jnp.zeros(3), "w": jnp.ones(3)}
    tx = ow.clip_by_param_norm_ratio(0.5, min_norm=0.0)
    out, _ = tx.update({"b": jnp.ones(3), "w": jnp.ones(3)}, tx.init(params), params)
    np.testing.assert_array_equal(np.asarray(out["b"]), 0.0)
    np.testing.assert_allclose(np.asarray(out["w"]), 0.5, rtol=1e-6)  # ||u|| = ||w||: cut to half


def test_no_step_moves_the_weights_more_than_the_ratio_whatever_the_learning_rate():
    """SGD with a learning rate of 1000 under a warmup of the limit: every step obeys ||dw|| <= r(t) ||w||."""
    limit = ow.linear_schedule(1e-3, 0.05, 10)
    tx = optax.chain(optax.sgd(1000.0), ow.clip_by_param_norm_ratio(limit, per_leaf=False))
    params = {"w": jnp.asarray([1.0, -2.0, 0.5])}
    state = tx.init(params)
    for t in range(15):
        grads = {"w": 2 * params["w"] + 1.0}
        updates, state = tx.update(grads, state, params)
        step = float(optax.tree.norm(updates))
        assert step <= float(limit(t)) * float(optax.tree.norm(params)) * (1 + 1e-6)
        assert float(state[1].ratio) == pytest.approx(float(limit(t)))
        params = optax.apply_updates(params, updates)


def test_schedule_and_number_give_the_same_when_constant():
    params = jax.tree.map(jnp.asarray, PARAMS)
    updates = jax.tree.map(jnp.asarray, UPDATES)
    a = ow.clip_by_param_norm_ratio(0.02)
    b = ow.clip_by_param_norm_ratio(ow.constant_schedule(0.02))
    out_a, _ = a.update(updates, a.init(params), params)
    out_b, _ = b.update(updates, b.init(params), params)
    jax.tree.map(np.testing.assert_array_equal, out_a, out_b)


def test_low_precision_updates_keep_their_dtype():
    params = {"w": jnp.ones(4, jnp.bfloat16)}
    tx = ow.clip_by_param_norm_ratio(0.01)
    out, _ = tx.update({"w": jnp.ones(4, jnp.bfloat16)}, tx.init(params), params)
    assert out["w"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out["w"], np.float32), 0.01, rtol=1e-2)


def test_traced_ratio_and_floor_under_vmap_and_grad():
    params = {"w": jnp.asarray([3.0, 4.0]), "b": jnp.zeros(2)}
    updates = {"w": jnp.asarray([0.3, 0.4]), "b": jnp.ones(2)}

    def apply(r, m):
        tx = ow.clip_by_param_norm_ratio(r, min_norm=m)
        return tx.update(updates, tx.init(params), params)[0]

    out = jax.jit(jax.vmap(apply))(jnp.asarray([0.01, 1.0, jnp.inf, jnp.nan]), jnp.asarray([1e-3, 0.0, 1.0, 1.0]))
    np.testing.assert_allclose(np.asarray(out["w"][0]), [0.03, 0.04], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(out["w"][1]), [0.3, 0.4], rtol=1e-6)  # within 1 x ||w||
    np.testing.assert_array_equal(np.asarray(out["b"][1]), 0.0)  # no floor: zeros stay
    np.testing.assert_array_equal(np.asarray(out["w"][2]), np.asarray(updates["w"]))  # inf: no limit
    np.testing.assert_array_equal(np.asarray(out["w"][3]), 0.0)  # NaN ratio clamps to 0
    g = jax.grad(lambda r: jnp.sum(apply(r, 1e-3)["w"]))(0.01)
    assert float(g) == pytest.approx(0.7 / 0.5 * 5.0, rel=1e-5)  # d/dr (r 5 u / ||u||) summed


def _steps_to_norm_one(tx, ratio_steps=2000):
    """Updates of a zero bias (gradient of ones, applied as is) until its norm reaches 1."""
    params = jnp.zeros(4)

    def step(carry, _):
        p, state = carry
        u, state = tx.update(jnp.full(4, 0.5), state, p)  # norm 1 per update before clipping
        return (p + u, state), jnp.linalg.norm(p + u)

    _, norms = jax.lax.scan(step, (params, tx.init(params)), None, length=ratio_steps)
    return int(np.argmax(np.asarray(norms) >= 1.0 - 1e-6)) + 1


def test_a_zero_bias_needs_about_800_updates_unless_exempt():
    # r m = 1e-5 per update up to norm m = 1e-3 (100 updates), then x 1.01 per update: ln(1000) / ln(1.01) = 694.
    slow = _steps_to_norm_one(ow.clip_by_param_norm_ratio(0.01))
    assert 790 <= slow <= 800, slow
    # Exempt below 1e-2: the first update is applied whole (norm 1 at once).
    assert _steps_to_norm_one(ow.clip_by_param_norm_ratio(0.01, exempt_below=1e-2)) == 1


def test_exempt_below_frees_small_leaves_only():
    tx = ow.clip_by_param_norm_ratio(0.01, exempt_below=0.5)
    params = {"small": jnp.full(4, 0.1), "big": jnp.full(4, 1.0)}  # norms 0.2 and 2
    grads = {"small": jnp.ones(4), "big": jnp.ones(4)}
    u, state = tx.update(grads, tx.init(params), params)
    np.testing.assert_array_equal(u["small"], grads["small"])  # untouched, bit for bit
    np.testing.assert_allclose(np.linalg.norm(u["big"]), 0.01 * 2.0, rtol=1e-6)
    # per_leaf=False: the whole tree's norm (sqrt(0.04 + 4)) is above 0.5, so it is limited.
    glob = ow.clip_by_param_norm_ratio(0.01, per_leaf=False, exempt_below=0.5)
    u, _ = glob.update(grads, glob.init(params), params)
    total = np.sqrt(sum(float(jnp.sum(x**2)) for x in u.values()))
    np.testing.assert_allclose(total, 0.01 * np.sqrt(0.04 + 4.0), rtol=1e-5)


def test_exempt_below_traced_and_checked():
    params, grads = jnp.zeros(3), jnp.ones(3)

    def first_update(exempt):
        tx = ow.clip_by_param_norm_ratio(0.01, exempt_below=exempt)
        return tx.update(grads, tx.init(params), params)[0]

    rows = jax.jit(jax.vmap(first_update))(jnp.asarray([0.0, 1e-2, jnp.nan, -1.0]))
    np.testing.assert_allclose(rows[1], 1.0)
    np.testing.assert_allclose(np.linalg.norm(rows[0]), 1e-5, rtol=1e-5)  # r m
    np.testing.assert_allclose(rows[2:], rows[:1].repeat(2, 0))  # NaN and negative clamp to 0: nothing exempt
    with pytest.raises(ValueError, match="exempt_below"):
        ow.clip_by_param_norm_ratio(0.01, exempt_below=-1.0)


def test_needs_params():
    tx = ow.clip_by_param_norm_ratio(0.1)
    with pytest.raises(ValueError, match="params"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)))


def test_docstring_examples():
    assert doctest.testmod(_update_limit, optionflags=doctest.ELLIPSIS).failed == 0
