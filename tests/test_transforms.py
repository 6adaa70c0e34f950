"""Warmup gradient transformations, b2-derived warmups, scheduled clipping, batch-size and per-group warmups."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow

JIT_OR_NOT = pytest.mark.parametrize("wrap", [jax.jit, lambda f: f], ids=["jit", "nojit"])


def run(tx, grads_seq, params=None, **extra):
    """Applies ``tx`` to each gradient in turn; returns the updates and the states after each update."""
    params = jnp.zeros_like(grads_seq[0]) if params is None else params
    state = tx.init(params)
    update = jax.jit(tx.update)
    updates, states = [], []
    for g in grads_seq:
        u, state = update(g, state, params, **extra)
        updates.append(u)
        states.append(state)
    return updates, states


def ones(n, size=3):
    return [jnp.ones(size) for _ in range(n)]


# --- scale_by_warmup -----------------------------------------------------------------------------------------


SHAPE_FACTORS = {
    "linear": lambda t, w: min(t / w, 1.0),
    "cosine": lambda t, w: (1 - math.cos(math.pi * min(t / w, 1.0))) / 2,
    "polynomial": lambda t, w: min(t / w, 1.0) ** 2,
    "exponential": lambda t, w: 1 - math.exp(-2 * t / w),
}


@pytest.mark.parametrize(
    "wrap, shape",
    [(jax.jit, shape) for shape in SHAPE_FACTORS] + [(lambda f: f, "linear")],
    ids=[*SHAPE_FACTORS, "linear-nojit"],
)
def test_scale_by_warmup_is_factor_times_inner_update(wrap, shape):
    w, expected = 8, SHAPE_FACTORS[shape]
    inner = optax.adam(0.1)
    tx = optax.chain(inner, ow.scale_by_warmup(w, warmup_shape=shape))
    params = jnp.array([1.0, -2.0, 0.5])
    grads = [jnp.array([0.3, -1.0, 2.0]) * (i + 1) for i in range(12)]
    state, inner_state = tx.init(params), inner.init(params)
    update, inner_update = wrap(tx.update), wrap(inner.update)
    for t, g in enumerate(grads):
        u, state = update(g, state, params)
        ref, inner_state = inner_update(g, inner_state, params)
        np.testing.assert_allclose(u, expected(t, w) * ref, rtol=1e-6, atol=1e-12, err_msg=f"t={t}")
        assert float(state[1].factor) == pytest.approx(expected(t, w), rel=1e-6, abs=1e-7)
        assert int(state[1].count) == t + 1


def test_scale_by_warmup_init_value_and_state_before_first_update():
    tx = ow.scale_by_warmup(4, init_value=0.2)
    state = tx.init(jnp.zeros(2))
    assert int(state.count) == 0 and float(state.factor) == pytest.approx(0.2)
    updates, states = run(tx, ones(6, 2))
    np.testing.assert_allclose([float(u[0]) for u in updates], [0.2, 0.4, 0.6, 0.8, 1.0, 1.0], rtol=1e-6)


def test_scale_by_warmup_count_saturates_like_safe_increment():
    tx = ow.scale_by_warmup(10)
    state = tx.init(jnp.zeros(1))._replace(count=jnp.asarray(2**31 - 1, jnp.int32))
    u, state = jax.jit(tx.update)(jnp.ones(1), state)
    assert state.count.dtype == jnp.int32 and int(state.count) == 2**31 - 1
    assert float(u[0]) == 1.0


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_updates_keep_dtype_and_use_a_float32_factor(dtype):
    # factor 1/3 at t=1 of a 3-step warmup: not representable in bf16/float16.
    tx = ow.scale_by_warmup(3)
    values = jnp.linspace(0.5, 700.0, 4001).astype(dtype)
    state = tx.init(values)
    _, state = tx.update(values, state)
    u, state = jax.jit(tx.update)(values, state)
    assert u.dtype == dtype
    factor = jnp.float32(1.0) / jnp.float32(3.0)
    expected = (values.astype(jnp.float32) * factor).astype(dtype)
    np.testing.assert_array_equal(np.asarray(u, np.float32), np.asarray(expected, np.float32))
    # Optax's scale_by_schedule casts the factor to the update dtype first, and differs somewhere.
    opt = optax.scale_by_schedule(lambda c: c / 3.0)
    s = opt.init(values)
    _, s = opt.update(values, s)
    optax_u, _ = opt.update(values, s)
    assert np.any(np.asarray(optax_u, np.float32) != np.asarray(expected, np.float32))


def test_scale_by_warmup_vmap_over_warmup_steps_and_init_value():
    def final_updates(w, init):
        tx = optax.chain(optax.sgd(1.0), ow.scale_by_warmup(w, init_value=init))
        state = tx.init(jnp.zeros(()))

        def step(state, _):
            u, state = tx.update(jnp.ones(()), state)
            return state, u

        return jax.lax.scan(step, state, None, length=6)[1]

    ws = jnp.array([2.0, 4.0, 10.0, 0.0])
    inits = jnp.array([0.0, 0.5, 0.1, 0.3])
    out = jax.jit(jax.vmap(final_updates))(ws, inits)
    for i in range(4):
        w, init = float(ws[i]), float(inits[i])
        want = [-(1.0 if w == 0 else init + (1 - init) * min(t / w, 1.0)) for t in range(6)]
        np.testing.assert_allclose(out[i], want, rtol=1e-6)


def test_scale_by_warmup_gradient_with_respect_to_warmup_steps():
    # u(t) = -t / W for t < W, so du/dW = t / W**2.
    def update_at_step_3(w):
        tx = optax.chain(optax.sgd(1.0), ow.scale_by_warmup(w))
        state = tx.init(jnp.zeros(()))
        for _ in range(4):
            u, state = tx.update(jnp.ones(()), state)
        return u

    assert float(jax.jit(jax.grad(update_at_step_3))(10.0)) == pytest.approx(3 / 100, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(warmup_steps=-1), "warmup_steps"),
        (dict(warmup_steps=10, init_value=float("nan")), "init_value"),
        (dict(warmup_steps=10, warmup_shape="sawtooth"), "warmup_shape"),
        (dict(warmup_steps=10, warmup_exponent=-2.0), "warmup_exponent"),
    ],
)
def test_scale_by_warmup_rejects_bad_concrete_values(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ow.scale_by_warmup(**kwargs)


def test_scale_by_warmup_clamps_bad_traced_values():
    @jax.jit
    def factors(w, init):
        tx = ow.scale_by_warmup(w, init_value=init)
        state = tx.init(jnp.zeros(1))
        out = []
        for _ in range(3):
            _, state = tx.update(jnp.ones(1), state)
            out.append(state.factor)
        return jnp.stack(out)

    np.testing.assert_array_equal(factors(-5.0, 0.0), [1.0, 1.0, 1.0])  # negative length -> no warmup
    assert np.all(np.isfinite(factors(jnp.nan, jnp.inf)))


# --- untuned warmup (Ma & Yarats) ----------------------------------------------------------------------------


@pytest.mark.parametrize("b2, linear, tau", [(0.999, 2000, 1000), (0.99, 200, 100), (0.98, 100, 50), (0.95, 40, 20)])
def test_untuned_warmup_steps(b2, linear, tau):
    assert ow.untuned_warmup_steps(b2) == pytest.approx(linear, rel=1e-12)
    assert ow.untuned_warmup_steps(b2, warmup_shape="exponential") == pytest.approx(tau, rel=1e-12)
    traced = jax.jit(ow.untuned_warmup_steps)(b2)
    assert float(traced) == pytest.approx(linear, rel=1e-4)  # b2 rounded to float32


def test_untuned_linear_warmup_counts_from_one():
    f = jax.jit(lambda c: ow.untuned_warmup(0.99)(c))
    # omega_t = min(1, t (1 - b2) / 2), t = count + 1: 200 steps.
    for count, want in [(0, 0.005), (1, 0.01), (99, 0.5), (198, 0.995), (199, 1.0), (10_000, 1.0)]:
        assert float(f(count)) == pytest.approx(want, rel=1e-6), count


def test_untuned_exponential_warmup():
    f = ow.untuned_warmup(0.999, warmup_shape="exponential")
    for count in (0, 1, 9, 999, 1999, 5000):
        want = 1 - math.exp(-(1 - 0.999) * (count + 1))
        assert float(f(count)) == pytest.approx(want, rel=1e-5), count


def test_untuned_warmup_vmap_over_b2():
    b2s = jnp.array([0.9, 0.99, 0.999])
    got = jax.vmap(lambda b2: ow.untuned_warmup(b2)(49))(b2s)
    want = [min(1.0, 50 * (1 - float(b)) / 2) for b in b2s]
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_scale_by_untuned_warmup_matches_the_factor():
    tx = optax.chain(optax.sgd(1.0), ow.scale_by_untuned_warmup(0.9, warmup_shape="exponential"))
    updates, _ = run(tx, ones(5, 1))
    np.testing.assert_allclose([-float(u[0]) for u in updates], [1 - math.exp(-0.1 * t) for t in range(1, 6)], 1e-6)


# --- RAdam warmup ---------------------------------------------------------------------------------------------


def radam_reference(b2, t, threshold=5.0):
    """r_t straight from the paper, in float64."""
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * t * b2**t / (1 - b2**t)
    if rho_t < threshold:
        return 0.0
    return math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))


def test_radam_warmup_at_t10_for_b2_0999():
    # Worked by hand: rho_inf = 1999, b2^10 = 0.990045, rho_10 = 1999 - 20 * 0.990045 / 0.009955 = 9.9850,
    # r_10 = sqrt(5.9850 * 7.9850 * 1999 / (1995 * 1997 * 9.9850)) = 0.048998.
    value = float(ow.radam_warmup(0.999)(9))  # count 9 is t = 10
    assert value == pytest.approx(radam_reference(0.999, 10), rel=2e-6)
    assert value == pytest.approx(0.048998, abs=1e-6)


@pytest.mark.parametrize("b2", [0.7, 0.9, 0.98, 0.99, 0.999, 0.9999])
def test_radam_warmup_matches_float64_reference(b2):
    r = jax.jit(ow.radam_warmup(b2))
    for count in [0, 1, 2, 3, 4, 5, 6, 9, 10, 30, 99, 999, 5000, 10**6]:
        want = radam_reference(b2, count + 1)
        got = float(r(count))
        if want == 0.0:
            assert got == 0.0, (b2, count)
        else:
            assert got == pytest.approx(want, rel=1e-5), (b2, count)


def test_radam_warmup_threshold_and_anchors():
    r = ow.radam_warmup(0.999)
    # rho_t crosses 5 between t = 5 and t = 6: the first non-zero factor is at count 5.
    assert float(r(4)) == 0.0 and float(r(5)) > 0.0
    assert float(r(99)) == pytest.approx(0.2153, abs=1e-4)  # research anchor, t = 100
    assert float(r(999)) == pytest.approx(0.6453, abs=1e-4)  # t = 1000
    higher = ow.radam_warmup(0.999, threshold=8.0)
    first = next(c for c in range(50) if float(higher(c)) > 0)
    assert radam_reference(0.999, first + 1, 8.0) > 0 and radam_reference(0.999, first, 8.0) == 0


def test_radam_warmup_traced_b2_and_clamping():
    f = jax.jit(lambda b2, c: ow.radam_warmup(b2)(c))
    assert float(f(0.999, 9)) == pytest.approx(radam_reference(float(jnp.float32(0.999)), 10), rel=1e-5)
    for bad in (0.5, 1.0, 1.5, jnp.nan, -1.0):  # rho_inf <= threshold or out of range: factor 0, finite
        assert 0.0 <= float(f(bad, 100)) <= 1.0
    assert float(f(0.5, 1000)) == 0.0
    grad = jax.grad(lambda b2: ow.radam_warmup(b2)(20))(0.99)
    assert np.isfinite(float(grad))
    b2s = jnp.array([0.9, 0.99, 0.999], jnp.float32)
    batched = jax.vmap(lambda b2: ow.radam_warmup(b2)(49))(b2s)
    np.testing.assert_allclose(batched, [radam_reference(float(b), 50) for b in b2s], rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, name",
    [(dict(b2=1.0), "b2"), (dict(b2=-0.1), "b2"), (dict(b2=0.5), "b2"), (dict(b2=0.99, threshold=3), "threshold")],
)
def test_radam_warmup_rejects_bad_concrete_values(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ow.radam_warmup(**kwargs)


def test_untuned_rejects_bad_b2():
    with pytest.raises(ValueError, match="b2"):
        ow.untuned_warmup(1.0)
    with pytest.raises(ValueError, match="shape"):
        ow.untuned_warmup(0.99, warmup_shape="cosine")


def test_scale_by_radam_warmup_is_rectification_times_adam():
    params = jnp.array([0.5, -1.0])
    grads = [jnp.array([1.0, -2.0]) * (1 + 0.1 * i) for i in range(12)]
    updates, _ = run(optax.chain(optax.adam(1e-2, b2=0.9), ow.scale_by_radam_warmup(0.9)), grads, params)
    adam_updates, _ = run(optax.adam(1e-2, b2=0.9), grads, params)
    for t, (u, a) in enumerate(zip(updates, adam_updates, strict=True)):
        np.testing.assert_allclose(u, radam_reference(0.9, t + 1) * a, rtol=1e-5, atol=1e-12)
    assert float(updates[0][0]) == 0.0 and float(updates[-1][0]) != 0.0


# --- warmup of other hyperparameters through inject_hyperparams -----------------------------------------------


def test_momentum_warmup_values_used_each_step():
    momentum = ow.warmup_schedule(0.5, 0.9, 4)  # 0.5, 0.6, 0.7, 0.8, 0.9, ...
    tx = optax.inject_hyperparams(optax.sgd)(learning_rate=1.0, momentum=momentum)
    updates, states = run(tx, ones(6, 1))
    trace, seen = 0.0, []
    for n, (u, s) in enumerate(zip(updates, states, strict=True)):
        m = 0.5 + 0.1 * min(n, 4)  # the update with count n uses momentum(n)
        trace = 1.0 + m * trace
        assert float(u[0]) == pytest.approx(-trace, rel=1e-6)
        seen.append(float(s.hyperparams["momentum"]))
    np.testing.assert_allclose(seen, [0.5, 0.6, 0.7, 0.8, 0.9, 0.9], rtol=1e-6)


def test_adamw_b1_and_weight_decay_warmups_in_hyperparams():
    b1 = ow.warmup_schedule(0.5, 0.9, 100)
    wd = ow.warmup_schedule(0.0, 0.1, 10)
    lr = ow.warmup_constant_schedule(0.0, 1e-3, 20)
    tx = optax.inject_hyperparams(optax.adamw)(learning_rate=lr, b1=b1, weight_decay=wd)
    params = jnp.array([2.0, -1.0])
    state = tx.init(params)
    assert float(state.hyperparams["b1"]) == pytest.approx(0.5)
    update = jax.jit(tx.update)
    for n in range(15):
        _, state = update(jnp.array([0.1, 0.2]), state, params)
        # After update n+1, hyperparams hold the values that update used: schedule(n).
        assert float(state.hyperparams["b1"]) == pytest.approx(0.5 + 0.4 * n / 100, rel=1e-6)
        assert float(state.hyperparams["weight_decay"]) == pytest.approx(0.1 * min(n / 10, 1.0), rel=1e-6, abs=1e-9)
        assert float(state.hyperparams["learning_rate"]) == pytest.approx(1e-3 * n / 20, rel=1e-5, abs=1e-12)


def test_weight_decay_warmup_is_applied_with_the_scheduled_value():
    wd = ow.warmup_schedule(0.0, 0.5, 2)  # 0, 0.25, 0.5
    tx = optax.inject_hyperparams(optax.add_decayed_weights)(weight_decay=wd)
    params = jnp.array([2.0])
    updates, _ = run(tx, [jnp.zeros(1)] * 4, params)
    np.testing.assert_allclose([float(u[0]) for u in updates], [0.0, 0.5, 1.0, 1.0], rtol=1e-6)


# --- clip_by_global_norm_schedule ---------------------------------------------------------------------------


@JIT_OR_NOT
def test_clip_by_global_norm_schedule_follows_the_schedule(wrap):
    max_norm = ow.linear_schedule(1.0, 10.0, 9)  # 1 + count
    tx = ow.clip_by_global_norm_schedule(max_norm)
    g = {"a": jnp.array([3.0]), "b": jnp.array([4.0])}  # global norm 5
    state = tx.init(g)
    update = wrap(tx.update)
    for count in range(7):
        u, state = update(g, state)
        threshold = 1.0 + count
        scale = min(1.0, threshold / 5.0)
        assert float(state.max_norm) == pytest.approx(threshold)
        ref, _ = optax.clip_by_global_norm(threshold).update(g, optax.EmptyState())
        for k in g:
            assert float(u[k][0]) == pytest.approx(float(g[k][0]) * scale, rel=1e-6)
            assert float(u[k][0]) == pytest.approx(float(ref[k][0]), rel=1e-6)
        if scale == 1.0:
            assert u == g  # unclipped updates come back unchanged


def test_clip_by_global_norm_schedule_number_zero_inf_and_dtype():
    g = jnp.array([3.0, 4.0], jnp.bfloat16)
    u, _ = ow.clip_by_global_norm_schedule(2.5).update(g, ow.clip_by_global_norm_schedule(2.5).init(g))
    assert u.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(u, np.float32), [1.5, 2.0], rtol=1e-2)
    zero = ow.clip_by_global_norm_schedule(0.0)
    u, _ = zero.update(jnp.zeros(2), zero.init(jnp.zeros(2)))
    np.testing.assert_array_equal(u, [0.0, 0.0])  # no 0/0
    unclipped = ow.clip_by_global_norm_schedule(float("inf"))
    big = jnp.array([1e20, 1e20])  # the float32 norm overflows
    u, _ = unclipped.update(big, unclipped.init(jnp.zeros(2)))
    np.testing.assert_array_equal(u, big)
    with pytest.raises(ValueError, match="max_norm"):
        ow.clip_by_global_norm_schedule(-1.0)


def test_clip_by_global_norm_schedule_traced_threshold_vmap():
    def clipped(m):
        tx = ow.clip_by_global_norm_schedule(m)
        return tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)))[0]

    out = jax.vmap(clipped)(jnp.array([1.0, 5.0, 10.0, -1.0, jnp.nan]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [3, 4], [3, 4], [0, 0], [0, 0]], rtol=1e-6)


# --- batch-size warmup through MultiSteps ---------------------------------------------------------------------


def test_batch_size_warmup_values():
    every_k = ow.batch_size_warmup(1, 4, 30)
    got = [int(every_k(g)) for g in range(40)]
    assert got == [1] * 10 + [2] * 10 + [3] * 10 + [4] * 10
    assert every_k(jnp.asarray(5, jnp.int32)).dtype == jnp.int32
    cosine = ow.batch_size_warmup(2, 8, 10, warmup_shape="cosine")
    assert [int(cosine(g)) for g in (0, 5, 10)] == [2, 5, 8]


def test_batch_size_warmup_drives_multisteps_micro_steps():
    every_k = ow.batch_size_warmup(1, 3, 4)  # k = 1, 1, 2, 2, 3, 3, ...
    tx = optax.MultiSteps(optax.sgd(1.0), every_k_schedule=every_k)
    params = jnp.zeros(1)
    state = tx.init(params)
    update = jax.jit(tx.update)
    emitted_after, micro = [], 0
    for _ in range(20):
        _, state = update(jnp.ones(1), state, params)
        micro += 1
        if int(state.mini_step) == 0:
            emitted_after.append(micro)
    gaps = np.diff([0, *emitted_after]).tolist()
    assert gaps == [int(every_k(g)) for g in range(len(gaps))] == [1, 1, 2, 2, 3, 3, 3, 3, 3][: len(gaps)]
    assert int(state.gradient_step) == len(emitted_after)


def test_batch_size_warmup_rejects_bad_values():
    with pytest.raises(ValueError, match="init_every_k"):
        ow.batch_size_warmup(0, 4, 10)
    with pytest.raises(ValueError, match="peak_every_k"):
        ow.batch_size_warmup(1, 0.5, 10)
    with pytest.raises(ValueError, match="warmup_steps"):
        ow.batch_size_warmup(1, 4, -1)
    traced = jax.jit(lambda a: ow.batch_size_warmup(a, 4, 10)(0))(-3.0)
    assert int(traced) == 1  # clamped to at least one micro-batch


# --- per-group warmups (fine-tuning) --------------------------------------------------------------------------


def test_per_group_warmup_backbone_and_head():
    backbone = ow.warmup_constant_schedule(0.0, 0.01, 4)
    head = ow.warmup_constant_schedule(0.0, 1.0, 2)
    params = {"backbone": {"w": jnp.ones(2)}, "head": {"w": jnp.ones(1), "b": jnp.ones(1)}}
    labels = lambda p: {group: jax.tree.map(lambda _, g=group: g, v) for group, v in p.items()}  # noqa: E731
    tx = ow.per_group_warmup(optax.sgd, {"backbone": backbone, "head": head}, labels)
    grads = jax.tree.map(jnp.ones_like, params)
    state = tx.init(params)
    for n in range(5):
        u, state = jax.jit(tx.update)(grads, state, params)
        assert float(u["backbone"]["w"][0]) == pytest.approx(-0.01 * min(n / 4, 1.0), abs=1e-9)
        assert float(u["head"]["b"][0]) == pytest.approx(-min(n / 2, 1.0), abs=1e-7)
        lrs = ow.current_learning_rate(state)
        assert float(lrs["backbone"]) == pytest.approx(0.01 * min(n / 4, 1.0), abs=1e-9)
        assert float(lrs["head"]) == pytest.approx(min(n / 2, 1.0))


def test_per_group_warmup_frozen_group_and_errors():
    params = {"backbone": jnp.ones(2), "head": jnp.ones(1)}
    tx = ow.per_group_warmup(optax.sgd, {"backbone": None, "head": 0.5}, {"backbone": "backbone", "head": "head"})
    u, _ = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
    np.testing.assert_array_equal(u["backbone"], [0.0, 0.0])
    np.testing.assert_allclose(u["head"], [-0.5])
    with pytest.raises(ValueError, match="schedules"):
        ow.per_group_warmup(optax.sgd, {}, {})
    with pytest.raises(ValueError, match="head"):
        ow.per_group_warmup(optax.sgd, {"head": float("nan")}, {})


# --- reading hyperparameters back -----------------------------------------------------------------------------


def test_current_hyperparams_and_learning_rate_of_a_chain():
    lr = ow.warmup_constant_schedule(0.0, 1e-3, 10)
    tx = optax.chain(
        ow.clip_by_global_norm_schedule(ow.linear_schedule(0.5, 1.0, 10)),
        optax.inject_hyperparams(optax.adamw)(learning_rate=lr, weight_decay=0.01),
        ow.scale_by_warmup(4),
    )
    params = jnp.ones(2)
    state = tx.init(params)
    for n in range(6):
        _, state = tx.update(jnp.ones(2), state, params)
        hp = ow.current_hyperparams(state)
        assert {"learning_rate", "weight_decay", "b1", "b2", "eps", "warmup_factor", "max_norm"} <= set(hp)
        assert float(hp["learning_rate"]) == pytest.approx(1e-3 * n / 10, abs=1e-10)
        assert float(hp["warmup_factor"]) == pytest.approx(min(n / 4, 1.0))
        assert float(hp["max_norm"]) == pytest.approx(0.5 + 0.05 * n)
        effective = float(ow.current_learning_rate(state))
        assert effective == pytest.approx(1e-3 * n / 10 * min(n / 4, 1.0), abs=1e-10)


def test_current_hyperparams_names_repeats_and_groups():
    tx = optax.chain(ow.scale_by_warmup(2), ow.scale_by_warmup(4))
    hp = ow.current_hyperparams(tx.init(jnp.zeros(1)))
    assert set(hp) == {"warmup_factor", "warmup_factor_1"}
    with pytest.raises(ValueError, match="learning_rate"):
        ow.current_learning_rate(tx.init(jnp.zeros(1)))
    grouped = optax.chain(
        ow.per_group_warmup(optax.sgd, {"a": 1.0, "b": 2.0}, {"x": "a", "y": "b"}), ow.scale_by_warmup(2)
    )
    params = {"x": jnp.ones(1), "y": jnp.ones(1)}
    state = grouped.init(params)
    for _ in range(2):
        _, state = grouped.update(params, state, params)
    lrs = ow.current_learning_rate(state)
    assert {k: float(v) for k, v in lrs.items()} == {"a": 0.5, "b": 1.0}  # factor 1/2 applies to both groups
    assert set(ow.current_hyperparams(state)) == {"a/learning_rate", "b/learning_rate", "warmup_factor"}


def test_current_hyperparams_inside_jit_and_under_multisteps():
    tx = optax.MultiSteps(optax.inject_hyperparams(optax.sgd)(learning_rate=ow.linear_schedule(0.0, 1.0, 10)), 2)
    params = jnp.zeros(1)
    _, states = run(tx, ones(6, 1), params)
    lr = jax.jit(ow.current_learning_rate)(states[-1])
    assert float(lr) == pytest.approx(0.2)  # 3 real updates: counts 0, 1, 2
