"""Small sweep tasks for the tests (also reachable from the command line as ``tests.sweep_tasks:NAME``)."""

import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optax_warmup as ow
from optax_warmup import sweep

STEPS = 24
DIM = 6


def init(key):
    return {"w": jax.random.normal(key, (DIM, 1)) * 0.1, "b": jnp.zeros(1)}


def loss(params, batch):
    x, y = batch
    err = x @ params["w"] + params["b"] - y
    return jnp.mean(err**2), {"mae": jnp.mean(jnp.abs(err))}


def data(step, key):
    x = jax.random.normal(jax.random.fold_in(key, step), (16, DIM))
    return x, jnp.sin(x.sum(-1, keepdims=True))


def host_init(seed):
    rng = np.random.default_rng([7, seed])
    return {"w": (0.1 * rng.standard_normal((DIM, 1))).astype(np.float32), "b": np.zeros(1, np.float32)}


def host_batches(seed):
    """A deterministic host stream per seed; with OPTAX_WARMUP_TEST_INTERRUPT_AT=N set, the process sends itself
    SIGINT when batch N is drawn (a user pressing Ctrl-C, at a known step)."""
    rng = np.random.default_rng([11, seed])
    interrupt_at = int(os.environ.get("OPTAX_WARMUP_TEST_INTERRUPT_AT", "-1"))
    n = 0
    while True:
        if n == interrupt_at and seed == 0:
            os.kill(os.getpid(), signal.SIGINT)
        x = rng.standard_normal((16, DIM)).astype(np.float32)
        yield x, np.sin(x.sum(-1, keepdims=True))
        n += 1


def eval_batches():
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((32, DIM)).astype(np.float32) for _ in range(3)]
    return [(x, np.sin(x.sum(-1, keepdims=True))) for x in xs]


def device_task(**kwargs):
    return sweep.Task(init=init, loss=loss, data=data, name="regression", **kwargs)


def host_task(**kwargs):
    return sweep.Task(init=host_init, loss=loss, batches=host_batches, eval_batches=eval_batches(),
                      name="regression-host", **kwargs)


def adamw(hp):
    return optax.adamw(ow.warmup_cosine_decay_schedule(0.0, hp["peak_value"], hp["warmup_steps"], STEPS))


def command_line_task():
    """``--task tests.sweep_tasks:command_line_task``: the host task with its own optimizer."""
    return host_task(), adamw
