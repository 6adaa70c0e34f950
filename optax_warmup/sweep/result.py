"""What a sweep found: per-config summaries, divergence, LR sensitivity, the recommendation, table, JSON, figures.

Conventions, for every number below:

* **train loss** of a config: its mean training loss over the last 10% of the steps it ran.
* **final loss**: its last evaluation's ``loss`` when the task evaluates, else its train loss; NaN for a config
  that was frozen by a non-finite value.
* a **setting** is a config without its seed; its numbers are means over its seeds.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optax_warmup._numeric import quiet_nan

SEED = "seed"
FORMAT = "optax_warmup.sweep/1"
PARAMS_DIR = "params"  # write(): the kept trained parameters, an Orbax checkpoint beside results.json
EARLY_FRACTION = 0.2  # early-spike metrics look at the first 20% of steps
LATE_FRACTION = 0.1  # "late in training": the last 10% of steps
BASELINE_MARGIN = 0.05  # "at the baseline loss" is within this of it; "stuck" is improving by less
LR_AXES = ("peak_value", "learning_rate", "lr", "peak_lr", "max_lr")


def _late(curves: np.ndarray) -> np.ndarray:
    """Mean over the last LATE_FRACTION of steps, per config. curves: [configs, steps]."""
    if curves.shape[1] == 0:
        return np.full(curves.shape[0], np.nan)
    n = max(1, int(round(LATE_FRACTION * curves.shape[1])))
    with quiet_nan():
        return np.nanmean(curves[:, -n:], axis=1)


def _smooth_min(curves: np.ndarray, window: int = 10) -> np.ndarray:
    kernel = np.ones(window) / window
    with quiet_nan():
        return np.array([np.nanmin(np.convolve(np.nan_to_num(c, nan=np.inf), kernel, "valid"))
                         if len(c) >= window else (np.nanmin(c) if len(c) else np.nan) for c in curves])


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


@dataclass
class SweepResult:
    """The curves and summaries of a sweep (``optax_warmup.sweep.run``).

    Attributes:
      configs: one dict per config, grid order: the values the optimizer factory received (durations in steps).
      given: the same configs with the values as given (a duration may read ``"10%"``).
      axes: each axis's distinct given values.
      curves: ``{name: array [config, step]}``: ``loss``, ``grad_norm``, ``lr`` (read from the optimizer state;
        ``lr/<group>`` for per-group rates) and every extra metric of the loss. NaN once a config is frozen.
      eval, eval_steps: ``{name: array [config, evaluation]}`` at the steps in ``eval_steps``.
      diverged_step: per config, the step whose loss, gradients or params were not finite (-1: none).
      completed_steps: steps trained (less than ``steps`` when ``interrupted`` names a signal).
    """

    configs: list[dict]
    given: list[dict]
    axes: dict[str, list]
    durations: list[str]
    steps: int
    completed_steps: int
    curves: dict[str, np.ndarray]
    alive: np.ndarray
    eval_steps: list[int]
    eval: dict[str, np.ndarray]
    diverged_step: np.ndarray
    task: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    interrupted: str | None = None
    kept: dict[str, Any] | None = None  # run(keep=...): {"index", "params", "model_state"}, stacked over index

    # -- the trained models ----------------------------------------------------------------------------------

    def params_of(self, i: int) -> Any:
        """Config ``i``'s final parameters, as its ``init`` returned them: ``params``, or ``(params, model_state)``
        for a task with model state. Needs ``run(..., keep="all")`` (or ``"best"`` for the kept config)."""
        if self.kept is None:
            raise ValueError("no trained parameters were kept: run the sweep with keep='best' or keep='all'")
        index = list(self.kept["index"])
        if i not in index:
            raise ValueError(f"config {i} was not kept (kept: {index}); use keep='all' to keep every config")
        row = index.index(i)
        params = _tree_row(self.kept["params"], row)
        if self.kept.get("model_state") is None:
            return params
        return params, _tree_row(self.kept["model_state"], row)

    @property
    def best_index(self) -> int:
        """The config whose parameters ``best_params`` are: of the recommended setting, the seed with the lowest
        final loss."""
        if self.kept is None:
            raise ValueError("no trained parameters were kept: run the sweep with keep='best' or keep='all'")
        if len(self.kept["index"]) == 1:
            return int(self.kept["index"][0])
        best = self.recommended_config()
        if best is None:
            raise ValueError("no recommendation (every setting diverged), so no best config")
        return best

    def recommended_config(self) -> int | None:
        """Of the recommended setting's configs (its seeds), the one with the lowest final loss; None when every
        setting diverged."""
        rec = self.recommend()
        if rec is None:
            return None
        members = [i for i in range(len(self)) if dict(zip(self.setting_axes, self.setting_of(i), strict=True))
                   == rec["setting"]]
        return members[int(np.nanargmin(self.final_loss[members]))]

    @property
    def best_params(self) -> Any:
        """The recommended config's trained model: its final ``params`` (``(params, model_state)`` with model
        state). Needs ``run(..., keep="best")`` or ``keep="all"``."""
        if self.kept is not None and not len(self.kept["index"]):
            raise ValueError("no recommendation (every setting diverged), so no parameters were kept")
        return self.params_of(self.best_index)

    # -- per config ------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.configs)

    @property
    def setting_axes(self) -> list[str]:
        return [a for a in self.axes if a != SEED]

    @property
    def seeds(self) -> np.ndarray:
        return np.asarray([c.get(SEED, 0) for c in self.configs])

    @property
    def train_loss(self) -> np.ndarray:
        """Mean training loss over the last 10% of the steps run, per config."""
        return _late(self.curves["loss"]) if "loss" in self.curves else np.full(len(self), np.nan)

    @property
    def final_loss(self) -> np.ndarray:
        """The last evaluation's loss (or the train loss without evaluation); NaN for a frozen config."""
        if "loss" in self.eval and self.eval_steps:
            final = self.eval["loss"][:, -1].astype(np.float64)
        else:
            final = self.train_loss.astype(np.float64)
        return np.where(self.diverged_step >= 0, np.nan, final)

    @property
    def initial_loss(self) -> np.ndarray:
        """The loss before training (the step-0 evaluation, or the first training loss)."""
        if "loss" in self.eval and self.eval_steps and self.eval_steps[0] == 0:
            return self.eval["loss"][:, 0].astype(np.float64)
        return self.curves["loss"][:, 0].astype(np.float64)

    def label(self, axis: str, value: Any) -> str:
        """A value as shown in tables and figures: ``"10% (20)"`` for a duration given as a fraction."""
        if axis in self.durations:
            steps = next((c[axis] for c, g in zip(self.configs, self.given, strict=True) if g[axis] == value), value)
            same = isinstance(value, int | float) and float(value) == float(steps)
            return _fmt(value) if same else f"{_fmt(value)} ({steps})"
        return _fmt(value)

    def setting_of(self, i: int) -> tuple:
        return tuple(self.given[i][a] for a in self.setting_axes)

    def divergence(self) -> list[str | None]:
        """Why each config counts as diverged, or None.

        Diverged means: the step produced a non-finite value (the config was then frozen); or, when the task
        names a ``baseline_loss`` (what a model that learned nothing useful reaches), late in training (the last
        10% of steps) the loss is at or above it *and* it either climbed back there from lower down or is stuck
        there (it fell by less than 0.05 between the middle of the run and the end). The second condition keeps
        slow runs that are still improving from being called diverged.
        """
        base = self.task.get("baseline_loss")
        loss = self.curves.get("loss", np.full((len(self), 0), np.nan))
        late = _late(loss)
        middle = _late(loss[:, : max(1, loss.shape[1] // 2)])
        best = _smooth_min(loss)
        out: list[str | None] = []
        for i in range(len(self)):
            if self.diverged_step[i] >= 0:
                out.append(f"non-finite at step {int(self.diverged_step[i])}")
            elif base is not None and late[i] > base - BASELINE_MARGIN and late[i] > best[i] + 2 * BASELINE_MARGIN:
                out.append(f"loss climbed back to {late[i]:.2f} (baseline {base:.2f}, was {best[i]:.2f})")
            elif base is not None and late[i] > base - BASELINE_MARGIN and middle[i] - late[i] < BASELINE_MARGIN:
                out.append(f"loss stuck at {late[i]:.2f}, the baseline loss is {base:.2f}")
            else:
                out.append(None)
        return out

    def summary(self) -> list[dict]:
        """One row per config: its values, train / eval losses, early-spike metrics, divergence."""
        loss = self.curves.get("loss", np.full((len(self), 0), np.nan))
        gnorm = self.curves.get("grad_norm", np.full_like(loss, np.nan))
        early = max(2, int(math.ceil(EARLY_FRACTION * loss.shape[1])))
        with quiet_nan():
            jumps = (np.nanmax(np.diff(loss[:, :early], axis=1), axis=1) if loss.shape[1] > 1
                     else np.full(len(self), np.nan))
            max_gnorm = np.nanmax(gnorm[:, :early], axis=1) if gnorm.shape[1] else np.full(len(self), np.nan)
        reasons = self.divergence()
        final, train = self.final_loss, self.train_loss
        rows = []
        for i in range(len(self)):
            row = dict(self.given[i])
            row.update(train_loss=float(train[i]), final_loss=float(final[i]))
            for name, values in self.eval.items():
                if values.shape[1]:
                    row[f"eval_{name}"] = float(values[i, -1]) if self.diverged_step[i] < 0 else float("nan")
            row.update(early_max_grad_norm=float(max_gnorm[i]), early_max_loss_jump=float(jumps[i]),
                       diverged=reasons[i] is not None, diverged_reason=reasons[i])
            rows.append(row)
        return rows

    # -- per setting -----------------------------------------------------------------------------------------

    def _by_setting(self) -> dict[tuple, list[int]]:
        groups: dict[tuple, list[int]] = {}
        for i in range(len(self)):
            groups.setdefault(self.setting_of(i), []).append(i)
        return groups

    def settings_summary(self) -> list[dict]:
        """One row per setting, in grid order: means over its seeds and how many seeds diverged."""
        rows = self.summary()
        out = []
        for setting, members in self._by_setting().items():
            mean = lambda k, m=members: float(np.mean([rows[i][k] for i in m]))  # noqa: E731
            row = dict(zip(self.setting_axes, setting, strict=True))
            row["seeds"] = len(members)
            for key in rows[members[0]]:
                if key in ("train_loss", "final_loss", "early_max_grad_norm", "early_max_loss_jump") or (
                        key.startswith("eval_")):
                    row[key] = mean(key)
            row["diverged"] = sum(rows[i]["diverged"] for i in members)
            out.append(row)
        return out

    def lr_axis(self, axis: str | None = None) -> str | None:
        """The axis of learning rates: ``axis`` if given, else the first of peak_value, learning_rate, lr, ...
        with more than one value, else None."""
        if axis is not None:
            if axis not in self.setting_axes:
                raise ValueError(f"axis {axis!r} is not a setting axis of this sweep ({self.setting_axes})")
            return axis
        return next((a for a in LR_AXES if a in self.axes and len(self.axes[a]) > 1), None)

    def lr_sensitivity(self, axis: str | None = None) -> list[dict]:
        """LR sensitivity (Wortsman et al. 2023) over ``axis``, per setting of the other axes.

        For each seed: the mean over the axis's values of ``min(L, L_init)``, minus the best ``L``; averaged over
        seeds. ``L`` is the final loss, ``L_init`` the loss before training; a frozen (non-finite) run counts as
        ``L_init``. Lower means the result depends less on getting the learning rate right.
        """
        axis = self.lr_axis(axis)
        if axis is None:
            return []
        others = [a for a in self.setting_axes if a != axis]
        final, init = self.final_loss, self.initial_loss
        cells: dict[tuple, dict[int, list[float]]] = {}
        for i in range(len(self)):
            L = final[i]
            L = min(L, init[i]) if np.isfinite(L) else init[i]
            key = tuple(self.given[i][a] for a in others)
            cells.setdefault(key, {}).setdefault(int(self.seeds[i]), []).append(L)
        out = []
        for key, seeds in cells.items():
            per_seed = [float(np.mean(v) - np.min(v)) for v in seeds.values()]
            out.append(dict(zip(others, key, strict=True), axis=axis, sensitivity=float(np.mean(per_seed)),
                            sensitivity_per_seed=per_seed))
        return out

    def recommend(self, alpha: float = 0.05) -> dict | None:
        """The most robust setting and how sure that answer is (``optax_warmup.sweep.stats``).

        The best mean final loss over seeds, among settings none of whose seeds diverged, with its Student-t
        interval (``interval``; below 3 seeds the spread is unknown and the interval NaN), and a paired
        comparison seed by seed with every other such setting (``comparisons``: difference other - best, its
        t-interval, p-value, ``d_z``, and the p-value Holm-corrected over the table). ``runner_up`` is the next
        best mean; ``indistinguishable`` the settings whose corrected p-value is not below ``alpha`` (empty when
        the spread is unknown: with fewer than 3 seeds nothing can be told apart). None when every setting
        diverged.
        """
        from optax_warmup.sweep import stats

        final = self.final_loss
        reasons = self.divergence()
        seeds = self.seeds
        candidates: list[dict[str, Any]] = []
        for setting, members in self._by_setting().items():
            values = final[members]
            if any(reasons[i] for i in members) or not np.all(np.isfinite(values)):
                continue
            candidates.append(dict(setting=dict(zip(self.setting_axes, setting, strict=True)),
                                   mean=float(np.mean(values)), interval=stats.interval(values).to_dict(),
                                   per_seed=[float(v) for v in values], seeds=[int(seeds[i]) for i in members]))
        if not candidates:
            return None
        candidates.sort(key=lambda c: c["mean"])
        best = candidates[0]
        comparisons = []
        for c in candidates[1:]:
            row = dict(setting=c["setting"], mean=c["mean"])
            if sorted(c["seeds"]) == sorted(best["seeds"]):  # paired seed by seed
                mine = dict(zip(c["seeds"], c["per_seed"], strict=True))
                row.update(stats.paired([mine[s] for s in best["seeds"]], best["per_seed"]).to_dict())
            else:
                row.update(difference=c["mean"] - best["mean"], n=0, p=float("nan"), known=False)
            comparisons.append(row)
        for row, p in zip(comparisons, stats.holm([r["p"] for r in comparisons]), strict=True):
            row["p_holm"] = p
        best["comparisons"] = comparisons
        best["runner_up"] = comparisons[0] if comparisons else None
        best["alpha"] = alpha
        best["indistinguishable"] = [dict(setting=r["setting"], mean=r["mean"], p_holm=r["p_holm"])
                                     for r in comparisons if r["known"] and not r["p_holm"] < alpha]
        return best

    def _recommendation_lines(self) -> list[str]:
        rec = self.recommend()
        if rec is None:
            return ["recommendation: none (every setting diverged in at least one seed)"]
        from optax_warmup.sweep import stats

        name = lambda s: ", ".join(f"{a}={self.label(a, v)}" for a, v in s.items())  # noqa: E731
        iv = stats.Interval(**{k: v for k, v in rec["interval"].items() if k != "known"})
        lines = [f"recommendation: {name(rec['setting'])}: final loss {iv.format()}"]
        up = rec["runner_up"]
        if up is None:
            return lines
        if not up["known"]:
            why = "its seeds differ" if up["n"] == 0 else f"with {up['n']} seeds the spread is unknown"
            lines.append(f"  runner-up {name(up['setting'])}: {up['mean']:.3f} ({up['difference']:+.3f}); "
                         f"{why}, so they cannot be told apart")
            return lines
        verdict = "distinguishable" if up["p_holm"] < rec["alpha"] else "not distinguishable"
        lines.append(f"  runner-up {name(up['setting'])}: {up['mean']:.3f}, {up['difference']:+.3f} "
                     f"[{up['low']:+.3f}, {up['high']:+.3f}] seed by seed (paired t, p {up['p']:.3g}, Holm "
                     f"{up['p_holm']:.3g}, d_z {up['d_z']:.2f}): {verdict}")
        if rec["indistinguishable"]:
            lines.append(f"  indistinguishable from it (Holm-corrected p >= {rec['alpha']:g}):")
            lines += [f"    {name(c['setting'])}: {c['mean']:.3f}" for c in rec["indistinguishable"]]
        else:
            lines.append("  every other setting is distinguishably worse")
        return lines

    # -- text ------------------------------------------------------------------------------------------------

    def table(self) -> str:
        """The report: one line per setting (means over seeds), LR sensitivity, recommendation, diverged
        configs."""
        rows = self.settings_summary()
        axes = self.setting_axes
        eval_cols = sorted((k for k in (rows[0] if rows else {}) if k.startswith("eval_")),
                           key=lambda k: (k != "eval_loss", k))  # the loss first
        widths = {a: max(len(a), *(len(self.label(a, r[a])) for r in rows)) + 1 for a in axes}
        head = "".join(f"{a:>{widths[a]}}" for a in axes) + f"{'train':>8}" + "".join(
            f"{'eval ' + c[5:]:>{len(c) + 3}}" for c in eval_cols) + f"{'max|g| early':>13}{'max jump':>10}  diverged"
        seeds = len(np.unique(self.seeds))
        what = "final losses" if not eval_cols else "final train loss and evaluation"
        base = self.task.get("baseline_loss")
        lines = [f"{self.task.get('name', 'sweep')}: {what} averaged over {seeds} seed(s); early = first "
                 f"{int(EARLY_FRACTION * 100)}% of steps" + (f"; baseline loss {base:.3f}" if base is not None
                                                            else "")]
        if self.interrupted:
            lines.append(f"PARTIAL: interrupted by {self.interrupted} after {self.completed_steps} of {self.steps} "
                         "steps")
        lines += [head, "-" * len(head)]
        for r in rows:
            mark = f"{r['diverged']}/{r['seeds']}" if r["diverged"] else ""
            lines.append("".join(f"{self.label(a, r[a]):>{widths[a]}}" for a in axes) + f"{r['train_loss']:>8.3f}"
                         + "".join(f"{r[c]:>{len(c) + 3}.3f}" for c in eval_cols)
                         + f"{r['early_max_grad_norm']:>13.2f}{r['early_max_loss_jump']:>10.3f}  {mark}")
        sens = self.lr_sensitivity()
        if sens:
            lines += ["", f"LR sensitivity over {sens[0]['axis']} (Wortsman et al. 2023; lower = less sensitive):"]
            for s in sens:
                where = ", ".join(f"{a} {self.label(a, s[a])}" for a in axes if a in s) or "all"
                per = ", ".join(f"{v:.3f}" for v in s["sensitivity_per_seed"])
                lines.append(f"  {where}: {s['sensitivity']:.3f}   per seed [{per}]")
        lines += ["", *self._recommendation_lines()]
        diverged = [(i, r) for i, r in enumerate(self.divergence()) if r]
        if diverged:
            lines += ["", "diverged configs:"]
            lines += [f"  {', '.join(f'{a}={self.label(a, self.given[i][a])}' for a in self.axes)}: {r}"
                      for i, r in diverged]
        return "\n".join(lines)

    def interruption_message(self, out_dir: str | None, checkpoint_dir: str | None) -> str:
        where = f"partial results in {os.path.abspath(out_dir)}" if out_dir else "partial results returned"
        if checkpoint_dir:
            how = f"run the same command again with the checkpoint directory {checkpoint_dir} to resume"
        else:
            how = "no checkpoint directory was given, so this run cannot be resumed"
        return (f"sweep interrupted by {self.interrupted} after {self.completed_steps} of {self.steps} steps: "
                f"{where}; {how}")

    # -- files -----------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Everything, JSON-ready: arrays as [config][step] lists, NaN as null."""
        return _jsonable(dict(
            format=FORMAT, task=self.task, steps=self.steps, completed_steps=self.completed_steps,
            interrupted=self.interrupted, axes=self.axes, durations=self.durations, configs=self.configs,
            given=self.given, summary=self.summary(), settings_summary=self.settings_summary(),
            lr_sensitivity=self.lr_sensitivity(), recommendation=self.recommend(),
            curves=self.curves, eval_steps=self.eval_steps, eval=self.eval, diverged_step=self.diverged_step,
            settings=self.settings, timing=self.timing))

    def to_json(self, path: str | os.PathLike) -> str:
        """Writes ``to_dict()`` as JSON; ``load(path)`` reads it back."""
        path = os.fspath(path)
        with open(path, "w") as f:
            json.dump(self.to_dict(), f)
        return path

    def plot(self, out_dir: str | os.PathLike, x: str | None = None, y: str | None = None) -> dict[str, str]:
        """Figures in ``out_dir``: a heatmap of the final loss over axes ``x`` and ``y`` (default: the learning
        rate axis and the next setting axis), the loss curves and the learning rates. Returns ``{name: path}``."""
        from optax_warmup.sweep import plots

        return plots.write_all(self, os.fspath(out_dir), x=x, y=y)

    def write(self, out_dir: str | os.PathLike) -> dict[str, str]:
        """``results.json``, ``table.txt`` and the figures in ``out_dir``. Returns ``{name: path}``."""
        out_dir = os.fspath(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        paths = {"results": self.to_json(os.path.join(out_dir, "results.json")),
                 "table": os.path.join(out_dir, "table.txt")}
        with open(paths["table"], "w") as f:
            f.write(self.table() + "\n")
        if self.completed_steps > 0:
            paths.update(self.plot(out_dir))
        if self.kept is not None and len(self.kept["index"]):
            paths["params"] = _save_params(os.path.join(out_dir, PARAMS_DIR), self.kept)
        return paths


def _jsonable(x):
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None  # JSON has no NaN
    return x


def _tree_row(tree: Any, row: int) -> Any:
    import jax

    return jax.tree.map(lambda a: np.asarray(a)[row], tree)


def _save_params(path: str, kept: Mapping[str, Any]) -> str:
    """The kept configs' parameters (and model states) with Orbax, beside ``results.json``."""
    from optax_warmup._extras import require

    ocp = require("orbax.checkpoint", "sweep", "keep")
    path = os.path.abspath(path)
    tree = {"index": np.asarray(kept["index"], np.int64), "params": kept["params"]}
    if kept.get("model_state") is not None:
        tree["model_state"] = kept["model_state"]
    with ocp.PyTreeCheckpointer() as checkpointer:
        checkpointer.save(path, tree, force=True)
    return path


def _load_params(path: str) -> dict[str, Any] | None:
    if not os.path.isdir(path):
        return None
    from optax_warmup._extras import require

    ocp = require("orbax.checkpoint", "sweep", "keep")
    with ocp.PyTreeCheckpointer() as checkpointer:
        tree = checkpointer.restore(os.path.abspath(path))
    import jax

    tree = jax.tree.map(np.asarray, tree)
    return dict(index=[int(i) for i in tree["index"]], params=tree["params"],
                model_state=tree.get("model_state"))


def _array(rows: Sequence, dtype=np.float32) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype)


def load(path: str | os.PathLike) -> SweepResult:
    """Reads a ``results.json`` written by ``SweepResult.to_json`` / ``write`` back into a ``SweepResult``, with the
    trained parameters that ``write`` saved beside it (``run(keep=...)``) in ``kept``.

    Args:
      path: the ``results.json`` file.
    """
    with open(path) as f:
        saved = json.load(f)
    if saved.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not a sweep result ({FORMAT}); got format {saved.get('format')!r}")
    n, done = len(saved["configs"]), saved["completed_steps"]
    diverged = np.asarray(saved["diverged_step"], np.int64)
    t = np.arange(done)
    alive = ~((diverged[:, None] >= 0) & (t[None, :] >= diverged[:, None]))
    return SweepResult(
        configs=saved["configs"], given=saved["given"], axes=saved["axes"], durations=saved["durations"],
        steps=saved["steps"], completed_steps=done,
        curves={k: _array(v).reshape(n, done) for k, v in saved["curves"].items()},
        alive=alive, eval_steps=saved["eval_steps"],
        eval={k: _array(v).reshape(n, len(saved["eval_steps"])) for k, v in saved["eval"].items()},
        diverged_step=diverged, task=saved["task"], settings=saved["settings"], timing=saved["timing"],
        interrupted=saved["interrupted"],
        kept=_load_params(os.path.join(os.path.dirname(os.path.abspath(path)), PARAMS_DIR)))
