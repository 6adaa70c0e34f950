"""skip_step_on_spikes: the rule against a float64 reference, the peers' rule (OLMo-core / MaxText) where they must
agree, and what a skipped step leaves behind."""

from __future__ import annotations

import doctest
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow
from optax_warmup import _skip_step


def _mean_std(values):
    v = np.asarray(values, np.float64)
    return v.mean(), v.std(ddof=1) if len(v) > 1 else 0.0


def _reference(losses, norms, window, z, min_samples):
    """Our documented rule in float64: skip when a finite value is more than max(z std, 1e-6 |mean|) above the mean
    of the last `window` finite values (at least max(2, min_samples) of them); always skip non-finite ones."""
    hist = {"loss": [], "norm": []}
    skips = []
    for loss, norm in zip(losses, norms, strict=True):
        finite = math.isfinite(loss) and math.isfinite(norm)
        spike = False
        for key, x in (("loss", loss), ("norm", norm)):
            h = hist[key][-window:]
            if finite and len(h) >= max(2, min_samples):
                mean, std = _mean_std(h)
                spike |= x - mean > max(z * std, 1e-6 * abs(mean))
        skips.append(spike or not finite)
        if finite:
            hist["loss"].append(loss)
            hist["norm"].append(norm)
    return skips


def _peer_rule(losses, norms, window, z):
    """OLMo-core's SkipStepOptimizer.get_step_factor (MaxText's skip_step_on_spikes is the same): the last
    `window` values before the current one, torch.std (ddof=1), judged once the list including the current value
    holds max(2, window // 2); every value, spikes included, enters the history."""
    hist_l, hist_n, skips = [], [], []
    for loss, norm in zip(losses, norms, strict=True):
        hist_l.append(loss)
        hist_n.append(norm)
        hist_l, hist_n = hist_l[-(window + 1):], hist_n[-(window + 1):]
        if len(hist_l) < max(2, window // 2):
            skips.append(False)
            continue
        ok = True
        for h in (hist_l, hist_n):
            mean, std = _mean_std(h[:-1])
            ok &= (h[-1] - mean) <= z * std
        skips.append(not ok)
    return skips


def _stream(n, seed, spikes=(), nans=()):
    rng = np.random.default_rng(seed)
    losses = 3.0 - 0.01 * np.arange(n) + 0.05 * rng.normal(size=n)
    scales = 1.0 + 0.1 * rng.normal(size=n)
    for i, factor in spikes:
        losses[i] += factor
        scales[i] *= factor
    for i in nans:
        losses[i] = np.nan
    return losses.astype(np.float32), scales.astype(np.float32)


def _run(tx, losses, scales, params=None, with_value=True, keyword="value"):
    params = jnp.asarray([1.0, -2.0, 0.5]) if params is None else params
    state = tx.init(params)
    direction = jnp.asarray([0.6, 0.0, 0.8])  # unit norm: the gradient norm is the scale
    skipped, updates, states = [], [], []
    step = jax.jit(lambda g, s, loss: tx.update(g, s, params, **({keyword: loss} if with_value else {})))
    for loss, scale in zip(losses, scales, strict=True):
        u, state = step(direction * scale, state, loss)
        skipped.append(bool(state.skipped))
        updates.append(u)
        states.append(state)
    return skipped, updates, states


@pytest.mark.parametrize("window,z,min_samples", [(16, 3.0, None), (8, 2.0, 3), (32, 6.0, 2), (16, 1.0, 10)])
def test_decisions_match_the_float64_reference(window, z, min_samples):
    losses, scales = _stream(120, seed=window, spikes=[(40, 5.0), (41, 4.0), (90, 30.0)], nans=[60, 100])
    tx = ow.skip_step_on_spikes(optax.sgd(0.1), window=window, threshold=z, min_samples=min_samples)
    skipped, _, states = _run(tx, losses, scales)
    n_min = max(2, window // 2) if min_samples is None else min_samples
    want = _reference(losses.tolist(), scales.tolist(), window, z, n_min)
    assert skipped == want
    assert int(states[-1].num_skipped) == sum(want)
    assert int(states[-1].num_nonfinite) == 2
    assert sum(want) >= 4  # the spikes and the NaNs, at least


def test_agrees_with_olmo_core_and_maxtext_on_a_finite_stream():
    """With min_samples = window // 2 - 1 (they count the current value) and no value within 1e-6 of the mean, the
    rule is theirs; it skips the spikes they skip."""
    window, z = 32, 3.0
    losses, scales = _stream(200, seed=7, spikes=[(50, 2.0), (51, 3.0), (120, 10.0), (170, 1.5)])
    tx = ow.skip_step_on_spikes(optax.sgd(0.1), window=window, threshold=z, min_samples=window // 2 - 1)
    skipped, _, _ = _run(tx, losses, scales)
    theirs = _peer_rule(losses.tolist(), scales.tolist(), window, z)
    assert skipped == theirs
    assert sum(theirs) >= 3


def test_where_we_differ_a_nan_does_not_poison_the_window():
    """The peers append the NaN, then every comparison is with a NaN mean: all is skipped until it leaves the window."""
    window = 16
    losses, scales = _stream(60, seed=3, nans=[30])
    theirs = _peer_rule(losses.tolist(), scales.tolist(), window, 6.0)
    assert all(theirs[30 : 30 + window + 1]) and not any(theirs[30 + window + 1 :])
    tx = ow.skip_step_on_spikes(optax.sgd(0.1), window=window, min_samples=window // 2 - 1)
    ours, _, states = _run(tx, losses, scales)
    assert ours[30] and not any(ours[31:]) and int(states[-1].num_nonfinite) == 1
    assert np.isfinite(np.asarray(states[-1].loss_history)).all()


def test_a_skipped_step_leaves_params_and_the_inner_state_untouched():
    losses, scales = _stream(40, seed=11, spikes=[(30, 20.0)])
    inner = optax.adamw(0.01)
    tx = ow.skip_step_on_spikes(inner, window=16)
    skipped, updates, states = _run(tx, losses, scales)
    assert skipped[30] and sum(skipped) == 1
    np.testing.assert_array_equal(np.asarray(updates[30]), 0.0)
    jax.tree.map(np.testing.assert_array_equal, states[30].inner_state, states[29].inner_state)
    assert int(states[30].inner_state[0].count) == 30  # Adam's own count did not advance
    assert int(states[30].count) == 31 and int(states[30].num_skipped) == 1
    # The next update is the one Adam would have made without the spiking batch.
    ref = inner.init(jnp.asarray([1.0, -2.0, 0.5]))
    direction = jnp.asarray([0.6, 0.0, 0.8])
    for t in [*range(30), 31]:
        u_ref, ref = inner.update(direction * scales[t], ref, jnp.asarray([1.0, -2.0, 0.5]))
    np.testing.assert_allclose(np.asarray(updates[31]), np.asarray(u_ref), rtol=1e-6)


def test_non_finite_gradient_is_skipped_without_a_loss():
    tx = ow.skip_step_on_spikes(optax.adam(0.1), watch="grad_norm")
    params = jnp.ones(2)
    state = tx.init(params)
    u, state = tx.update(jnp.asarray([jnp.nan, 1.0]), state, params)
    assert bool(state.skipped) and int(state.num_nonfinite) == 1 and int(state.grad_norm_seen) == 0
    np.testing.assert_array_equal(np.asarray(u), 0.0)
    assert int(state.inner_state[0].count) == 0


def test_watch_selects_the_signal():
    losses, scales = _stream(40, seed=5)
    losses[30] += 10.0  # a loss spike only
    scales[35] *= 10.0  # a gradient-norm spike only
    kw = dict(window=16, threshold=4.0)
    both, _, _ = _run(ow.skip_step_on_spikes(optax.sgd(0.1), **kw), losses, scales)
    loss_only, _, _ = _run(ow.skip_step_on_spikes(optax.sgd(0.1), watch="loss", **kw), losses, scales)
    norm_only, _, _ = _run(ow.skip_step_on_spikes(optax.sgd(0.1), watch="grad_norm", **kw), losses, scales)
    with pytest.warns(UserWarning, match="got no loss"):
        no_value, _, _ = _run(ow.skip_step_on_spikes(optax.sgd(0.1), **kw), losses, scales, with_value=False)
    assert [i for i, s in enumerate(both) if s] == [30, 35]
    assert [i for i, s in enumerate(loss_only) if s] == [30]
    assert [i for i, s in enumerate(norm_only) if s] == [35]
    assert [i for i, s in enumerate(no_value) if s] == [35]
    tx = ow.skip_step_on_spikes(optax.sgd(0.1), watch="loss")
    with pytest.raises(ValueError, match="needs the loss"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)), jnp.ones(2))


def test_loss_keyword_is_read_like_value():
    # MaxText and Levanter pass loss=: a 25x loss spike (gradient norm unchanged) must be skipped.
    losses, scales = _stream(40, seed=7)
    losses[30] *= 25.0
    kw = dict(window=16, threshold=4.0)
    by_loss, _, _ = _run(ow.skip_step_on_spikes(optax.sgd(0.1), **kw), losses, scales, keyword="loss")
    by_value, _, _ = _run(ow.skip_step_on_spikes(optax.sgd(0.1), **kw), losses, scales, keyword="value")
    assert [i for i, s in enumerate(by_loss) if s] == [30]
    assert by_loss == by_value


def test_loss_and_value_together_raise():
    tx = ow.skip_step_on_spikes(optax.sgd(0.1))
    with pytest.raises(ValueError, match="not both"):
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)), jnp.ones(2), value=1.0, loss=1.0)


def test_a_missing_loss_warns_once_and_grad_norm_only_does_not_warn():
    import warnings

    tx = ow.skip_step_on_spikes(optax.sgd(0.1))
    params = jnp.ones(2)
    state = tx.init(params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            _, state = tx.update(jnp.ones(2), state, params)
    assert [str(w.message)[:40] for w in caught] == ["skip_step_on_spikes(watch='both') got no"]
    quiet = ow.skip_step_on_spikes(optax.sgd(0.1), watch="grad_norm")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.update(jnp.ones(2), quiet.init(params), params)


def test_loss_keyword_reaches_the_inner_optimizer_as_value():
    inner = optax.chain(optax.sgd(1.0), optax.contrib.reduce_on_plateau(patience=2, factor=0.5))
    tx = ow.skip_step_on_spikes(inner, window=8)
    params = jnp.ones(1)
    state = tx.init(params)
    for _ in range(6):
        _, state = tx.update(jnp.ones(1), state, params, loss=jnp.float32(1.0))
    assert float(state.inner_state[1].scale) < 1.0


def test_nothing_is_skipped_before_min_samples():
    losses = np.asarray([1.0, 1.0, 1.0, 100.0, 1.0, 1.0, 100.0], np.float32)
    scales = np.ones(7, np.float32)
    skipped, _, _ = _run(ow.skip_step_on_spikes(optax.sgd(0.1), window=8, min_samples=4), losses, scales)
    # Step 3 has 3 earlier values (< 4): taken. Step 6 is judged, against [1, 1, 1, 100, 1, 1] (mean 17.5, std
    # 40.4): 100 - 17.5 = 82.5 <= 6 * 40.4, taken too. With min_samples=2, step 3 is judged against [1, 1, 1].
    assert skipped == [False] * 7
    skipped, _, _ = _run(ow.skip_step_on_spikes(optax.sgd(0.1), window=8, min_samples=2), losses, scales)
    assert skipped == [False, False, False, True, False, False, False]


def test_constant_history_does_not_flag_rounding_noise():
    losses = np.full(40, 2.3, np.float32)
    losses[35] = np.nextafter(np.float32(2.3), np.float32(3.0))  # one ulp up: std was 0
    skipped, _, _ = _run(ow.skip_step_on_spikes(optax.sgd(0.1), window=16), losses, np.ones(40, np.float32))
    assert not any(skipped)


def test_traced_threshold_and_min_samples_under_vmap():
    losses, scales = _stream(50, seed=9, spikes=[(40, 3.0)])
    params = jnp.ones(3)
    direction = jnp.asarray([0.6, 0.0, 0.8])

    def count_skipped(z, n_min):
        tx = ow.skip_step_on_spikes(optax.sgd(0.1), window=16, threshold=z, min_samples=n_min)

        def step(state, xs):
            loss, scale = xs
            return tx.update(direction * scale, state, params, value=loss)[1], None

        return jax.lax.scan(step, tx.init(params), (losses, scales))[0].num_skipped

    zs, ns = jnp.asarray([6.0, 2.0, 1e30, jnp.nan]), jnp.asarray([8.0, 8.0, 2.0, 1e9])
    traced = np.asarray(jax.jit(jax.vmap(count_skipped))(zs, ns))
    eager = [int(count_skipped(float(z), float(n))) for z, n in zip(zs[:3].tolist(), ns[:3].tolist(), strict=True)]
    assert traced[:3].tolist() == eager
    assert traced[2] == 0 and traced[3] == 0  # a huge threshold, and a NaN one clamped to 0 that never gets 1e9 samples


def test_passes_value_to_the_inner_optimizer():
    inner = optax.chain(optax.sgd(1.0), optax.contrib.reduce_on_plateau(patience=2, factor=0.5))
    tx = ow.skip_step_on_spikes(inner, window=8)
    params = jnp.ones(1)
    state = tx.init(params)
    for _ in range(6):
        _, state = tx.update(jnp.ones(1), state, params, value=jnp.float32(1.0))
    assert float(state.inner_state[1].scale) < 1.0  # the plateau was seen through the wrapper


def test_bad_arguments():
    with pytest.raises(TypeError, match="inner"):
        ow.skip_step_on_spikes(optax.adam)
    with pytest.raises(ValueError, match="window"):
        ow.skip_step_on_spikes(optax.sgd(0.1), window=1)
    with pytest.raises(TypeError, match="window"):
        ow.skip_step_on_spikes(optax.sgd(0.1), window=12.5)
    with pytest.raises(ValueError, match="watch"):
        ow.skip_step_on_spikes(optax.sgd(0.1), watch="norm")
    with pytest.raises(ValueError, match="value"):
        tx = ow.skip_step_on_spikes(optax.sgd(0.1))
        tx.update(jnp.ones(2), tx.init(jnp.ones(2)), jnp.ones(2), value=jnp.ones(2))


def test_docstring_examples():
    assert doctest.testmod(_skip_step, optionflags=doctest.ELLIPSIS).failed == 0
