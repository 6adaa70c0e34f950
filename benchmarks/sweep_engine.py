"""5. The sweep engine on the digits task: K configurations of (peak, warmup_steps), three ways.

* **engine**: ``optax_warmup.sweep.run`` with its defaults (one compiled program for the grid; on CPU ``lax.map``
  over the configs and 10 steps per device call);
* **engine, 1 step per call**: the same with ``steps_per_call=1`` (dispatch and a host transfer every step);
* **one jit per config**: ``optax_warmup.sweep.sequential.run_sequential`` with Optax's own
  ``warmup_cosine_decay_schedule`` (Python numbers baked in): the way a grid runs with Optax's schedules.

All three train the same models (same initial parameters, same batches) without evaluation: their losses agree to
float rounding over the first steps (training then amplifies rounding at the highest peak LRs); wall = the whole
call from cold caches. Compiles are counted with JAX's own monitoring events (``backend_compile``), the engine's
including its initialisation programs.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np
from jax import monitoring

from optax_warmup import sweep
from optax_warmup.sweep.optimizers import warmup_adamw
from optax_warmup.sweep.sequential import run_sequential

FULL = dict(k=64, steps=200, rounds=1)
QUICK = dict(k=8, steps=20, rounds=1)
_COMPILES: list[str] = []
_LISTENING = False


def _listen() -> None:
    global _LISTENING
    if not _LISTENING:
        monitoring.register_event_duration_secs_listener(
            lambda name, secs, **kw: _COMPILES.append(name) if name.endswith("backend_compile_duration") else None)
        _LISTENING = True


def grid(k: int, steps: int) -> dict:
    """k configs: peaks log-spaced over [1e-3, 1e-1] crossed with warmups 0 to steps / 2 (8 of them at K = 64)."""
    n_warmups = 8 if k >= 64 else 2
    return {"peak_value": [float(v) for v in np.geomspace(1e-3, 1e-1, k // n_warmups)],
            "warmup_steps": [int(w) for w in np.arange(n_warmups) * (steps // 2 // n_warmups)]}


def _timed(fn):
    jax.clear_caches()
    start = len(_COMPILES)
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, len(_COMPILES) - start


def run(quick: bool = False) -> dict:
    from optax_warmup.sweep.tasks.digits import digits

    s = QUICK if quick else FULL
    _listen()
    task = dataclasses.replace(digits(), eval=None)
    axes = grid(s["k"], s["steps"])
    steps = s["steps"]
    k = len(axes["peak_value"]) * len(axes["warmup_steps"])
    engine, engine_s, engine_compiles = _timed(lambda: sweep.run(task, warmup_adamw(steps), steps, axes,
                                                                 progress=False))
    per_step, per_step_s, per_step_compiles = _timed(lambda: sweep.run(task, warmup_adamw(steps), steps, axes,
                                                                       steps_per_call=1, progress=False))
    seq, seq_s, seq_compiles = _timed(lambda: run_sequential(task, warmup_adamw(steps, use_optax=True), steps, axes))
    # The same models: equal to float rounding at first. Training amplifies rounding where it is chaotic (the
    # highest peak LRs), so the last losses are compared by their median difference.
    first = np.abs(engine.curves["loss"][:, :20] - seq["loss"][:, :20]) / np.abs(seq["loss"][:, :20])
    last = np.abs(engine.curves["loss"][:, -1] - seq["loss"][:, -1]) / np.abs(seq["loss"][:, -1])
    config_steps = k * steps
    return {
        "setting": dict(task="digits", k=k, steps=steps, hidden=list(task.info["hidden"]),
                        batch_size=task.info["batch_size"], strategy=engine.settings["strategy"],
                        steps_per_call=engine.settings["steps_per_call"], backend=jax.default_backend(),
                        devices=engine.settings["devices"]),
        "engine": dict(wall_s=engine_s, compiles=engine_compiles, compile_s=engine.timing["compile_s"],
                       train_s=engine.timing["train_s"], config_steps_per_s=config_steps / engine_s,
                       config_steps_per_s_training=config_steps / engine.timing["train_s"]),
        "engine_one_step_per_call": dict(wall_s=per_step_s, compiles=per_step_compiles,
                                         compile_s=per_step.timing["compile_s"], train_s=per_step.timing["train_s"],
                                         config_steps_per_s=config_steps / per_step_s,
                                         config_steps_per_s_training=config_steps / per_step.timing["train_s"]),
        "one_jit_per_config": dict(wall_s=seq_s, compiles=seq_compiles, first_steps_s=seq["first_steps_s"],
                                   config_steps_per_s=config_steps / seq_s,
                                   config_steps_per_s_training=config_steps / max(seq_s - seq["first_steps_s"], 1e-9)),
        "speedup_vs_one_jit_per_config": seq_s / engine_s,
        "speedup_vs_one_step_per_call": per_step_s / engine_s,
        "max_rel_loss_diff_first_20_steps": float(np.nanmax(first)),
        "median_rel_last_loss_diff": float(np.nanmedian(last)),
    }
