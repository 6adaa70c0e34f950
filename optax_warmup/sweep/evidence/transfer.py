"""Evidence (c): warmup when fine-tuning a pretrained model, and what it does to forgetting.

The byte LM is pretrained once on the standard library's code (cached under ``runs/cache/``), then fine-tuned on
the English prose of ``pydoc_data/topics.py``. The sweep: fine-tune peak LR x warmup (none / short / long) x a
per-group variant x seeds, every config from the same pretrained parameters (a seed is a stream of prose batches).
The evaluation reports the prose validation loss (the goal) and the code validation loss (forgetting) every few
steps.

Per-group variants (``per_group_warmup``; "lower" = the embeddings, the positions and the lower half of the
blocks, "upper" = the rest):

* ``uniform``: one schedule for every parameter.
* ``lower_long``: the lower group always warms up over the long warmup; the upper group uses the config's warmup.
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
            ("short", "lower_long"), ("none", "lower_low"), ("short", "lower_low"), ("long", "lower_low")]
LOWER_PEAK = 0.1
SIZES: dict[str, dict[str, Any]] = {
    "full": dict(task=dict(d_model=64, valid_windows=128), steps=150, eval_every=15,
                 lrs=[3e-4, 1e-3, 3e-3, 1e-2, 3e-2], seeds=3, pretrain=dict(steps=1500)),
    "quick": dict(task=dict(d_model=32, valid_windows=128), steps=100, eval_every=10,
                  lrs=[3e-4, 1e-3, 3e-3, 1e-2, 3e-2], seeds=2, pretrain=dict(steps=600)),
    "tiny": dict(task=dict(d_model=16, n_layers=2, n_heads=2, context=16, batch_size=4, valid_windows=32,
                           max_files=30, max_topics=40), steps=12, eval_every=4, lrs=[1e-3, 3e-2], seeds=1,
                 pretrain=dict(steps=30, batch_size=8)),
}
EARLY_FRACTION = 0.2


def optimizer(steps: int, n_layers: int, weight_decay: float = 0.01):
    """``hp -> AdamW``: the axes ``peak_value``, ``warmup_steps`` (a duration) and ``variant`` (static)."""
    long = WARMUPS["long"]

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
            long_steps = int(np.ceil(long * steps))
            return per_group_warmup(adamw, {"lower": schedule(peak, long_steps), "upper": schedule(peak, warmup)},
                                    labels)
        if variant == "lower_low":
            return per_group_warmup(adamw, {"lower": schedule(LOWER_PEAK * peak, warmup),
                                            "upper": schedule(peak, warmup)}, labels)
        raise ValueError(f"variant must be uniform, lower_long or lower_low, got {variant!r}")

    return factory


def _grid(size: dict) -> list[dict]:
    return [dict(variant=v, warmup_steps=WARMUPS[w], peak_value=lr, seed=s) for w, v in SETTINGS
            for lr in size["lrs"] for s in range(size["seeds"])]


def _label(w: str, v: str) -> str:
    return f"{w} warmup, {v}"


def _per_seed(result: sweep.SweepResult, values: np.ndarray, w: str, v: str, lr: float) -> list[float]:
    return [float(values[i]) for i in C.members(result, variant=v, warmup_steps=WARMUPS[w], peak_value=lr)]


def metrics(result: sweep.SweepResult) -> dict[str, np.ndarray]:
    """Per config: final prose loss, forgetting (final code loss minus the pretrained model's), and early damage
    (the largest rise of each validation loss above its step-0 value in the first 20% of the steps)."""
    prose, code = result.eval["loss"], result.eval["code_loss"]
    steps = np.asarray(result.eval_steps)
    early = steps <= max(steps[1], EARLY_FRACTION * result.steps)
    dead = result.diverged_step >= 0
    with quiet_nan():
        out = dict(prose=prose[:, -1], forgetting=code[:, -1] - code[:, 0],
                   prose_early_rise=np.nanmax(prose[:, early] - prose[:, :1], 1),
                   code_early_rise=np.nanmax(code[:, early] - code[:, :1], 1),
                   code_max_rise=np.nanmax(code - code[:, :1], 1))
    return {k: np.where(dead, np.nan, v) for k, v in out.items()}


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
    m = metrics(result)
    table = {}
    for w, v in SETTINGS:
        for lr in s["lrs"]:
            table[(w, v, lr)] = {k: C.seed_stats(_per_seed(result, m[k], w, v, lr)) for k in m}
    comparisons = {}
    for lr in s["lrs"]:
        pairs = {"long - none (uniform)": (("long", "uniform"), ("none", "uniform")),
                 "short - none (uniform)": (("short", "uniform"), ("none", "uniform")),
                 "lower_long - uniform (no warmup above)": (("none", "lower_long"), ("none", "uniform")),
                 "lower_low - uniform (no warmup)": (("none", "lower_low"), ("none", "uniform")),
                 "lower_low - uniform (long warmup)": (("long", "lower_low"), ("long", "uniform"))}
        for name, (a, b) in pairs.items():
            for k in ("prose", "forgetting", "code_early_rise", "prose_early_rise"):
                comparisons[(name, lr, k)] = C.paired(_per_seed(result, m[k], *a, lr), _per_seed(result, m[k], *b, lr))
    sens = result.lr_sensitivity()
    summary = dict(experiment=NAME, size=size, settings=s, pretrain=task.info["pretrain"],
                   pretrained=dict(prose_loss=float(result.eval["loss"][0, 0]),
                                   code_loss=float(result.eval["code_loss"][0, 0]),
                                   prose_unigram=task.info["prose_unigram_cross_entropy"],
                                   code_unigram=task.info["code_unigram_cross_entropy"]),
                   table=[dict(warmup=w, variant=v, peak_value=lr, **stats) for (w, v, lr), stats in table.items()],
                   comparisons=[dict(comparison=n, peak_value=lr, metric=k, **stats)
                                for (n, lr, k), stats in comparisons.items()],
                   lr_sensitivity=sens, machine=C.machine())
    return C.finish(outputs, summary, clock, lambda read: draw(outputs, read, result))


def replot(out: str, figures: str | None = None) -> dict:
    """Redraws the report and the figures from a finished run in ``out``, without training."""
    summary = C.read_json(out, "summary.json")
    draw(C.Outputs(out, figures), summary, sweep.load(f"{out}/finetune/results.json"))
    return summary


def draw(outputs: C.Outputs, summary: Mapping, result: sweep.SweepResult) -> None:
    """The report and the figures, from the summary and the sweep's results."""
    outputs.text("report.md", report(summary))
    m = metrics(result)
    lrs = summary["settings"]["lrs"]
    shown = [lrs[len(lrs) // 2], lrs[-1]]
    uniform = [(_label(w, "uniform"), dict(variant="uniform", warmup_steps=WARMUPS[w])) for w in WARMUPS]
    groups = [(_label(w, v), dict(variant=v, warmup_steps=WARMUPS[w])) for w, v in
              (("none", "uniform"), ("none", "lower_long"), ("none", "lower_low"), ("long", "uniform"))]
    for metric, name, ylabel in (("loss", "prose", "prose validation loss"),
                                 ("code_loss", "code", "code validation loss (forgetting)")):
        panels = [(f"peak LR {lr:g}: {label}", result, [(lab, dict(f, peak_value=lr)) for lab, f in lines])
                  for lr in shown for label, lines in (("warmup", uniform), ("per group", groups))]
        outputs.figure(f"transfer_{name}_curves.png", functools.partial(
            F.loss_bands, panels, metric=metric, ylabel=ylabel, eval_metric=True, baseline=False))
    rows = [_label(w, v) for w, v in SETTINGS]
    for key, what in (("prose", "final prose loss"), ("forgetting", "forgetting (code loss rise)")):
        cells = np.array([[np.mean(_per_seed(result, m[key], w, v, lr)) for lr in lrs] for w, v in SETTINGS])
        def draw(path: str, cells: np.ndarray = cells, what: str = what) -> str:
            return F.heatmap(cells, rows, [f"{lr:g}" for lr in lrs], path, f"fine-tuning: {what}",
                             colorbar=f"{what}, mean of seeds")

        outputs.figure(f"transfer_{key}_heatmap.png", draw)


def _seconds(pretrain: Mapping) -> str:
    return f", trained in {pretrain['seconds']:.0f} s" if "seconds" in pretrain else ""


def report(summary: Mapping) -> str:
    """The experiment's tables in Markdown."""
    pre = summary["pretrained"]
    lines = [f"## Transfer (`optax-warmup evidence transfer --size {summary['size']}`)", "",
             f"Pretrained model: prose loss {pre['prose_loss']:.3f}, code loss {pre['code_loss']:.3f} (unigram: "
             f"prose {pre['prose_unigram']:.3f}, code {pre['code_unigram']:.3f}); pretraining "
             f"{summary['pretrain']['settings']}"
             f"{' (from the cache)' if summary['pretrain']['cached'] else _seconds(summary['pretrain'])}.", ""]
    header = ["warmup", "variant", "peak LR", "final prose loss", "forgetting (code loss rise)",
              "early prose rise", "early code rise"]
    rows = [[r["warmup"], r["variant"], f"{r['peak_value']:g}", C.fmt(r["prose"]), C.fmt(r["forgetting"]),
             C.fmt(r["prose_early_rise"]), C.fmt(r["code_early_rise"])] for r in summary["table"]]
    lines += [C.markdown_table(header, rows), ""]
    lines += ["Paired differences (same seed = same prose batches; mean [95% bootstrap interval], seeds agreeing "
              "in sign); negative = lower loss / less forgetting:", ""]
    comparisons = {(c["comparison"], c["peak_value"], c["metric"]): c for c in summary["comparisons"]}
    header = ["comparison", "peak LR", "prose loss", "forgetting", "early code rise", "early prose rise"]
    rows = []
    for n, lr in dict.fromkeys((n, lr) for n, lr, _ in comparisons):
        cells = []
        for k in ("prose", "forgetting", "code_early_rise", "prose_early_rise"):
            c = comparisons[(n, lr, k)]
            cells.append(C.fmt_diff(c) + (" ~" if C.inside_noise(c) else ""))
        rows.append([n, f"{lr:g}", *cells])
    lines += [C.markdown_table(header, rows), "", "~: inside the noise (seeds disagree in sign or the interval "
                                                  "contains 0).", ""]
    sens = summary["lr_sensitivity"]
    if sens:
        lines += ["LR sensitivity of the prose loss (Wortsman et al.):", ""]
        lines += [C.markdown_table(["warmup", "variant", "sensitivity", "per seed"],
                                   [[x.get("warmup_steps"), x.get("variant"), f"{x['sensitivity']:.3f}",
                                     ", ".join(f"{v:.3f}" for v in x["sensitivity_per_seed"])] for x in sens]), ""]
    lines.append(C.timing_line(summary, " (pretraining included when not cached)"))
    return "\n".join(lines) + "\n"
