"""The baseline a sweep is measured against: every config in its own ``jit``, its values as Python numbers.

This is how a grid runs with Optax's own schedules, which branch in Python on their hyperparameters: one trace,
one compile and one run per config. Same task, same seeds, same batches as ``run``, so the losses agree with it
to float rounding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optax_warmup.sweep import grid as grid_lib
from optax_warmup.sweep.engine import Task, _loss_with_aux


def run_sequential(task: Task, optimizer: Callable[[Mapping[str, Any]], Any], steps: int,
                   grid: Mapping[str, Iterable] | Sequence[Mapping[str, Any]], *, static: Iterable[str] = (),
                   durations: Iterable[str] = (), select: Callable[[dict], bool] | None = None,
                   progress: bool = False) -> dict:
    """Trains the configs one after the other, each with a fresh ``jit`` of its own step.

    Args:
      task, optimizer, steps, grid, static, durations: as for ``run``.
      select: train only the configs for which ``select(config)`` is true (e.g. those Optax can express).

    Returns:
      ``{"index": grid positions trained, "loss": [trained config, step], "wall_s", "first_steps_s" (compile plus
      first step, summed), "compiles"}``.
    """
    task.check()
    g = grid_lib.build(grid, steps, static=static, durations=durations)
    index = [i for i, c in enumerate(g.configs) if select is None or select(dict(c))]
    loss_fn = _loss_with_aux(task.loss)
    losses = np.full((len(index), steps), np.nan, np.float32)
    first_steps_s = 0.0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(index), desc="sequential", unit="config")
    t0 = time.perf_counter()
    for row, i in enumerate(index):
        seed = int(g.seeds[i])
        key = jax.random.key(seed)
        params = task.init(seed) if task.host_init else task.init(jax.random.fold_in(key, 0))
        tx = optimizer(dict(g.configs[i]))
        opt_state = tx.init(params)
        data_key = jax.random.fold_in(key, 1)

        @jax.jit
        def step(params, opt_state, batch_or_step, tx=tx, data_key=data_key):
            batch = task.data(batch_or_step, data_key) if task.data is not None else batch_or_step
            (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch)
            updates, opt_state = optax.with_extra_args_support(tx).update(grads, opt_state, params, value=loss)
            return optax.apply_updates(params, updates), opt_state, loss

        stream = iter(task.batches(seed)) if task.batches is not None else None
        c0 = time.perf_counter()
        out = []
        for s in range(steps):
            arg = next(stream) if stream is not None else jnp.int32(s)
            params, opt_state, loss = step(params, opt_state, arg)
            out.append(loss)
            if s == 0:
                jax.block_until_ready(loss)
                first_steps_s += time.perf_counter() - c0
        losses[row] = np.asarray(jax.device_get(out), np.float32)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return dict(index=index, configs=[g.configs[i] for i in index], loss=losses,
                wall_s=time.perf_counter() - t0, first_steps_s=first_steps_s, compiles=len(index))
