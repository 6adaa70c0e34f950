"""The evidence figures: loss curves with seed bands, heatmaps, the adaptive factor over the loss, detection.

Small PNGs (100 dpi, a few inches wide) so that the documentation stays light.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from optax_warmup._numeric import quiet_nan
from optax_warmup.plotting import pyplot, save
from optax_warmup.sweep.evidence._common import curve_band, members
from optax_warmup.sweep.result import SweepResult

DPI = 100


def _band(ax, curves: np.ndarray, color, label: str, smooth: int = 1, x0: int = 0, ls="-") -> None:
    mean, lo, hi = curve_band(curves, smooth)
    x = np.arange(len(mean)) + x0
    ax.plot(x, mean, color=color, lw=1.3, label=label, ls=ls)
    if len(curves) > 1:
        ax.fill_between(x, lo, hi, color=color, alpha=0.18, lw=0)


def _colors(n: int) -> list:
    cmap = pyplot().get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i) for i in range(n)]


STYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (6, 2)))
MARKERS = ("", "o", "s", "^", "v", "D", "x")


def loss_bands(panels: Sequence[tuple[str, SweepResult, Sequence[tuple[str, dict]]]], path: str,
               metric: str = "loss", smooth: int = 10, ylabel: str = "train loss", baseline: bool = True,
               eval_metric: bool = False, ylim: tuple[float, float] | None = None,
               seeds: Sequence[int] | None = None, share_y: bool = False, log_x: bool = False) -> str:
    """One panel per ``(title, result, [(label, fixed values), ...])``: the metric's mean over seeds (only
    ``seeds`` when given) with the 95% t-interval of that mean as a band, one line per label. Curves start at
    step 0 (a trailing mean of ``smooth`` steps); each label has its own colour, line style and marker, so that
    a line under another still shows; ``share_y`` gives every panel the same y-range."""
    plt = pyplot()
    cols = min(len(panels), 2)
    rows = -(-len(panels) // cols)
    width = 4.2 * cols if cols > 1 else 6.4
    fig, axes = plt.subplots(rows, cols, figsize=(width, 3.0 * rows + 0.4), dpi=DPI, squeeze=False)
    labels = list(dict.fromkeys(label for _, _, lines in panels for label, _ in lines))
    color_of = dict(zip(labels, _colors(len(labels)), strict=True))  # one colour per label in every panel
    style_of = {label: (STYLES[i % len(STYLES)], MARKERS[i % len(MARKERS)]) for i, label in enumerate(labels)}
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (title, result, lines) in zip(axes.flat, panels, strict=False):
        for label, fixed in lines:
            color = color_of[label]
            ls, marker = style_of[label]
            idx = members(result, **fixed)
            if seeds is not None:
                idx = [i for i in idx if result.given[i].get("seed") in seeds]
            if not idx:
                continue
            values = result.eval[metric][idx] if eval_metric else result.curves[metric][idx]
            mean, lo, hi = curve_band(values, 1 if eval_metric else smooth)
            x = np.asarray(result.eval_steps) if eval_metric else np.arange(len(mean))
            every = max(1, len(x) // 8)
            ax.plot(x, mean, color=color, lw=1.3, label=label, ls=ls, marker=marker or None, ms=3.5,
                    markevery=(every * list(style_of).index(label) // max(1, len(style_of)), every),
                    mfc="none")
            if len(idx) > 1:
                ax.fill_between(x, lo, hi, color=color, alpha=0.15, lw=0)
        base = result.task.get("baseline_loss")
        if baseline and base is not None and metric == "loss":
            ax.axhline(base, color="gray", ls="--", lw=0.8, label="baseline loss")
        if ylim:
            ax.set_ylim(*ylim)
        if log_x:
            ax.set_xscale("symlog", linthresh=max(1, smooth))
            ax.set_xlim(left=0)
        ax.set(xlabel="step", ylabel=ylabel, title=title)
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
    if share_y and not ylim:
        used = [ax for ax in axes.flat[:len(panels)]]
        lows, highs = zip(*(ax.get_ylim() for ax in used), strict=True)
        for ax in used:
            ax.set_ylim(min(lows), max(highs))
    handles: dict[str, Any] = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(5, len(handles)), fontsize=7,
               frameon=False)
    bottom = 0.04 * (1 + -(-len(handles) // 5)) / rows
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return path


def heatmap(cells: np.ndarray, rows: Sequence[str], cols: Sequence[str], path: str, title: str,
            xlabel: str = "peak learning rate", colorbar: str = "final loss, mean of seeds",
            vmax: float | None = None, color_max: float | None = None) -> str:
    """Values ``[rows, cols]`` as a labelled heatmap. NaN cells read "div"; cells at or above ``vmax`` (a
    diverged or failed setting: the caller says which) are grey, so that the colour scale spans the differences
    between the settings that trained; with ``color_max`` the scale also stops there (cells above it take its
    darkest colour, their numbers still printed)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.6 + 0.75 * len(cols), 1.0 + 0.32 * len(rows)), dpi=DPI)
    cells = np.asarray(cells, np.float64)
    masked = ~np.isfinite(cells) | (cells >= vmax if vmax is not None else False)
    shown = np.ma.masked_array(cells, masked)
    cmap = pyplot().get_cmap("viridis_r").with_extremes(bad="0.85")
    im = ax.imshow(shown, cmap=cmap, aspect="auto", vmax=color_max)
    with quiet_nan():
        kept = np.where(masked, np.nan, cells)
        low, high = np.nanmin(kept), (color_max if color_max is not None else np.nanmax(kept))
        middle = (low + high) / 2  # white text on the darker half of the scale
    for (r, c), v in np.ndenumerate(cells):
        ax.text(c, r, "div" if not np.isfinite(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="w" if not masked[r, c] and v > middle else "k")
    ax.set_xticks(range(len(cols)), cols, fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set(xlabel=xlabel, title=title)
    ax.title.set_fontsize(9)
    bar = fig.colorbar(im, ax=ax, fraction=0.04)
    bar.set_label(colorbar, fontsize=7)
    return save(fig, path)


def adaptive_factor(result: SweepResult, picks: Mapping, too_short, path: str) -> str:
    """Top: training loss at the high LR for no warmup, the too-short linear warmup, the best linear warmup and
    the too-short adaptive warmup (mean of seeds of 5-step trailing means from step 0, band = 95% t-interval of the
    mean; back-offs marked; the adaptive line dashed with markers, as it may lie on the linear one). Bottom: the
    factor the adaptive warmup applied at each step, one line per seed, and the fixed warmup of the same length."""
    plt = pyplot()
    high = picks["high_lr"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 5.2), dpi=DPI, sharex=True,
                                      gridspec_kw=dict(height_ratios=[3, 2]))
    lines: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
             ("no warmup", dict(warmup_method="none"), dict(ls="-")),
             (f"linear {too_short:g}", dict(warmup_method="linear", warmup_steps=too_short), dict(ls="-", lw=2.2)),
             (f"linear {picks['best_warmup']} (best on choose seeds)",
              dict(warmup_method="linear", warmup_steps=picks["best_warmup"]), dict(ls="-.")),
             (f"adaptive {too_short:g}", dict(warmup_method="adaptive", warmup_steps=too_short),
              dict(ls="--", marker="o", ms=3, markevery=10))]
    colors = _colors(len(lines))
    calm = dict(spike_factor=1.0, protection="none", skip_spikes=False, peak_value=high)
    n = 0
    for color, (label, fixed, style) in zip(colors, lines, strict=True):
        idx = members(result, **calm, **fixed)
        n = len(idx)
        style = dict(style)
        mean, lo, hi = curve_band(result.curves["loss"][idx], 5)
        top.plot(np.arange(len(mean)), mean, color=color, label=label, lw=style.pop("lw", 1.3), **style)
        if len(idx) > 1:
            top.fill_between(np.arange(len(mean)), lo, hi, color=color, alpha=0.15, lw=0)
    adaptive = members(result, warmup_method="adaptive", warmup_steps=too_short, **calm)
    factor, spikes = (result.curves[k][adaptive] for k in ("factor", "num_spikes"))
    labelled = False
    for k in range(len(adaptive)):
        for step in np.nonzero(np.diff(np.r_[0.0, np.nan_to_num(spikes[k])]) > 0)[0]:
            top.axvline(step, color=colors[3], ls=":", lw=0.8, label=None if labelled else "back-off (any seed)")
            labelled = True
        bottom.plot(factor[k], color=colors[3], lw=1, alpha=0.8, label="adaptive factor, per seed" if k == 0 else None)
    w = result.configs[adaptive[0]]["warmup_steps"]
    t = np.arange(result.completed_steps)
    bottom.plot(t, np.minimum(t / max(w, 1), 1.0), color=colors[1], ls="--", lw=1, label=f"linear {too_short:g}")
    base = result.task.get("baseline_loss")
    if base is not None:
        top.axhline(base, color="gray", ls="--", lw=0.8, label="baseline loss")
    with quiet_nan():
        lo = np.nanmin(curve_band(result.curves["loss"][adaptive], 5)[0])
    top.set_ylim(max(0.0, lo - 0.3) if base is None else min(lo - 0.2, base - 0.5), (base or lo) + 1.5)
    top.set(ylabel="train loss (5-step trailing mean)",
            title=f"{result.task.get('name')}: peak LR {high:g}, warmup {too_short:g} of the run; mean of {n} seeds, "
                  "band = 95% t-interval of the mean")
    top.title.set_fontsize(8)
    bottom.set(xlabel="step", ylabel="warmup factor")
    bottom.set_xlim(0, min(result.completed_steps, max(60, 6 * w)))
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    return save(fig, path)


_STYLES: list[dict[str, Any]] = [
    dict(ls="-"), dict(ls="--"), dict(ls="-."), dict(ls=":", lw=2.0), dict(ls="-", marker="s", ms=3),
    dict(ls="--", marker="^", ms=3), dict(ls="-.", marker="o", ms=3)]


def spike_runs(panels: Sequence[tuple[str, SweepResult, float, int, Sequence[tuple[str, dict]]]], factor: float,
               warmup: float, path: str) -> str:
    """One panel per task ``(name, result, lr, spike step, [(label, fixed values), ...])``: training loss from 30
    steps before an injected gradient spike to the end, for the run without the spike and for each protection
    with it (mean of seeds of 5-step trailing means from step 0, band = 95% t-interval of the mean). The tasks'
    losses differ in scale, so each panel has its own y-axis."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.8), dpi=DPI, squeeze=False)
    labels = ["no protection, no spike"] + [f"{label}, spike" for label, _ in panels[0][4]]
    color_of = dict(zip(labels, _colors(len(labels)), strict=True))
    for ax, (name, result, lr, step, lines) in zip(axes[0], panels, strict=True):
        x0 = max(0, step - 30)
        shown = []
        n = 0
        entries = [("no protection, no spike", dict(lines[0][1], spike_factor=1.0))]
        entries += [(f"{label}, spike", dict(fixed, spike_factor=factor)) for label, fixed in lines]
        for k, (label, fixed) in enumerate(entries):
            idx = members(result, peak_value=lr, warmup_steps=warmup, **fixed)
            if not idx:
                continue
            n = len(idx)
            style = dict(_STYLES[k % len(_STYLES)], markevery=max(1, (result.completed_steps - x0) // 12))
            if "marker" not in style:
                style.pop("markevery")
            lw = style.pop("lw", 1.3)
            mean, lo, hi = curve_band(result.curves["loss"][idx], 5)
            x = np.arange(len(mean))
            keep = x >= x0
            ax.plot(x[keep], mean[keep], color=color_of[label], lw=lw, label=label, **style)
            if len(idx) > 1:
                ax.fill_between(x[keep], lo[keep], hi[keep], color=color_of[label], alpha=0.12, lw=0)
            shown.append(mean[keep])
        ax.axvline(step, color="k", ls=":", lw=1, label=f"{factor:g}x gradient at step {step}")
        ax.set_xlim(x0, result.completed_steps)
        with quiet_nan():
            values = np.concatenate(shown) if shown else np.array([np.nan])
            lo_y, hi_y = np.nanmin(values), np.nanpercentile(values, 99)
        if np.isfinite(lo_y) and np.isfinite(hi_y):
            pad = 0.08 * max(hi_y - lo_y, 1e-3)
            ax.set_ylim(lo_y - pad, hi_y + pad)
        ax.set(xlabel="step", ylabel="train loss (5-step trailing mean)",
               title=f"{name}: peak LR {lr:g}, mean of {n} seeds, band = 95% t-interval")
        ax.title.set_fontsize(8)
        ax.grid(alpha=0.3)
    handles, names = axes[0][0].get_legend_handles_labels()
    ncol = min(4, 2 * len(panels))
    fig.legend(handles, names, loc="lower center", ncol=ncol, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.045 * (1 + -(-len(handles) // ncol)), 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return path


def detection(clean: Mapping[str, tuple[SweepResult, Sequence[int]]], rules: Mapping[str, Mapping[str, np.ndarray]],
              replay: Callable, factor: float, path: str) -> str:
    """Per task: the smallest gradient spike the spike test flags at each step over the given runs (the report
    seeds' clean runs): median over runs and the 10-90% band of runs (a spread of runs, not an interval of a
    mean), for each rule; the panels share their y-axis."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(clean), figsize=(4.3 * len(clean), 3.4), dpi=DPI, squeeze=False, sharey=True)
    styles: list[dict[str, Any]] = [dict(ls="-"), dict(ls="--"), dict(ls="-.", marker="o", ms=3, markevery=15)]
    for ax, (task, (result, ok)) in zip(axes[0], clean.items(), strict=True):
        for k, (color, (label, fields)) in enumerate(zip(_colors(len(rules)), rules.items(), strict=True)):
            thr = replay(result.curves["grad_norm"][ok], result.curves["loss"][ok], fields)["threshold"][0]
            thr = np.where(np.isfinite(thr), thr, np.nan)
            with quiet_nan():
                med, lo, hi = (np.nanpercentile(thr, q, axis=0) for q in (50, 10, 90))
            x = np.arange(len(med))
            ax.plot(x, med, color=color, lw=1.3, label=f"{label}: median", **styles[k % len(styles)])
            ax.fill_between(x, lo, hi, color=color, alpha=0.15, lw=0, label=f"{label}: 10-90% of runs")
        ax.axhline(factor, color="k", ls=":", lw=1, label=f"{factor:g}x")
        ax.set_yscale("log")
        ax.set(xlabel="step", ylabel="smallest spike flagged (x gradient)",
               title=f"{task}: {len(ok)} clean runs, report seeds")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return path


LINESTYLES: list[Any] = ["-", "--", "-.", ":", (0, (6, 2)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1))]
EVAL_MARKERS = ["o", "s", "^", "v", "D", "x", "P"]


def eval_band_rows(rows: Sequence[Sequence[tuple[str, Sequence[tuple[str, str, Sequence[int]]]]]],
                   result: SweepResult, path: str, metric: str = "loss", ylabel: str = "validation loss",
                   band_label: str = "95% t-interval of the mean") -> str:
    """Evaluation curves from step 0, a grid of panels: ``rows`` of panels ``(title, lines)``, each line a
    ``(label, key, config indices)``. Each line is the mean over the given configs (the seeds) with its t-interval
    band (``curve_band``); a line's colour, dash pattern and marker follow its ``key``, the same in every panel, so
    that overlapping lines stay visible. The panels of a row share their y-limits (they are compared)."""
    plt = pyplot()
    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(4.4 * ncols, 3.1 * len(rows) + 0.7), dpi=DPI,
                             squeeze=False)
    keys = list(dict.fromkeys(key for row in rows for _, lines in row for _, key, _ in lines))
    style = {k: (c, LINESTYLES[i % len(LINESTYLES)], EVAL_MARKERS[i % len(EVAL_MARKERS)])
             for i, (k, c) in enumerate(zip(keys, _colors(len(keys)), strict=True))}
    steps = np.asarray(result.eval_steps)
    every = max(1, len(steps) // 8)
    for r, row in enumerate(rows):
        lows, highs = [], []
        for c, (title, lines) in enumerate(row):
            ax = axes[r][c]
            for i, (label, key, idx) in enumerate(lines):
                color, ls, marker = style[key]
                mean, lo, hi = curve_band(result.eval[metric][np.asarray(idx, int)])
                ax.plot(steps, mean, color=color, ls=ls, lw=1.3, marker=marker, ms=3.5, label=label,
                        markevery=(i % every, every), mfc="none")
                if np.isfinite(lo).any():
                    ax.fill_between(steps, lo, hi, color=color, alpha=0.15, lw=0)
                with quiet_nan():
                    lows.append(np.nanmin(np.where(np.isfinite(lo), lo, mean)))
                    highs.append(np.nanmax(np.where(np.isfinite(hi), hi, mean)))
            ax.set(xlabel="step", ylabel=ylabel, title=title)
            ax.title.set_fontsize(9)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6, loc="best")
        for ax in axes[r][len(row):]:
            ax.axis("off")
        finite = [x for x in lows + highs if np.isfinite(x)]
        if finite:
            lo, hi = min(finite), max(finite)
            pad = 0.05 * (hi - lo) or 0.05
            for ax in axes[r][:len(row)]:
                ax.set_ylim(lo - pad, hi + pad)
    fig.text(0.5, 0.01, f"shaded: {band_label}", ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return path
