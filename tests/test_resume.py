"""Checkpoint and resume: every stateful transformation, saved with Orbax mid-warmup, at the end of the warmup and
mid-decay, restored into freshly built optimizer objects, continues bit for bit like the uninterrupted run."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow

ocp = pytest.importorskip("orbax.checkpoint")

WARMUP, TOTAL = 6, 20
CHECKPOINTS = {"mid-warmup": 3, "end-of-warmup": WARMUP, "mid-decay": 13}
SPIKE_STEP = 9  # a 50x gradient spike, so adaptive_warmup has backed off before the mid-decay checkpoint


def _lr():
    return ow.warmup_cosine_decay_schedule(0.0, 0.05, WARMUP, TOTAL, 0.005)


# name -> (factory of a fresh optimizer, parameter dtype, whether update takes value=loss)
OPTIMIZERS = {
    "adamw(schedule)": (lambda: optax.adamw(_lr()), jnp.float32, False),
    "inject_hyperparams(adamw)": (
        lambda: optax.inject_hyperparams(optax.adamw)(learning_rate=_lr()),
        jnp.float32,
        False,
    ),
    "scale_by_warmup": (lambda: optax.chain(optax.adam(0.05), ow.scale_by_warmup(WARMUP)), jnp.float32, False),
    "scale_by_untuned_warmup": (
        lambda: optax.chain(optax.adam(0.05, b2=0.8), ow.scale_by_untuned_warmup(0.8)),
        jnp.float32,
        False,
    ),
    "scale_by_radam_warmup": (
        lambda: optax.chain(optax.adam(0.05, b2=0.8), ow.scale_by_radam_warmup(0.8)),
        jnp.float32,
        False,
    ),
    "scale_by_factor_schedule": (
        lambda: optax.chain(optax.sgd(0.05), ow.scale_by_factor_schedule(_lr())),
        jnp.float32,
        False,
    ),
    "adaptive_warmup": (lambda: ow.adaptive_warmup(optax.adam(0.05), WARMUP, min_observations=3), jnp.float32, True),
    "clip_by_global_norm_schedule": (
        lambda: optax.chain(ow.clip_by_global_norm_schedule(ow.linear_schedule(0.1, 2.0, WARMUP)), optax.sgd(0.05)),
        jnp.float32,
        False,
    ),
    "batch_size_warmup(MultiSteps)": (
        lambda: optax.MultiSteps(optax.adam(_lr()), every_k_schedule=ow.batch_size_warmup(1, 3, 4)),
        jnp.float32,
        False,
    ),
    "per_group_warmup": (
        lambda: ow.per_group_warmup(
            optax.adamw, {"w": _lr(), "b": ow.warmup_constant_schedule(0.0, 0.01, 3)}, lambda p: {k: k for k in p}
        ),
        jnp.float32,
        False,
    ),
    "gi_adamw": (lambda: ow.gi_adamw(_lr()), jnp.float32, False),
    "skip_step_on_spikes(adam)": (
        lambda: ow.skip_step_on_spikes(optax.adam(0.05), window=4, threshold=3.0, watch="grad_norm"),
        jnp.float32,
        True,
    ),
    "clip_by_param_norm_ratio": (
        lambda: optax.chain(optax.sgd(0.5), ow.clip_by_param_norm_ratio(ow.linear_schedule(0.01, 0.2, WARMUP))),
        jnp.float32,
        False,
    ),
    "batch_size_ramp(MultiSteps)": (
        lambda: optax.MultiSteps(optax.adam(_lr()), every_k_schedule=ow.batch_size_ramp("0:1 3:2 9:3")),
        jnp.float32,
        False,
    ),
    "inject_hyperparams(adamw, wsd cycles)": (
        lambda: optax.inject_hyperparams(optax.adamw)(
            learning_rate=ow.warmup_stable_decay_cycles_schedule(0.0, 0.05, 3, [8, 12], rewarmup_steps=2)
        ),
        jnp.float32,
        False,
    ),
    "scale_by_schedule_f32(bf16)": (
        lambda: optax.chain(optax.scale_by_adam(), ow.scale_by_schedule_f32(lambda c: -_lr()(c))),
        jnp.bfloat16,
        False,
    ),
}


def _init_params(dtype):
    return {"w": jnp.asarray([0.5, -1.0, 2.0], dtype), "b": jnp.asarray([0.1], dtype)}


@functools.cache
def _step(name):
    """One jitted training step per optimizer object (both runs use it: no extra compile, same program)."""
    factory, _, with_value = OPTIMIZERS[name]
    tx = factory()

    @jax.jit
    def step(params, opt_state, t):
        target = jnp.sin(0.7 * t + jnp.arange(3.0))

        def loss_fn(p):
            return jnp.sum((p["w"].astype(jnp.float32) - target) ** 2) + jnp.sum(p["b"].astype(jnp.float32) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        grads = jax.tree.map(lambda g, p: (g * jnp.where(t == SPIKE_STEP, 50.0, 1.0)).astype(p.dtype), grads, params)
        extra = {"value": loss} if with_value else {}
        updates, opt_state = tx.update(grads, opt_state, params, **extra)
        return optax.apply_updates(params, updates), opt_state

    return tx, step


def _run(name, params, opt_state, start, stop):
    _, step = _step(name)
    trajectory = []
    for t in range(start, stop):
        params, opt_state = step(params, opt_state, jnp.float32(t))
        trajectory.append((params, opt_state))
    return params, opt_state, trajectory


@functools.cache
def _uninterrupted(name):
    tx, _ = _step(name)
    params = _init_params(OPTIMIZERS[name][1])
    return _run(name, params, tx.init(params), 0, TOTAL)[2]


def _rates(opt_state):
    """The scheduled values the state reports (learning rates, warmup factors, clip thresholds); a plain
    ``optax.adam(_lr())`` reports its learning rate given the schedule."""
    return jax.tree.map(np.asarray, ow.current_hyperparams(opt_state, schedule=_lr()))


@pytest.mark.parametrize("point", list(CHECKPOINTS))
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_orbax_resume_is_bit_identical(name, point, tmp_path):
    stop = CHECKPOINTS[point]
    reference = _uninterrupted(name)
    tx, _ = _step(name)
    params = _init_params(OPTIMIZERS[name][1])
    params, opt_state, _ = _run(name, params, tx.init(params), 0, stop)

    path = tmp_path / "ckpt"
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, {"params": params, "opt_state": opt_state})
        checkpointer.wait_until_finished()

    # Restore into the abstract shape of a freshly built optimizer's state.
    fresh_tx = OPTIMIZERS[name][0]()
    fresh_params = _init_params(OPTIMIZERS[name][1])
    target = jax.tree.map(
        ocp.utils.to_shape_dtype_struct, {"params": fresh_params, "opt_state": fresh_tx.init(fresh_params)}
    )
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(path, target)
    assert jax.tree.structure(restored) == jax.tree.structure(target)
    jax.tree.map(np.testing.assert_array_equal, restored["params"], params)
    jax.tree.map(np.testing.assert_array_equal, restored["opt_state"], opt_state)

    _, _, resumed = _run(name, restored["params"], restored["opt_state"], stop, TOTAL)
    for (p, s), (p_ref, s_ref) in zip(resumed, reference[stop:], strict=True):
        jax.tree.map(np.testing.assert_array_equal, p, p_ref)
        jax.tree.map(np.testing.assert_array_equal, s, s_ref)
        jax.tree.map(np.testing.assert_array_equal, _rates(s), _rates(s_ref))
    # The run did something: the parameters moved.
    assert not np.array_equal(np.asarray(reference[-1][0]["w"], np.float32), np.asarray(_init_params(jnp.float32)["w"]))
