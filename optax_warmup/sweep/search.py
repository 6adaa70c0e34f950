"""Adaptive search in one compiled program: ``slots`` configs train at once; when one is stopped or finishes, its
slot starts the next config inside the same program, without recompiling.

Since every hyperparameter is a traced array, a slot's config is just data: the compiled call takes, per slot, the
hyperparameter values, the seed, a ``reset`` flag and a ``target`` step. A reset slot recomputes its parameters
(and model state) from its seed (``task.init(fold_in(key(seed), 0))``, the engine's key rule), a fresh optimizer
state and a step counter at 0, then trains up to ``steps_per_call`` steps, each slot on its own counter (its batch
is ``task.data(step, fold_in(key(seed), 1))``, its loss's ``key`` ``fold_in(fold_in(key(seed), 2), step)``),
stopping at ``target``. Every loss call goes through the engine's task adapter (``_task.Calls``), so a task with
model state or dropout keys trains in a slot exactly as in ``run()``. The host decides between calls:

* **proposals**: quasi-random (scipy's scrambled Sobol sequence) or any Optuna sampler through ask/tell;
* **stopping**: ``"random"`` trains every config to the end; ``"asha"`` (asynchronous successive halving, Li et
  al. 2020) stops a config at a rung (``steps / eta**k`` steps) unless its loss there is in the top ``1/eta`` of
  the losses recorded at that rung so far (the first to arrive always continues, as in Optuna's
  ``SuccessiveHalvingPruner``); ``"hyperband"`` assigns configs in turn to brackets that start at later and later
  rungs, the last one never stopping early (asynchronous Hyperband);
* a config whose loss, gradients or parameters are not finite frees its slot at the end of that call.

A task that makes its parameters or batches on the host (``init(seed)``, ``batches(seed)``) works too: every search
config trains on the same seed, so its parameters are made once and the first ``steps`` batches of its stream are
drawn once and kept on the device (memory: ``steps`` batches), each slot reading its own step.

The loss a config is ranked by is its mean training loss over the last 10% of the steps it ran (the convention
of ``SweepResult.train_loss``). The top ``confirm_top`` configs that ran to the end are then trained again in
full on ``confirm_seeds`` fresh seeds (``seed + 1, seed + 2, ...``; the search trains every config on ``seed``,
common random numbers, so configs differ only by their values), all in one ``run()`` program; the answer is the
best by confirmed mean final loss (the task's evaluation when it has one), with its t-interval and a paired
comparison with the runner-up (``optax_warmup.sweep.stats``).

Compiles: one training program per static group for the whole search, plus the confirmation's (``run()``: its
initialisation and training programs, and its evaluation when the task evaluates).
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from optax_warmup.sweep import _checkpoint, _lr, _preflight, stats
from optax_warmup.sweep import _plan as plan_lib
from optax_warmup.sweep import engine as engine_lib
from optax_warmup.sweep import grid as grid_lib
from optax_warmup.sweep import space as space_lib
from optax_warmup.sweep._programs import guarded_update
from optax_warmup.sweep._task import DATA_FOLD, INIT_FOLD, Calls
from optax_warmup.sweep.result import LATE_FRACTION, SweepResult

METHODS = ("random", "asha", "hyperband")
FORMAT = "optax_warmup.search/1"


# ------------------------------------------------------------------------------------------------ the loss


def late_mean(losses: Sequence[float]) -> float:
    """The value a config is ranked by after ``len(losses)`` steps: the mean of the last 10% of them (at least
    one); ``inf`` if any of those is not finite."""
    x = np.asarray(losses, np.float64)
    if x.size == 0:
        return math.inf
    tail = x[-max(1, int(round(LATE_FRACTION * x.size))):]
    return float(np.mean(tail)) if np.all(np.isfinite(tail)) else math.inf


# ------------------------------------------------------------------------------------------------ proposals


class _Sobol:
    """Quasi-random proposals: points of a scrambled Sobol sequence (scipy.stats.qmc), in order."""

    name = "sobol"

    def __init__(self, space: space_lib.Space, seed: int):
        qmc = _require("scipy.stats.qmc")
        self.space, self.engine = space, qmc.Sobol(len(space.axes), scramble=True, seed=seed)
        self.points = np.zeros((0, len(space.axes)))
        self.asked = 0

    def ask(self) -> tuple[int, dict]:
        import warnings

        if self.asked >= len(self.points):
            with warnings.catch_warnings():  # balance warnings: blocks of 1024 keep it balanced
                warnings.simplefilter("ignore")
                block = self.engine.random(1024)
            self.points = np.concatenate([self.points, block])
        u = self.points[self.asked]
        self.asked += 1
        return self.asked - 1, self.space.from_unit(u)

    def report(self, number: int, step: int, value: float) -> None:
        pass

    def tell(self, number: int, value: float | None, state: str) -> None:
        pass

    def replay(self, log: list) -> None:
        for _ in range(sum(1 for e in log if e[0] == "ask")):
            self.ask()


class _Optuna:
    """Proposals from an Optuna sampler through ask/tell; every call is logged so a resumed search replays them
    into a fresh copy of the sampler and continues bit for bit."""

    def __init__(self, space: space_lib.Space, sampler: Any):
        optuna = _require("optuna")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna, self.space = optuna, space
        self.name = type(sampler).__name__
        self.study = optuna.create_study(direction="minimize", sampler=copy.deepcopy(sampler))
        self.distributions = {a: d.optuna() for a, d in space.axes.items()}
        self.trials: dict[int, Any] = {}
        self.log: list[list] = []

    def ask(self) -> tuple[int, dict]:
        trial = self.study.ask(self.distributions)
        self.trials[trial.number] = trial
        self.log.append(["ask", trial.number])
        return trial.number, {a: trial.params[a] for a in self.space.axes}

    def report(self, number: int, step: int, value: float) -> None:
        self.trials[number].report(float(value), int(step))
        self.log.append(["report", number, int(step), float(value)])

    def tell(self, number: int, value: float | None, state: str) -> None:
        states = self.optuna.trial.TrialState
        if state == "complete" and value is not None and math.isfinite(value):
            self.study.tell(self.trials.pop(number), float(value))
        else:  # stopped early or diverged: pruned at its last report (a diverged config reports inf)
            self.study.tell(self.trials.pop(number), state=states.PRUNED)
        self.log.append(["tell", number, value, state])

    def replay(self, log: list) -> None:
        for event in log:
            if event[0] == "ask":
                number, _ = self.ask()
                if number != event[1]:
                    raise RuntimeError("resume: the sampler does not replay its proposals (is it seeded?)")
            elif event[0] == "report":
                self.report(*event[1:])
            else:
                self.tell(*event[1:])


def _require(module: str):
    from optax_warmup._extras import require

    return require(module, "search", "sweep.search")


# ------------------------------------------------------------------------------------------------ stopping


def _longest_warmup(sp: space_lib.Space) -> int:
    """The longest warmup the space can propose, in steps: the largest value of a duration axis whose name has
    ``warmup`` in it (0 when there is none)."""
    longest = 0
    for a in sp.durations:
        if "warmup" in a:
            longest = max(longest, *(int(sp.resolve({a: v})[a]) for v in sp.axes[a].corners()))
    return longest


@dataclass
class Rungs:
    """When a config may be stopped and whether it is (the ASHA rule), per bracket.

    ``rungs`` are the steps ``ceil(steps / eta**k)`` for ``k = 1, 2, ...`` down to ``min_steps``, ascending. The
    default ``min_steps`` is ``steps / eta**3`` (three rungs), raised to the space's longest warmup (at most to
    ``steps / eta``, one rung): a rung before a config's warmup has ended compares it, still at a fraction of its
    rate, with configs already at their peak, and stops the long warmups that win later (the short-horizon bias
    of Wu et al. 2018). Bracket
    ``b`` of Hyperband uses ``rungs[b:]``; ``"asha"`` has one bracket (all rungs), ``"random"`` none.
    """

    steps: int
    eta: int
    rungs: list[int]
    brackets: int
    values: dict[str, list[float]] = field(default_factory=dict)  # "bracket/rung" -> values in order of arrival

    @classmethod
    def make(cls, method: str, steps: int, eta: int, min_steps: int | None, longest_warmup: int = 0) -> Rungs:
        if method == "random":
            return cls(steps, eta, [], 1)
        if min_steps is not None:
            low = min_steps
        else:  # three rungs, none before the longest warmup has ended (keeping at least the rung at steps / eta)
            low = max(math.ceil(steps / eta**3), min(int(longest_warmup), math.ceil(steps / eta)))
        rungs, k = [], 1
        while eta**k <= steps and math.ceil(steps / eta**k) >= low:
            rungs.append(math.ceil(steps / eta**k))
            k += 1
        rungs = sorted(set(r for r in rungs if 0 < r < steps))
        return cls(steps, eta, rungs, len(rungs) + 1 if method == "hyperband" else 1)

    def bracket_of(self, number: int) -> int:
        return number % self.brackets

    def next_target(self, bracket: int, step: int) -> int:
        return next((r for r in self.rungs[bracket:] if r > step), self.steps)

    def promote(self, bracket: int, rung: int, value: float) -> bool:
        """Records ``value`` at ``rung`` and says whether the config goes on: it must be no worse than the
        ``max(1, n // eta)``-th best of the ``n`` values recorded there (its own included)."""
        seen = self.values.setdefault(f"{bracket}/{rung}", [])
        seen.append(float(value))
        if not math.isfinite(value):
            return False
        kth = sorted(seen)[max(1, len(seen) // self.eta) - 1]
        return value <= kth


# ------------------------------------------------------------------------------------------------ the program


@dataclass
class _SlotPlan:
    """What ``engine._per_device`` and ``engine._sharded`` read."""

    strategy: str
    chunk_size: int | None
    mesh: Mesh


def _fresh_slot(calls: Calls, tx, seed_key: jax.Array, host_params) -> dict:
    """A slot's state for a config starting with seed key ``seed_key``: its params and model state from one
    ``init`` call with the engine's key (``fold_in(key, 0)``), as ``run()`` makes them, a fresh optimizer state
    and a step counter at 0."""
    model_state: Any
    if calls.task.host_init:
        params, model_state = host_params, {}
    else:
        params, model_state = calls.init(jax.random.fold_in(seed_key, INIT_FOLD))
    state = dict(params=params, opt=tx.init(params), step=jnp.int32(0), ok=jnp.bool_(True))
    if calls.wants_state:
        state["model_state"] = model_state
    return state


def _build_group(plan: _SlotPlan, calls: Calls, optimizer: Callable, space: space_lib.Space, static: tuple,
                 k_steps: int, n_local: int):
    """The training program of one static group: (carry, hp, seed, reset, target) -> (carry, (losses, trained)),
    per slot; losses and trained are [slot, steps_per_call]."""
    task = calls.task
    axes = list(space.axes)

    def factory_values(hp):
        values = dict(static)
        values.update({a: hp[a] for a in space.traced})
        return {a: values[a] for a in axes}

    def make_tx(hp):
        with _lr.rate_in_state():
            return optax.with_extra_args_support(optimizer(factory_values(hp)))

    def one(carry, hp, seed, reset, target, host_params, host_batches):
        key = engine_lib._seed_key(seed)  # the engine's key rule: init fold 0, data fold 1, loss fold 2
        tx = make_tx(hp)
        # a select: lax.cond needs shard_map's vma casts
        carry = engine_lib._tree_where(reset, _fresh_slot(calls, tx, key, host_params), carry)
        data_key = jax.random.fold_in(key, DATA_FOLD)

        def body(c, _):
            step = c["step"]
            train = c["ok"] & (step < target)
            if task.data is not None:
                batch = task.data(step, data_key)
            else:  # the search seed's host stream, drawn once: this slot's step of it
                batch = jax.tree.map(lambda b: b[jnp.minimum(step, b.shape[0] - 1)], host_batches)
            new, loss, _aux, _norm, finite, _opt = guarded_update(calls, tx, c, batch, key, step, train)
            new.update(step=jnp.where(train, step + 1, step), ok=jnp.where(train, finite, c["ok"]))
            return new, (jnp.where(train, jnp.asarray(loss, jnp.float32), jnp.float32(jnp.nan)), train)

        return jax.lax.scan(body, carry, jnp.arange(k_steps))

    engine_plan = cast(Any, plan)  # the engine's helpers read only strategy, chunk_size and mesh
    def local(carry, hp, seed, reset, target, host_params, host_batches):  # the last two: the same for all
        mapped = lambda c, h, s, r, t: one(c, h, s, r, t, host_params, host_batches)  # noqa: E731
        return engine_lib._per_device(engine_plan, mapped, n_local)(carry, hp, seed, reset, target)

    return jax.jit(engine_lib._sharded(engine_plan, local, 7, replicated=(5, 6)), donate_argnums=0)


def _slot_shapes(calls: Calls, optimizer, space: space_lib.Space, static: tuple, hp_example: dict, host_params):
    """One slot's state, as shapes."""

    def fresh(hp):
        values = dict(static)
        values.update({a: hp[a] for a in space.traced})
        with _lr.rate_in_state():
            tx = optax.with_extra_args_support(optimizer({a: values[a] for a in space.axes}))
        return _fresh_slot(calls, tx, engine_lib._seed_key(0), host_params)

    return jax.eval_shape(fresh, hp_example)


# ------------------------------------------------------------------------------------------------ the result


@dataclass
class SearchResult:
    """What ``search`` found.

    Attributes:
      best: the answer: the config (as the optimizer factory receives it, durations in steps) with the best
        confirmed mean; ``best_given`` the same as sampled (a duration may be a fraction).
      confirmed: the answer's confirmation: ``losses`` per fresh seed (never used to choose it), ``seeds``,
        ``interval`` (Student-t), ``runner_up`` (its config, mean, and the paired comparison seed by seed), and
        ``candidates`` (every confirmed config, best first, with its interval and Holm-corrected comparison).
      history: every config tried, in the order started: ``number``, ``given``, ``config``, ``bracket``,
        ``status`` (``completed``, ``stopped`` at a rung, ``diverged``, ``budget``: cut when the budget ran out),
        ``steps`` (trained), ``rungs`` (step -> loss there), ``value`` (the loss it is ranked by), ``losses``
        (its training curve), ``spent_at_end`` (config-steps spent by the whole search when it ended).
      confirmation: the ``SweepResult`` of the confirmation run (None without one).
      settings: the search's arguments as run (rungs, brackets, slots per group, steps per call, ...).
      rungs: ``"bracket/rung" -> [losses]`` recorded at each rung, in the order the configs arrived.
      spent: config-steps trained. timing: seconds (``compile_s``, ``train_s``, ``search_s``, ``total_s``) and
        ``training_compiles``; ``resumed_at_spent`` when resumed from a checkpoint.
      interrupted: the signal that stopped the search (or its confirmation), or None.
    """

    best: dict | None
    best_given: dict | None
    confirmed: dict | None
    history: list[dict]
    settings: dict[str, Any]
    rungs: dict[str, list[float]]
    spent: int
    timing: dict[str, float] = field(default_factory=dict)
    confirmation: SweepResult | None = None
    interrupted: str | None = None

    def completed(self) -> list[dict]:
        return [h for h in self.history if h["status"] == "completed"]

    def best_so_far(self) -> tuple[np.ndarray, np.ndarray]:
        """(config-steps spent, best ranked loss of the configs completed by then)."""
        done = sorted(self.completed(), key=lambda h: h["spent_at_end"])
        x = np.asarray([h["spent_at_end"] for h in done], np.float64)
        y = np.minimum.accumulate(np.asarray([h["value"] for h in done], np.float64)) if done else np.zeros(0)
        return x, y

    def survival(self) -> list[dict]:
        """Per bracket and rung: how many configs reached it and how many went on."""
        rows = []
        for key, values in sorted(self.rungs.items(), key=lambda kv: tuple(int(x) for x in kv[0].split("/"))):
            bracket, rung = (int(x) for x in key.split("/"))
            went_on = sum(1 for h in self.history if h["bracket"] == bracket and h["steps"] > rung)
            rows.append(dict(bracket=bracket, rung=rung, reached=len(values), continued=went_on))
        return rows

    def table(self) -> str:
        s = self.settings
        lines = [f"{s['task']}: {s['method']} search with {s['proposals']} proposals, {len(self.history)} configs "
                 f"tried in {s['slots']} slots, {self.spent} of {s['budget']} config-steps spent ({s['steps']} "
                 "steps per config)"]
        if self.interrupted:
            lines.append(f"PARTIAL: interrupted by {self.interrupted}")
        axes = list(s["axes"])
        head = f"{'#':>4}" + "".join(f"{a:>14}" for a in axes) + f"{'steps':>7}{'loss':>9}  status"
        lines += ["", head, "-" * len(head)]
        order = sorted(self.history, key=lambda h: (h["value"] if math.isfinite(h["value"]) else math.inf,
                                                    -h["steps"]))
        for h in order:
            cells = "".join(f"{_fmt(h['given'][a], h['config'][a]):>14}" for a in axes)
            lines.append(f"{h['number']:>4}{cells}{h['steps']:>7}{h['value']:>9.3f}  {h['status']}")
        surv = self.survival()
        if surv:
            lines += ["", "rung survival (bracket, rung step: reached -> continued):"]
            lines += [f"  bracket {r['bracket']}, step {r['rung']}: {r['reached']} -> {r['continued']}" for r in surv]
        lines += [""]
        if self.confirmed is None:
            lines.append("confirmation: none (no config ran to the end)" if not self.completed()
                         else "confirmation: not run")
            return "\n".join(lines)
        c = self.confirmed
        iv = stats.Interval(**{k: v for k, v in c["interval"].items() if k != "known"})
        name = lambda cfg: ", ".join(f"{a}={_fmt(v, v)}" for a, v in cfg.items())  # noqa: E731
        lines.append(f"confirmed on fresh seeds {c['seeds']} (never used to choose):")
        lines.append(f"  best: {name(self.best or {})}: final loss {iv.format()}")
        up = c["runner_up"]
        if up is not None:
            cmp = up["comparison"]
            if cmp["known"]:
                verdict = "distinguishable" if cmp["p_holm"] < 0.05 else "not distinguishable"
                lines.append(f"  runner-up: {name(up['config'])}: {up['mean']:.3f}, {cmp['difference']:+.3f} "
                             f"[{cmp['low']:+.3f}, {cmp['high']:+.3f}] seed by seed (paired t, p {cmp['p']:.3g}, "
                             f"Holm {cmp['p_holm']:.3g}, d_z {cmp['d_z']:.2f}): {verdict}")
            else:
                lines.append(f"  runner-up: {name(up['config'])}: {up['mean']:.3f} ({cmp['difference']:+.3f}); "
                             f"with {cmp['n']} seeds the spread is unknown")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        from optax_warmup.sweep.result import _jsonable

        return _jsonable(dict(format=FORMAT, best=self.best, best_given=self.best_given, confirmed=self.confirmed,
                              history=self.history, settings=self.settings, rungs=self.rungs, spent=self.spent,
                              survival=self.survival(), timing=self.timing, interrupted=self.interrupted))

    def plot(self, out_dir: str | os.PathLike, grid: SweepResult | None = None) -> dict[str, str]:
        """Figures: loss over config-steps spent (the search's best so far; with ``grid``, a full grid's best at
        its cost), each config's curve (stopped ones end early) and the confirmed losses per seed."""
        from optax_warmup.plotting import pyplot, save

        plt = pyplot()
        os.makedirs(out_dir, exist_ok=True)
        paths = {}
        fig, ax = plt.subplots(figsize=(6, 4))
        x, y = self.best_so_far()
        if len(x):  # the best so far, held to the end of the spending
            ax.step(np.append(x, max(self.spent, x[-1])), np.append(y, y[-1]), where="post",
                    label=f"search ({self.settings['method']})")
        if grid is not None:
            best = float(np.nanmin(grid.train_loss))
            ax.scatter([len(grid) * grid.steps], [best], color="k", label=f"full grid ({len(grid)} configs)")
        ax.set_xlabel("config-steps spent")
        ax.set_ylabel("best train loss (last 10% of steps)")
        ax.set_yscale("log")
        ax.legend()
        paths["spent"] = save(fig, os.path.join(out_dir, "loss_over_spent.png"))
        fig, ax = plt.subplots(figsize=(6, 4))
        for h in self.history:
            ax.plot(np.arange(1, len(h["losses"]) + 1), h["losses"], lw=0.8,
                    color="C0" if h["status"] == "completed" else "0.6")
        for r in self.settings.get("rungs", []):
            ax.axvline(r, color="0.8", lw=0.5, ls="--")
        ax.set_xlabel("step")
        ax.set_ylabel("train loss")
        ax.set_title("every config tried (grey: stopped); dashed: rungs")
        paths["curves"] = save(fig, os.path.join(out_dir, "curves.png"))
        if self.confirmed is not None:
            fig, ax = plt.subplots(figsize=(6, 4))
            for i, c in enumerate(self.confirmed["candidates"]):
                ax.scatter(np.full(len(c["losses"]), i), c["losses"], s=12)
                iv = c["interval"]
                if iv["known"]:
                    ax.errorbar(i + 0.15, iv["mean"], yerr=[[iv["mean"] - iv["low"]], [iv["high"] - iv["mean"]]],
                                fmt="o", color="k", capsize=3)
            ax.set_xticks(range(len(self.confirmed["candidates"])))
            ax.set_xlabel("confirmed configs (best first)")
            ax.set_ylabel("final loss per fresh seed; mean and 95% t-interval")
            paths["confirmed"] = save(fig, os.path.join(out_dir, "confirmed.png"))
        return paths

    def write(self, out_dir: str | os.PathLike, grid: SweepResult | None = None) -> dict[str, str]:
        """``search.json``, ``table.txt`` and the figures in ``out_dir``."""
        os.makedirs(out_dir, exist_ok=True)
        paths = {"json": os.path.join(out_dir, "search.json"), "table": os.path.join(out_dir, "table.txt")}
        with open(paths["json"], "w") as f:
            json.dump(self.to_dict(), f, indent=1)
        with open(paths["table"], "w") as f:
            f.write(self.table() + "\n")
        paths.update(self.plot(out_dir, grid=grid))
        return paths


def _fmt(given: Any, resolved: Any) -> str:
    text = f"{given:.4g}" if isinstance(given, float) else str(given)
    return text if given == resolved else f"{text} ({resolved})"


# ------------------------------------------------------------------------------------------------ search


def search(
    task: engine_lib.Task,
    optimizer: Callable[[Mapping[str, Any]], optax.GradientTransformation],
    steps: int,
    space: Mapping[str, space_lib.Distribution],
    budget: int,
    *,
    slots: int = 16,
    method: str = "asha",
    sampler: Any = None,
    seed: int = 0,
    eta: int | None = None,
    min_steps: int | None = None,
    budget_seconds: float | None = None,
    confirm_top: int = 3,
    confirm_seeds: int | None = None,
    steps_per_call: int | None = None,
    strategy: str = "auto",
    chunk_size: int | None = None,
    devices: Sequence[Any] | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    out_dir: str | os.PathLike | None = None,
    durations: Iterable[str] = (),
    progress: bool = True,
) -> SearchResult:
    """Searches ``space`` for the best config within ``budget`` config-steps, in one compiled program per group.

    Args:
      task: the model, loss and data (``Task`` with ``data(step, key)``: slots start configs on the device).
      optimizer: ``optimizer(hp) -> GradientTransformation``, as for ``run()``; ``hp`` holds every axis of
        ``space`` (traced numbers, static strings).
      steps: training steps of a config that is never stopped.
      space: ``{axis: distribution}`` (``Uniform``, ``LogUniform``, ``IntUniform``, ``Choice``;
        ``optax_warmup.sweep.space``); ``*_steps`` axes are durations.
      budget: config-steps to spend (each step of each config counts one); no config starts once it is spent,
        and the configs still training are cut.
      slots: configs training at once; split evenly over the static groups (at least one slot each) and rounded
        up to a multiple of the device count.
      method: ``"random"`` (no early stopping), ``"asha"`` or ``"hyperband"``.
      sampler: an Optuna sampler (``optuna.samplers.TPESampler(seed=0)``, ``GPSampler``, ``CmaEsSampler``) to
        propose configs through ask/tell; default: the Sobol sequence. It is copied, never advanced.
      seed: the Sobol sequence's seed and the training seed of every search config; confirmation uses the
        seeds after it.
      eta: ASHA's reduction factor: rungs at ``steps / eta**k``, the top ``1/eta`` continue.
      min_steps: the first rung is at least this many steps (default ``steps / eta**3``, raised to the space's
        longest warmup, at most to ``steps / eta``: no config is judged while it is still warming up).
      budget_seconds: also stop once this much wall time has passed since the call, compiles included (the
        result then depends on the machine).
      confirm_top, confirm_seeds: confirm the ``confirm_top`` best completed configs on this many fresh seeds
        (``confirm_top=0``: no confirmation).
      steps_per_call: training steps per device call; decisions happen between calls (default 10, at most the
        first rung).
      strategy, chunk_size, devices: how the slots run on each device and where (as for ``run()``).
      checkpoint_dir: save the search (slots, history, sampler log) every ``checkpoint_every`` calls and on
        SIGINT / SIGTERM; the same call again resumes it and ends as an uninterrupted search would, bit for bit.
      checkpoint_every: device calls between checkpoints (default 20; needs ``checkpoint_dir``).
      out_dir: write ``found.write(out_dir)`` at the end.
      durations: more axes to treat as durations.
      progress: show progress bars.

    Returns:
      A ``SearchResult``.

    Raises:
      ValueError: a bad space, task, method or argument, in one line, before anything compiles.
    """
    wall0 = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    _positive("steps", steps)
    _positive("budget", budget)
    _positive("slots", slots)
    if eta is not None:
        _positive("eta", eta, low=2)
        if method == "random":
            raise ValueError("eta sets the rungs of 'asha' or 'hyperband'; method='random' has none")
    eta = 3 if eta is None else int(eta)
    if checkpoint_every is not None:
        _positive("checkpoint_every", checkpoint_every)
        if checkpoint_dir is None:
            raise ValueError("checkpoint_every: give checkpoint_dir too (where the checkpoints go)")
    checkpoint_every = 20 if checkpoint_every is None else int(checkpoint_every)
    if confirm_seeds is not None:
        _positive("confirm_seeds", confirm_seeds)
        if confirm_top == 0:
            raise ValueError("confirm_seeds: confirm_top=0 asks for no confirmation")
    confirm_seeds = 5 if confirm_seeds is None else int(confirm_seeds)
    if isinstance(confirm_top, bool) or not isinstance(confirm_top, int | np.integer) or confirm_top < 0:
        raise ValueError(f"confirm_top must be a whole number >= 0, got {confirm_top!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    if min_steps is not None:
        _positive("min_steps", min_steps)
        if method == "random":
            raise ValueError("min_steps sets the first rung of 'asha' or 'hyperband'; method='random' has none")
        if min_steps >= steps:
            raise ValueError(f"min_steps ({min_steps}) must be below steps ({steps}): it is the first rung")
    if budget_seconds is not None and not (isinstance(budget_seconds, int | float) and budget_seconds > 0):
        raise ValueError(f"budget_seconds must be a positive number of seconds, got {budget_seconds!r}")
    if sampler is not None:
        optuna = _require("optuna")
        if not isinstance(sampler, optuna.samplers.BaseSampler):
            raise ValueError(f"sampler must be an Optuna sampler (optuna.samplers.TPESampler(seed=0), ...), got "
                             f"{sampler!r}")
        _check_sampler_dependencies(sampler)
    if not isinstance(task, engine_lib.Task):
        raise ValueError(f"task must be an optax_warmup.sweep.Task, got {type(task).__name__}")
    task.check()
    calls = Calls(task)
    if not callable(optimizer):
        raise ValueError(f"optimizer must be a function hp -> GradientTransformation, got {optimizer!r}")
    steps, budget = int(steps), int(budget)
    sp = space_lib.check(space, steps, durations)
    corners = [sp.resolve(c) for c in sp.corner_configs()]
    grid_lib.check_factory(grid_lib.build(corners, steps, static=sp.static, durations=sp.durations), optimizer)
    strategy = engine_lib.resolve_strategy(strategy)
    if strategy not in ("vmap", "map"):  # the slots live inside one program: a host loop over configs is no option
        strategy = "map"
    chunk_size = engine_lib._positive_int("chunk_size", chunk_size)
    checkpoint_dir = engine_lib.check_directory("checkpoint_dir", checkpoint_dir)
    out_dir = engine_lib.check_directory("out_dir", out_dir)
    rungs = Rungs.make(method, steps, int(eta), min_steps, _longest_warmup(sp))
    k = engine_lib._positive_int("steps_per_call", steps_per_call) or min([10, *rungs.rungs[:1]])
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices: give at least one device")
    plan = _SlotPlan(strategy=strategy, chunk_size=chunk_size, mesh=Mesh(np.asarray(devices), (engine_lib.AXIS,)))
    groups = sp.groups()
    per_group = math.ceil(max(1, math.ceil(slots / len(groups))) / len(devices)) * len(devices)
    proposer: Any = _Sobol(sp, int(seed)) if sampler is None else _Optuna(sp, sampler)
    settings = dict(task=task.name, steps=steps, budget=budget, slots=per_group * len(groups),
                    slots_per_group=per_group, method=method, proposals=proposer.name, seed=int(seed), eta=int(eta),
                    rungs=rungs.rungs, brackets=rungs.brackets, steps_per_call=k, strategy=strategy,
                    chunk_size=chunk_size, devices=len(devices), confirm_top=int(confirm_top),
                    confirm_seeds=int(confirm_seeds), budget_seconds=budget_seconds,
                    axes={a: repr(d) for a, d in sp.axes.items()}, durations=list(sp.durations))
    saver = None
    if checkpoint_dir is not None:
        saver = _checkpoint.Saver(checkpoint_dir, dict(settings, sampler=_sampler_fingerprint(sampler)))
    searcher = _Searcher(calls, optimizer, sp, rungs, plan, groups, per_group, k, proposer, settings, saver,
                         checkpoint_every, budget_seconds, progress, wall0)
    found = searcher.run()
    found.timing["search_s"] = time.perf_counter() - wall0
    if found.completed():  # the search's own answer; confirmation replaces it by the best confirmed mean
        first = min(found.completed(), key=lambda h: h["value"])
        found.best, found.best_given = dict(first["config"]), dict(first["given"])
    if found.interrupted is None and confirm_top > 0 and found.completed():
        _confirm(found, task, optimizer, sp, steps, confirm_top, confirm_seeds, seed, strategy, chunk_size, devices,
                 checkpoint_dir, progress)
    found.timing["total_s"] = time.perf_counter() - wall0
    if out_dir is not None and jax.process_index() == 0:
        found.write(out_dir)
    return found


# Optuna's samplers that import their own optional dependencies only once they model (after their random
# startup trials): checked at the door, so the search does not fail after compiling and training.
_SAMPLER_NEEDS = {"GPSampler": ("torch",), "CmaEsSampler": ("cmaes",)}


def _check_sampler_dependencies(sampler: Any) -> None:
    import importlib.util

    for module in _SAMPLER_NEEDS.get(type(sampler).__name__, ()):
        if importlib.util.find_spec(module) is None:
            raise ValueError(f"sampler: Optuna's {type(sampler).__name__} needs {module}, which is not installed "
                             f"(pip install {module})")


def _positive(name: str, value: Any, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}")


def _sampler_fingerprint(sampler: Any) -> str | None:
    return None if sampler is None else type(sampler).__name__


class _Searcher:
    """The host loop: fill free slots, run every group's program for one call, decide, repeat."""

    def __init__(self, task_calls: Calls, optimizer, sp, rungs, plan, groups, per_group, k, proposer, settings,
                 saver, checkpoint_every, budget_seconds, progress, wall0):
        self.task_calls, self.task = task_calls, task_calls.task
        self.optimizer, self.sp, self.rungs, self.plan = optimizer, sp, rungs, plan
        self.groups, self.per_group, self.k, self.proposer = groups, per_group, k, proposer
        self.settings, self.saver, self.checkpoint_every = settings, saver, checkpoint_every
        self.budget_seconds, self.progress, self.wall0 = budget_seconds, progress, wall0
        self.seed = settings["seed"]
        self.host: tuple[Any, Any] = ({}, {})
        self.history: list[dict] = []
        self.pending: list[list[tuple[int, dict]]] = [[] for _ in groups]
        self.occupant = np.full((len(groups), per_group), -1, np.int64)  # index into history, -1: free
        self.spent = 0
        self.calls = 0
        self.done = False
        self.timing = dict(compile_s=0.0, train_s=0.0, checkpoint_s=0.0, training_compiles=0)

    # -- proposals -------------------------------------------------------------------------------------------

    def _next_for(self, g: int) -> tuple[int, dict] | None:
        if self.pending[g]:
            return self.pending[g].pop(0)
        for _ in range(100):  # a proposal of another group waits in its queue
            number, given = self.proposer.ask()
            h = self.groups.index(self.sp.group_of(given))
            if h == g:
                return number, given
            self.pending[h].append((number, given))
        return None

    def _start(self, g: int, s: int, number: int, given: dict) -> None:
        bracket = self.rungs.bracket_of(len(self.history))
        self.history.append(dict(number=number, given=given, config=self.sp.resolve(given), group=g, slot=s,
                                 bracket=bracket, status="training", steps=0, rungs={}, value=math.inf,
                                 losses=[], spent_at_start=self.spent, spent_at_end=None))
        self.occupant[g, s] = len(self.history) - 1

    def _finish(self, i: int, status: str) -> None:
        h = self.history[i]
        h["status"], h["spent_at_end"] = status, self.spent
        h["value"] = late_mean(h["losses"])
        if status == "diverged":
            h["value"] = math.inf
            self.proposer.report(h["number"], h["steps"], math.inf)
        self.proposer.tell(h["number"], h["value"] if status == "completed" else None,
                           "complete" if status == "completed" else status)
        self.occupant[h["group"], h["slot"]] = -1

    # -- arrays ----------------------------------------------------------------------------------------------

    def _inputs(self, g: int, reset: np.ndarray, target: np.ndarray):
        n = self.per_group
        hp = {a: np.zeros(n, self.sp.dtype(a)) for a in self.sp.traced}
        seeds = np.full(n, self.seed, np.int32)
        for s in range(n):
            i = self.occupant[g, s]
            if i >= 0:
                for a in self.sp.traced:
                    hp[a][s] = self.history[i]["config"][a]
        return hp, seeds, reset, target

    # -- the loop --------------------------------------------------------------------------------------------

    def run(self) -> SearchResult:
        shard = NamedSharding(self.plan.mesh, P(engine_lib.AXIS))
        self.host = jax.device_put(_host_inputs(self.task, self.seed, self.settings["steps"]),
                                   NamedSharding(self.plan.mesh, P()))
        n_local = self.per_group // len(self.plan.mesh.devices.flat)
        calls, carries = [], []
        abstract_all = []
        for static in self.groups:
            example = {a: np.zeros((), self.sp.dtype(a)) for a in self.sp.traced}
            one = _slot_shapes(self.task_calls, self.optimizer, self.sp, static, example, self.host[0])
            abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct((self.per_group, *a.shape), a.dtype,
                                                                   sharding=shard), one)
            abstract_all.append(abstract)
        restored = self.saver.restore(tuple(abstract_all)) if self.saver and self.saver.latest is not None else None
        if restored is not None:
            states, host = restored
            carries = list(states)
            self._load(host)
            self.timing["resumed_at_spent"] = self.spent
        else:
            carries = [jax.device_put(jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), ab), shard)
                       for ab in abstract_all]
        for g, static in enumerate(self.groups):
            fn = _build_group(self.plan, self.task_calls, self.optimizer, self.sp, static, self.k, n_local)
            hp, seeds, reset, target = self._inputs(g, np.zeros(self.per_group, bool),
                                                    np.zeros(self.per_group, np.int32))
            t0 = time.perf_counter()
            traced = fn.trace(abstract_all[g], hp, seeds, reset, target, *self.host)
            # the engine's rule for XLA's options (a light step compiles quicker on CPU), on this program's work
            # per config-step: its matrix products over the slots and the steps of one call
            flops = _preflight.step_flops(traced.jaxpr.jaxpr) / max(1, self.per_group * self.k)
            calls.append(traced.lower().compile(compiler_options=plan_lib.compiler_options_for(flops)))
            self.timing["compile_s"] += time.perf_counter() - t0
            self.timing["training_compiles"] += 1
        bar = None
        if self.progress and jax.process_index() == 0:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.settings["budget"], initial=min(self.spent, self.settings["budget"]),
                       desc=f"{self.task.name} {self.settings['method']}", unit="cfg-step", dynamic_ncols=True)
        interrupted = None
        last_saved = self.calls
        with engine_lib._Interrupt() as interrupt:
            while not self.done and interrupt.signal is None:
                self._round(calls, carries)
                if bar is not None:
                    best = min((h["value"] for h in self.history if h["status"] == "completed"), default=math.nan)
                    bar.set_postfix(configs=len(self.history), best=f"{best:.3f}", refresh=False)
                    bar.update(min(self.spent, bar.total) - bar.n)
                due = self.calls - last_saved >= self.checkpoint_every or interrupt.signal is not None
                if self.saver is not None and (due or self.done):
                    t0 = time.perf_counter()
                    self.saver.save(self.calls, tuple(carries), self._host())
                    self.timing["checkpoint_s"] += time.perf_counter() - t0
                    last_saved = self.calls
            if not self.done:
                interrupted = interrupt.name
        if bar is not None:
            bar.close()
        if interrupted and jax.process_index() == 0:
            where = (f"run the same call again with checkpoint_dir={self.saver.directory!r} to resume"
                     if self.saver else "no checkpoint_dir was given, so it cannot be resumed")
            print(f"search interrupted by {interrupted} after {self.spent} config-steps: {where}", flush=True)
        return SearchResult(best=None, best_given=None, confirmed=None, history=self.history,
                            settings=self.settings, rungs=self.rungs.values, spent=self.spent,
                            timing=dict(self.timing), interrupted=interrupted)

    def _round(self, calls, carries) -> None:
        budget = self.settings["budget"]
        out_of_time = (self.budget_seconds is not None
                       and time.perf_counter() - self.wall0 > self.budget_seconds)
        resets = []
        for g in range(len(self.groups)):
            reset = np.zeros(self.per_group, bool)
            for s in range(self.per_group):
                if self.occupant[g, s] < 0 and self.spent < budget and not out_of_time:
                    nxt = self._next_for(g)
                    if nxt is not None:
                        self._start(g, s, *nxt)
                        reset[s] = True
            resets.append(reset)
        if (self.occupant < 0).all():
            self.done = True
            return
        t0 = time.perf_counter()
        outs = {}
        for g, call in enumerate(calls):
            if (self.occupant[g] < 0).all():
                continue
            target = np.zeros(self.per_group, np.int32)
            for s in range(self.per_group):
                i = self.occupant[g, s]
                if i >= 0:
                    h = self.history[i]
                    target[s] = self.rungs.next_target(h["bracket"], h["steps"])
            carries[g], losses = call(carries[g], *self._inputs(g, resets[g], target), *self.host)
            outs[g] = losses
        outs = {g: (*(np.asarray(x) for x in jax.device_get(v)), np.asarray(jax.device_get(carries[g]["ok"])))
                for g, v in outs.items()}
        self.timing["train_s"] += time.perf_counter() - t0
        self.calls += 1
        for g, (losses, trained_mask, ok) in outs.items():
            for s in range(self.per_group):
                i = self.occupant[g, s]
                if i < 0:
                    continue
                h = self.history[i]
                trained = losses[s][trained_mask[s]]
                h["losses"] += [float(v) for v in trained]
                h["steps"] += len(trained)
                self.spent += len(trained)
                if not ok[s]:
                    self._finish(i, "diverged")
                elif h["steps"] >= self.settings["steps"]:
                    self._finish(i, "completed")
                elif h["steps"] in self.rungs.rungs[h["bracket"]:]:
                    value = late_mean(h["losses"])
                    h["rungs"][str(h["steps"])] = value
                    self.proposer.report(h["number"], h["steps"], value)
                    if not self.rungs.promote(h["bracket"], h["steps"], value):
                        self._finish(i, "stopped")
        if self.spent >= budget or (self.budget_seconds is not None
                                    and time.perf_counter() - self.wall0 > self.budget_seconds):
            for i in self.occupant.reshape(-1):
                if i >= 0:
                    self._finish(int(i), "budget")
            self.done = True

    # -- checkpoints -----------------------------------------------------------------------------------------

    def _host(self) -> dict:
        state = dict(history=self.history, pending=self.pending, occupant=self.occupant.tolist(), spent=self.spent,
                     calls=self.calls, done=self.done, rungs=self.rungs.values,
                     log=getattr(self.proposer, "log", None), asked=getattr(self.proposer, "asked", None),
                     timing=self.timing)
        text = json.dumps(state, allow_nan=True)
        return dict(search=np.frombuffer(text.encode(), np.uint8).copy())

    def _load(self, host: Mapping[str, Any]) -> None:
        state = json.loads(np.asarray(host["search"], np.uint8).tobytes().decode())
        self.history = state["history"]
        self.pending = [[(n, g) for n, g in q] for q in state["pending"]]
        self.occupant = np.asarray(state["occupant"], np.int64)
        self.spent, self.calls, self.done = state["spent"], state["calls"], state["done"]
        self.rungs.values = state["rungs"]
        if isinstance(self.proposer, _Optuna):
            self.proposer.replay(state["log"])
        else:
            self.proposer.replay([["ask"]] * state["asked"])
        for key in ("compile_s", "train_s", "checkpoint_s"):
            self.timing[key] = state["timing"].get(key, 0.0)


def _host_inputs(task, seed: int, steps: int) -> tuple[Any, Any]:
    """For a task that makes them on the host: the search seed's parameters (``init(seed)``) and the first ``steps``
    batches of its stream (``batches(seed)``), stacked; every config starts from them (it is the same seed), each
    slot reading its own step. Empty for a task that makes them on the device."""
    params = task.init(int(seed)) if task.host_init else {}
    if task.batches is None:
        return params, {}
    stream, drawn = iter(task.batches(int(seed))), []
    for _ in range(steps):
        try:
            drawn.append(next(stream))
        except StopIteration:  # as run() does: the last batch repeats
            if not drawn:
                raise ValueError("Task.batches(seed) yielded no batch") from None
            drawn.append(drawn[-1])
    return params, jax.tree.map(lambda *b: np.stack([np.asarray(x) for x in b]), *drawn)


# ------------------------------------------------------------------------------------------------ confirmation


def _confirm(found: SearchResult, task, optimizer, sp, steps, top, n_seeds, seed, strategy, chunk_size, devices,
             checkpoint_dir, progress) -> None:
    """Trains the ``top`` best completed configs in full on fresh seeds, in one ``run()``; fills ``found``."""
    ranked = sorted(found.completed(), key=lambda h: h["value"])[:top]
    seeds = [int(seed) + 1 + j for j in range(n_seeds)]
    grid = [dict(h["config"], seed=s) for h in ranked for s in seeds]
    result = engine_lib.run(task, optimizer, steps, grid, strategy=strategy, chunk_size=chunk_size,
                            devices=devices, progress=progress, durations=sp.durations, static=sp.static,
                            checkpoint_dir=None if checkpoint_dir is None else os.path.join(checkpoint_dir,
                                                                                            "confirm"))
    found.confirmation = result
    if result.interrupted:  # the same call again resumes the confirmation from its own checkpoint
        found.interrupted = result.interrupted
        return
    final = result.final_loss
    candidates = []
    for j, h in enumerate(ranked):
        losses = [float(v) for v in final[j * n_seeds:(j + 1) * n_seeds]]
        finite = all(math.isfinite(v) for v in losses)
        iv = stats.interval(losses).to_dict() if finite else dict(mean=math.inf, n=len(losses), known=False)
        candidates.append(dict(number=h["number"], config=h["config"], given=h["given"], search_value=h["value"],
                               losses=losses, mean=iv["mean"], interval=iv))
    candidates.sort(key=lambda c: c["mean"])
    best = candidates[0]
    rows = []
    for c in candidates[1:]:
        if math.isfinite(c["mean"]) and math.isfinite(best["mean"]):
            rows.append(stats.paired(c["losses"], best["losses"]).to_dict())
        else:
            rows.append(dict(difference=math.inf, n=n_seeds, p=math.nan, known=False))
    for c, row, p in zip(candidates[1:], rows, stats.holm([r["p"] for r in rows]), strict=True):
        row["p_holm"] = p
        c["comparison"] = row
    runner_up = None
    if len(candidates) > 1:
        up = candidates[1]
        runner_up = dict(config=up["config"], mean=up["mean"], comparison=up["comparison"])
    found.best, found.best_given = dict(best["config"]), dict(best["given"])
    found.confirmed = dict(config=best["config"], seeds=seeds, losses=best["losses"], mean=best["mean"],
                           interval=best["interval"], runner_up=runner_up, candidates=candidates)
