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
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from optax_warmup.sweep import _checkpoint, _lr, _preflight
from optax_warmup.sweep import grid as grid_lib
from optax_warmup.sweep._task import DATA_FOLD, INIT_FOLD, Calls, Task, float_leaves_finite, loss_key
from optax_warmup.sweep.result import SweepResult

AXIS = "config"
KEEP = (None, "best", "all")
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
        if jax.default_backend() != "cpu":
            return None
        light = self.flops is not None and self.flops < LIGHT_STEP_FLOPS
        return dict(CPU_QUICK_COMPILE) if program == "init" or light else None

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


# ----------------------------------------------------------------------------------------- compiled functions


def _tree_where(cond, new, old):
    return jax.tree.map(lambda n, o: jnp.where(cond, n, o), new, old)


def _loss_with_aux(loss: Callable) -> Callable:
    """``loss(params, batch)`` -> ``(value, aux)`` for a loss without model state or key (the baselines')."""

    def fn(params, batch):
        out = loss(params, batch)
        if isinstance(out, tuple):
            value, aux = out
            return value, dict(aux)
        return out, {}

    return fn


def _hyperparams(plan: _Plan, group: int, hp: Mapping[str, Any]) -> dict[str, Any]:
    """What the factory sees for one config: static values as Python objects, numbers as traced scalars."""
    values = dict(plan.grid.groups[group].static)
    values.update({a: hp[a] for a in plan.grid.numeric})
    if grid_lib.SEED in plan.grid.axes:
        values[grid_lib.SEED] = hp[grid_lib.SEED]
    return {a: values[a] for a in plan.grid.axes}  # in the grid's axis order


def _per_device(plan: _Plan, one: Callable, n_local: int) -> Callable:
    """``one(*xs)`` over the leading (config) axis of ``xs`` on one device: vmap, map, or map over vmapped chunks.

    The loop strategy evaluates with ``lax.map`` (its training loop over configs is on the host)."""
    chunk = plan.chunk_size
    if plan.strategy in ("map", "loop") and chunk is None:
        chunk = 1
    if chunk is None or chunk >= n_local:
        return jax.vmap(one)
    if chunk == 1:
        return lambda *xs: jax.lax.map(lambda x: one(*x), xs)
    return lambda *xs: jax.lax.map(lambda x: one(*x), xs, batch_size=chunk)


def _shard_map(plan: _Plan, local: Callable, in_specs: tuple, out_specs: Any) -> Callable:
    """``local`` on every device's share of the config axis; on one device, ``local`` itself (the same program
    without the partitioner's passes: less to compile for a sweep on one device)."""
    if plan.mesh.devices.size == 1:
        return local
    return jax.shard_map(local, mesh=plan.mesh, in_specs=in_specs, out_specs=out_specs)


def _sharded(plan: _Plan, local: Callable, n_args: int, replicated: Sequence[int] = ()) -> Callable:
    specs = tuple(P() if i in replicated else P(AXIS) for i in range(n_args))
    return _shard_map(plan, local, specs, P(AXIS))


def _seed_key(seed) -> jax.Array:
    return jax.random.key(jnp.asarray(seed).astype(jnp.uint32))


def _build_init(plan: _Plan, calls: Calls, optimizer: Callable) -> Any:
    """(unique seeds or their host params, seed index per group, hp per group) -> the initial state per group.

    One program: the parameters (and model state) of every unique seed (unless the task made them on the host),
    each config's copy of its seed's, its optimizer state, the alive masks.
    """

    def group_init(g: int):
        def one(params, hp):
            with _lr.rate_in_state():
                tx = optimizer(_hyperparams(plan, g, hp))
            return tx.init(params)

        return _sharded(plan, jax.vmap(one), 2)

    inits = [group_init(g) for g in range(len(plan.grid.groups))]

    def sweep_init(source, seed_index, hps):
        if calls.task.host_init:
            unique, unique_state = source, {}  # type: ignore[var-annotated]
        else:
            keys = jax.vmap(lambda s: jax.random.fold_in(_seed_key(s), INIT_FOLD))(source)
            unique, unique_state = jax.vmap(calls.init)(keys)
        states = []
        for f, idx, hp in zip(inits, seed_index, hps, strict=True):
            take = lambda tree, idx=idx: jax.tree.map(lambda a: jnp.take(jnp.asarray(a), idx, axis=0), tree)  # noqa: E731
            params = take(unique)
            n = idx.shape[0]
            state = dict(params=params, opt=f(params, hp), alive=jnp.ones(n, bool),
                         diverged_at=jnp.full(n, -1, jnp.int32))
            if calls.wants_state:
                state["model_state"] = take(unique_state)
            states.append(state)
        return tuple(states)

    return jax.jit(sweep_init, out_shardings=NamedSharding(plan.mesh, P(AXIS)),
                   compiler_options=plan.compiler_options("init"))


def _train_step(plan: _Plan, calls: Calls, optimizer: Callable, g: int) -> Callable:
    """``(carry, hp, batch, step) -> (carry, metrics)``: one training step of one config of group ``g``."""
    total = plan.steps

    def train_step(carry, hp, batch, step):
        params, opt, alive = carry["params"], carry["opt"], carry["alive"]
        model_state = carry.get("model_state", {})
        with _lr.rate_in_state():
            tx = optax.with_extra_args_support(optimizer(_hyperparams(plan, g, hp)))
        key = loss_key(_seed_key(hp[grid_lib.SEED]), step) if calls.wants_key else None
        (loss, (aux, new_model_state)), grads = jax.value_and_grad(calls.loss, has_aux=True)(
            params, model_state, batch, key)
        updates, new_opt = tx.update(grads, opt, params, value=loss)
        new_params = optax.apply_updates(params, updates)
        grad_norm = optax.tree.norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & jnp.isfinite(optax.tree.norm(new_params))
        if calls.wants_state:
            finite = finite & float_leaves_finite(new_model_state)
        active = step < total  # the last call may run past the end: those steps change nothing
        ok = alive & finite
        take = ok & active
        new_carry = dict(params=_tree_where(take, new_params, params), opt=_tree_where(take, new_opt, opt),
                         alive=jnp.where(active, ok, alive),
                         diverged_at=jnp.where(active & alive & ~finite, step, carry["diverged_at"]))
        if calls.wants_state:
            new_carry["model_state"] = _tree_where(take, new_model_state, model_state)
        shown = alive & active
        nan = jnp.float32(jnp.nan)
        metrics = {"loss": loss, "grad_norm": grad_norm, **(_lr.rates(new_opt) or {}), **aux}
        for name, value in _state_values(plan.record, new_opt).items():
            if name in metrics:
                raise ValueError(f"record: {name!r} is already a curve of this sweep; record another field")
            metrics[name] = value
        metrics = {name: jnp.where(shown, jnp.asarray(v, jnp.float32), nan) for name, v in metrics.items()}
        metrics["alive"] = new_carry["alive"]
        return new_carry, metrics

    return train_step


def _group_step(plan: _Plan, calls: Calls, optimizer: Callable, g: int) -> Callable:
    """Group ``g``'s training step, jitted once: the check before compiling traces it, and the training program
    reuses that trace (a nested jit is inlined when the program compiles)."""
    if g not in plan.train_steps:
        plan.train_steps[g] = jax.jit(_train_step(plan, calls, optimizer, g))
    return plan.train_steps[g]


def _steps_of_one(plan: _Plan, calls: Calls, optimizer: Callable, g: int) -> Callable:
    """``(carry, hp, batches, start) -> (carry, metrics [k])``: ``steps_per_call`` steps of one config, its batch
    of each step made from its own seed (device data) or taken from the stacked host batches ``[k, seed, ...]``."""
    train_step = _group_step(plan, calls, optimizer, g)
    make_batch = calls.task.data

    def one(carry, hp, batches, start):
        data_key = jax.random.fold_in(_seed_key(hp[grid_lib.SEED]), DATA_FOLD) if make_batch is not None else None

        def body(carry, k):
            if make_batch is not None:
                batch = make_batch(start + k, data_key)
            else:
                batch = jax.tree.map(lambda b: b[k, hp["_seed_index"]], batches)
            return train_step(carry, hp, batch, start + k)

        return _steps(body, carry, plan.steps_per_call)

    return one


def _steps(body: Callable, carry: Any, k: int):
    """``k`` steps of ``body`` in a ``lax.scan``; one step without a loop (XLA:CPU runs a convolution inside a
    loop several times slower than outside one)."""
    if k == 1:
        carry, metrics = body(carry, jnp.int32(0))
        return carry, jax.tree.map(lambda m: m[None], metrics)
    return jax.lax.scan(body, carry, jnp.arange(k))


def _build_call(plan: _Plan, calls: Calls, optimizer: Callable) -> Any:
    """vmap / map: ``(states, hps, data, start) -> (states, metrics)``: ``steps_per_call`` training steps of every
    config of every group in one program."""
    k_steps = plan.steps_per_call

    # One seed: every config sees the same batches and dropout keys, so under vmap they stay unbatched, and XLA
    # runs one product of the shared input with all configs' weights instead of a batched product per config.
    shared_seed = jnp.int32(int(plan.unique_seeds[0])) if len(plan.unique_seeds) == 1 else None

    def group_call(g: int):
        train_step = _group_step(plan, calls, optimizer, g)

        def one(carry, hp, batches, start):
            if shared_seed is not None:
                hp = {**hp, grid_lib.SEED: shared_seed, "_seed_index": jnp.int32(0)}

            def body(carry, k):
                batch = jax.tree.map(lambda b: b[k, hp["_seed_index"]], batches)
                return train_step(carry, hp, batch, start + k)

            return _steps(body, carry, k_steps)

        n_local = len(plan.padded[g]) // plan.devices

        def local(carry, hp, batches, start):  # batches and start are the same for every config
            return _per_device(plan, lambda c, h: one(c, h, batches, start), n_local)(carry, hp)

        return _shard_map(plan, local, (P(AXIS), P(AXIS), P(), P()), (P(AXIS), P(AXIS)))

    group_calls = [group_call(g) for g in range(len(plan.grid.groups))]
    make_batch = calls.task.data

    def sweep_train(states, hps, data, start):
        if make_batch is not None:  # data = the unique seeds; their batches are made here, on the device
            keys = jax.vmap(lambda s: jax.random.fold_in(_seed_key(s), DATA_FOLD))(data)
            steps = start + jnp.arange(k_steps)
            batches = jax.vmap(lambda s: jax.vmap(lambda key: make_batch(s, key))(keys))(steps)
        else:
            batches = data
        out = [f(st, hp, batches, start) for f, st, hp in zip(group_calls, states, hps, strict=True)]
        return tuple(o[0] for o in out), tuple(o[1] for o in out)

    return jax.jit(sweep_train, donate_argnums=0, compiler_options=plan.compiler_options("train"))


def _build_loop_call(plan: _Plan, calls: Calls, optimizer: Callable, g: int) -> Any:
    """loop: ``(state, hp, data, start, j) -> (state, metrics)``: ``steps_per_call`` steps of the ``j``-th chunk of
    configs (``chunk_size``, default 1) of every device's share of group ``g``, updated in place (the state is
    donated). The host calls it for j = 0, 1, ...: one compiled program for every chunk."""
    chunk = plan.chunk_size or 1
    one = _steps_of_one(plan, calls, optimizer, g)
    run_chunk = one if chunk == 1 else jax.vmap(one, in_axes=(0, 0, None, None))

    def sweep_train(block, hp_block, data, start, j):
        rows = j * chunk

        def cut(a):
            part = jax.lax.dynamic_slice_in_dim(a, rows, chunk, axis=0)
            return part[0] if chunk == 1 else part

        carry, metrics = run_chunk(jax.tree.map(cut, block), jax.tree.map(cut, hp_block), data, start)

        def put(a, c):
            return jax.lax.dynamic_update_slice_in_dim(a, c[None] if chunk == 1 else c, rows, axis=0)

        block = jax.tree.map(put, block, carry)
        metrics = jax.tree.map(lambda m: m[None] if chunk == 1 else m, metrics)  # [chunk, k]
        return block, metrics

    sharded = _shard_map(plan, sweep_train, (P(AXIS), P(AXIS), P(), P(), P()), (P(AXIS), P(AXIS)))
    return jax.jit(sharded, donate_argnums=0, compiler_options=plan.compiler_options("train"))


def _build_eval(plan: _Plan, calls: Calls) -> Any:
    """(params, model state) per group -> {metric: value} per group."""
    if not calls.has_eval:
        return None
    task = calls.task
    if task.eval is not None:
        evaluate = calls.evaluate
    else:
        # a list is a list of batches; anything else (an array, a tuple (x, y), a dict) is one batch
        batches = task.eval_batches if isinstance(task.eval_batches, list) else [task.eval_batches]
        stacked = jax.tree.map(lambda *b: np.stack([np.asarray(x) for x in b]), *batches)
        eval_key = jax.random.key(0)

        def evaluate(params, model_state):
            def one_batch(batch):
                loss, (aux, _) = calls.loss(params, model_state, batch, eval_key)
                return {"loss": loss, **aux}

            out = jax.lax.map(one_batch, stacked)
            return {k: jnp.mean(v).astype(jnp.float32) for k, v in out.items()}

    def group_eval(g: int):
        n_local = len(plan.padded[g]) // plan.devices
        return _sharded(plan, _per_device(plan, evaluate, n_local), 2)

    evals = [group_eval(g) for g in range(len(plan.grid.groups))]
    def sweep_eval(params, states):
        return tuple(f(p, s) for f, p, s in zip(evals, params, states, strict=True))

    return jax.jit(sweep_eval, compiler_options=plan.compiler_options("eval"))


# ------------------------------------------------------------------------------------------------- the state


def _init_source(task: Task, plan: _Plan):
    """What the initialisation program starts from: the unique seeds (uint32), or for a host ``init(seed)`` the
    parameters of each unique seed, stacked on a leading axis."""
    if task.host_init:
        trees = []
        for s in plan.unique_seeds:
            try:
                trees.append(task.init(int(s)))
            except Exception as e:  # noqa: BLE001 - any failure of the user's init gets the rule in one line
                raise ValueError(
                    f"Task.init(seed) failed with the integer seed {int(s)} ({type(e).__name__}: "
                    f"{str(e).splitlines()[0] if str(e) else ''}): a parameter named 'seed' makes init a host "
                    "initialiser that gets the config's integer seed; to get a JAX key, name it key: "
                    "init(key)") from None
        return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)
    return np.asarray(plan.unique_seeds, np.uint32)


def _hp_arrays(plan: _Plan, g: int) -> dict[str, np.ndarray]:
    idx = plan.padded[g]
    grid = plan.grid
    hp = {a: np.asarray([grid.configs[i][a] for i in idx], grid.dtype(a)) for a in grid.numeric}
    hp[grid_lib.SEED] = grid.seeds[idx].astype(np.int32)
    hp["_seed_index"] = np.searchsorted(plan.unique_seeds, grid.seeds[idx]).astype(np.int32)
    return hp


def _to_host(tree):
    """Device arrays -> NumPy; with several processes, gathered from all of them first."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


class _HostBatches:
    """``steps_per_call`` batches of every unique seed, stacked ``[k, seed, ...]``, from the task's host streams."""

    def __init__(self, batches: Callable[[int], Iterable], seeds: np.ndarray, skip: int):
        self.streams: list[Iterator] = [iter(batches(int(s))) for s in seeds]
        self.last: list[Any] = [None] * len(seeds)
        for _ in range(skip):
            self._next()

    def _next(self) -> list:
        for i, stream in enumerate(self.streams):
            try:
                self.last[i] = next(stream)
            except StopIteration:
                if self.last[i] is None:
                    raise ValueError("Task.batches(seed) yielded no batch") from None
        return list(self.last)

    def take(self, k: int, available: int):
        """``k`` steps; past ``available`` the last batch repeats (those steps are masked out)."""
        rows = [self._next() if j < available else list(self.last) for j in range(k)]
        per_step = [jax.tree.map(lambda *b: np.stack([np.asarray(x) for x in b]), *row) for row in rows]
        return jax.tree.map(lambda *b: np.stack(b), *per_step)


# --------------------------------------------------------------------------------------------------- signals


class _Interrupt:
    """SIGINT / SIGTERM during a run: finish the current device call, save, return. A second one stops at once."""

    def __init__(self):
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal is not None:  # asked twice: stop now
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False

    @property
    def name(self) -> str | None:
        return None if self.signal is None else signal.Signals(self.signal).name


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


def _eval_args(states) -> tuple[tuple, tuple]:
    """(params per group, model state per group ({} without)) for the evaluation program."""
    return tuple(s["params"] for s in states), tuple(s.get("model_state", {}) for s in states)


class _Training:
    """``(states, hps, data, start) -> (states, metrics)`` and ``to_host(metrics)``: per group
    ``{name: [padded configs, k]}`` on the host."""

    def __call__(self, states, hps, data, start):  # pragma: no cover - an interface
        raise NotImplementedError

    def to_host(self, metrics) -> list[dict[str, np.ndarray]]:  # pragma: no cover
        raise NotImplementedError


class _BatchedTraining(_Training):
    """vmap / map: every config of every group in one device call."""

    def __init__(self, executable):
        self.executable = executable

    def __call__(self, states, hps, data, start):
        return self.executable(states, hps, data, start)

    def to_host(self, metrics):
        return list(_to_host(metrics))


class _LoopTraining(_Training):
    """loop: per group, one device call per chunk of configs (the same compiled program for every chunk), all
    dispatched before any result is read back."""

    def __init__(self, plan: _Plan, executables: list):
        self.plan, self.executables = plan, executables
        self.chunk = plan.chunk_size or 1

    def __call__(self, states, hps, data, start):
        new_states, metrics = [], []
        for g, (run_chunk, state, hp) in enumerate(zip(self.executables, states, hps, strict=True)):
            n_chunks = len(self.plan.padded[g]) // self.plan.devices // self.chunk
            parts = []
            for j in range(n_chunks):
                state, m = run_chunk(state, hp, data, start, jnp.int32(j))
                parts.append(m)
            new_states.append(state)
            metrics.append(parts)
        return tuple(new_states), metrics

    def to_host(self, metrics):
        """Chunk j of device d holds the configs ``d * n_local + j * chunk + (0 .. chunk-1)`` of its group."""
        out = []
        n_dev, c = self.plan.devices, self.chunk
        for parts in _to_host(metrics):
            group = {}
            for name in parts[0]:
                a = np.stack([np.asarray(p[name]) for p in parts])  # [chunks, devices * chunk, k]
                a = a.reshape(len(parts), n_dev, c, -1).transpose(1, 0, 2, 3)
                group[name] = a.reshape(n_dev * len(parts) * c, -1)
            out.append(group)
        return out


class _Runner:
    """The host loop of one ``run``: state on the devices, curves on the host."""

    def __init__(self, task, optimizer, plan: _Plan, saver, out_dir, progress, callback, wall0, calls=None,
                 keep=None, source=None):
        self.task, self.optimizer, self.plan = task, optimizer, plan
        self.calls = calls if calls is not None else Calls(task)
        self.keep, self.source = keep, source
        self.saver, self.out_dir, self.progress, self.callback = saver, out_dir, progress, callback
        self.wall0 = wall0
        self.timing: dict[str, Any] = dict(init_s=0.0, compile_s=0.0, train_s=0.0, eval_s=0.0, checkpoint_s=0.0)
        n = len(plan.grid)
        self.curves: dict[str, np.ndarray] = {}
        self.alive_curve = np.ones((n, plan.steps), bool)
        self.eval: dict[str, np.ndarray] = {}
        self.eval_done: list[int] = []
        self.diverged_at = np.full(n, -1, np.int64)
        self.step = 0
        self.best_loss = float("inf")

    # -- recording -------------------------------------------------------------------------------------------

    def _record(self, metrics, start: int) -> dict[str, np.ndarray]:
        """Per-group metrics [padded configs, k] -> the host curves [configs, steps]; returns this call's metrics
        in grid order."""
        plan = self.plan
        n, k = len(plan.grid), plan.steps_per_call
        stop = min(start + k, plan.steps)
        call: dict[str, np.ndarray] = {}
        for g, m in enumerate(metrics):
            real = plan.grid.groups[g].index
            for name, values in m.items():
                values = np.asarray(values)[: len(real), : stop - start]
                if name == "alive":
                    self.alive_curve[real, start:stop] = values
                    continue
                if name not in self.curves:
                    self.curves[name] = np.full((n, plan.steps), np.nan, np.float32)
                self.curves[name][real, start:stop] = values
                call.setdefault(name, np.full((n, k), np.nan, np.float32))[real, : stop - start] = values
        return call

    def _evaluate(self, eval_exec, states, step: int) -> None:
        if eval_exec is None or step not in self.plan.eval_steps or step in self.eval_done:
            return
        t0 = time.perf_counter()
        out = _to_host(eval_exec(*_eval_args(states)))
        n, j = len(self.plan.grid), self.plan.eval_steps.index(step)
        for g, metrics in enumerate(out):
            real = self.plan.grid.groups[g].index
            for name, values in metrics.items():
                if name not in self.eval:
                    self.eval[name] = np.full((n, len(self.plan.eval_steps)), np.nan, np.float32)
                values = np.asarray(values)[: len(real)]
                dead = self.diverged_at[real] >= 0
                self.eval[name][real, j] = np.where(dead, np.nan, values)
        self.eval_done.append(step)
        self.timing["eval_s"] += time.perf_counter() - t0

    def _sync_divergence(self, states) -> None:
        for g, s in enumerate(states):
            real = self.plan.grid.groups[g].index
            self.diverged_at[real] = np.asarray(_to_host(s["diverged_at"]))[: len(real)]

    # -- the loop --------------------------------------------------------------------------------------------

    def run(self) -> SweepResult:
        plan, task = self.plan, self.task
        shard = NamedSharding(plan.mesh, P(AXIS))
        hps = [_hp_arrays(plan, g) for g in range(len(plan.grid.groups))]
        seed_index = tuple(hp["_seed_index"] for hp in hps)
        self.hps = tuple(jax.device_put(hp, shard) for hp in hps)
        init_fn = _build_init(plan, self.calls, self.optimizer)
        source = self.source if self.source is not None else _init_source(task, plan)
        # The state's shapes, without computing it: the training program compiles from them while the initial
        # state is computed (two compiles at once on two cores), or they guide a checkpoint's restore.
        abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=shard),
                                jax.eval_shape(init_fn, source, seed_index, self.hps))
        restored = self.saver.restore(abstract) if self.saver else None
        states = None
        if restored is not None:
            states, host = restored
            self._load_host(host)
        replicated = NamedSharding(plan.mesh, P())
        host_batches = None
        if task.batches is not None:
            host_batches = _HostBatches(task.batches, plan.unique_seeds, skip=self.step)
            data_arg = jax.device_put(host_batches.take(plan.steps_per_call, plan.steps - self.step), replicated)
        else:
            data_arg = jax.device_put(np.asarray(plan.unique_seeds, np.uint32), replicated)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            compiled = pool.submit(self._compile, abstract, data_arg)
            if states is None:
                t0 = time.perf_counter()
                states = init_fn(source, seed_index, self.hps)
                jax.block_until_ready(states)
                self.timing["init_s"] = time.perf_counter() - t0
            train, eval_exec = compiled.result()
        self._evaluate(eval_exec, states, self.step)

        bar = _progress_bar(plan.steps, self.step, self.progress and jax.process_index() == 0, task.name)
        last_saved = self.step
        with _Interrupt() as interrupt:
            while self.step < plan.steps and interrupt.signal is None:
                start, k = self.step, plan.steps_per_call
                t0 = time.perf_counter()
                states, metrics = train(states, self.hps, data_arg, jnp.int32(start))
                if host_batches is not None and start + k < plan.steps:  # the next call's batches, while this runs
                    data_arg = jax.device_put(host_batches.take(k, plan.steps - start - k), replicated)
                metrics = train.to_host(metrics)
                self.timing["train_s"] += time.perf_counter() - t0
                self.step = min(start + k, plan.steps)
                call = self._record(metrics, start)
                self._sync_divergence(states)
                self._evaluate(eval_exec, states, self.step)
                if bar is not None:
                    _update_bar(bar, self, call)
                if self.callback is not None:
                    self.callback(self.step, call)
                due = self.step - last_saved >= plan.checkpoint_every or interrupt.signal is not None
                if self.saver is not None and (due or self.step == plan.steps):
                    self._save(states)
                    last_saved = self.step
            interrupted = interrupt.name if self.step < plan.steps else None
        if bar is not None:
            bar.close()
        result = self._result(interrupted)
        if self.keep is not None:
            result.kept = self._kept(states, result)
        if self.out_dir is not None and jax.process_index() == 0:
            result.write(self.out_dir)
        if interrupted:
            _say(result.interruption_message(self.out_dir, self.saver.directory if self.saver else None))
        return result

    def _compile(self, abstract, data_arg):
        """The training program(s) and the evaluation program, compiled from the state's shapes."""
        t0 = time.perf_counter()
        plan, start = self.plan, jnp.int32(self.step)
        if plan.strategy == "loop":
            execs = [_build_loop_call(plan, self.calls, self.optimizer, g).lower(
                st, hp, data_arg, start, jnp.int32(0)).compile() for g, (st, hp) in enumerate(
                    zip(abstract, self.hps, strict=True))]
            train: _Training = _LoopTraining(plan, execs)
        else:
            train = _BatchedTraining(_build_call(plan, self.calls, self.optimizer).lower(
                abstract, self.hps, data_arg, start).compile())
        self.timing["compile_s"] = time.perf_counter() - t0
        eval_fn = _build_eval(plan, self.calls)
        eval_exec = None
        if eval_fn is not None:
            t0 = time.perf_counter()
            eval_exec = eval_fn.lower(*_eval_args(abstract)).compile()
            self.timing["eval_compile_s"] = time.perf_counter() - t0
        return train, eval_exec

    def _kept(self, states, result: SweepResult) -> dict[str, Any]:
        """The final parameters (and model state) of the recommended setting's best seed (``keep="best"``) or of
        every config (``"all"``), on the host, stacked over the kept configs in grid order."""
        if self.keep == "all":
            index = list(range(len(self.plan.grid)))
        else:
            best = result.recommended_config()
            if best is None:
                return dict(index=[], params=None, model_state=None)
            index = [best]
        trees: dict[str, list[tuple[int, Any]]] = {"params": [], "model_state": []}
        for g, state in enumerate(states):
            wanted = [i for i in index if i in set(self.plan.grid.groups[g].index.tolist())]
            if not wanted:
                continue
            rows = [int(np.flatnonzero(self.plan.padded[g] == i)[0]) for i in wanted]
            host = _to_host({"params": state["params"], "model_state": state.get("model_state", {})})
            for name in trees:
                trees[name] += [(i, jax.tree.map(lambda a, r=r: np.asarray(a)[r], host[name]))
                                for i, r in zip(wanted, rows, strict=True)]
        out: dict[str, Any] = dict(index=index)
        for name, pairs in trees.items():
            pairs.sort(key=lambda p: p[0])
            out[name] = jax.tree.map(lambda *xs: np.stack(xs), *[t for _, t in pairs])
        if not self.calls.wants_state:
            out["model_state"] = None
        return out

    def _save(self, states) -> None:
        t0 = time.perf_counter()
        self.saver.save(self.step, states, self._host_state())
        self.timing["checkpoint_s"] += time.perf_counter() - t0

    def _host_state(self) -> dict:
        return dict(step=np.int64(self.step), curves=dict(self.curves), eval=dict(self.eval),
                    alive=self.alive_curve, diverged_at=self.diverged_at,
                    eval_done=np.asarray(self.eval_done, np.int64))

    def _load_host(self, host: Mapping[str, Any]) -> None:
        self.step = int(host["step"])
        self.curves = {k: np.asarray(v) for k, v in host["curves"].items()}
        self.eval = {k: np.asarray(v) for k, v in host["eval"].items()}
        self.alive_curve = np.asarray(host["alive"])
        self.diverged_at = np.asarray(host["diverged_at"])
        self.eval_done = [int(s) for s in np.asarray(host["eval_done"])]

    def _result(self, interrupted: str | None) -> SweepResult:
        plan = self.plan
        self.timing["total_s"] = time.perf_counter() - self.wall0
        self.timing["strategy"] = plan.strategy
        self.timing["strategy_reason"] = plan.strategy_reason
        done = self.step
        self.timing["step_s"] = self.timing["train_s"] / max(1, done)
        evals = [s for s in plan.eval_steps if s in self.eval_done]
        cols = [plan.eval_steps.index(s) for s in evals]
        return SweepResult(
            configs=[dict(c) for c in plan.grid.configs],
            given=[dict(c) for c in plan.grid.given],
            axes={k: list(v) for k, v in plan.grid.axes.items()},
            durations=list(plan.grid.durations),
            steps=plan.steps,
            completed_steps=done,
            curves={k: v[:, :done].copy() for k, v in self.curves.items()},
            alive=self.alive_curve[:, :done].copy(),
            eval_steps=evals,
            eval={k: v[:, cols].copy() for k, v in self.eval.items()},
            diverged_step=self.diverged_at.copy(),
            task=dict(name=self.task.name, baseline_loss=self.task.baseline_loss, **dict(self.task.info)),
            settings=dict(steps_per_call=plan.steps_per_call, strategy=plan.strategy,
                          strategy_reason=plan.strategy_reason, chunk_size=plan.chunk_size,
                          devices=plan.devices, backend=jax.default_backend(), processes=jax.process_count(),
                          eval_steps=plan.eval_steps),
            timing=dict(self.timing),
            interrupted=interrupted,
        )


def _say(message: str) -> None:
    if jax.process_index() == 0:
        print(message, flush=True)


def _progress_bar(total: int, initial: int, enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True)


def _update_bar(bar, runner: _Runner, call: Mapping[str, np.ndarray]) -> None:
    """steps/s (tqdm's own), configs alive, the best training loss so far, config-steps per second."""
    n = len(runner.plan.grid)
    loss = call.get("loss")
    if loss is not None and np.isfinite(loss).any():
        runner.best_loss = min(runner.best_loss, float(np.nanmin(loss)))
    alive = int((runner.diverged_at < 0).sum())
    rate = n * runner.step / max(runner.timing["train_s"], 1e-9)
    bar.set_postfix(alive=f"{alive}/{n}", best_loss=f"{runner.best_loss:.3f}", cfg_steps_s=f"{rate:.0f}",
                    refresh=False)
    bar.update(runner.step - bar.n)
