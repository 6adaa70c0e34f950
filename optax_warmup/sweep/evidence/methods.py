"""Evidence (a): warmup methods head to head, on the byte LM and on the digits task, and one long run.

Every method trains AdamW under the same cosine decay over the whole run; only the warmup multiplied onto it
differs (``optax_warmup.sweep.optimizers.warmup_methods`` says exactly what each one is). The grid: methods x peak
LR x seeds at ``b2 = 0.95``, and no warmup, four fixed linear warmups (10 / 25 / 50 / 75%) and the untuned warmup
(``2 / (1 - b2)`` steps) again at ``b2 = 0.98``: whether the untuned length is right because it follows ``b2`` or
because it is long. The peak-LR grid has 2x steps around the optimum.

Held out: seeds ``0 .. choose_seeds - 1`` choose (each setting's best peak LR, the best fixed warmup); every
reported number comes from the next ``report_seeds`` fresh seeds. Paired comparisons (same seed = same
initialisation and batches) are Student-t over the report seeds, with Holm's correction across each table.

The long runs, where the untuned warmup is a tenth of the run: digits for 20,000 steps at ``b2 = 0.999`` (2,000
steps), and the byte LM for 2,000 steps at ``b2 = 0.99`` (200 steps), each against fixed warmups of 2.5 / 25 / 50%
and none, at the peak LR the short runs of the same task chose for the 10% warmup on their choose seeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optax_warmup import sweep
from optax_warmup.sweep.evidence import _common as C
from optax_warmup.sweep.evidence import _figures as F
from optax_warmup.sweep.optimizers import warmup_methods
from optax_warmup.sweep.tasks import BUILTIN

NAME = "methods"
# (label, warmup_method, warmup_steps, b2)
SETTINGS = [
    ("none", "none", 0, 0.95), ("linear 2%", "linear", 0.02, 0.95), ("linear 10%", "linear", 0.1, 0.95),
    ("linear 25%", "linear", 0.25, 0.95), ("linear 50%", "linear", 0.5, 0.95), ("linear 75%", "linear", 0.75, 0.95),
    ("exponential 10%", "exponential", 0.1, 0.95), ("untuned", "untuned", 0, 0.95), ("radam", "radam", 0, 0.95),
    ("radam_sgd", "radam_sgd", 0, 0.95), ("adaptive 10%", "adaptive", 0.1, 0.95), ("gi_adam", "gi_adam", 0, 0.95),
    ("update_limit", "update_limit", 0, 0.95),
    ("none", "none", 0, 0.98), ("linear 10%", "linear", 0.1, 0.98), ("linear 25%", "linear", 0.25, 0.98),
    ("linear 50%", "linear", 0.5, 0.98), ("linear 75%", "linear", 0.75, 0.98), ("untuned", "untuned", 0, 0.98),
]
FIXED = ("linear 10%", "linear 25%", "linear 50%", "linear 75%")  # the fixed lengths a user would choose from
LONG = [("none", "none", 0), ("linear 2.5%", "linear", 0.025), ("untuned", "untuned", 0),
        ("linear 25%", "linear", 0.25), ("linear 50%", "linear", 0.5)]
_NOT_ON_BYTELM = ("linear 2% @ 0.95", "exponential 10% @ 0.95", "none @ 0.98")  # CPU: digits only
BYTELM_LRS = [1e-3, 2e-3, 4e-3, 8e-3, 3e-2, 1e-1]
DIGITS_LRS = [1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2, 1e-1, 3e-1]


def _names(exclude=()) -> list[str]:
    return [f"{x[0]} @ {x[3]:g}" for x in SETTINGS if f"{x[0]} @ {x[3]:g}" not in exclude]


SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "bytelm": dict(task=dict(d_model=32, valid_windows=128), steps=200, lrs=BYTELM_LRS, high_lr=1e-1,
                       choose_seeds=5, report_seeds=10, settings=_names(_NOT_ON_BYTELM)),
        "digits": dict(task=dict(), steps=300, lrs=DIGITS_LRS, high_lr=1e-1, choose_seeds=5, report_seeds=10),
        "long": dict(builder="digits", task=dict(), steps=20_000, b2=0.999, choose_seeds=5, report_seeds=10,
                     lr_from="digits", eval_every=500),
        "long_bytelm": dict(builder="bytelm", task=dict(d_model=32, valid_windows=128), steps=2_000, b2=0.99,
                            choose_seeds=5, report_seeds=10, lr_from="bytelm", eval_every=100),
    },
    "quick": {
        "bytelm": dict(task=dict(d_model=32, valid_windows=128), steps=150, lrs=[1e-3, 4e-3, 3e-2, 1e-1],
                       high_lr=1e-1, choose_seeds=2, report_seeds=3,
                       settings=["none @ 0.95", "linear 10% @ 0.95", "linear 50% @ 0.95", "untuned @ 0.95",
                                 "radam @ 0.95", "radam_sgd @ 0.95", "linear 10% @ 0.98", "linear 50% @ 0.98",
                                 "untuned @ 0.98"]),
        "digits": dict(task=dict(), steps=200, lrs=[1e-3, 4e-3, 1.6e-2, 1e-1, 3e-1], high_lr=1e-1, choose_seeds=2,
                       report_seeds=3),
        "long": dict(builder="digits", task=dict(), steps=2_000, b2=0.99, choose_seeds=2, report_seeds=3,
                     lr_from="digits", eval_every=200),
    },
    "tiny": {  # four methods and a short "long" run: a smoke test of seconds
        "digits": dict(task=dict(hidden=(16,)), steps=20, lrs=[1e-2, 1e-1], high_lr=1e-1, choose_seeds=1,
                       report_seeds=3, settings=["none @ 0.95", "linear 10% @ 0.95", "untuned @ 0.95",
                                                 "adaptive 10% @ 0.95"]),
        "long": dict(builder="digits", task=dict(hidden=(16,)), steps=60, b2=0.8, choose_seeds=1, report_seeds=3,
                     lr_from="digits", eval_every=20),
    },
}


def settings_of(size: dict) -> list[tuple]:
    """The settings a size runs: all of ``SETTINGS``, or those named ``"label @ b2"`` in ``size["settings"]``."""
    names = size.get("settings")
    return list(SETTINGS) if names is None else [x for x in SETTINGS if f"{x[0]} @ {x[3]:g}" in names]


def _key(label: str, b2: float) -> str:
    return f"{label} @ b2={b2:g}"


def _grid(size: dict) -> list[dict]:
    return [dict(warmup_method=m, warmup_steps=w, b2=b2, peak_value=lr, seed=s) for _, m, w, b2 in settings_of(size)
            for lr in size["lrs"] for s in C.all_seeds(size)]


def _fixed(label: str, b2: float) -> dict:
    _, m, w, _ = next(x for x in SETTINGS if x[0] == label and x[3] == b2)
    return dict(warmup_method=m, warmup_steps=w, b2=b2)


def per_seed_metrics(result: sweep.SweepResult, size: dict) -> dict[tuple[str, float], dict[str, Any]]:
    """Per setting: the best peak LR chosen on the choose seeds (lowest mean final loss, a diverged run counted as
    its loss before training), and arrays over the report seeds: LR sensitivity, the loss at that LR, the loss at
    ``high_lr``, the early-spike metrics there, the adaptive warmup's back-offs."""
    choose, report = C.seeds(size)
    learnt, init = C.learnt(result), np.asarray(result.initial_loss, np.float64)
    rows = result.summary()
    lrs = size["lrs"]
    spikes = result.curves.get("num_spikes")
    jump = np.array([r["early_max_loss_jump"] for r in rows], np.float64)
    gnorm = np.array([r["early_max_grad_norm"] for r in rows], np.float64)
    out = {}
    for label, m, w, b2 in settings_of(size):
        fixed = dict(warmup_method=m, warmup_steps=w, b2=b2)
        chooser = np.array([C.at_seeds(result, learnt, choose, peak_value=lr, **fixed) for lr in lrs])
        best_lr = lrs[int(np.argmin(chooser.mean(1)))]
        final = np.array([C.at_seeds(result, learnt, report, peak_value=lr, **fixed) for lr in lrs])  # [lr, seed]
        initial = np.array([C.at_seeds(result, init, report, peak_value=lr, **fixed) for lr in lrs])
        raw = np.array([C.at_seeds(result, result.final_loss, report, peak_value=lr, **fixed) for lr in lrs])
        top = dict(peak_value=size["high_lr"], **fixed)
        backoffs = (np.array([C.at_seeds(result, spikes[:, -1], report, peak_value=lr, **fixed) for lr in lrs])
                    if spikes is not None and m == "adaptive" else None)
        out[(label, b2)] = dict(
            best_lr=best_lr, final=final, best=final[lrs.index(best_lr)], top=final[lrs.index(size["high_lr"])],
            sensitivity=C.lr_sensitivity(final, initial), top_jump=C.at_seeds(result, jump, report, **top),
            top_gnorm=C.at_seeds(result, gnorm, report, **top), backoffs=backoffs,
            diverged=int(np.sum(~np.isfinite(raw))), runs=int(raw.size))
    return out


def best_fixed(metrics: Mapping, b2: float) -> str | None:
    """The fixed linear warmup a user would pick at this b2: the lowest mean loss at its best LR **on the choose
    seeds** (None: no fixed warmup ran)."""
    fixed = [label for label in FIXED if (label, b2) in metrics]
    return min(fixed, key=lambda label: metrics[(label, b2)]["choose_best"]) if fixed else None


MEASURES = (("best", "loss at its best LR"), ("top", "loss at the high LR"), ("sensitivity", "LR sensitivity"))


def _table(m: Mapping, pairs: list[tuple[str, tuple, tuple]]) -> list[dict]:
    """Paired comparisons ``a - b`` over the report seeds for every measure, Holm-corrected as one table."""
    rows = [dict(comparison=name, measure=k, **C.compare(m[a][k], m[b][k])) for name, a, b in pairs
            for k, _ in MEASURES]
    return C.correct(rows)


def summarize(result: sweep.SweepResult, size: dict) -> dict:
    m = per_seed_metrics(result, size)
    choose, _ = C.seeds(size)
    learnt = C.learnt(result)
    for (label, b2), v in m.items():  # what chose the best fixed warmup: the choose seeds at their best LR
        fixed = dict(_fixed(label, b2), peak_value=v["best_lr"])
        v["choose_best"] = float(np.mean(C.at_seeds(result, learnt, choose, **fixed)))
    table = {}
    for (label, b2), v in m.items():
        table[_key(label, b2)] = dict(
            best_lr=v["best_lr"], sensitivity=C.describe(v["sensitivity"]), best=C.describe(v["best"]),
            top=C.describe(v["top"]), top_jump=C.describe(v["top_jump"]), top_gnorm=C.describe(v["top_gnorm"]),
            backoffs=None if v["backoffs"] is None else dict(per_lr_per_seed=v["backoffs"].tolist(),
                                                             total=C.describe(v["backoffs"].sum(0))),
            diverged=v["diverged"], runs=v["runs"])
    b2s = sorted({b for _, b in m})
    refs = {b2: best_fixed(m, b2) for b2 in b2s}
    vs_none = [(f"{label} - none", (label, 0.95), ("none", 0.95)) for label, b2 in m
               if b2 == 0.95 and label != "none" and ("none", 0.95) in m]
    vs_best = [(f"{label} @ {b2:g} - {refs[b2]} @ {b2:g}", (label, b2), (refs[b2], b2)) for label, b2 in m
               if refs[b2] is not None and label != refs[b2]]
    untuned = [(f"untuned @ {b2:g} - {f} @ {b2:g}", ("untuned", b2), (f, b2)) for b2 in b2s for f in FIXED
               if ("untuned", b2) in m and (f, b2) in m]
    radam = [(name, a, b) for name, a, b in (("radam_sgd - radam", ("radam_sgd", 0.95), ("radam", 0.95)),)
             if a in m and b in m]
    return dict(table=table, best_fixed={f"{b2:g}": r for b2, r in refs.items()},
                vs_none=_table(m, vs_none), vs_best_fixed=_table(m, vs_best), untuned_vs_fixed=_table(m, untuned),
                radam_fallback=_table(m, radam))


def long_grid(size: Mapping, lr: float) -> list[dict]:
    return [dict(warmup_method=m, warmup_steps=w, b2=size["b2"], peak_value=lr, seed=s) for _, m, w in LONG
            for s in C.all_seeds(size)]


def summarize_long(result: sweep.SweepResult, size: Mapping, lr: float) -> dict:
    """A long run: the final validation loss and the lowest one over the run (its evaluations), on the report
    seeds; the best fixed warmup chosen on the choose seeds; untuned and every warmup against it and against none."""
    choose, report = C.seeds(size)
    learnt = C.learnt(result)
    with C.quiet_nan():
        lowest = np.where(np.isfinite(result.final_loss), np.nanmin(result.eval["loss"], 1), learnt)
    per = {label: dict(warmup_method=m, warmup_steps=w) for label, m, w in LONG}
    fixed = [label for label in per if label.startswith("linear")]
    ref = min(fixed, key=lambda label: float(np.mean(C.at_seeds(result, learnt, choose, **per[label]))))
    table = {label: dict(final=C.describe(C.at_seeds(result, learnt, report, **f)),
                         lowest=C.describe(C.at_seeds(result, lowest, report, **f)))
             for label, f in per.items()}
    rows, done = [], set()
    for label, f in per.items():
        for other in ("none", ref):
            if label == other or frozenset((label, other)) in done:
                continue
            done.add(frozenset((label, other)))
            for k, values in (("final", learnt), ("lowest", lowest)):
                rows.append(dict(comparison=f"{label} - {other}", measure=k,
                                 **C.compare(C.at_seeds(result, values, report, **f),
                                             C.at_seeds(result, values, report, **per[other]))))
    return dict(peak_value=lr, b2=size["b2"], untuned_steps=2 / (1 - size["b2"]), best_fixed=ref, table=table,
                comparisons=C.correct(rows), builder=size["builder"])


def run_long(s: Mapping, short: Mapping, out_dir: str, progress: bool = True):
    """One long run, at the peak LR the short runs of ``lr_from`` chose for the 10% warmup on their choose seeds:
    its result, summary and scale."""
    lr = short["table"][_key("linear 10%", 0.95)]["best_lr"]
    task = BUILTIN[s["builder"]](**s["task"])
    result = sweep.run(task, warmup_methods(s["steps"], b2=s["b2"]), s["steps"], long_grid(s, lr),
                       eval_every=s["eval_every"], progress=progress, out_dir=out_dir)
    return result, summarize_long(result, s, lr), C.scale(task, s["steps"])


def run(size: str = "full", out: str = "runs/evidence/methods", figures: str | None = None,
        progress: bool = True) -> dict:
    """Runs the experiment; writes tables, JSON and figures to ``out`` (figures also to ``figures``)."""
    clock, outputs = C.Clock(), C.Outputs(out, figures)
    sizes = SIZES[size]
    results, summaries, scale = {}, {}, {}
    for task_name, s in sizes.items():
        if task_name.startswith("long"):
            continue
        task = BUILTIN[task_name](**s["task"])
        results[task_name] = sweep.run(task, warmup_methods(s["steps"]), s["steps"], _grid(s),
                                       eval_every=max(1, s["steps"] // 4), record=("num_spikes",), progress=progress,
                                       out_dir=outputs.path(task_name))
        clock.sample()
        summaries[task_name] = summarize(results[task_name], s)
        scale[task_name] = C.scale(task, s["steps"])
    for task_name, s in sizes.items():
        if task_name.startswith("long"):
            results[task_name], summaries[task_name], scale[task_name] = run_long(
                s, summaries[s["lr_from"]], outputs.path(task_name), progress)
            clock.sample()
    summary = dict(experiment=NAME, size=size, sizes=sizes, settings={t: settings_of(s) for t, s in sizes.items()
                                                                      if not t.startswith("long")},
                   tasks=summaries, scale=scale, machine=C.machine())
    return C.finish(outputs, summary, clock, lambda read: draw(outputs, read, results))


def draw(outputs: C.Outputs, summary: Mapping, results: Mapping[str, sweep.SweepResult]) -> None:
    """The report and the figures, from the summary and the sweeps' results (``replot`` reads them back)."""
    outputs.text("report.md", report(summary))
    for task_name, s in summary["sizes"].items():
        if task_name.startswith("long"):
            _long_figure(outputs, task_name, results[task_name], s, summary["tasks"][task_name])
        else:
            _figures(outputs, task_name, results[task_name], s)


def replot(out: str, figures: str | None = None) -> dict:
    """Redraws the report and the figures from a finished run in ``out``, without training."""
    summary = C.read_json(out, "summary.json")
    results = {t: sweep.load(f"{out}/{t}/results.json") for t in summary["sizes"]}
    draw(C.Outputs(out, figures), summary, results)
    return summary


def _figures(outputs: C.Outputs, task_name: str, result: sweep.SweepResult, s: dict) -> None:
    lrs, settings = s["lrs"], settings_of(s)
    _, report_seeds = C.seeds(s)
    learnt = C.learnt(result)
    rows = [f"{label} @ {b2:g}" for label, _, _, b2 in settings]
    cells = np.array([[np.mean(C.at_seeds(result, learnt, report_seeds, peak_value=lr, warmup_method=m,
                                          warmup_steps=w, b2=b2)) for lr in lrs] for _, m, w, b2 in settings])
    base = result.task.get("baseline_loss")
    vmax = None if base is None else 0.97 * base
    trained = cells[np.isfinite(cells) & (cells < (np.inf if vmax is None else vmax))]
    top = float(np.percentile(trained, 75)) if trained.size else None  # the scale spans the better three quarters
    outputs.figure(f"methods_heatmap_{task_name}.png", lambda p: F.heatmap(
        cells, rows, [f"{lr:g}" for lr in lrs], p,
        f"{task_name}: final validation loss, mean of {len(report_seeds)} fresh seeds",
        colorbar="final loss" + ("" if top is None else f", scale stops at {top:.2f}")
        + ("" if vmax is None else f"; grey: >= {vmax:.2f} (no better than the baseline)"),
        vmax=vmax, color_max=top))
    top = s["high_lr"]
    ran = {label for label, _, _, b2 in settings if b2 == 0.95}

    def lines(labels):
        return [(label, dict(_fixed(label, 0.95), peak_value=top)) for label in labels if label in ran]

    fixed = lines(("none", "linear 2%", *FIXED, "exponential 10%"))
    alternatives = lines(("linear 10%", "untuned", "radam", "radam_sgd", "adaptive 10%", "gi_adam", "update_limit"))
    outputs.figure(f"methods_curves_{task_name}.png", lambda p: F.loss_bands(
        [(f"{task_name}, peak LR {top:g}, b2 0.95: fixed warmups", result, fixed),
         (f"{task_name}, peak LR {top:g}, b2 0.95: other methods", result, alternatives)], p, smooth=5,
        seeds=report_seeds, ylabel="train loss (trailing 5-step mean)", share_y=True))


def _long_figure(outputs: C.Outputs, name: str, result: sweep.SweepResult, s: Mapping, t: Mapping) -> None:
    _, report_seeds = C.seeds(s)
    lines = [(label, dict(warmup_method=m, warmup_steps=w)) for label, m, w in LONG]
    window = max(1, s["steps"] // 100)
    outputs.figure(f"methods_{name}.png", lambda p: F.loss_bands(
        [(f"{s['builder']}, {s['steps']:,} steps, b2 {s['b2']:g} (untuned: {t['untuned_steps']:.0f} steps), "
          f"peak LR {t['peak_value']:g}", result, lines)], p, smooth=window, seeds=report_seeds,
        ylabel=f"train loss (trailing {window}-step mean)", log_x=True))


def _row(name: str, v: Mapping) -> list:
    back = "" if v["backoffs"] is None else C.fmt(v["backoffs"]["total"], 1)
    return [name, f"{v['best_lr']:g}", C.fmt(v["best"]), C.fmt(v["top"]), C.fmt(v["sensitivity"]),
            C.fmt(v["top_jump"], 2), C.fmt(v["top_gnorm"], 2), back, f"{v['diverged']}/{v['runs']}"]


def _comparison_table(rows: list[dict]) -> str:
    by_name: dict[str, dict] = {}
    for r in rows:
        by_name.setdefault(r["comparison"], {})[r["measure"]] = r
    header = ["comparison"] + [what for _, what in MEASURES]
    body = [[name] + [C.fmt_diff(cells[k]) if k in cells else "" for k, _ in MEASURES]
            for name, cells in by_name.items()]
    return C.markdown_table(header, body)


def report(summary: Mapping) -> str:
    lines = [f"## Warmup methods (`optax-warmup evidence methods --size {summary['size']}`)", ""]
    for task, t in summary["tasks"].items():
        size = summary["sizes"][task]
        sc = summary["scale"][task]
        choose, report_seeds = C.seeds(size)
        if task.startswith("long"):
            lines += _long_report(t, size, sc)
            continue
        lines += [f"### {task}: {C.scale_line(sc)}; peak LR {size['lrs']}; best LR and best fixed warmup "
                  f"chosen on {C.seed_range(choose)}, every number below from the "
                  f"{len(report_seeds)} fresh {C.seed_range(report_seeds)}", ""]
        header = ["method @ b2", "best LR (chosen)", "loss at best LR", f"loss at LR {size['high_lr']:g}",
                  "LR sensitivity", f"early max loss jump at {size['high_lr']:g}",
                  f"early max grad norm at {size['high_lr']:g}", "adaptive back-offs (all LRs)", "diverged runs"]
        rows = [_row(name, v) for name, v in t["table"].items()]
        lines += ["Mean ± half-width of the 95% t-interval over the fresh seeds (a diverged run counts as its "
                  "loss before training):", "", C.markdown_table(header, rows), ""]
        lines += [f"Best fixed warmup (chosen on {C.seed_range(choose)}): "
                  + ", ".join(f"{r} at b2 {b2}" for b2, r in t["best_fixed"].items()), ""]
        for key, title in (("vs_none", "Against no warmup (b2 0.95)"),
                           ("vs_best_fixed", "Against the best fixed warmup at the same b2"),
                           ("untuned_vs_fixed", "Untuned (2 / (1 - b2) steps) against each fixed length"),
                           ("radam_fallback", "RAdam with the SGD fallback (optax.radam) against without it")):
            if t[key]:
                lines += [f"{title}; {C.STATS_NOTE}:", "", _comparison_table(t[key]), ""]
    lines.append(C.timing_line(summary))
    return "\n".join(lines) + "\n"


def _long_report(t: Mapping, size: Mapping, sc: Mapping) -> list[str]:
    choose, report_seeds = C.seeds(size)
    out = [f"### long run: {t['builder']}, {C.scale_line(sc)}, b2 {t['b2']:g} (untuned warmup {t['untuned_steps']:.0f} "
           f"steps = {t['untuned_steps'] / size['steps']:.0%} of the run), peak LR {t['peak_value']:g} (chosen "
           f"by the {size['lr_from']} runs above); best fixed warmup chosen on {C.seed_range(choose)}: "
           f"{t['best_fixed']}; {len(report_seeds)} fresh seeds", ""]
    out.append(C.markdown_table(["warmup", "final validation loss", "lowest validation loss of the run"],
                                [[k, C.fmt(v["final"]), C.fmt(v["lowest"])] for k, v in t["table"].items()]))
    by_name: dict[str, dict] = {}
    for r in t["comparisons"]:
        by_name.setdefault(r["comparison"], {})[r["measure"]] = r
    out += ["", f"Paired; {C.STATS_NOTE}:", "",
            C.markdown_table(["comparison", "final validation loss", "lowest validation loss"],
                             [[n, C.fmt_diff(c["final"]), C.fmt_diff(c["lowest"])] for n, c in by_name.items()]),
            ""]
    return out
