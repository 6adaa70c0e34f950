"""The sweep engine: a grid of configs of the user's model and optimizer, trained together in one compiled program.

Layout of the computation (``run``):

* the config axis of each group (configs that share their static values) is padded to a multiple of the device
  count and sharded over every device with ``shard_map`` (multi-host too: every process runs the same call);
* each device runs its configs with ``vmap`` (batched, best on accelerators), ``lax.map`` (a loop, best on CPU)
  or ``lax.map`` over chunks of ``chunk_size`` vmapped configs (bounded memory);
* one device call runs ``steps_per_call`` training steps in a ``lax.scan`` and returns their metrics, so dispatch
  and host transfers are paid once per call, not once per step.

A config whose loss, gradients or new parameters are not finite is frozen at its last finite state (its curves
read NaN from then on) and flagged with that step; the other configs never see it.

The pieces: ``_task`` (the user's functions adapted), ``_preflight`` (the check before anything compiles),
``_plan`` (strategy, steps per call, padding), ``_programs`` (the compiled programs), ``_runner`` (the host
loop: curves, evaluations, checkpoints, progress); this module checks the arguments and puts them together.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
import optax

from optax_warmup.sweep import _checkpoint, _preflight
from optax_warmup.sweep import grid as grid_lib
from optax_warmup.sweep._plan import (  # noqa: F401 - the engine's names, as search, the tests and tasks use them
    AXIS,
    CPU_QUICK_COMPILE,
    LIGHT_STEP_FLOPS,
    STRATEGIES,
    _choose_strategy,
    _plan,
    _positive_int,
    check_directory,
    resolve_strategy,
)
from optax_warmup.sweep._programs import (  # noqa: F401
    _group_step,
    _hyperparams,
    _loss_with_aux,
    _per_device,
    _seed_key,
    _sharded,
    _tree_where,
)
from optax_warmup.sweep._runner import _init_source, _Interrupt, _Runner  # noqa: F401
from optax_warmup.sweep._task import Calls, Task
from optax_warmup.sweep.result import SweepResult

KEEP = (None, "best", "all")


# ------------------------------------------------------------------------------------------------------- run


def run(
    task: Task,
    optimizer: Callable[[Mapping[str, Any]], optax.GradientTransformation],
    steps: int,
    grid: Mapping[str, Iterable] | Sequence[Mapping[str, Any]],
    *,
    eval_every: int | None = None,
    steps_per_call: int | None = None,
    strategy: str = "auto",
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    out_dir: str | os.PathLike | None = None,
    static: Iterable[str] = (),
    durations: Iterable[str] = (),
    progress: bool = True,
    callback: Callable[[int, Mapping[str, np.ndarray]], Any] | None = None,
    record: Iterable[str] | Callable[[Any], Mapping[str, Any]] = (),
    keep: str | None = None,
    plain: Iterable[str] = (),
    compilation_cache: str | os.PathLike | None = None,
) -> SweepResult:
    """Trains every config of ``grid`` for ``steps`` steps, one compiled program per group of static values;
    returns a ``SweepResult``.

    Args:
      task: the model, loss and data (``Task``).
      optimizer: ``optimizer(hp) -> GradientTransformation``; ``hp`` maps each axis to this config's value
        (numbers arrive traced: build the schedule from them, e.g.
        ``optax.adamw(ow.warmup_cosine_decay_schedule(0.0, hp["peak_value"], hp["warmup_steps"], steps))``).
        It is also called once per setting with Python values before anything compiles, so the library's checks
        catch a bad value early. The optimizer's ``update`` gets ``value=loss`` (for ``adaptive_warmup``).
      steps: training steps of every config.
      grid: ``{axis: [values]}`` (the full product, last axis fastest) or a list of config dicts. ``seed`` is an
        axis (see ``Task``); an axis named ``*_steps`` is a duration (steps, a fraction or a percentage of
        ``steps``); strings and bools are static (see ``optax_warmup.sweep.grid``).
      eval_every: evaluate every N steps (default: ten evaluations), and at step 0 and the end.
      steps_per_call: training steps per device call (default: the largest divisor of ``eval_every`` up to 10
        on CPU, 100 on accelerators). It must divide ``eval_every``.
      strategy: how a device runs its configs: ``"loop"`` (one device call per config, or per ``chunk_size``
        configs, for ``steps_per_call`` steps; the host loops over them), ``"vmap"`` (all at once), ``"map"``
        (``lax.map`` inside one call) or ``"auto"`` (loop on CPU, vmap elsewhere; ``result.settings`` says why).
      chunk_size: at most this many configs per device at once (vmapped within a chunk, looped over chunks):
        bounds memory when the grid does not fit.
      devices: the devices to shard the config axis over (default: all).
      checkpoint_dir: save the whole sweep state here every ``checkpoint_every`` steps and when the process gets
        SIGINT / SIGTERM; calling ``run`` again with the same arguments resumes from it (bit for bit).
      checkpoint_every: steps between checkpoints (default ``10 * steps_per_call``, at least ``eval_every``).
      out_dir: write ``results.json``, ``table.txt`` and the figures here at the end (and the partial results when
        interrupted).
      static, durations: axes to treat as static or as durations whatever their values.
      progress: show a progress bar (tqdm).
      callback: ``callback(step, metrics)`` after every device call, ``metrics[name]`` of shape
        ``[configs, steps_per_call]`` (host NumPy).
      record: values of the optimizer state to record as curves after every update, like ``lr``: names of its
        fields (or dict keys), found anywhere in the state (``record=("num_spikes",)`` for ``adaptive_warmup``;
        configs whose state has no such field read NaN), or a function ``opt_state -> {name: scalar}``.
      keep: ``"best"`` keeps the final parameters (and model state) of the recommended setting's best seed,
        ``"all"`` those of every config (``result.best_params``, ``result.params_of(i)``; ``result.write`` saves
        them with Orbax); ``None`` keeps none.
      plain: numeric axes to pass as they are, skipping the name rules (a ``*warmup*`` axis holding fractions, a
        learning-rate axis refusing negative values).
      compilation_cache: a directory for JAX's persistent compilation cache (set for the whole process): a rerun
        loads its programs instead of compiling them.

    Returns:
      A ``SweepResult``. When interrupted, the partial result (``result.interrupted`` names the signal).

    Raises:
      ValueError: a bad grid, task, argument or directory, before anything compiles.
    """
    wall0 = time.perf_counter()
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
    steps = int(steps)
    if not isinstance(task, Task):
        raise ValueError(f"task must be an optax_warmup.sweep.Task, got {type(task).__name__}")
    task.check()
    if not callable(optimizer):
        raise ValueError(f"optimizer must be a function hp -> GradientTransformation, got {optimizer!r}")
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be a function, got {callback!r}")
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {list(KEEP)}, got {keep!r}")
    calls = Calls(task)
    checkpoint_dir = check_directory("checkpoint_dir", checkpoint_dir)
    out_dir = check_directory("out_dir", out_dir)
    cache_dir = check_directory("compilation_cache", compilation_cache)
    g = grid_lib.build(grid, steps, static=static, durations=durations, plain=plain)
    grid_lib.check_factory(g, optimizer)
    plan = _plan(task, g, steps, eval_every=eval_every, steps_per_call=steps_per_call,
                 checkpoint_every=checkpoint_every, strategy=strategy, chunk_size=chunk_size, devices=devices,
                 record=record)
    source = _init_source(task, plan)
    flops: list[float] = []
    traced = _preflight.check_and_fingerprint(
        grid=g, calls=calls, optimizer=optimizer, host_source=source, seed=int(plan.unique_seeds[0]),
        hyperparams=lambda group, hp: _hyperparams(plan, group, hp),
        train_step=lambda group: _group_step(plan, calls, optimizer, group), fingerprint=checkpoint_dir is not None,
        flops=flops)
    if flops:  # the choice of strategy and of compile options depends on the traced step's work: plan again
        steps_cache = plan.train_steps
        plan = _plan(task, g, steps, eval_every=eval_every, steps_per_call=steps_per_call,
                     checkpoint_every=checkpoint_every, strategy=strategy, chunk_size=chunk_size, devices=devices,
                     record=record, flops=max(flops))
        plan.train_steps.update(steps_cache)
    fingerprint = {**plan.fingerprint(task), **traced}
    saver = _checkpoint.Saver(checkpoint_dir, fingerprint, _preflight.MEANING) if checkpoint_dir else None
    if cache_dir is not None:
        use_compilation_cache(cache_dir)
    return _Runner(task, optimizer, plan, saver, out_dir, progress, callback, wall0, calls=calls, keep=keep,
                   source=source).run()


def use_compilation_cache(directory: str) -> None:
    """JAX's persistent compilation cache in ``directory`` for this process: a program compiled once (here or in an
    earlier run) is loaded instead of compiled again. Programs that compile in under 0.1 s are not stored."""
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_compilation_cache_dir", os.path.abspath(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
    compilation_cache.reset_cache()  # JAX decides at its first compile whether to use the cache: decide again
