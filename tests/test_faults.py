"""Stateful transformations under faults: NaN/inf gradients, a loss spike, zero gradients, and 10,000 steps of
random faults. The state stays finite and a dropped step leaves the parameters exactly as they were.

``adaptive_warmup`` guards itself (non-finite gradients or loss: zero update, state kept; ``skip_spikes=True``:
spikes dropped too). The other warmup transformations do not inspect gradients; wrapped in
``optax.apply_if_finite`` (Optax's guard) their state, warmup count included, does not advance on a bad step.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow

WARMUP = 50


def _finite_state(state) -> bool:
    leaves = [np.asarray(x) for x in jax.tree.leaves(state)]
    return all(np.isfinite(x).all() for x in leaves if np.issubdtype(x.dtype, np.inexact))


def _adaptive(skip_spikes=False):
    return ow.adaptive_warmup(optax.adam(1e-2), WARMUP, min_observations=5, skip_spikes=skip_spikes)


GUARDED = {
    "adaptive_warmup": lambda: _adaptive(),
    "adaptive_warmup(skip_spikes)": lambda: _adaptive(skip_spikes=True),
    "apply_if_finite(scale_by_warmup)": lambda: optax.apply_if_finite(
        optax.chain(optax.adam(1e-2), ow.scale_by_warmup(WARMUP)), max_consecutive_errors=10**9
    ),
    "apply_if_finite(scale_by_radam_warmup)": lambda: optax.apply_if_finite(
        optax.chain(optax.adam(1e-2, b2=0.99), ow.scale_by_radam_warmup(0.99)), max_consecutive_errors=10**9
    ),
    "apply_if_finite(clip_by_global_norm_schedule)": lambda: optax.apply_if_finite(
        optax.chain(ow.clip_by_global_norm_schedule(ow.linear_schedule(0.1, 1.0, WARMUP)), optax.sgd(1e-2)),
        max_consecutive_errors=10**9,
    ),
    "apply_if_finite(adamw(schedule))": lambda: optax.apply_if_finite(
        optax.adamw(ow.warmup_cosine_decay_schedule(0.0, 1e-2, WARMUP, 10**5)), max_consecutive_errors=10**9
    ),
}


def _is_adaptive(name):
    return name.startswith("adaptive")


def _update(name, tx, grads, state, params, loss):
    """adaptive_warmup also watches the loss (value=); Optax's guard takes gradients only."""
    if _is_adaptive(name):
        return tx.update(grads, state, params, value=loss)
    return tx.update(grads, state, params)


@functools.cache
def _jitted(name):
    """One optimizer object and one jitted update per transformation, shared by the tests below."""
    tx = GUARDED[name]()
    return tx, jax.jit(lambda g, s, p, loss: _update(name, tx, g, s, p, loss))


@pytest.mark.parametrize("name", list(GUARDED))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_gradient_changes_nothing(name, bad):
    tx, update = _jitted(name)
    params = {"w": jnp.ones(4)}
    state = tx.init(params)
    for _ in range(10):
        updates, state = update({"w": jnp.full(4, 0.5)}, state, params, jnp.float32(1.0))
        params = optax.apply_updates(params, updates)
    grads = {"w": jnp.asarray([0.5, bad, 0.5, 0.5])}
    updates, new_state = update(grads, state, params, jnp.float32(1.0))
    new_params = optax.apply_updates(params, updates)
    np.testing.assert_array_equal(new_params["w"], params["w"])
    assert _finite_state(new_state)
    if _is_adaptive(name):
        assert int(new_state.num_nonfinite) == 1
        # The inner optimizer's state is the one before the bad step.
        jax.tree.map(np.testing.assert_array_equal, new_state.inner_state, state.inner_state)
        # The next good step continues normally.
        updates, _ = update({"w": jnp.full(4, 0.5)}, new_state, new_params, jnp.float32(1.0))
        assert np.isfinite(np.asarray(updates["w"])).all() and np.abs(np.asarray(updates["w"])).max() > 0


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_loss_drops_the_adaptive_update(bad):
    tx = _adaptive()
    params = {"w": jnp.ones(4)}
    state = tx.init(params)
    for _ in range(3):
        updates, state = tx.update({"w": jnp.full(4, 0.5)}, state, params, value=jnp.float32(1.0))
        params = optax.apply_updates(params, updates)
    updates, new_state = tx.update({"w": jnp.full(4, 0.5)}, state, params, value=jnp.float32(bad))
    np.testing.assert_array_equal(optax.apply_updates(params, updates)["w"], params["w"])
    assert _finite_state(new_state) and int(new_state.num_nonfinite) == 1


@pytest.mark.parametrize("skip_spikes", [False, True])
def test_loss_spike_backs_off_and_skip_spikes_drops_it(skip_spikes):
    tx = _adaptive(skip_spikes)
    params = {"w": jnp.ones(4)}
    state = tx.init(params)
    rng = np.random.default_rng(0)
    for _ in range(20):
        loss = jnp.float32(1.0 + 0.01 * rng.standard_normal())
        updates, state = tx.update({"w": jnp.full(4, 0.5)}, state, params, value=loss)
        params = optax.apply_updates(params, updates)
    progress = float(state.progress)
    updates, new_state = tx.update({"w": jnp.full(4, 0.5)}, state, params, value=jnp.float32(10.0))
    assert int(new_state.num_spikes) == int(state.num_spikes) + 1
    assert float(new_state.progress) < progress  # backed off (backoff=0.5)
    assert _finite_state(new_state)
    moved = not np.array_equal(optax.apply_updates(params, updates)["w"], params["w"])
    assert moved != skip_spikes


@pytest.mark.parametrize("name", list(GUARDED))
def test_zero_gradients_keep_the_state_finite(name):
    tx, update = _jitted(name)
    params = {"w": jnp.ones(4)}
    state = tx.init(params)
    for g in [0.5] * 8 + [0.0] * 5 + [0.5] * 3:
        updates, state = update({"w": jnp.full(4, g)}, state, params, jnp.float32(1.0))
        params = optax.apply_updates(params, updates)
        assert _finite_state(state) and np.isfinite(np.asarray(params["w"])).all()


def test_zero_gradients_do_not_hide_a_later_spike():
    """Zero gradients (log norm = -87) are left out of adaptive_warmup's statistics, so a spike after them is
    still detected."""
    tx = ow.adaptive_warmup(optax.sgd(0.1), 10, min_observations=3)
    params = jnp.ones(3)
    state = tx.init(params)
    for g in [1.0, 1.1, 0.9, 1.0, 1.0, 0.0, 0.0, 1.0, 1.05]:
        _, state = tx.update(jnp.full(3, g), state, params)
    assert int(state.num_spikes) == 0
    _, state = tx.update(jnp.full(3, 1000.0), state, params)
    assert int(state.num_spikes) == 1


STEPS = 10_000


def _fault_stream(seed):
    """Gradient scales and losses for 10,000 steps: calm noise, 1% 100x spikes, 0.5% NaN, 0.5% inf, 1% zeros."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(5, size=STEPS, p=[0.97, 0.01, 0.005, 0.005, 0.01])
    scale = np.exp(0.1 * rng.standard_normal(STEPS)).astype(np.float32)
    scale = np.where(kind == 1, scale * 100.0, scale)
    scale = np.where(kind == 2, np.nan, scale)
    scale = np.where(kind == 3, np.inf, scale)
    scale = np.where(kind == 4, 0.0, scale)
    loss = (1.0 + 0.01 * rng.standard_normal(STEPS)).astype(np.float32)
    loss = np.where(kind == 1, loss * 10.0, loss)
    return kind, scale.astype(np.float32), loss.astype(np.float32)


@pytest.mark.parametrize("name", list(GUARDED))
def test_ten_thousand_steps_of_random_faults(name):
    kind, scale, loss = _fault_stream(seed=sum(map(ord, name)))
    tx, _ = _jitted(name)
    params = {"w": jnp.linspace(-1.0, 1.0, 4)}
    direction = jnp.asarray([1.0, -0.5, 0.25, 2.0])

    def body(carry, xs):
        params, state = carry
        s, l = xs
        updates, state = _update(name, tx, {"w": s * direction}, state, params, l)
        new = optax.apply_updates(params, updates)
        return (new, state), jnp.any(new["w"] != params["w"])

    (params, state), moved = jax.jit(lambda p, s, xs: jax.lax.scan(body, (p, s), xs))(
        params, tx.init(params), (jnp.asarray(scale), jnp.asarray(loss))
    )
    moved = np.asarray(moved)
    assert _finite_state(state) and np.isfinite(np.asarray(params["w"])).all()
    non_finite = (kind == 2) | (kind == 3)
    assert not moved[non_finite].any(), "a NaN/inf step changed the parameters"
    assert moved[kind == 0].mean() > 0.9  # calm steps do train
    if _is_adaptive(name):
        assert int(state.num_nonfinite) == non_finite.sum()
        assert int(state.num_spikes) >= 0.5 * (kind == 1).sum()  # most 100x spikes are caught
        assert float(state.progress) > 0.0
        if name == "adaptive_warmup(skip_spikes)":
            # Every step flagged as a spike was dropped: at most the unflagged steps moved.
            assert moved.sum() <= STEPS - non_finite.sum() - int(state.num_spikes)
