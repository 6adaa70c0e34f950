"""The plan of a sweep: everything fixed before it compiles (strategy, steps per call, padding, devices)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from optax_warmup.sweep import grid as grid_lib
from optax_warmup.sweep._task import Task

AXIS = "config"
STRATEGIES = ("auto", "loop", "vmap", "map")


# --------------------------------------------------------------------------------------------------- the plan


@dataclass
class _Plan:
    """Everything about a run that is fixed before it compiles."""

    steps: int
    steps_per_call: int
    eval_steps: list[int]
    checkpoint_every: int
    strategy: str
    chunk_size: int | None
    mesh: Mesh
    grid: grid_lib.Grid
    unique_seeds: np.ndarray
    padded: list[np.ndarray]  # per group: grid indices of its (padded) configs
    record: tuple[str, ...] | Callable[[Any], Mapping[str, Any]] = ()  # optimizer-state values to record
    strategy_reason: str = ""
    train_steps: dict[int, Callable] = field(default_factory=dict)  # per group, jitted: traced once, reused
    flops: float | None = None  # of one config-step, counted in the traced step (None: not known)

    def compiler_options(self, program: str) -> dict | None:
        """XLA options for one of the run's programs (``init``, ``train``, ``eval``); see ``CPU_QUICK_COMPILE``."""
        return compiler_options_for(self.flops, runs_once=program == "init")

    @property
    def devices(self) -> int:
        return int(self.mesh.devices.size)

    def fingerprint(self, task: Task) -> dict:
        """What must match for a checkpoint to be resumed."""
        return dict(task=task.name, steps=self.steps, steps_per_call=self.steps_per_call, devices=self.devices,
                    strategy=self.strategy, chunk_size=self.chunk_size, eval_steps=self.eval_steps,
                    record=_record_name(self.record),
                    configs=[{k: _jsonable_value(v) for k, v in c.items()} for c in self.grid.configs])


def _record_name(record) -> list[str] | str:
    return list(record) if isinstance(record, tuple) else getattr(record, "__qualname__", repr(record))


def _check_record(record) -> tuple[str, ...] | Callable:
    """``record=``: a function ``opt_state -> {name: scalar}``, or names of fields of the optimizer state."""
    if callable(record):
        return record
    if isinstance(record, str):
        record = [record]
    try:
        names = tuple(record)
    except TypeError:
        raise ValueError(f"record must be names of optimizer-state fields or a function opt_state -> "
                         f"{{name: scalar}}, got {record!r}") from None
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"record: names must be non-empty strings, got {name!r}")
        if name in _RESERVED or name.startswith("lr/"):
            raise ValueError(f"record: {name!r} is already a curve of every sweep; record another field")
    return names


_RESERVED = ("loss", "grad_norm", "lr", "alive")


def _state_values(record, opt_state) -> dict[str, jax.Array]:
    """The values ``record`` asks for in one config's optimizer state, as float32 scalars.

    A name is looked up as a field (or dict key) anywhere in the state (``optax.tree.get``); a state without it
    records nothing for it (its curve reads NaN for those configs), one with several raises.
    """
    if callable(record):
        values = dict(record(opt_state))
    else:
        values = {}
        for name in record:
            found = optax.tree.get_all_with_path(opt_state, name)
            if len(found) > 1:
                raise ValueError(f"record: the optimizer state has {len(found)} fields named {name!r}; pass a "
                                 "function opt_state -> {name: value} that picks one")
            if found:
                values[name] = found[0][1]
    out = {}
    for name, value in values.items():
        leaves = jax.tree.leaves(value)
        if len(leaves) != 1 or jnp.shape(leaves[0]) != ():
            raise ValueError(f"record: {name!r} must be a number of the state, got {jax.tree.map(jnp.shape, value)}")
        out[name] = jnp.asarray(leaves[0]).astype(jnp.float32)
    return out


def _jsonable_value(v: Any) -> Any:
    return v if isinstance(v, bool | int | float | str) or v is None else repr(v)


def resolve_strategy(strategy: str) -> str:
    """``auto`` is ``loop`` on CPU and ``vmap`` elsewhere (see ``strategy_reason``)."""
    return _choose_strategy(strategy)[0]


LIGHT_STEP_FLOPS = 50e6  # below: vmap on CPU; above: loop (benchmarks/sweep_execution.py, section 7)


# On CPU the programs of a light step (and every run's initialisation, which runs once) are compiled with LLVM at
# optimisation level 1 instead of XLA's default: in benchmarks/sweep_execution.py that cut the compile time of the
# MLP's and the CNN's programs by 10-60% (initialisation 0.95 -> 0.47 s) with the same training time and the same
# losses bit for bit; for the Transformer LM's heavy step it made training 1-2% slower, so heavy steps keep the
# default.
CPU_QUICK_COMPILE = {"xla_backend_optimization_level": 1}


def compiler_options_for(flops: float | None, *, runs_once: bool = False) -> dict | None:
    """XLA's options for a program whose work per config-step is ``flops`` (``None``: not known): on CPU, one that
    runs once (the initialisation) or a light one compiles at ``CPU_QUICK_COMPILE``; XLA's defaults otherwise."""
    if jax.default_backend() != "cpu":
        return None
    if runs_once or (flops is not None and flops < LIGHT_STEP_FLOPS):
        return dict(CPU_QUICK_COMPILE)
    return None


def _choose_strategy(strategy: str, flops: float | None = None) -> tuple[str, str]:
    """The strategy and why.

    ``auto`` on accelerators is ``vmap``: one batched program keeps the device busy. On CPU it depends on the work
    of one config-step (``flops``, counted in the traced step's matrix products and convolutions): below
    ``LIGHT_STEP_FLOPS`` the configs of a device are batched (``vmap``, one step per call: the fixed cost of a call
    and of each small kernel is shared by all configs), above it each config runs on its own (``loop``: XLA:CPU's
    kernels for one model beat its batched ones). In benchmarks/sweep_execution.py (section 7 of RESULTS.md) the
    engine ran the MLP and the CNN (3-5 MFLOP per config-step) 3-37% faster vmapped than looped, and a vmapped
    step of the Transformer LM (about 380 MFLOP) was 19-27% slower than a loop.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {list(STRATEGIES)}, got {strategy!r}")
    if strategy != "auto":
        return strategy, "asked for"
    if jax.default_backend() != "cpu":
        return "vmap", f"auto on {jax.default_backend()}: all configs of a device batched in one program"
    if flops is None:
        return "loop", "auto on CPU: one device call per config (the step's work is not known)"
    limit = LIGHT_STEP_FLOPS / 1e6
    if flops < LIGHT_STEP_FLOPS:
        return "vmap", (f"auto on CPU: a light step ({flops / 1e6:.1f} MFLOP per config-step, under {limit:.0f}): "
                        "the configs of a device batched, one step per call")
    return "loop", (f"auto on CPU: a heavy step ({flops / 1e6:.0f} MFLOP per config-step, over {limit:.0f}): one "
                    "device call per config")


def _positive_int(name: str, value: Any, *, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


def _default_steps_per_call(eval_every: int) -> int:
    """The largest divisor of ``eval_every`` up to 10 on CPU (a live progress bar) or 100 on accelerators."""
    cap = 10 if jax.default_backend() == "cpu" else 100
    return max(d for d in range(1, min(cap, eval_every) + 1) if eval_every % d == 0)


def _plan(task: Task, grid: grid_lib.Grid, steps: int, *, eval_every, steps_per_call, checkpoint_every, strategy,
          chunk_size, devices, record=(), flops: float | None = None) -> _Plan:
    eval_every = _positive_int("eval_every", eval_every) or max(1, steps // 10)
    strategy, reason = _choose_strategy(strategy, flops)
    k = _positive_int("steps_per_call", steps_per_call)
    if k is None:  # vmap on CPU: one step per call (XLA:CPU runs a convolution in a loop several times slower)
        k = 1 if strategy == "vmap" and jax.default_backend() == "cpu" else _default_steps_per_call(eval_every)
    if eval_every % k:
        raise ValueError(f"steps_per_call ({k}) must divide eval_every ({eval_every}): evaluations happen between "
                         "device calls")
    checkpoint_every = _positive_int("checkpoint_every", checkpoint_every) or max(k, 10 * k, eval_every)
    checkpoint_every = math.ceil(checkpoint_every / k) * k
    chunk_size = _positive_int("chunk_size", chunk_size)
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices: give at least one device")
    mesh = Mesh(np.asarray(devices), (AXIS,))
    n_dev = len(devices)
    # The loop strategy runs chunk_size configs per device call (one by default), so each device's share is padded
    # to a multiple of it; the padding repeats the group's last config and is never reported.
    unit = n_dev * (chunk_size or 1) if strategy == "loop" else n_dev
    padded = []
    for g in grid.groups:
        n = math.ceil(len(g.index) / unit) * unit
        padded.append(np.concatenate([g.index, np.repeat(g.index[-1:], n - len(g.index))]))
    eval_steps = sorted({0, *range(eval_every, steps, eval_every), steps})
    return _Plan(steps=steps, steps_per_call=k, eval_steps=eval_steps, checkpoint_every=checkpoint_every,
                 strategy=strategy, chunk_size=chunk_size, mesh=mesh, grid=grid,
                 unique_seeds=np.unique(grid.seeds), padded=padded, record=_check_record(record),
                 strategy_reason=reason, flops=flops)


def check_directory(name: str, path: str | os.PathLike | None) -> str | None:
    """Refuses an unusable output or checkpoint directory before anything trains: it must be (or become) a
    writable directory."""
    if path is None:
        return None
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{name}: {path!r} exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write-test-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise ValueError(f"{name}: cannot write to {path!r} ({e.strerror or e})") from None
    return path
