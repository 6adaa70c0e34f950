"""Our schedules where Optax and Flax take a schedule: adamw, optax.join_schedules, a Flax TrainState."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow


def _sgd_trajectory(schedule, steps=30):
    """With SGD on f(x) = x, each update is exactly -lr(count): the trajectory spells out the schedule."""
    opt = optax.sgd(learning_rate=schedule)
    params = jnp.zeros(())
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        updates, state = opt.update(jnp.ones(()), state, params)
        return optax.apply_updates(params, updates), state

    lrs = []
    for _ in range(steps):
        new, state = step(params, state)
        lrs.append(float(params - new))
        params = new
    return np.array(lrs)


def test_sgd_uses_schedule_at_counts_0_1_2():
    s = ow.warmup_cosine_decay_schedule(0.0, 1.0, 10, 30)
    np.testing.assert_allclose(_sgd_trajectory(s), np.asarray(s(jnp.arange(30))), rtol=1e-5, atol=1e-6)


def test_adamw_accepts_our_schedule_and_matches_optax_schedule():
    kw = dict(init_value=0.0, peak_value=1e-2, warmup_steps=5, decay_steps=40, end_value=1e-3)
    params = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3)}

    def run(schedule):
        opt = optax.adamw(learning_rate=schedule, weight_decay=1e-2)
        state = opt.init(params)
        p = params

        @jax.jit
        def step(p, state):
            grads = jax.grad(lambda q: jnp.sum(jnp.sin(q["w"]) ** 2) + jnp.sum(q["b"] ** 2))(p)
            updates, state = opt.update(grads, state, p)
            return optax.apply_updates(p, updates), state

        for _ in range(40):
            p, state = step(p, state)
        return p

    ours, theirs = run(ow.warmup_cosine_decay_schedule(**kw)), run(optax.warmup_cosine_decay_schedule(**kw))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), ours, theirs)


def test_inside_optax_join_schedules():
    s = optax.join_schedules([ow.warmup_schedule(0.0, 1.0, 10), ow.cosine_decay_schedule(1.0, 90)], [10])
    np.testing.assert_allclose([float(s(5)), float(s(10)), float(s(55))], [0.5, 1.0, 0.5], rtol=1e-6)


def test_vmapped_training_over_warmup_steps_compiles_once():
    """A sweep over (peak, warmup_steps) as one vmapped program: each row equals its own separate run."""

    def train(peak, warmup):
        opt = optax.adam(ow.warmup_cosine_decay_schedule(0.0, peak, warmup, 50))
        x = jnp.array([3.0, -2.0])
        state = opt.init(x)

        def body(carry, _):
            x, state = carry
            updates, state = opt.update(2 * x, state, x)
            return (optax.apply_updates(x, updates), state), None

        (x, _), _ = jax.lax.scan(body, (x, state), None, length=50)
        return jnp.sum(x**2)

    peaks = jnp.array([0.1, 0.1, 0.3])
    warmups = jnp.array([0.0, 20.0, 5.0])
    sweep = jax.jit(jax.vmap(train))
    got = sweep(peaks, warmups)
    for i in range(3):
        want = train(float(peaks[i]), float(warmups[i]))
        np.testing.assert_allclose(got[i], want, rtol=1e-5)
    sweep(peaks * 2, warmups + 1)
    assert sweep._cache_size() == 1


def test_flax_train_state():
    flax = pytest.importorskip("flax")
    from flax.training import train_state

    class Model(flax.linen.Module):
        @flax.linen.compact
        def __call__(self, x):
            return flax.linen.Dense(1)(x)

    model = Model()
    params = model.init(jax.random.key(0), jnp.ones((1, 2)))
    schedule = ow.warmup_linear_decay_schedule(0.0, 0.1, 4, 20)
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=optax.sgd(schedule))
    x, y = jnp.array([[1.0, 2.0]]), jnp.array([[1.0]])

    @jax.jit
    def step(state):
        grads = jax.grad(lambda p: jnp.mean((state.apply_fn(p, x) - y) ** 2))(state.params)
        return state.apply_gradients(grads=grads)

    for expected_step in range(1, 8):
        before = state.params
        state = step(state)
        assert int(state.step) == expected_step
        # Dense bias gradient is 2 * residual; the update divided by it recovers lr(step - 1).
        residual = float(model.apply(before, x)[0, 0] - y[0, 0])
        lr = float(before["params"]["Dense_0"]["bias"][0]) - float(state.params["params"]["Dense_0"]["bias"][0])
        np.testing.assert_allclose(lr / (2 * residual), float(schedule(expected_step - 1)), rtol=1e-4, atol=1e-7)


def test_concrete_bad_values_raise_naming_the_argument():
    with pytest.raises(ValueError, match="warmup_steps"):
        ow.warmup_cosine_decay_schedule(0.0, 1.0, -5, 100)
    with pytest.raises(ValueError, match="decay_steps"):
        ow.warmup_cosine_decay_schedule(0.0, 1.0, 100, 50)
    with pytest.raises(ValueError, match="peak_value"):
        ow.warmup_constant_schedule(0.0, float("nan"), 10)
    with pytest.raises(ValueError, match="warmup_shape"):
        ow.warmup_constant_schedule(0.0, 1.0, 10, warmup_shape="sigmoid")
    with pytest.raises(ValueError, match="init_value"):
        ow.warmup_schedule(0.0, 1.0, 10, warmup_shape="geometric")
    with pytest.raises(ValueError, match="len"):
        ow.join_schedules([ow.constant_schedule(1.0)] * 3, [10])


def test_traced_bad_values_are_clamped_to_finite():
    @jax.jit
    def f(w, d, peak):
        return ow.warmup_cosine_decay_schedule(0.0, peak, w, d)(jnp.arange(0, 200, 7))

    out = f(jnp.float32(-5.0), jnp.float32(-1.0), jnp.float32(jnp.nan))
    assert np.all(np.isfinite(np.asarray(out)))
    # Zero-length warmup (negative clamped to 0) starts at the peak.
    np.testing.assert_allclose(f(jnp.float32(-5.0), jnp.float32(100.0), jnp.float32(2.0))[0], 2.0)
