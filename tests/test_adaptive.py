"""adaptive_warmup: backs off on spikes and non-finite values, recovers, and is a plain pytree under jit / vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow

DIRECTION = np.array([0.6, 0.8], np.float32)  # unit vector: the global norm is the scale


def calm_norms(n, wiggle=0.02):
    """Gradient norms around 1 with a deterministic +-2% wiggle."""
    return 1.0 + wiggle * np.sin(1.3 * np.arange(n))


def as_grads(norms):
    return jnp.asarray(np.asarray(norms, np.float32)[:, None] * DIRECTION)


def simulate(tx, grads, losses=None):
    """Runs ``tx`` over the gradients in one compiled scan; returns the final state and per-step records."""
    params = jnp.zeros(grads.shape[1:])

    def step(state, inputs):
        g, loss = inputs
        extra = {} if losses is None else {"value": loss}
        u, state = tx.update(g, state, params, **extra)
        return state, (u, state.factor, state.progress, state.num_spikes)

    xs = (grads, jnp.zeros(len(grads)) if losses is None else jnp.asarray(losses, jnp.float32))
    return jax.jit(lambda xs: jax.lax.scan(step, tx.init(params), xs))(xs)


def linear_factor(progress, warmup_steps):
    return min(progress / warmup_steps, 1.0)


def test_without_spikes_it_is_scale_by_warmup():
    grads = as_grads(calm_norms(40))
    inner = optax.adam(1e-2)
    _, (updates, factors, progress, spikes) = simulate(ow.adaptive_warmup(inner, 16, warmup_shape="cosine"), grads)
    plain = optax.chain(inner, ow.scale_by_warmup(16, warmup_shape="cosine"))
    _, (ref, ref_factors, _, _) = simulate_plain(plain, grads)
    np.testing.assert_array_equal(factors, ref_factors)
    np.testing.assert_allclose(updates, ref, rtol=1e-6)  # XLA may fuse Adam's arithmetic differently: ~1 ulp
    np.testing.assert_array_equal(progress, np.minimum(np.arange(1, 41), 16))
    assert int(spikes[-1]) == 0


def simulate_plain(tx, grads):
    params = jnp.zeros(grads.shape[1:])

    def step(state, g):
        u, state = tx.update(g, state, params)
        return state, (u, state[-1].factor, None, None)

    return jax.jit(lambda g: jax.lax.scan(step, tx.init(params), g))(grads)


def test_a_gradient_spike_backs_off_then_recovers_to_full_factor():
    w, spike_at = 20, 30
    norms = calm_norms(60)
    norms[spike_at] = 50.0
    grads = as_grads(norms)
    tx = ow.adaptive_warmup(None, w, min_observations=10, backoff=0.5)
    state, (updates, factors, progress, spikes) = simulate(tx, grads)

    # Progress model worked by hand: +1 per calm step up to W; halved at the spike, before that step's factor.
    p, want_factors = 0.0, []
    for t in range(60):
        if t == spike_at:
            p *= 0.5
            want_factors.append(linear_factor(p, w))
        else:
            want_factors.append(linear_factor(p, w))
            p = min(p + 1.0, w)
    np.testing.assert_allclose(factors, want_factors, rtol=1e-6)
    assert float(factors[spike_at - 1]) == 1.0 and float(factors[spike_at]) == 0.5
    # The spiking step does not advance; the ten calm steps after it climb back from 10 to 20.
    assert float(factors[spike_at + 10]) == pytest.approx(0.95) and float(factors[spike_at + 11]) == 1.0
    np.testing.assert_array_equal(np.asarray(spikes), (np.arange(60) >= spike_at).astype(np.int32))
    # The spiking update is damped by the backed-off factor; the update is factor * gradient (no inner optimizer).
    np.testing.assert_allclose(updates[spike_at], 0.5 * np.asarray(grads[spike_at]), rtol=1e-6)
    # The spike entered the statistics clipped to the threshold: the log-norm mean stays near log(1) = 0.
    # The first min_observations (10) updates are the statistics' warm-up: not observed.
    assert abs(float(state.norm_mean)) < 0.05 and int(state.norm_count) == 60 - 10


def test_no_spike_is_judged_before_min_observations():
    norms = calm_norms(20)
    norms[5] = 50.0
    _, (_, _, _, spikes) = simulate(ow.adaptive_warmup(None, 10, min_observations=10), as_grads(norms))
    assert int(spikes[-1]) == 0


@pytest.mark.parametrize(
    "jump, zscore, norm_ratio, is_spike",
    [
        (3.0, 0.0, 2.0, True),  # pure ratio test: 3x > 2x
        (1.5, 0.0, 2.0, False),
        (1.5, 4.0, 1.0, True),  # pure z-score: the wiggle's std of log-norm is ~0.014, 1.5x is ~28 std
        (1.02, 4.0, 1.0, False),
        (1.5, 4.0, 2.0, False),  # both: 28 std but not 2x
    ],
)
def test_spike_rule_zscore_and_ratio(jump, zscore, norm_ratio, is_spike):
    norms = calm_norms(31)
    norms[30] = jump
    tx = ow.adaptive_warmup(None, 100, zscore=zscore, norm_ratio=norm_ratio, min_observations=10)
    _, (_, _, _, spikes) = simulate(tx, as_grads(norms))
    assert int(spikes[-1]) == int(is_spike)


def test_backoff_steps_subtracts_progress():
    norms = calm_norms(40)
    norms[30] = 50.0
    tx = ow.adaptive_warmup(None, 100, min_observations=10, backoff=1.0, backoff_steps=12)
    _, (_, factors, progress, _) = simulate(tx, as_grads(norms))
    assert float(progress[29]) == 30.0 and float(progress[30]) == 18.0
    assert float(factors[30]) == pytest.approx(0.18)


def test_nan_and_inf_gradients_give_zero_updates_and_leave_state_clean():
    inner = optax.adam(1e-2)
    tx = ow.adaptive_warmup(inner, 10, min_observations=5)
    params = jnp.ones(2)
    update = jax.jit(tx.update)
    state = tx.init(params)
    for g in as_grads(calm_norms(12)):
        _, state = update(g, state, params)
    before = state
    for bad in (jnp.array([jnp.nan, 1.0]), jnp.array([1.0, jnp.inf]), jnp.array([-jnp.inf, jnp.nan])):
        u, state = update(bad, state, params)
        np.testing.assert_array_equal(u, [0.0, 0.0])
    assert int(state.num_nonfinite) == 3 and int(state.num_spikes) == 0
    for name in ("norm_mean", "norm_var", "loss_mean", "loss_var", "norm_count"):
        np.testing.assert_array_equal(getattr(state, name), getattr(before, name), err_msg=name)
    # Adam's moments and count never saw the NaNs.
    jax.tree.map(np.testing.assert_array_equal, state.inner_state, before.inner_state)
    assert float(state.progress) == pytest.approx(float(before.progress) / 8)  # backed off three times
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state))
    # Training goes on from the clean state.
    u, state = update(as_grads(calm_norms(1))[0], state, params)
    assert np.isfinite(u).all() and np.any(u != 0)


def test_non_finite_loss_also_drops_the_update():
    tx = ow.adaptive_warmup(optax.sgd(1.0), 4, min_observations=2)
    params = jnp.zeros(2)
    state = tx.init(params)
    g = as_grads(calm_norms(1))[0]
    for _ in range(3):
        _, state = tx.update(g, state, params, value=jnp.float32(1.0))
    u, new = tx.update(g, state, params, value=jnp.float32(jnp.nan))
    np.testing.assert_array_equal(u, [0.0, 0.0])
    assert int(new.num_nonfinite) == 1 and float(new.loss_mean) == float(state.loss_mean)


def test_a_loss_spike_backs_off_even_when_gradients_are_calm():
    losses = 2.0 + 0.01 * np.cos(np.arange(40))
    losses[30] = 3.0  # 1.5x the running mean, > loss_ratio 1.2 and many std
    tx = ow.adaptive_warmup(None, 50, min_observations=10)
    state, (_, factors, progress, spikes) = simulate(tx, as_grads(calm_norms(40)), losses)
    assert int(spikes[29]) == 0 and int(spikes[30]) == 1
    assert float(progress[30]) == 15.0 and float(factors[30]) == pytest.approx(15 / 50)
    assert int(state.loss_count) == 40 - 10 and abs(float(state.loss_mean) - 2.0) < 0.05  # 10: the warm-up


def test_skip_spikes_drops_the_spiking_update_and_keeps_the_inner_state():
    norms = calm_norms(31)
    norms[30] = 50.0
    grads = as_grads(norms)
    tx = ow.adaptive_warmup(optax.adam(1e-2), 10, min_observations=10, skip_spikes=True)
    params = jnp.zeros(2)
    state = tx.init(params)
    for g in grads[:30]:
        _, state = tx.update(g, state, params)
    u, new = tx.update(grads[30], state, params)
    np.testing.assert_array_equal(u, [0.0, 0.0])
    jax.tree.map(np.testing.assert_array_equal, new.inner_state, state.inner_state)
    assert int(new.num_spikes) == 1


def test_a_lasting_change_of_level_is_absorbed():
    norms = calm_norms(300) * np.where(np.arange(300) >= 30, 10.0, 1.0)
    _, (_, factors, _, spikes) = simulate(ow.adaptive_warmup(None, 20, min_observations=10), as_grads(norms))
    assert 1 <= int(spikes[-1]) < 30  # flagged for a while, not for ever
    assert int(spikes[-1]) == int(spikes[200]) and float(factors[-1]) == 1.0


def test_jit_and_vmap_over_numeric_hyperparameters():
    norms = calm_norms(50)
    norms[[25, 40]] = [40.0, 3.0]
    grads = as_grads(norms)
    losses = 1.0 + 0.01 * np.sin(np.arange(50))
    hp = dict(
        warmup_steps=[10.0, 30.0, 20.0],
        init_value=[0.0, 0.1, 0.2],
        decay=[0.9, 0.99, 0.5],
        zscore=[4.0, 2.0, 6.0],
        norm_ratio=[2.0, 1.5, 4.0],
        loss_ratio=[1.2, 1.1, 2.0],
        min_observations=[10.0, 5.0, 20.0],
        backoff=[0.5, 0.9, 0.0],
        backoff_steps=[0.0, 2.0, 1.0],
    )

    def run(h):
        state, (updates, factors, _, _) = simulate(ow.adaptive_warmup(None, **h), grads, losses)
        return updates, factors, state.num_spikes

    batched = jax.vmap(run)({k: jnp.asarray(v, jnp.float32) for k, v in hp.items()})
    for i in range(3):
        single = run({k: v[i] for k, v in hp.items()})
        for got, want in zip(batched, single, strict=True):
            np.testing.assert_allclose(got[i], want, rtol=1e-6, atol=1e-7)
    assert len(set(np.asarray(batched[2]).tolist())) > 1  # the settings really behave differently


def test_traced_bad_hyperparameters_are_clamped():
    def run(backoff, decay, ratio):
        tx = ow.adaptive_warmup(None, 10, backoff=backoff, decay=decay, norm_ratio=ratio, min_observations=3)
        norms = calm_norms(12)
        norms[8] = 100.0
        return simulate(tx, as_grads(norms))[0]

    state = jax.jit(run)(5.0, -1.0, 0.0)  # backoff > 1, decay < 0, ratio < 1
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state))
    assert 0.0 <= float(state.progress) <= 10.0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(warmup_steps=-1), "warmup_steps"),
        (dict(warmup_steps=10, decay=1.0), "decay"),
        (dict(warmup_steps=10, zscore=-1), "zscore"),
        (dict(warmup_steps=10, norm_ratio=0.5), "norm_ratio"),
        (dict(warmup_steps=10, loss_ratio=float("inf")), "loss_ratio"),
        (dict(warmup_steps=10, backoff=1.5), "backoff"),
        (dict(warmup_steps=10, backoff_steps=-2), "backoff_steps"),
        (dict(warmup_steps=10, min_observations=-1), "min_observations"),
        (dict(warmup_steps=10, warmup_shape="zigzag"), "warmup_shape"),
    ],
)
def test_bad_concrete_hyperparameters_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ow.adaptive_warmup(None, **kwargs)


def test_state_is_a_pytree_of_arrays_and_reports_for_logging():
    tx = ow.adaptive_warmup(optax.inject_hyperparams(optax.sgd)(learning_rate=0.1), 4)
    params = jnp.zeros(2)
    state = tx.init(params)
    assert isinstance(state, ow.AdaptiveWarmupState)
    assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(state))
    for _ in range(3):
        _, state = tx.update(jnp.ones(2), state, params)
    hp = ow.current_hyperparams(state)
    assert float(hp["warmup_factor"]) == pytest.approx(0.5) and float(hp["warmup_progress"]) == 3.0
    assert float(ow.current_learning_rate(state)) == pytest.approx(0.05)
    with pytest.raises(TypeError, match="skip_spikes"):
        ow.adaptive_warmup(None, 4, skip_spikes=1)


def test_state_can_be_donated_to_a_jitted_step():
    """Every leaf of the initial state is its own buffer, so donating the state works."""
    import jax
    import jax.numpy as jnp
    import optax

    import optax_warmup as ow

    tx = ow.adaptive_warmup(optax.sgd(0.1), warmup_steps=10)
    params = jnp.ones(3)
    state = tx.init(params)
    leaves = [x for x in jax.tree.leaves(state) if isinstance(x, jax.Array)]
    assert len({x.unsafe_buffer_pointer() for x in leaves}) == len(leaves)

    @jax.jit(donate_argnums=(0,))
    def step(state, params):
        updates, state = tx.update(jnp.ones(3), state, params)
        return state

    step(state, params)


def test_the_statistics_leave_out_the_first_min_observations_updates():
    """The statistics' warm-up: the large, varying norms of the first updates never enter the statistics, so a 10x
    spike soon after is flagged; the statistics are the exact mean and variance of what came after."""
    m = 5
    norms = calm_norms(40)
    norms[:m] = [100.0, 0.5, 30.0, 2.0, 60.0]  # the early transient
    norms[25] = 10.0
    state, (_, _, _, spikes) = simulate(ow.adaptive_warmup(None, 10, min_observations=m), as_grads(norms))
    assert int(spikes[24]) == 0 and int(spikes[25]) == 1 and int(spikes[-1]) == 1
    # Statistics over updates m..39 (fewer than 1 / (1 - decay) = 100 values: exact), the spike clipped to its
    # threshold: everything else by a float64 reference.
    x = np.log(norms[m:].astype(np.float64))
    calm = np.delete(x, 25 - m)
    before = x[: 25 - m]
    threshold = before.mean() + max(3.5 * before.std(), np.log(2.0))
    x_clipped = np.concatenate([before, [threshold], x[25 - m + 1:]])
    assert int(state.norm_count) == 40 - m
    np.testing.assert_allclose(float(state.norm_mean), x_clipped.mean(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(state.norm_var), x_clipped.var(), rtol=1e-4, atol=1e-7)
    assert abs(float(state.norm_mean) - calm.mean()) < 0.05


def test_with_the_defaults_spikes_are_judged_from_update_ten():
    """Defaults: 5 updates left out, then 5 values before the first judgement (update 2 * 5 = 10)."""
    for spike_at, flagged in ((9, 0), (10, 1)):
        norms = calm_norms(12)
        norms[spike_at] = 50.0
        _, (_, _, _, spikes) = simulate(ow.adaptive_warmup(None, 10), as_grads(norms))
        assert int(spikes[-1]) == flagged, spike_at
