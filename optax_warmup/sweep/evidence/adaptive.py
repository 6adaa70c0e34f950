"""Evidence (b): a warmup whose length follows the training metrics (``adaptive_warmup``), on real runs.

Seeds are split (``_common.seeds``): the **choose** seeds pick everything that is picked (the spike test's
settings, the best fixed warmup, the clipping thresholds); only the fresh **report** seeds are reported.

1. **Clean runs**: fixed warmups (none, linear 2 / 10 / 25%) over a peak-LR grid and all seeds, on the byte LM and
   the digits task, recording every step's gradient norm and loss: what the spike test of ``adaptive_warmup``
   sees in real training. And the same fixed warmups on the report seeds of a task that chooses nothing: the byte
   LM *without* QK-LayerNorm.
2. **Its settings**: the spike test replayed (``_replay``, float64, checked against the library) over those
   trajectories for a grid of settings of its statistics. The rule (``choose``) reads the clean runs of the choose
   seeds only: at most one false back-off per ten calm runs (the two lowest LRs) on each task, then the best mean
   detection of a 10x / 100x / 1000x gradient spike over steps 10-99. Then the rule's choice, the library's
   current defaults and the defaults before this experiment are frozen and measured on the report seeds of the two
   tasks and on the held-out task: back-offs per calm run, per high-LR run, and detection, each a mean over runs
   with its 95% t-interval (detection is a per-run fraction of steps, then ``describe`` over runs).
3. **A too-short warmup at a high LR**: ``adaptive_warmup`` given 2% of the run against linear 2%, the linear
   warmup of the best length (on the choose seeds' clean runs) and no warmup; report seeds, paired, Holm.
4. **A 1000x gradient spike** at step 90 of a run at a middle LR, with each protection: none, global-norm clipping
   before AdamW at 1.0 and at the median pre-spike gradient norm (steps 50-89 of the choose seeds' clean runs),
   skipping any update whose gradient norm exceeds 10x that median (``skip_large_gradients``), the adaptive
   warmup, and the adaptive warmup with ``skip_spikes=True``; each with and without the spike, report seeds.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optax_warmup import sweep
from optax_warmup._adaptive import adaptive_warmup
from optax_warmup.sweep.evidence import _common as C
from optax_warmup.sweep.evidence import _figures as F
from optax_warmup.sweep.evidence._replay import replay
from optax_warmup.sweep.optimizers import warmup_methods
from optax_warmup.sweep.tasks import BUILTIN

NAME = "adaptive"
_BYTELM = dict(d_model=32, valid_windows=128)
_LRS5 = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
_LRS6 = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1]
# Per task: ``builder`` (a name in BUILTIN, default the key), ``task`` (its options), ``heldout`` (True: a task
# that chooses nothing, run on the report seeds only, clean runs only).
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "bytelm": dict(task=_BYTELM, steps=200, lrs=_LRS5, choose_seeds=5, report_seeds=10, spike_step=90),
        "digits": dict(task=dict(), steps=300, lrs=_LRS6, choose_seeds=5, report_seeds=10, spike_step=90),
        "bytelm_no_qk": dict(builder="bytelm", task=dict(_BYTELM, qk_norm=False), steps=200, lrs=_LRS5,
                             choose_seeds=5, report_seeds=10, spike_step=90, heldout=True),
    },
    "quick": {
        "bytelm": dict(task=_BYTELM, steps=120, lrs=_LRS5, choose_seeds=2, report_seeds=3, spike_step=90),
        "digits": dict(task=dict(), steps=200, lrs=_LRS6, choose_seeds=2, report_seeds=3, spike_step=90),
        "bytelm_no_qk": dict(builder="bytelm", task=dict(_BYTELM, qk_norm=False), steps=120, lrs=_LRS5,
                             choose_seeds=2, report_seeds=3, spike_step=90, heldout=True),
    },
    "tiny": {  # a smoke test of seconds: one choosing task and a small held-out byte LM
        "digits": dict(task=dict(hidden=(16,)), steps=24, lrs=_LRS5, choose_seeds=1, report_seeds=3,
                       spike_step=16),
        "bytelm_no_qk": dict(builder="bytelm", task=dict(d_model=8, n_layers=1, n_heads=2, context=8, batch_size=4,
                                                         valid_windows=8, max_files=20, qk_norm=False),
                             steps=24, lrs=[1e-3, 1e-1], choose_seeds=1, report_seeds=3, spike_step=16,
                             heldout=True),
    },
}
CLEAN = [("none", 0), ("linear", 0.02), ("linear", 0.1), ("linear", 0.25)]  # (method, warmup) of part 1
TOO_SHORT = 0.02
SPIKE_FACTOR = 1000.0
SPIKE_SIZES = (10.0, 100.0, 1000.0)
# Detection is scored over these steps: the warmup and the steps just after it, where the adaptive warmup acts (no
# rule can judge before it has statistics); the later steps are reported too, not scored.
SCORED = (10, 100)
CALM_FLAGS = 0.1  # at most one false back-off per ten calm runs
PRE_SPIKE = 40  # the clipping threshold: median gradient norm over the PRE_SPIKE steps before the spike step
SKIP_MULTIPLE = 10.0  # skip_large_gradients skips above this many times that median
RECORD = ("factor", "progress", "num_spikes")
# The grid of settings of the statistics replayed in part 2; "warm-up" = the first min_observations updates are
# not observed (the library's rule since this experiment), "none" = they are (the rule before).
CANDIDATES: dict[str, list] = dict(decay=[0.95, 0.98, 0.99], zscore=[3.0, 3.5, 4.0, 5.0], norm_ratio=[2.0, 3.0],
                                   min_observations=[5, 10, 20], warmup=[True, False])
BEFORE = dict(decay=0.99, zscore=4.0, norm_ratio=2.0, loss_ratio=1.2, min_observations=20, warmup=False)
# The protections of part 4: (label, warmup_method, protection, threshold, skip_spikes); threshold "c1" = 1.0,
# "median" = the median pre-spike gradient norm, "skip" = SKIP_MULTIPLE times it.
PROTECTIONS = [("no protection", "linear", "none", None, False), ("clip 1.0", "linear", "clip", "c1", False),
               ("clip median", "linear", "clip", "median", False),
               (f"skip > {SKIP_MULTIPLE:g}x median", "linear", "skip", "skip", False),
               ("adaptive 10%", "adaptive", "none", None, False),
               ("adaptive 10% + skip_spikes", "adaptive", "none", None, True)]
SPIKE_WARMUP = 0.1


def library_defaults() -> dict:
    """``adaptive_warmup``'s current defaults, read from its signature, with the statistics' warm-up."""
    params = inspect.signature(adaptive_warmup).parameters
    out = {k: params[k].default for k in ("decay", "zscore", "norm_ratio", "loss_ratio", "min_observations")}
    return dict(out, warmup=True)


def gradient_spike(step, factor) -> optax.GradientTransformation:
    """Multiplies the gradients of update ``step`` (counting from 0) by ``factor``: an injected spike."""

    def init_fn(params):
        del params
        return jnp.zeros([], jnp.int32)

    def update_fn(updates, count, params=None):
        del params
        scale = jnp.where(count == step, factor, 1.0)
        return jax.tree.map(lambda g: g * scale.astype(g.dtype), updates), optax.safe_increment(count)

    return optax.GradientTransformation(init_fn, update_fn)


def skip_large_gradients(inner: optax.GradientTransformation, max_norm) -> optax.GradientTransformationExtraArgs:
    """``inner``, except that an update whose incoming gradient has a global norm above ``max_norm`` (or is not
    finite) is skipped: zero updates, and ``inner``'s state left as it was (its moments and step count do not see
    the gradient)."""
    inner = optax.with_extra_args_support(inner)

    def update_fn(updates, state, params=None, **extra):
        skip = ~(optax.tree.norm(updates) <= max_norm)
        new_updates, new_state = inner.update(updates, state, params, **extra)
        new_updates = jax.tree.map(lambda u: jnp.where(skip, jnp.zeros_like(u), u), new_updates)
        new_state = jax.tree.map(lambda new, old: jnp.where(skip, old, new), new_state, state)
        return new_updates, new_state

    return optax.GradientTransformationExtraArgs(inner.init, update_fn)


PROTECTION_KINDS = ("none", "clip", "skip")


def with_spike(factory):
    """``factory`` with a ``gradient_spike(hp["spike_step"], hp["spike_factor"])`` in front of it and, by the static
    axis ``protection``, nothing (``"none"``), ``optax.clip_by_global_norm(hp["protect_at"])`` before it
    (``"clip"``) or ``skip_large_gradients(., hp["protect_at"])`` around it (``"skip"``)."""

    def spiked(hp):
        protection = hp.get("protection", "none")
        if protection not in PROTECTION_KINDS:
            raise ValueError(f"protection must be one of {PROTECTION_KINDS}, got {protection!r}")
        inner = factory(hp)
        if protection == "clip":
            inner = optax.chain(optax.clip_by_global_norm(hp["protect_at"]), inner)
        elif protection == "skip":
            inner = skip_large_gradients(inner, hp["protect_at"])
        return optax.chain(gradient_spike(hp.get("spike_step", 0), hp.get("spike_factor", 1.0)), inner)

    return spiked


# ------------------------------------------------------------------------------------------- part 2: replay


def candidate_settings() -> list[dict]:
    keys = list(CANDIDATES)
    grid = [dict(zip(keys, combo, strict=True), loss_ratio=1.2) for combo in itertools.product(*CANDIDATES.values())]
    named = [BEFORE, library_defaults()]
    return named + [c for c in grid if c not in named]


def _replay_fields(settings: list[dict]) -> dict[str, np.ndarray]:
    fields = {k: np.asarray([s[k] for s in settings], np.float64)
              for k in ("decay", "zscore", "norm_ratio", "loss_ratio", "min_observations")}
    fields["burn"] = np.asarray([s["min_observations"] if s["warmup"] else 0 for s in settings], np.float64)
    return fields


def clean_runs(clean: sweep.SweepResult, seeds: Sequence[int]) -> list[int]:
    """The clean runs of these seeds that finished (a diverged run has no trajectory to replay)."""
    keep = set(seeds)
    return [i for i in range(len(clean)) if clean.given[i]["seed"] in keep and clean.diverged_step[i] < 0]


def _over_runs(values) -> dict:
    """``C.describe`` over runs (not seeds): the mean and its 95% t-interval; the values as ``per_run``."""
    d = C.describe(values)
    d["per_run"] = d.pop("per_seed")
    return d


def score_settings(clean: sweep.SweepResult, settings: list[dict], spike_step: int,
                   seeds: Sequence[int]) -> list[dict]:
    """Back-offs and detection of each setting, replayed over the clean runs of ``seeds`` that finished. Every
    measure is a value per run, described over runs (mean, 95% t-interval): back-offs per calm run (the two lowest
    LRs) and per high-LR run (the two highest), the fraction of steps in ``SCORED`` (and after) at which a spike of
    each size would be flagged, and whether a 1000x spike at ``spike_step`` would be."""
    ok = clean_runs(clean, seeds)
    lrs = np.asarray([clean.configs[i]["peak_value"] for i in ok])
    levels = sorted(set(lrs))
    calm, high = np.isin(lrs, levels[:2]), np.isin(lrs, levels[-2:])
    out = replay(clean.curves["grad_norm"][ok], clean.curves["loss"][ok], _replay_fields(settings))
    flags, threshold = out["flags"].sum(-1), out["threshold"]
    rows = []
    for j, s in enumerate(settings):
        row = dict(setting=s, calm_flags=_over_runs(flags[j, calm]), high_flags=_over_runs(flags[j, high]),
                   runs=len(ok), calm_runs=int(calm.sum()), high_runs=int(high.sum()))
        early, late = threshold[j, :, SCORED[0]:SCORED[1]], threshold[j, :, SCORED[1]:]
        for f in SPIKE_SIZES:
            row[f"detect_{int(f)}x"] = _over_runs(np.mean(early < f, axis=1))
            row[f"late_detect_{int(f)}x"] = _over_runs(np.mean(late < f, axis=1)) if late.shape[1] else None
        step = min(spike_step, threshold.shape[-1] - 1)
        row["detect_1000x_at_spike_step"] = _over_runs((threshold[j, :, step] < SPIKE_FACTOR).astype(float))
        rows.append(row)
    return rows


def detection_score(rows: Mapping[str, list[dict]], j: int) -> float:
    """The rule's score of setting ``j``: detection averaged over the tasks and the three spike sizes."""
    return float(np.mean([rows[t][j][f"detect_{int(f)}x"]["mean"] for t in rows for f in SPIKE_SIZES]))


def choose(scores: Mapping[str, list[dict]]) -> tuple[int, list[int]]:
    """The rule, on scores of the choose seeds: mean calm back-offs <= CALM_FLAGS per run on every task, then the
    best mean detection (the earlier setting on a tie). Returns the index of the chosen setting and the feasible
    indices, best first."""
    tasks = list(scores)
    n = len(scores[tasks[0]])
    feasible = [j for j in range(n) if all(scores[t][j]["calm_flags"]["mean"] <= CALM_FLAGS for t in tasks)]
    feasible.sort(key=lambda j: -detection_score(scores, j))
    return (feasible[0] if feasible else 0), feasible


# ---------------------------------------------------------------------------------------------- the runs


def _task(spec: Mapping[str, Any], name: str):
    return BUILTIN[spec.get("builder", name)](**spec["task"])


def _clean_grid(size: dict, seeds: Sequence[int]) -> list[dict]:
    return [dict(warmup_method=m, warmup_steps=w, peak_value=lr, seed=s) for m, w in CLEAN for lr in size["lrs"]
            for s in seeds]


def best_fixed_warmup(clean: sweep.SweepResult, lr: float, seeds: Sequence[int]) -> Any:
    """The linear warmup (as given) with the lowest mean final loss at peak ``lr`` over ``seeds`` (the choose
    seeds; a diverged seed counts as its loss before training)."""
    final = C.learnt(clean)
    means = {w: float(np.mean(C.at_seeds(clean, final, seeds, warmup_method="linear", warmup_steps=w,
                                         peak_value=lr))) for _, w in CLEAN[1:]}
    return min(means, key=lambda w: means[w])


def pre_spike_median(clean: sweep.SweepResult, lr: float, step: int, seeds: Sequence[int]) -> float:
    """The median gradient norm of the clean linear-10% runs at ``lr`` over the ``PRE_SPIKE`` steps before ``step``,
    choose seeds only: the clipping threshold "clip median"."""
    idx = [C.members(clean, warmup_method="linear", warmup_steps=SPIKE_WARMUP, peak_value=lr, seed=s)[0]
           for s in seeds]
    norms = clean.curves["grad_norm"][idx, max(0, step - PRE_SPIKE):step]
    return float(np.nanmedian(norms))


def _protect_at(kind: str | None, picks: Mapping) -> float:
    return {None: 0.0, "c1": 1.0, "median": picks["clip_median"], "skip": SKIP_MULTIPLE * picks["clip_median"]}[kind]


def _short_settings(picks: Mapping) -> list[tuple[str, str, Any]]:
    return [("none", "none", 0), (f"linear {TOO_SHORT:g}", "linear", TOO_SHORT),
            (f"linear {picks['best_warmup']} (best on choose seeds)", "linear", picks["best_warmup"]),
            (f"adaptive {TOO_SHORT:g}", "adaptive", TOO_SHORT)]


def _real_grid(size: dict, picks: Mapping, seeds: Sequence[int]) -> list[dict]:
    base = dict(skip_spikes=False, spike_step=size["spike_step"], spike_factor=1.0, protection="none",
                protect_at=0.0)
    short = list(dict.fromkeys((m, w) for _, m, w in _short_settings(picks)))
    grid = [dict(base, warmup_method=m, warmup_steps=w, peak_value=picks["high_lr"], seed=s) for m, w in short
            for s in seeds]
    for _, m, protection, kind, skip in PROTECTIONS:
        for factor in (1.0, SPIKE_FACTOR):
            grid += [dict(base, warmup_method=m, warmup_steps=SPIKE_WARMUP, peak_value=picks["mid_lr"],
                          skip_spikes=skip, spike_factor=factor, protection=protection,
                          protect_at=_protect_at(kind, picks), seed=s) for s in seeds]
    return grid


def planned_runs(size: str) -> dict[str, dict[str, int]]:
    """Configs and config-steps per task and part of a size, before it runs (the too-short part counted with the
    best fixed warmup distinct from 2%: at most this many)."""
    out = {}
    for name, s in SIZES[size].items():
        choose_seeds, report_seeds = C.seeds(s)
        clean = len(_clean_grid(s, report_seeds if s.get("heldout") else choose_seeds + report_seeds))
        picks = dict(high_lr=s["lrs"][-1], mid_lr=s["lrs"][0], best_warmup="best", clip_median=1.0)
        real = 0 if s.get("heldout") else len(_real_grid(s, picks, report_seeds))
        out[name] = dict(clean=clean, real=real, steps=s["steps"], config_steps=(clean + real) * s["steps"])
    return out


def _save(result: sweep.SweepResult, directory: str) -> None:
    """``results.json`` and ``table.txt`` (not the sweep's own figures: hundreds of configs, megabytes each)."""
    os.makedirs(directory, exist_ok=True)
    result.to_json(os.path.join(directory, "results.json"))
    with open(os.path.join(directory, "table.txt"), "w") as f:
        f.write(result.table() + "\n")


def run(size: str = "full", out: str = "runs/evidence/adaptive", figures: str | None = None,
        progress: bool = True) -> dict:
    """Runs the experiment; writes tables, JSON and figures to ``out`` (figures also to ``figures``)."""
    clock, outputs = C.Clock(), C.Outputs(out, figures)
    sizes = SIZES[size]
    clean, real, picks, seeds, scale = {}, {}, {}, {}, {}
    for task_name, s in sizes.items():
        task = _task(s, task_name)
        choose_seeds, report_seeds = C.seeds(s)
        seeds[task_name] = dict(choose=choose_seeds, report=report_seeds)
        scale[task_name] = C.scale(task, s["steps"])
        grid_seeds = report_seeds if s.get("heldout") else C.all_seeds(s)
        clean[task_name] = sweep.run(task, warmup_methods(s["steps"]), s["steps"], _clean_grid(s, grid_seeds),
                                     eval_every=s["steps"], progress=progress)
        _save(clean[task_name], outputs.path(f"clean_{task_name}"))
        clock.sample()
        if s.get("heldout"):
            continue
        lrs = s["lrs"]
        high_lr, mid_lr = lrs[-1] if task_name == "bytelm" else lrs[-2], lrs[len(lrs) // 2]
        picks[task_name] = dict(high_lr=high_lr, mid_lr=mid_lr,
                                best_warmup=best_fixed_warmup(clean[task_name], high_lr, choose_seeds),
                                clip_median=pre_spike_median(clean[task_name], mid_lr, s["spike_step"], choose_seeds))
        real[task_name] = sweep.run(task, with_spike(warmup_methods(s["steps"])), s["steps"],
                                    _real_grid(s, picks[task_name], report_seeds), eval_every=s["steps"],
                                    record=RECORD, progress=progress)
        _save(real[task_name], outputs.path(f"real_{task_name}"))
        clock.sample()
    settings = candidate_settings()
    choosing = [t for t in sizes if not sizes[t].get("heldout")]
    scores = {t: score_settings(clean[t], settings, sizes[t]["spike_step"], seeds[t]["choose"]) for t in choosing}
    chosen, feasible = choose(scores)
    frozen = {"before": BEFORE, "library defaults": library_defaults()}
    if settings[chosen] != library_defaults():
        frozen["rule's choice on the choose seeds"] = settings[chosen]
    evaluation = {t: dict(zip(frozen, score_settings(clean[t], list(frozen.values()), sizes[t]["spike_step"],
                                                     seeds[t]["report"]), strict=True)) for t in sizes}
    shown = [0, 1] + [j for j in feasible[:10] if j > 1]
    summary = dict(experiment=NAME, size=size, sizes=sizes, seeds=seeds, scale=scale, planned=planned_runs(size),
                   picks=picks, before=BEFORE,
                   library_defaults=library_defaults(), rule_choice=settings[chosen],
                   rule_matches_library=settings[chosen] == library_defaults(), feasible=len(feasible),
                   candidates=len(settings),
                   choice_scores={t: [dict(scores[t][j], index=j, score=detection_score(scores, j)) for j in shown]
                                  for t in scores},
                   evaluation=evaluation,
                   real={t: _real_summary(real[t], picks[t], sizes[t], seeds[t]["report"]) for t in real},
                   machine=C.machine())
    if "bytelm" in clean and "bytelm_no_qk" in clean and sizes["bytelm"]["lrs"] == sizes["bytelm_no_qk"]["lrs"]:
        summary["qk_control"] = qk_control(clean["bytelm"], clean["bytelm_no_qk"], sizes["bytelm"],
                                           seeds["bytelm_no_qk"]["report"])
    return C.finish(outputs, summary, clock, lambda read: draw(outputs, read, clean, real))


def qk_control(with_qk: sweep.SweepResult, without_qk: sweep.SweepResult, size: Mapping,
               report_seeds: Sequence[int]) -> dict:
    """Wortsman et al.'s control, from the clean runs: the byte LM with and without QK-LayerNorm, per fixed
    warmup, on the report seeds (the same batches): LR sensitivity and the loss at the highest LR, each
    architecture's own numbers, the difference it makes (without minus with) and what the longest warmup gains
    over none in each (Holm across the table)."""
    lrs = size["lrs"]
    per: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    for arch, res in (("with", with_qk), ("without", without_qk)):
        learnt, init = C.learnt(res), np.asarray(res.initial_loss, np.float64)
        for m, w in CLEAN:
            fixed = dict(warmup_method=m, warmup_steps=w)
            final = np.array([C.at_seeds(res, learnt, report_seeds, peak_value=lr, **fixed) for lr in lrs])
            initial = np.array([C.at_seeds(res, init, report_seeds, peak_value=lr, **fixed) for lr in lrs])
            per[(arch, _clean_label(m, w))] = dict(sensitivity=C.lr_sensitivity(final, initial), top=final[-1])
    labels = [_clean_label(m, w) for m, w in CLEAN]
    table = {f"{label}, {arch} QK-LayerNorm": {k: C.describe(v) for k, v in per[(arch, label)].items()}
             for label in labels for arch in ("with", "without")}
    rows = [dict(comparison=f"{label}: without - with QK-LayerNorm", measure=k,
                 **C.compare(per[("without", label)][k], per[("with", label)][k]))
            for label in labels for k in ("sensitivity", "top")]
    longest = labels[-1]
    rows += [dict(comparison=f"{longest} - none, {arch} QK-LayerNorm", measure=k,
                  **C.compare(per[(arch, longest)][k], per[(arch, "none")][k]))
             for arch in ("with", "without") for k in ("sensitivity", "top")]
    return dict(high_lr=lrs[-1], table=table, comparisons=C.correct(rows))


def _clean_label(m: str, w: Any) -> str:
    return "none" if m == "none" else f"{m} {w:.0%}" if isinstance(w, float) and w < 1 else f"{m} {w}"


def draw(outputs: C.Outputs, summary: Mapping, clean: Mapping[str, sweep.SweepResult],
         real: Mapping[str, sweep.SweepResult]) -> None:
    """The report and the figures, from the summary and the sweeps' results (``replot`` reads them back)."""
    outputs.text("report.md", report(summary))
    picks, sizes = summary["picks"], summary["sizes"]
    for task_name in real:
        outputs.figure(f"adaptive_factor_{task_name}.png",
                       functools.partial(F.adaptive_factor, real[task_name], picks[task_name], TOO_SHORT))
    lines = [(label, dict(warmup_method=m, protection=p, protect_at=kind, skip_spikes=skip))
             for label, m, p, kind, skip in PROTECTIONS]
    panels = []
    for t in real:
        resolved = [(label, dict(fixed, protect_at=_protect_at(kind, picks[t])))
                    for (label, fixed), (_, _, _, kind, _) in zip(lines, PROTECTIONS, strict=True)]
        panels.append((t, real[t], picks[t]["mid_lr"], sizes[t]["spike_step"], resolved))
    outputs.figure("adaptive_spike.png", functools.partial(F.spike_runs, panels, SPIKE_FACTOR, SPIKE_WARMUP))
    rules = {label: _replay_fields([setting]) for label, setting in
             (("before", summary["before"]), ("library defaults", summary["library_defaults"]),
              ("rule's choice", summary["rule_choice"]))
             if label != "rule's choice" or not summary["rule_matches_library"]}
    runs = {t: (clean[t], clean_runs(clean[t], summary["seeds"][t]["report"])) for t in clean}
    outputs.figure("adaptive_detection.png", functools.partial(F.detection, runs, rules, replay, SPIKE_FACTOR))


def figure_names(summary: Mapping) -> list[str]:
    """The figures ``draw`` writes."""
    return [f"adaptive_factor_{t}.png" for t in summary["real"]] + ["adaptive_spike.png", "adaptive_detection.png"]


def replot(out: str, figures: str | None = None) -> dict:
    """Redraws the report and the figures from a finished run in ``out``, without training."""
    summary = C.read_json(out, "summary.json")
    clean = {t: sweep.load(f"{out}/clean_{t}/results.json") for t in summary["sizes"]}
    real = {t: sweep.load(f"{out}/real_{t}/results.json") for t in summary["real"]}
    draw(C.Outputs(out, figures), summary, clean, real)
    return summary


def _real_summary(result: sweep.SweepResult, picks: Mapping, size: Mapping, report_seeds: Sequence[int]) -> dict:
    high, mid, step = picks["high_lr"], picks["mid_lr"], size["spike_step"]
    final = C.learnt(result)
    rows = result.summary()
    jumps = np.asarray([r["early_max_loss_jump"] for r in rows], np.float64)
    norms = np.asarray([r["early_max_grad_norm"] for r in rows], np.float64)
    spikes = result.curves["num_spikes"]

    def per_seed(values, **fixed):
        return C.at_seeds(result, values, report_seeds, **fixed)

    calm_spike = dict(spike_factor=1.0, protection="none", skip_spikes=False)
    short, finals = {}, {}
    for label, m, w in _short_settings(picks):
        fixed = dict(calm_spike, warmup_method=m, warmup_steps=w, peak_value=high)
        finals[label] = per_seed(final, **fixed)
        short[label] = dict(final_loss=C.describe(finals[label]),
                            early_max_loss_jump=C.describe(per_seed(jumps, **fixed)),
                            early_max_grad_norm=C.describe(per_seed(norms, **fixed)),
                            backoffs=[float(b) for b in per_seed(spikes[:, -1], **fixed)] if m == "adaptive" else None)
    labels = list(short)
    adaptive_label = labels[3]
    comparisons = dict(zip([f"{adaptive_label} - {other}" for other in labels[:3]],
                           C.correct([C.compare(finals[adaptive_label], finals[other]) for other in labels[:3]]),
                           strict=True))
    loss = result.curves["loss"]
    after = slice(step + 1, min(step + 21, loss.shape[1]))
    with C.quiet_nan():
        next20 = np.nanmean(loss[:, after], 1) if after.start < loss.shape[1] else np.full(len(result), np.nan)
    spike, hit_finals = {}, {}
    for label, m, protection, kind, skip in PROTECTIONS:
        fixed = dict(warmup_method=m, warmup_steps=SPIKE_WARMUP, peak_value=mid, protection=protection,
                     protect_at=_protect_at(kind, picks), skip_spikes=skip)
        hit, calm = per_seed(final, spike_factor=SPIKE_FACTOR, **fixed), per_seed(final, spike_factor=1.0, **fixed)
        hit_finals[label] = hit
        flagged = None
        if m == "adaptive":
            n = per_seed(spikes[:, step], spike_factor=SPIKE_FACTOR, **fixed)
            before = per_seed(spikes[:, step - 1], spike_factor=SPIKE_FACTOR, **fixed) if step > 0 else 0 * n
            flagged = [bool(a > b) for a, b in zip(n, before, strict=True)]
        cost20 = per_seed(next20, spike_factor=SPIKE_FACTOR, **fixed) - per_seed(next20, spike_factor=1.0, **fixed)
        spike[label] = dict(flagged=flagged, threshold=_protect_at(kind, picks) if kind else None,
                            final_loss=C.describe(hit), final_loss_without_spike=C.describe(calm),
                            final_cost=C.compare(hit, calm), loss_cost_next_20_steps=C.describe(cost20),
                            diverged_with_spike=int(np.sum(~np.isfinite(
                                per_seed(result.final_loss, spike_factor=SPIKE_FACTOR, **fixed)))))
    C.correct([cast(dict, v["final_cost"]) for v in spike.values()])
    base = PROTECTIONS[0][0]
    versus = dict(zip([f"{label} - {base}" for label, *_ in PROTECTIONS[1:]],
                      C.correct([C.compare(hit_finals[label], hit_finals[base]) for label, *_ in PROTECTIONS[1:]]),
                      strict=True))
    return dict(short=short, comparisons=comparisons, spike=spike, protection_vs_none=versus)


# --------------------------------------------------------------------------------------------------- report


def _setting_label(s: Mapping) -> str:
    return (f"decay {s['decay']:g}, zscore {s['zscore']:g}, norm_ratio {s['norm_ratio']:g}, "
            f"min_observations {s['min_observations']:g}, warm-up {'yes' if s['warmup'] else 'no'}")


def _mean(d: Mapping | None) -> str:
    return "n/a" if d is None or not math.isfinite(C._num(d["mean"])) else f"{C._num(d['mean']):.2f}"


def _scale_line(name: str, sc: Mapping) -> str:
    tokens = f", {sc['tokens']:,} tokens (steps x batch {sc['batch_size']} x context {sc['context']})" \
        if "tokens" in sc else f", {sc.get('examples', 0):,} examples (steps x batch {sc['batch_size']})"
    return f"- {name}: {sc['parameters']:,} parameters, {sc['steps']} steps{tokens}"


def report(summary: Mapping) -> str:
    """The experiment's tables in Markdown."""
    sizes, seeds = summary["sizes"], summary["seeds"]
    choosing = list(summary["choice_scores"])
    lines = [f"## Metric-adapted duration (`optax-warmup evidence adaptive --size {summary['size']}`)", "",
             "Seeds: " + "; ".join(f"{t}: choose {seeds[t]['choose']}, report {seeds[t]['report']}"
                                   + (" (held out: chooses nothing, report seeds only)" if sizes[t].get("heldout")
                                      else "") for t in sizes) + ".", "", "Model scale:", ""]
    lines += [_scale_line(t, summary["scale"][t]) for t in sizes] + [""]
    lines += ["Runs: " + "; ".join(f"{t}: {p['clean']} clean + {p['real']} real configs x {p['steps']} steps"
                                   for t, p in summary["planned"].items()) + ".", ""]
    head = ["setting", "rule score"] + [f"{t}: {k}" for t in choosing for k in (
        "calm back-offs/run", "high-LR back-offs/run", "10x", "100x", "1000x")]
    rows = []
    for k, row0 in enumerate(summary["choice_scores"][choosing[0]]):
        tag = "before: " if k == 0 else "library defaults: " if k == 1 else ""
        cells = [tag + _setting_label(row0["setting"]), f"{row0['score']:.3f}"]
        for t in choosing:
            r = summary["choice_scores"][t][k]
            cells += [_mean(r["calm_flags"]), _mean(r["high_flags"])] + [_mean(r[f"detect_{int(f)}x"])
                                                                         for f in SPIKE_SIZES]
        rows.append(cells)
    lines += ["### Choosing the spike test's settings (choose seeds only: in-sample, means over runs)", "",
              f"{summary['candidates']} settings replayed over the clean runs of the choose seeds; detection = the "
              f"fraction of steps {SCORED[0]}-{SCORED[1] - 1} at which a gradient spike of that size would be "
              f"flagged. The rule: calm back-offs <= {CALM_FLAGS:g} per run on every task, then the best detection "
              f"averaged over the tasks and the three sizes ({summary['feasible']} settings qualify; listed: the "
              "settings before and now, then the best ten that qualify, less those two).", "",
              C.markdown_table(head, rows), ""]
    match = summary["rule_matches_library"]
    lines += [f"Rule's choice on the choose seeds: {_setting_label(summary['rule_choice'])}. The library's defaults "
              + ("are this setting." if match else "are DIFFERENT (the library's defaults were not changed; both are "
                                                   "evaluated below)."), ""]
    lines += ["### The frozen settings on fresh seeds and on a held-out task", "",
              "Each cell: mean over runs ± half-width of its 95% Student-t interval over runs (calm runs: the two "
              "lowest LRs; high-LR runs: the two highest; detection: each run's fraction of steps "
              f"{SCORED[0]}-{SCORED[1] - 1} at which the spike would be flagged, then the t-interval over runs; "
              "runs of one seed at different LRs are not independent, so the intervals are optimistic). "
              "Runs that diverged are left out (no trajectory to replay).", ""]
    head = ["task (runs)", "setting", "calm back-offs/run", "high-LR back-offs/run", "10x", "100x", "1000x",
            "1000x at the spike step", f"later steps ({SCORED[1]}+): 10x"]
    rows = []
    for t, per in summary["evaluation"].items():
        for label, r in per.items():
            tag = f"{t}{' (held out)' if sizes[t].get('heldout') else ''} ({r['runs']})"
            rows.append([tag, label, C.fmt(r["calm_flags"], 2), C.fmt(r["high_flags"], 2)]
                        + [C.fmt(r[f"detect_{int(f)}x"], 2) for f in SPIKE_SIZES]
                        + [C.fmt(r["detect_1000x_at_spike_step"], 2),
                           C.fmt(r["late_detect_10x"], 2) if r["late_detect_10x"] else "n/a"])
    lines += [C.markdown_table(head, rows), ""]
    for t, real in summary["real"].items():
        p, n = summary["picks"][t], len(seeds[t]["report"])
        lines += [f"### {t}: too-short adaptive warmup at peak LR {p['high_lr']:g} ({n} report seeds)", "",
                  "Final evaluation loss (a diverged run counts as its loss before training), mean ± half-width of "
                  "the 95% t-interval over seeds.", ""]
        lines.append(C.markdown_table(
            ["warmup", "final loss", "early max loss jump", "early max grad norm", "back-offs per seed"],
            [[k, C.fmt(v["final_loss"]), C.fmt(v["early_max_loss_jump"], 2), C.fmt(v["early_max_grad_norm"], 2),
              ", ".join(f"{b:g}" for b in v["backoffs"]) if v["backoffs"] is not None else ""]
             for k, v in real["short"].items()]))
        lines += ["", f"Paired differences of final loss ({C.STATS_NOTE}):", ""]
        lines += [f"- {k}: {C.fmt_diff(v)}" for k, v in real["comparisons"].items()] + [""]
        step = sizes[t]["spike_step"]
        lines += [f"### {t}: a {SPIKE_FACTOR:g}x gradient spike at step {step}, peak LR {p['mid_lr']:g}, "
                  f"warmup {SPIKE_WARMUP:g} ({n} report seeds)", "",
                  f"Clipping thresholds from the choose seeds' clean linear-{SPIKE_WARMUP:g} runs at this LR: the "
                  f"median gradient norm over steps {max(0, step - PRE_SPIKE)}-{step - 1} is "
                  f"{p['clip_median']:.4g}; skip threshold {SKIP_MULTIPLE:g}x that. Cost of the spike = final loss "
                  f"with it minus without it, per seed ({C.STATS_NOTE}).", ""]
        lines.append(C.markdown_table(
            ["protection", "flagged (per seed)", "final loss with the spike", "without the spike",
             "cost of the spike", "loss cost, next 20 steps"],
            [[k, "" if v["flagged"] is None else f"{sum(v['flagged'])}/{len(v['flagged'])}",
              C.fmt(v["final_loss"]), C.fmt(v["final_loss_without_spike"]), C.fmt_diff(v["final_cost"]),
              C.fmt(v["loss_cost_next_20_steps"])] for k, v in real["spike"].items()]))
        lines += ["", "Final loss with the spike, each protection against none (paired, Holm across these rows):",
                  ""]
        lines += [f"- {k}: {C.fmt_diff(v)}" for k, v in real["protection_vs_none"].items()] + [""]
    lines.append("Figures: " + ", ".join(figure_names(summary)) + ".")
    lines.append("")
    if "qk_control" in summary:
        q = summary["qk_control"]
        lines += ["### Control: the byte LM with and without QK-LayerNorm (clean runs, report seeds)", "",
                  C.markdown_table(["warmup, architecture", "LR sensitivity", f"loss at LR {q['high_lr']:g}"],
                                   [[k, C.fmt(v["sensitivity"]), C.fmt(v["top"])] for k, v in q["table"].items()]),
                  "", f"Paired; {C.STATS_NOTE}:", "",
                  C.markdown_table(["comparison", "measure", "difference"],
                                   [[r["comparison"], "LR sensitivity" if r["measure"] == "sensitivity"
                                     else f"loss at LR {q['high_lr']:g}", C.fmt_diff(r)]
                                    for r in q["comparisons"]]), ""]
    lines.append(C.timing_line(summary))
    return "\n".join(lines) + "\n"
