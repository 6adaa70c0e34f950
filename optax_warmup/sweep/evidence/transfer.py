"""Evidence (c): warmup when fine-tuning a pretrained model, and what it does to forgetting.

The byte LM is pretrained once on the standard library's code (cached under ``runs/cache/``), then fine-tuned on
the English prose of ``pydoc_data/topics.py``. The sweep: fine-tune peak LR x (warmup, per-group variant) x seeds,
every config from the same pretrained parameters (a seed is a stream of prose batches). The evaluation reports the
prose validation loss (the goal) and the code validation loss (forgetting) every few steps, from step 0.

Seeds are split (``_common.seeds``): each setting's best LR is chosen on the *choose* seeds only; every reported
number (tables, paired comparisons, figures) reads the fresh *report* seeds only. Each table's comparisons are
Holm-corrected together (``_common.correct``).

Per-group variants (``per_group_warmup``; "lower" = the embeddings, the positions and the lower half of the
blocks, "upper" = the rest):

* ``uniform``: one schedule for every parameter.
* ``lower_long``: the lower group always warms up over the long warmup; the upper group uses the config's warmup.
* ``upper_long``: the mirror control: the upper group always warms up over the long warmup; the lower group uses
  the config's warmup.
* ``lower_low``: the lower group's peak is a tenth of the upper group's (same warmup).

Every schedule is the cosine of the whole run (peak to 10% of it) times a linear warmup factor, as in the methods
experiment, so the warmup is the only difference.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import optax

from optax_warmup import sweep
from optax_warmup._decay import cosine_decay_schedule
from optax_warmup._numeric import quiet_nan
from optax_warmup._transforms import per_group_warmup
from optax_warmup._warmup import warmup_overlay
from optax_warmup.sweep.evidence import _common as C
from optax_warmup.sweep.evidence import _figures as F
from optax_warmup.sweep.tasks.finetune import finetune, lower_upper_labels

NAME = "transfer"
WARMUPS = {"none": 0, "short": 0.05, "long": 0.25}
SETTINGS = [("none", "uniform"), ("short", "uniform"), ("long", "uniform"), ("none", "lower_long"),
            ("none", "upper_long"), ("none", "lower_low"), ("long", "lower_low")]
REFERENCE = ("none", "uniform")  # every setting is compared with it, seed by seed
CONTROL = [(("none", "upper_long"), ("none", "lower_long")), (("none", "upper_long"), ("long", "uniform")),
           (("none", "lower_long"), ("long", "uniform"))]
LOWER_PEAK = 0.1
SIZES: dict[str, dict[str, Any]] = {
    "full": dict(task=dict(d_model=32, valid_windows=128), steps=150, eval_every=5,
                 lrs=[3e-4, 1e-3, 3e-3, 1e-2, 3e-2], choose_seeds=5, report_seeds=10, pretrain=dict(steps=1500)),
    "quick": dict(task=dict(d_model=32, valid_windows=128), steps=100, eval_every=5,
                  lrs=[3e-4, 1e-3, 3e-3, 1e-2, 3e-2], choose_seeds=2, report_seeds=3, pretrain=dict(steps=600)),
    "tiny": dict(task=dict(d_model=16, n_layers=2, n_heads=2, context=16, batch_size=4, valid_windows=32,
                           max_files=30, max_topics=40), steps=12, eval_every=4, lrs=[1e-3, 3e-2], choose_seeds=1,
                 report_seeds=3, pretrain=dict(steps=30, batch_size=8)),
}
EARLY_FRACTION = 0.2
METRICS = {"prose": "final prose loss", "forgetting": "forgetting (code loss rise)",
           "code_early_rise": "early code-loss rise (first 20%)", "prose_early_rise": "early prose-loss rise"}
COMPARED = ("prose", "forgetting", "code_early_rise")  # the metrics of the comparison tables


def optimizer(steps: int, n_layers: int, weight_decay: float = 0.01):
    """``hp -> AdamW``: the axes ``peak_value``, ``warmup_steps`` (a duration) and ``variant`` (static)."""
    long_steps = int(np.ceil(WARMUPS["long"] * steps))

    def schedule(peak, warmup):
        return warmup_overlay(cosine_decay_schedule(peak, steps, 0.1), warmup)

    def adamw(learning_rate):
        return optax.adamw(learning_rate, weight_decay=weight_decay)

    def labels(params):
        return lower_upper_labels(params, n_layers)

    def factory(hp: Mapping[str, Any]):
        peak, warmup, variant = hp["peak_value"], hp["warmup_steps"], hp["variant"]
        if variant == "uniform":
            return adamw(schedule(peak, warmup))
        if variant == "lower_long":
            return per_group_warmup(adamw, {"lower": schedule(peak, long_steps), "upper": schedule(peak, warmup)},
                                    labels)
        if variant == "upper_long":
            return per_group_warmup(adamw, {"lower": schedule(peak, warmup), "upper": schedule(peak, long_steps)},
                                    labels)
        if variant == "lower_low":
            return per_group_warmup(adamw, {"lower": schedule(LOWER_PEAK * peak, warmup),
                                            "upper": schedule(peak, warmup)}, labels)
        raise ValueError(f"variant must be uniform, lower_long, upper_long or lower_low, got {variant!r}")

    return factory


def _grid(size: dict) -> list[dict]:
    return [dict(variant=v, warmup_steps=WARMUPS[w], peak_value=lr, seed=s) for w, v in SETTINGS
            for lr in size["lrs"] for s in C.all_seeds(size)]


def _label(w: str, v: str) -> str:
    return f"{w} warmup, {v}"


def _fixed(w: str, v: str, **more) -> dict:
    return dict(variant=v, warmup_steps=WARMUPS[w], **more)


def metrics(result: sweep.SweepResult) -> dict[str, np.ndarray]:
    """Per config: final prose loss, forgetting (final code loss minus the step-0 code loss, the pretrained
    model's), and early damage (the largest rise of each validation loss above its step-0 value over the
    evaluations in the first 20% of the steps). NaN for a run frozen by a non-finite value."""
    prose, code = result.eval["loss"], result.eval["code_loss"]
    steps = np.asarray(result.eval_steps)
    early = steps <= max(steps[1], EARLY_FRACTION * result.steps)
    dead = result.diverged_step >= 0
    with quiet_nan():
        out = dict(prose=prose[:, -1], forgetting=code[:, -1] - code[:, 0],
                   code_early_rise=np.nanmax(code[:, early] - code[:, :1], 1),
                   prose_early_rise=np.nanmax(prose[:, early] - prose[:, :1], 1))
    return {k: np.where(dead, np.nan, v).astype(np.float64) for k, v in out.items()}


def best_lrs(result: sweep.SweepResult, lrs: list[float], choose: list[int]) -> dict[tuple[str, str], float]:
    """Each setting's best peak LR: the lowest mean final prose loss over the *choose* seeds (a diverged run counts
    as its loss before training; ties go to the lower LR)."""
    learnt = C.learnt(result)
    out = {}
    for w, v in SETTINGS:
        means = [float(np.mean(C.at_seeds(result, learnt, choose, **_fixed(w, v, peak_value=lr)))) for lr in lrs]
        out[(w, v)] = float(lrs[int(np.argmin(means))])
    return out


def lr_sensitivity(result: sweep.SweepResult, lrs: list[float], seed_list: list[int], w: str, v: str) -> np.ndarray:
    """Wortsman et al.'s LR sensitivity of the prose loss, per seed of ``seed_list``: the mean over the LR grid of
    ``min(L, L_init)`` minus its minimum over the grid (a diverged run counts as ``L_init``)."""
    learnt = C.learnt(result)
    init = np.asarray(result.initial_loss, np.float64)
    capped = np.array([np.minimum(C.at_seeds(result, learnt, seed_list, **_fixed(w, v, peak_value=lr)),
                                  C.at_seeds(result, init, seed_list, **_fixed(w, v, peak_value=lr)))
                       for lr in lrs])  # [lr, seed]
    return capped.mean(0) - capped.min(0)


def _describe_all(m: Mapping[str, np.ndarray], per: Mapping[str, np.ndarray], fill: np.ndarray) -> dict:
    """``describe`` of every metric; the prose loss of a diverged run is its loss before training."""
    return {k: C.describe(per[k], fill=fill if k == "prose" else None) for k in m}


def tables(result: sweep.SweepResult, s: Mapping) -> dict:
    """Every table of the report, as lists of dicts (report seeds only; the best LRs from the choose seeds)."""
    choose, report = C.seeds(s)
    lrs, high = list(s["lrs"]), float(s["lrs"][-1])
    m = metrics(result)
    init = np.asarray(result.initial_loss, np.float64)
    best = best_lrs(result, lrs, choose)
    lr_at = {"own_best": lambda w, v: best[(w, v)], "high": lambda w, v: high}

    def values(w, v, lr, k):  # per report seed; prose of a diverged run = its loss before training
        x = C.at_seeds(result, m[k], report, **_fixed(w, v, peak_value=lr))
        if k == "prose":
            x = np.where(np.isfinite(x), x, C.at_seeds(result, init, report, **_fixed(w, v, peak_value=lr)))
        return x

    out: dict[str, Any] = {}
    for point, lr_of in lr_at.items():
        rows = []
        for w, v in SETTINGS:
            lr = lr_of(w, v)
            fill = C.at_seeds(result, init, report, **_fixed(w, v, peak_value=lr))
            per = {k: C.at_seeds(result, m[k], report, **_fixed(w, v, peak_value=lr)) for k in m}
            rows.append(dict(warmup=w, variant=v, peak_value=lr, **_describe_all(m, per, fill)))
        out[point] = rows
        comps = []
        for w, v in SETTINGS:
            if (w, v) == REFERENCE:
                continue
            for k in COMPARED:
                c = C.compare(values(w, v, lr_of(w, v), k), values(*REFERENCE, lr_of(*REFERENCE), k))
                comps.append(dict(warmup=w, variant=v, peak_value=lr_of(w, v),
                                  reference_peak_value=lr_of(*REFERENCE), metric=k, **c))
        out[f"{point}_vs_reference"] = C.correct(comps)
    control = []
    for a, b in CONTROL:
        for k in COMPARED:
            c = C.compare(values(*a, best[a], k), values(*b, best[b], k))
            control.append(dict(comparison=f"{_label(*a)} - {_label(*b)}", a=list(a), b=list(b),
                                a_peak_value=best[a], b_peak_value=best[b], metric=k, **c))
    out["control_own_best"] = C.correct(control)
    sens = {(w, v): lr_sensitivity(result, lrs, report, w, v) for w, v in SETTINGS}
    out["lr_sensitivity"] = [dict(warmup=w, variant=v, **C.describe(sens[(w, v)])) for w, v in SETTINGS]
    out["lr_sensitivity_vs_reference"] = C.correct(
        [dict(warmup=w, variant=v, metric="lr_sensitivity", **C.compare(sens[(w, v)], sens[REFERENCE]))
         for w, v in SETTINGS if (w, v) != REFERENCE])
    out["best_lr"] = [dict(warmup=w, variant=v, peak_value=lr, chosen_on_seeds=choose) for (w, v), lr in best.items()]
    return out


def run(size: str = "full", out: str = "runs/evidence/transfer", figures: str | None = None,
        progress: bool = True, cache_dir: str = os.path.join("runs", "cache")) -> dict:
    """Runs the experiment; writes tables, JSON and figures to ``out`` (figures also to ``figures``); the
    pretrained model is cached in ``cache_dir``."""
    clock, outputs = C.Clock(), C.Outputs(out, figures)
    s = SIZES[size]
    task = finetune(**s["task"], pretrain_settings=s["pretrain"], cache_dir=cache_dir, progress=progress)
    clock.sample()
    n_layers = task.info["model"]["n_layers"]
    result = sweep.run(task, optimizer(s["steps"], n_layers), s["steps"], _grid(s), eval_every=s["eval_every"],
                       progress=progress, out_dir=outputs.path("finetune"))
    clock.sample()
    choose, report_seeds = C.seeds(s)
    info = task.info
    scale = dict(C.scale(task, s["steps"]), d_model=info["model"]["d_model"], n_layers=n_layers,
                 n_heads=info["model"]["n_heads"], eval_every=s["eval_every"], runs=len(result),
                 settings=len(SETTINGS), lrs=len(s["lrs"]), choose_seeds=choose, report_seeds=report_seeds)
    summary = dict(experiment=NAME, size=size, settings=s, scale=scale, pretrain=info["pretrain"],
                   pretrained=dict(prose_loss=float(result.eval["loss"][0, 0]),
                                   code_loss=float(result.eval["code_loss"][0, 0]),
                                   prose_unigram=info["prose_unigram_cross_entropy"],
                                   code_unigram=info["code_unigram_cross_entropy"]),
                   tables=tables(result, s), machine=C.machine())
    return C.finish(outputs, summary, clock, lambda read: draw(outputs, read, result))


def replot(out: str, figures: str | None = None) -> dict:
    """Redraws the report and the figures from a finished run in ``out``, without training."""
    summary = C.read_json(out, "summary.json")
    draw(C.Outputs(out, figures), summary, sweep.load(f"{out}/finetune/results.json"))
    return summary


def draw(outputs: C.Outputs, summary: Mapping, result: sweep.SweepResult) -> None:
    """The report and the figures (report seeds only), from the summary and the sweep's results."""
    outputs.text("report.md", report(summary))
    s = summary["settings"]
    _, report_seeds = C.seeds(s)
    lrs, high = s["lrs"], float(s["lrs"][-1])
    best = {(r["warmup"], r["variant"]): float(r["peak_value"]) for r in summary["tables"]["best_lr"]}
    warmups = [(w, "uniform") for w in WARMUPS]
    groups = [("none", "uniform"), ("long", "uniform"), ("none", "lower_long"), ("none", "upper_long"),
              ("none", "lower_low"), ("long", "lower_low")]

    def own(w: str, v: str) -> float:
        return best[(w, v)]

    def lines(settings, lr_of, show_lr=False):
        return [(_label(w, v) + (f" (LR {lr_of(w, v):g})" if show_lr else ""),
                 _label(w, v), C.at_seeds(result, np.arange(len(result)), report_seeds,
                                          **_fixed(w, v, peak_value=lr_of(w, v))).astype(int))
                for w, v in settings]

    rows = [[("at each setting's own best LR: warmup", lines(warmups, own, True)),
             ("at each setting's own best LR: per group", lines(groups, own, True))],
            [(f"at the high LR {high:g}: warmup", lines(warmups, lambda w, v: high)),
             (f"at the high LR {high:g}: per group", lines(groups, lambda w, v: high))]]
    band = f"95% t-interval of the mean, {len(report_seeds)} fresh seeds"
    for metric, name, ylabel in (("loss", "prose", "prose validation loss"),
                                 ("code_loss", "code", "code validation loss (forgetting)")):
        outputs.figure(f"transfer_{name}_curves.png", functools.partial(
            F.eval_band_rows, rows, result, metric=metric, ylabel=ylabel, band_label=band))
    m = metrics(result)
    cells = np.array([[np.mean(C.at_seeds(result, m["forgetting"], report_seeds, **_fixed(w, v, peak_value=lr)))
                       for lr in lrs] for w, v in SETTINGS])

    def heat(path: str) -> str:
        return F.heatmap(cells, [_label(w, v) for w, v in SETTINGS], [f"{lr:g}" for lr in lrs], path,
                         "fine-tuning: forgetting (code loss rise)",
                         colorbar=f"mean of {len(report_seeds)} fresh seeds")

    outputs.figure("transfer_forgetting_heatmap.png", heat)


def _seconds(pretrain: Mapping) -> str:
    return f", trained in {pretrain['seconds']:.0f} s" if "seconds" in pretrain else ""


def _seed_range(seeds: list[int]) -> str:
    return f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"{seeds[0]}"


def _metric_table(rows: list[dict], lr_header: str) -> str:
    header = ["warmup", "variant", lr_header, *(METRICS[k] for k in ("prose", "forgetting", "code_early_rise"))]
    return C.markdown_table(header, [[r["warmup"], r["variant"], f"{r['peak_value']:g}",
                                      *(f"{C.fmt(r[k])} (n={r[k]['n']})" for k in ("prose", "forgetting",
                                                                                  "code_early_rise"))]
                                     for r in rows])


def _comparison_table(comps: list[dict], key: tuple[str, ...], name: str) -> str:
    by: dict[tuple, dict[str, dict]] = {}
    for c in comps:
        by.setdefault(tuple(c[k] if not isinstance(c[k], list) else tuple(c[k]) for k in key), {})[c["metric"]] = c
    rows = []
    for cells in by.values():
        first = next(iter(cells.values()))
        rows.append([name.format(**first), *(C.fmt_diff(cells[m]) for m in COMPARED)])
    return C.markdown_table(["comparison", *(METRICS[m] for m in COMPARED)], rows)


def report(summary: Mapping) -> str:
    """The experiment's tables in Markdown."""
    pre, sc, t = summary["pretrained"], summary["scale"], summary["tables"]
    choose, rep = sc["choose_seeds"], sc["report_seeds"]
    n = len(rep)
    lines = [f"## Transfer (`optax-warmup evidence transfer --size {summary['size']}`)", "",
             f"Scale: a byte LM of {sc['parameters']:,} parameters (d_model {sc['d_model']}, {sc['n_layers']} "
             f"layers, {sc['n_heads']} heads, context {sc['context']}); each fine-tuning is {sc['steps']} steps of "
             f"batch {sc['batch_size']} = {sc['tokens']:,} tokens, evaluated every {sc['eval_every']} steps from "
             f"step 0; {sc['runs']} fine-tunings ({sc['settings']} settings x {sc['lrs']} LRs x "
             f"{len(choose) + n} seeds).", "",
             f"Pretrained model: prose loss {pre['prose_loss']:.3f}, code loss {pre['code_loss']:.3f} (unigram: "
             f"prose {pre['prose_unigram']:.3f}, code {pre['code_unigram']:.3f}); pretraining "
             f"{summary['pretrain']['settings']}"
             f"{' (from the cache)' if summary['pretrain']['cached'] else _seconds(summary['pretrain'])}.", "",
             f"Seeds: each setting's best LR is chosen on seeds {_seed_range(choose)} (lowest mean final prose loss); "
             f"every number below is from the {n} fresh seeds {_seed_range(rep)}: mean ± half-width of the 95% "
             "Student-t interval, n seeds. A diverged run's prose loss counts as its loss before training; its "
             "forgetting makes the entry \"diverged\".", ""]
    lines += [f"At each setting's own best LR (chosen on seeds {_seed_range(choose)}):", "",
              _metric_table(t["own_best"], "best LR"), ""]
    high = t["high"][0]["peak_value"]
    lines += [f"At the high LR ({high:g}, the top of the grid):", "", _metric_table(t["high"], "peak LR"), ""]
    ref = _label(*REFERENCE)
    lines += [f"Paired differences, each setting minus {ref}, each at its own best LR (same seeds; Holm across "
              f"this table):", "",
              _comparison_table(t["own_best_vs_reference"], ("warmup", "variant"),
                                "{warmup}, {variant} ({peak_value:g}) - " + REFERENCE[0] + ", " + REFERENCE[1]
                                + " ({reference_peak_value:g})"), "",
              f"Legend: {C.STATS_NOTE}.", ""]
    lines += [f"Paired differences, each setting minus {ref}, all at the high LR {high:g} (Holm across this table):",
              "", _comparison_table(t["high_vs_reference"], ("warmup", "variant"),
                                    "{warmup}, {variant} - " + REFERENCE[0] + ", " + REFERENCE[1]), "",
              f"Legend: {C.STATS_NOTE}.", ""]
    lines += ["Control, which layers need the warmup: upper_long (only the upper group warms up over the long "
              "warmup) vs lower_long (only the lower group) vs long warmup for every parameter, each at its own "
              "best LR (paired; Holm across this table):", "",
              _comparison_table(t["control_own_best"], ("comparison",),
                                "{comparison} ({a_peak_value:g} vs {b_peak_value:g})"), "",
              f"Legend: {C.STATS_NOTE}.", ""]
    sens_cmp = {(c["warmup"], c["variant"]): c for c in t["lr_sensitivity_vs_reference"]}
    lines += [f"LR sensitivity of the prose loss (Wortsman et al.: per seed, the mean over the {sc['lrs']} LRs of "
              f"min(L, L_init) minus its minimum; lower = less dependent on the LR), and the paired difference "
              f"from {ref} (Holm across this table):", "",
              C.markdown_table(["warmup", "variant", "sensitivity", f"minus {ref}"],
                               [[r["warmup"], r["variant"], f"{C.fmt(r)} (n={r['n']})",
                                 C.fmt_diff(sens_cmp[(r["warmup"], r["variant"])])
                                 if (r["warmup"], r["variant"]) in sens_cmp else "reference"]
                                for r in t["lr_sensitivity"]]), ""]
    lines.append(C.timing_line(summary, " (pretraining included when not cached)"))
    return "\n".join(lines) + "\n"
