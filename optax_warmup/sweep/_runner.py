"""The host loop of a sweep: state on the devices, curves on the host, evaluations, checkpoints, progress."""

from __future__ import annotations

import concurrent.futures
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from optax_warmup.sweep import grid as grid_lib
from optax_warmup.sweep._plan import AXIS, _Plan
from optax_warmup.sweep._programs import (
    _build_call,
    _build_eval,
    _build_init,
    _build_loop_call,
)
from optax_warmup.sweep._task import Calls, Task
from optax_warmup.sweep.result import SweepResult

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
