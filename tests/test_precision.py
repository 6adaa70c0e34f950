"""Precision: count dtypes, result dtypes, counts near 2**31, bf16/float16 parameters, bf16 quantisation of rates."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_hostile import ROLE, TABLE, _defaults

import optax_warmup as ow

SCHEDULES = [name for name in TABLE if name not in ROLE]


def _build(name):
    return TABLE[name][0](**_defaults(name))


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize(
    "count",
    [
        np.int32(7),
        jnp.int32(7),
        np.float32(7.0),
        jnp.float32(7.5),
        7,
        7.0,
        jnp.bfloat16(7),
        np.float16(7),
        jnp.arange(5, dtype=jnp.int32),
        jnp.arange(5, dtype=jnp.uint8),
    ],
    ids=["np.int32", "jnp.int32", "np.float32", "jnp.float32", "int", "float", "bf16", "f16", "int32[5]", "uint8[5]"],
)
def test_result_is_strong_float32_for_every_count_type(name, count):
    out = _build(name)(count)
    assert out.dtype == jnp.float32, out.dtype
    assert not out.weak_type  # strong: it does not take the dtype of whatever it is combined with
    assert out.shape == jnp.shape(count)


@pytest.mark.parametrize("name", SCHEDULES)
def test_result_dtype_under_jit_for_int32_count(name):
    out = jax.jit(lambda c: _build(name)(c))(jnp.int32(7))
    assert out.dtype == jnp.float32 and not out.weak_type


def test_int32_counts_near_2_31():
    """The int32 count of Optax's states saturates at 2**31 - 1; schedules hold their end value there."""
    counts = np.asarray([2**31 - 2, 2**31 - 1], np.int32)
    np.testing.assert_array_equal(ow.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, 0.1)(counts), np.float32(0.1))
    np.testing.assert_array_equal(ow.linear_schedule(1.0, 0.5, 2**30)(counts), np.float32(0.5))
    # A length beyond int32 (as a Python int) does not overflow: half-way at 2**31 - 1 (float32: 2**31).
    np.testing.assert_allclose(ow.linear_schedule(0.0, 1.0, 2**32)(counts[-1]), 0.5, rtol=1e-6)
    np.testing.assert_allclose(ow.cosine_decay_schedule(1.0, 10**10)(10**9), 0.975528, rtol=1e-5)
    # Under jit the saturated int32 count of optax.safe_increment is handled the same way.
    assert optax.safe_increment(jnp.int32(2**31 - 1)) == 2**31 - 1
    s = ow.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, 0.1)
    assert jax.jit(s)(optax.safe_increment(jnp.int32(2**31 - 1))) == np.float32(0.1)


_X64_SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    assert jax.config.jax_enable_x64
    import optax_warmup as ow
    from test_hostile import ROLE, TABLE, _defaults
    for name, (fn, _) in TABLE.items():
        if name in ROLE:
            continue
        s = fn(**_defaults(name))
        for count in (np.int64(7), jnp.int32(7), 7, np.float32(7.0), jnp.arange(3, dtype=jnp.int64)):
            out = s(count)
            assert out.dtype == jnp.float64, (name, count, out.dtype)
            assert not out.weak_type, (name, count)
    # int64 counts beyond 2**31 keep per-step resolution (float64): 6 consecutive counts, 6 values.
    counts = np.arange(2**33, 2**33 + 6, dtype=np.int64)
    v = np.asarray(ow.linear_schedule(0.0, 1.0, 2**34)(counts))
    assert len(np.unique(v)) == 6, v
    assert v[0] == 0.5, v[0]
    print("ok")
    """
)


def test_x64_counts_and_dtype():
    """Under JAX_ENABLE_X64=1 (a subprocess: the flag is global) every schedule returns strong float64."""
    env = dict(os.environ, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu")
    tests_dir = os.path.dirname(__file__)
    env["PYTHONPATH"] = os.pathsep.join([tests_dir, os.path.dirname(tests_dir), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", _X64_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_params_keep_dtype_through_adamw(dtype):
    schedule = ow.warmup_cosine_decay_schedule(0.0, 1e-3, 10, 100)
    opt = optax.adamw(learning_rate=schedule)
    params = {"w": jnp.ones((4,), dtype), "b": jnp.zeros((2,), dtype)}
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, updates

    for _ in range(15):
        params, state, updates = step(params, state)
    assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(params))
    assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(updates))
    assert all(np.isfinite(np.asarray(leaf, np.float32)).all() for leaf in jax.tree.leaves(params))
    # The schedule itself is float32 whatever the parameters are.
    assert schedule(state[-1].count).dtype == jnp.float32


WARMUP_STEPS = 10_000


def _applied_rates(scale_transform):
    """The rate each of the 10,001 warmup steps actually applies to a unit bf16 gradient."""
    schedule = ow.warmup_constant_schedule(0.0, 1e-3, WARMUP_STEPS)
    tx = scale_transform(schedule)
    grads = jnp.ones((), jnp.bfloat16)

    def body(state, _):
        updates, state = tx.update(grads, state)
        return state, updates

    _, rates = jax.lax.scan(body, tx.init(grads), None, length=WARMUP_STEPS + 1)
    return np.asarray(rates, np.float64), np.asarray(schedule(jnp.arange(WARMUP_STEPS + 1)), np.float64)


def test_bf16_warmup_keeps_its_resolution_with_scale_by_schedule_f32():
    """Optax's scale_by_schedule (what optax.adamw(learning_rate=schedule) uses) casts the rate to bf16: the
    10,000-step warmup collapses to under a thousand distinct rates (stairs of ~10 steps, errors up to 0.4%).
    scale_by_schedule_f32 applies the float32 rate: every step its own rate, exact to float32."""
    optax_rates, exact = _applied_rates(optax.scale_by_schedule)
    ours, _ = _applied_rates(ow.scale_by_schedule_f32)

    assert len(np.unique(optax_rates)) < 1000  # the documented collapse (925 distinct values)
    rel = np.abs(optax_rates[1:] - exact[1:]) / exact[1:]
    assert rel.max() > 1e-3

    assert len(np.unique(ours)) == WARMUP_STEPS + 1
    # Exact to float32: the float64 closed form P t / W to float32 rounding (bf16 is 0.4% off). Not compared bit for
    # bit with `exact`: before jax 0.10, XLA rounds the vectorised evaluation differently (up to 2 ulps).
    t = np.arange(WARMUP_STEPS + 1)
    np.testing.assert_allclose(ours, 1e-3 * t / WARMUP_STEPS, rtol=2e-7, atol=0)


def test_scale_by_schedule_f32_matches_optax_in_float32():
    """With float32 gradients it is optax.scale_by_schedule, bit for bit (same state, same count semantics)."""
    schedule = ow.warmup_cosine_decay_schedule(0.0, 1e-3, 10, 50)
    grads = {"a": jnp.linspace(-1.0, 1.0, 5), "b": jnp.ones((2, 2))}
    ref, ours = optax.scale_by_schedule(schedule), ow.scale_by_schedule_f32(schedule)
    s_ref, s_ours = ref.init(grads), ours.init(grads)
    assert jax.tree.structure(s_ref) == jax.tree.structure(s_ours)
    for _ in range(60):
        u_ref, s_ref = ref.update(grads, s_ref)
        u_ours, s_ours = ours.update(grads, s_ours)
        jax.tree.map(np.testing.assert_array_equal, u_ours, u_ref)
    assert s_ours.count == s_ref.count == 60


def test_bf16_params_with_scale_by_schedule_f32_keep_dtype_and_round_once():
    lr = ow.warmup_constant_schedule(0.0, 1e-3, 100)
    opt = optax.chain(optax.scale_by_adam(), ow.scale_by_schedule_f32(lambda c: -lr(c)))
    params = jnp.full((3,), 3.0, jnp.bfloat16)
    state = opt.init(params)
    updates, state = opt.update(jnp.ones(3, jnp.bfloat16), state, params)
    updates, state = opt.update(jnp.ones(3, jnp.bfloat16), state, params)
    new = optax.apply_updates(params, updates)
    assert updates.dtype == jnp.float32 and new.dtype == jnp.bfloat16
    # One rounding of params + update (float32) to bf16.
    np.testing.assert_array_equal(new, (params.astype(jnp.float32) + updates).astype(jnp.bfloat16))
