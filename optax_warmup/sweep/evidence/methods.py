"""Evidence (a): warmup methods head to head, on the byte LM and on the digits task.

Every method trains AdamW under the same cosine decay over the whole run; only the warmup multiplied onto it
differs (``optax_warmup.sweep.optimizers.warmup_methods`` says exactly what each one is). The grid: methods x peak
LR x seeds, at ``b2 = 0.95`` for every method, and again at ``b2 = 0.98`` for no warmup, the fixed linear warmups
and the untuned warmup, whose length is ``2 / (1 - b2)`` (40 and 100 steps of the byte LM's 200): the test of Ma &
Yarats' claim that an untuned warmup is as good as a tuned one, at two ``b2``. Every method is its own group of one
compiled program per task.

Per method: LR sensitivity (Wortsman et al.), the best loss (at its best peak LR), the loss at the highest LR, the
early-spike metrics there, the adaptive warmup's back-offs (``AdaptiveWarmupState.num_spikes``, recorded as a
curve), each with its seeds; and paired differences (same seed = same initialisation and batches) against no
warmup and against the best fixed warmup.
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
    ("linear 25%", "linear", 0.25, 0.95), ("exponential 10%", "exponential", 0.1, 0.95),
    ("untuned", "untuned", 0, 0.95), ("radam", "radam", 0, 0.95), ("adaptive 10%", "adaptive", 0.1, 0.95),
    ("gi_adam", "gi_adam", 0, 0.95), ("update_limit", "update_limit", 0, 0.95),
    ("none", "none", 0, 0.98), ("linear 2%", "linear", 0.02, 0.98), ("linear 10%", "linear", 0.1, 0.98),
    ("linear 25%", "linear", 0.25, 0.98), ("untuned", "untuned", 0, 0.98),
]
FIXED = ("linear 2%", "linear 10%", "linear 25%")
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "bytelm": dict(task=dict(d_model=64, valid_windows=256), steps=200, lrs=[1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
                       seeds=3),
        "digits": dict(task=dict(), steps=300, lrs=[1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1], seeds=5),
    },
    "quick": {
        "bytelm": dict(task=dict(d_model=32, valid_windows=128), steps=150, lrs=[1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
                       seeds=3),
        "digits": dict(task=dict(), steps=200, lrs=[1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1], seeds=3),
    },
    "tiny": {  # four methods: a smoke test of seconds
        "digits": dict(task=dict(hidden=(16,)), steps=20, lrs=[1e-2, 1e-1], seeds=2,
                       settings=["none @ 0.95", "linear 10% @ 0.95", "untuned @ 0.95", "adaptive 10% @ 0.95"]),
    },
}


def settings_of(size: dict) -> list[tuple]:
    """The settings a size runs: all of ``SETTINGS``, or those named ``"label @ b2"`` in ``size["settings"]``."""
    names = size.get("settings")
    return list(SETTINGS) if names is None else [x for x in SETTINGS if f"{x[0]} @ {x[3]:g}" in names]


def _grid(size: dict) -> list[dict]:
    return [dict(warmup_method=m, warmup_steps=w, b2=b2, peak_value=lr, seed=s) for _, m, w, b2 in settings_of(size)
            for lr in size["lrs"] for s in range(size["seeds"])]


def _fixed(label: str, b2: float) -> dict:
    _, m, w, _ = next(x for x in SETTINGS if x[0] == label and x[3] == b2)
    return dict(warmup_method=m, warmup_steps=w, b2=b2)


def per_seed_metrics(result: sweep.SweepResult, size: dict) -> dict[tuple[str, float], dict[str, np.ndarray]]:
    """Per setting, arrays over seeds: final loss per LR ``[lr, seed]``, sensitivity, best loss, loss at the
    highest LR, early-spike metrics there, back-offs."""
    rows = result.summary()
    sens = {(s["warmup_method"], s["warmup_steps"], s["b2"]): s["sensitivity_per_seed"]
            for s in result.lr_sensitivity()}
    out = {}
    lrs = size["lrs"]
    for label, m, w, b2 in settings_of(size):
        fixed = dict(warmup_method=m, warmup_steps=w, b2=b2)
        final = np.array([C.final_losses(result, peak_value=lr, **fixed) for lr in lrs])  # [lr, seed]
        init = np.array([[result.initial_loss[i] for i in C.members(result, peak_value=lr, **fixed)] for lr in lrs])
        capped = np.where(np.isfinite(final), final, init)  # a diverged run counts as its loss before training
        best_lr = int(np.argmin(capped.mean(1)))
        top = C.members(result, peak_value=lrs[-1], **fixed)
        spikes = result.curves.get("num_spikes")
        backoffs = (np.array([[spikes[i, -1] for i in C.members(result, peak_value=lr, **fixed)] for lr in lrs])
                    if spikes is not None and m == "adaptive" else None)
        reasons = result.divergence()
        out[(label, b2)] = dict(
            final=final, best_lr=lrs[best_lr], best=final[best_lr], top=final[-1],
            sensitivity=np.asarray(sens[(m, w, b2)]),
            top_jump=np.array([rows[i]["early_max_loss_jump"] for i in top]),
            top_gnorm=np.array([rows[i]["early_max_grad_norm"] for i in top]),
            backoffs=backoffs, diverged=int(sum(reasons[i] is not None for lr in lrs
                                                for i in C.members(result, peak_value=lr, **fixed))))
    return out


def best_fixed(metrics: Mapping, b2: float) -> str | None:
    """The fixed linear warmup with the lowest mean best loss at this b2 (None: no fixed warmup ran)."""
    fixed = [label for label in FIXED if (label, b2) in metrics]
    return min(fixed, key=lambda label: float(np.mean(metrics[(label, b2)]["best"]))) if fixed else None


def summarize(result: sweep.SweepResult, size: dict) -> dict:
    m = per_seed_metrics(result, size)
    table = {}
    for (label, b2), v in m.items():
        table[f"{label} @ b2={b2:g}"] = dict(
            sensitivity=C.seed_stats(v["sensitivity"]), best=C.seed_stats(v["best"]), best_lr=v["best_lr"],
            top=C.seed_stats(v["top"]), top_jump=C.seed_stats(v["top_jump"]), top_gnorm=C.seed_stats(v["top_gnorm"]),
            backoffs=None if v["backoffs"] is None else dict(per_lr_per_seed=v["backoffs"].tolist(),
                                                             total=C.seed_stats(v["backoffs"].sum(0))),
            diverged=v["diverged"])
    comparisons = {}
    for (label, b2), v in m.items():
        ref = best_fixed(m, b2)
        for other, name in (("none", "none"), (ref, f"best fixed ({ref})")):
            if other is None or label == other or (other, b2) not in m:
                continue
            o = m[(other, b2)]
            comparisons[f"{label} @ b2={b2:g} vs {name}"] = dict(
                sensitivity=C.paired(v["sensitivity"], o["sensitivity"]), best=C.paired(v["best"], o["best"]),
                top=C.paired(v["top"], o["top"]))
    untuned = {}
    for b2 in sorted({b for _, b in m}):
        ref = best_fixed(m, b2)
        if ref is None or ("untuned", b2) not in m:
            continue
        u, f = m[("untuned", b2)], m[(ref, b2)]
        d = {k: C.paired(u[k], f[k]) for k in ("best", "top", "sensitivity")}
        holds = all(C.inside_noise(x) or x["mean"] <= 0 for x in d.values())
        untuned[f"b2={b2:g}"] = dict(best_fixed=ref, untuned_steps=2 / (1 - b2), differences=d, holds=holds)
    return dict(table=table, comparisons=comparisons, untuned_vs_best_fixed=untuned)


def run(size: str = "full", out: str = "runs/evidence/methods", figures: str | None = None,
        progress: bool = True) -> dict:
    """Runs the experiment; writes tables, JSON and figures to ``out`` (figures also to ``figures``)."""
    clock, outputs = C.Clock(), C.Outputs(out, figures)
    sizes = SIZES[size]
    results, summaries = {}, {}
    for task_name, s in sizes.items():
        task = BUILTIN[task_name](**s["task"])
        results[task_name] = sweep.run(task, warmup_methods(s["steps"]), s["steps"], _grid(s),
                                       eval_every=max(1, s["steps"] // 4), record=("num_spikes",), progress=progress,
                                       out_dir=outputs.path(task_name))
        clock.sample()
        summaries[task_name] = summarize(results[task_name], s)
    summary = dict(experiment=NAME, size=size, sizes=sizes, settings={t: settings_of(s) for t, s in sizes.items()},
                   tasks=summaries, machine=C.machine())
    return C.finish(outputs, summary, clock, lambda read: draw(outputs, read, results))


def draw(outputs: C.Outputs, summary: Mapping, results: Mapping[str, sweep.SweepResult]) -> None:
    """The report and the figures, from the summary and the sweeps' results (``replot`` reads them back)."""
    outputs.text("report.md", report(summary))
    for task_name, s in summary["sizes"].items():
        _figures(outputs, task_name, results[task_name], s)


def replot(out: str, figures: str | None = None) -> dict:
    """Redraws the report and the figures from a finished run in ``out``, without training."""
    summary = C.read_json(out, "summary.json")
    results = {t: sweep.load(f"{out}/{t}/results.json") for t in summary["sizes"]}
    draw(C.Outputs(out, figures), summary, results)
    return summary


def _figures(outputs: C.Outputs, task_name: str, result: sweep.SweepResult, s: dict) -> None:
    lrs, settings = s["lrs"], settings_of(s)
    rows = [f"{label} @ {b2:g}" for label, _, _, b2 in settings]
    cells = np.array([[np.mean(C.final_losses(result, peak_value=lr, warmup_method=m, warmup_steps=w, b2=b2))
                       for lr in lrs] for _, m, w, b2 in settings])
    outputs.figure(f"methods_heatmap_{task_name}.png", lambda p: F.heatmap(
        cells, rows, [f"{lr:g}" for lr in lrs], p, f"{task_name}: final validation loss by warmup (row: method @ b2)"))
    top = lrs[-1] if task_name == "bytelm" else lrs[-2]
    ran = {label for label, _, _, b2 in settings if b2 == 0.95}
    fixed = [(label, dict(_fixed(label, 0.95), peak_value=top)) for label in ("none", *FIXED, "exponential 10%")
             if label in ran]
    alternatives = [(label, dict(_fixed(label, 0.95), peak_value=top)) for label in
                    ("linear 10%", "untuned", "radam", "adaptive 10%", "gi_adam", "update_limit") if label in ran]
    outputs.figure(f"methods_curves_{task_name}.png", lambda p: F.loss_bands(
        [(f"{task_name}, peak LR {top:g}, b2 0.95: fixed warmups", result, fixed),
         (f"{task_name}, peak LR {top:g}, b2 0.95: other methods", result, alternatives)], p))


def report(summary: Mapping) -> str:
    lines = [f"## Warmup methods (`optax-warmup evidence methods --size {summary['size']}`)", ""]
    for task, t in summary["tasks"].items():
        size = summary["sizes"][task]
        lines += [f"### {task}: {size['steps']} steps, peak LR {size['lrs']}, {size['seeds']} seeds", ""]
        header = ["method @ b2", "LR sensitivity", "best loss (at LR)", f"loss at LR {size['lrs'][-1]:g}",
                  "early max loss jump there", "early max grad norm there", "adaptive back-offs (all LRs)",
                  "diverged runs"]
        rows = []
        for name, v in t["table"].items():
            back = "" if v["backoffs"] is None else C.fmt(v["backoffs"]["total"], 1)
            rows.append([name, C.fmt(v["sensitivity"]), f"{C.fmt(v['best'])} ({v['best_lr']:g})", C.fmt(v["top"]),
                         C.fmt(v["top_jump"], 2), C.fmt(v["top_gnorm"], 2), back, v["diverged"]])
        lines += ["Mean over seeds (range of the seeds):", "", C.markdown_table(header, rows), ""]
        header = ["comparison", "LR sensitivity", "best loss", f"loss at LR {size['lrs'][-1]:g}"]
        rows = [[name] + [C.fmt_diff(c[k]) + (" ~" if C.inside_noise(c[k]) else "")
                          for k in ("sensitivity", "best", "top")] for name, c in t["comparisons"].items()]
        lines += ["Paired differences (mean [95% bootstrap interval], seeds agreeing in sign; negative = better; "
                  "~ = inside the noise):", "", C.markdown_table(header, rows), ""]
        for b2, u in t["untuned_vs_best_fixed"].items():
            d = u["differences"]
            lines.append(f"- Untuned ({u['untuned_steps']:.0f} steps) vs best fixed ({u['best_fixed']}) at {b2}: "
                         f"best loss {C.fmt_diff(d['best'])}, loss at the highest LR {C.fmt_diff(d['top'])}, "
                         f"sensitivity {C.fmt_diff(d['sensitivity'])}: "
                         f"**untuned ≈ best tuned {'holds' if u['holds'] else 'does not hold'}** here.")
        lines.append("")
    lines.append(C.timing_line(summary))
    return "\n".join(lines) + "\n"
