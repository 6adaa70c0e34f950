"""Figures of a sweep: the final loss over two axes, the loss curves and the learning rates each config used.

Every figure has one panel per setting of the axes it does not draw (e.g. one per warmup shape), a labelled
colour bar or one shared legend, and is saved at 150 dpi so it reads at full page width.
"""

from __future__ import annotations

import itertools
import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from optax_warmup._numeric import quiet_nan
from optax_warmup.plotting import pyplot, save

if TYPE_CHECKING:  # SweepResult draws itself through this module (result.write)
    from optax_warmup.sweep.result import SweepResult

DPI = 150


def _varying(result: SweepResult) -> list[str]:
    return [a for a in result.setting_axes if len(result.axes[a]) > 1]


def choose_axes(result: SweepResult, x: str | None = None, y: str | None = None) -> tuple[str | None, str | None]:
    """The heatmap's axes: ``x`` defaults to the learning-rate axis (or the first axis with several values),
    ``y`` to the next axis with several values."""
    varying = _varying(result)
    for name in (x, y):
        if name is not None and name not in result.setting_axes:
            raise ValueError(f"axis {name!r} is not a setting axis of this sweep ({result.setting_axes})")
    if x is None:
        x = result.lr_axis() or next(iter(varying or result.setting_axes), None)
    if y is None:
        y = next((a for a in varying if a != x), None)
    return x, y


def _panels(result: SweepResult, drawn: list[str | None]) -> list[dict]:
    """One dict of fixed values per combination of the axes not drawn (and not the seed)."""
    rest = [a for a in result.setting_axes if a not in drawn]
    return [dict(zip(rest, combo, strict=True)) for combo in itertools.product(*(result.axes[a] for a in rest))]


def _members(result: SweepResult, fixed: dict[str, Any]) -> list[int]:
    return [i for i, g in enumerate(result.given) if all(g[a] == v for a, v in fixed.items())]


def _title(result: SweepResult, fixed: dict[str, Any]) -> str:
    """The panel's fixed values, leaving out axes with a single value (they are the same in every panel)."""
    shown = [f"{a} {result.label(a, v)}" for a, v in fixed.items() if len(result.axes[a]) > 1]
    return ", ".join(shown) or result.task.get("name", "sweep")


def _axes_grid(n: int, width: float, height: float):
    plt = pyplot()
    cols = 2 if n == 4 else min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), dpi=DPI, squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def _axis_title(result: SweepResult, axis: str) -> str:
    fractions = axis in result.durations and any(result.label(axis, v) != str(v) for v in result.axes[axis])
    return f"{axis}: as given (steps)" if fractions else axis


def _colors(values: list) -> dict:
    """Neighbouring values get clearly different colours: tab10 for up to ten lines, else a sampled colormap."""
    plt = pyplot()
    if len(values) <= 10:
        cmap = plt.get_cmap("tab10")
        return {v: cmap(i) for i, v in enumerate(values)}
    cmap = plt.get_cmap("turbo")
    return {v: cmap(0.05 + 0.9 * i / (len(values) - 1)) for i, v in enumerate(values)}


def plot_heatmap(result: SweepResult, path: str, x: str | None = None, y: str | None = None) -> str:
    """Final loss, mean over seeds, over ``x`` (columns) and ``y`` (rows); ``div``: a seed diverged."""
    x, y = choose_axes(result, x, y)
    final = result.final_loss
    reasons = result.divergence()
    xs = result.axes[x] if x else [None]
    ys = result.axes[y] if y else [None]
    panels = _panels(result, [x, y])
    fig, axes = _axes_grid(len(panels), width=1.8 + 1.0 * len(xs), height=1.4 + 0.5 * len(ys))
    seeds = len(np.unique(result.seeds))
    what = "eval loss" if "loss" in result.eval else "train loss"
    for ax, fixed in zip(axes, panels, strict=True):
        values: dict[tuple[int, int], list[float]] = {}
        collapsed: set[tuple[int, int]] = set()
        for i in _members(result, fixed):
            g = result.given[i]
            cell = (ys.index(g[y]) if y else 0, xs.index(g[x]) if x else 0)
            values.setdefault(cell, []).append(final[i])
            if reasons[i] and np.isfinite(final[i]):
                collapsed.add(cell)
        cells = np.full((len(ys), len(xs)), np.nan)
        for (r, c), v in values.items():
            cells[r, c] = np.mean(v)  # NaN when a seed became non-finite
        im = ax.imshow(cells, cmap="viridis_r", aspect="auto")
        with quiet_nan():
            middle = np.nanmean(cells)
        for (r, c), v in np.ndenumerate(cells):
            text = "div" if not np.isfinite(v) else f"{v:.2f}" + ("*" if (r, c) in collapsed else "")
            ax.text(c, r, text, ha="center", va="center", fontsize=8,
                    color="w" if np.isfinite(v) and v > middle else "k")
        ax.set_xticks(range(len(xs)), [result.label(x, v) for v in xs] if x else [""])
        ax.set_yticks(range(len(ys)), [result.label(y, v) for v in ys] if y else [""])
        ax.set(xlabel=_axis_title(result, x) if x else "", ylabel=_axis_title(result, y) if y else "",
               title=_title(result, fixed))
        ax.title.set_fontsize(9)
        bar = fig.colorbar(im, ax=ax, fraction=0.05)
        bar.set_label(f"final {what}, mean of {seeds} seed(s)", fontsize=8)
    fig.text(0.5, 0.005, "div: a seed's run became non-finite;  *: a seed ended at the baseline loss (collapsed)",
             ha="center", fontsize=7, color="gray")
    return save(fig, path)


def plot_loss_curves(result: SweepResult, path: str, x: str | None = None, smooth: int = 10) -> str:
    """Training loss (moving average over ``smooth`` steps, mean over seeds), one panel per setting of the
    other axes, one line per value of ``x``; one shared legend."""
    x, _ = choose_axes(result, x)
    return _line_figure(result, path, x, "loss", "train loss", smooth)


def plot_learning_rates(result: SweepResult, path: str, x: str | None = None) -> str:
    """The learning rate each config used, read from its optimizer state (first seed of each setting). The
    shaded band is the warmup: the steps before the warmup length of that panel."""
    x, _ = choose_axes(result, x)
    name = "lr" if "lr" in result.curves else next((k for k in result.curves if k.startswith("lr/")), None)
    if name is None:
        raise ValueError("this sweep recorded no learning rate (its optimizer state carries none)")
    return _line_figure(result, path, x, name, "learning rate", 1, log=True, first_seed=True)


def _line_figure(result, path, x, metric, ylabel, smooth, log=False, first_seed=False) -> str:
    panels = _panels(result, [x])
    fig, axes = _axes_grid(len(panels), width=3.6, height=2.9)
    xs = result.axes[x] if x else [None]
    colors = _colors(xs)
    curves = result.curves[metric]
    base = result.task.get("baseline_loss")
    warmup_axis = next((a for a in result.durations if "warmup" in a and a != x), None)
    kernel = np.ones(smooth) / smooth
    for ax, fixed in zip(axes, panels, strict=True):
        for v in xs:
            idx = _members(result, {**fixed, **({x: v} if x else {})})
            if first_seed:
                idx = idx[:1]
            with quiet_nan():
                curve = np.nanmean(curves[idx], axis=0)
            if smooth > 1 and len(curve) >= smooth:
                curve = np.convolve(curve, kernel, "valid")
            ax.plot(np.arange(len(curve)) + (curves.shape[1] - len(curve)), curve, color=colors[v], lw=1.2,
                    label=result.label(x, v) if x else "")
        if metric == "loss" and base is not None:
            what = result.task.get("baseline_label")
            label = f"baseline loss ({what})" if what else "baseline loss"
            ax.axhline(base, color="gray", ls="--", lw=0.8, label=label)
        if log and warmup_axis is not None:
            member = _members(result, fixed)
            w = result.configs[member[0]][warmup_axis] if member else 0
            if w:
                ax.axvspan(0, w, color="gray", alpha=0.15, lw=0, label="warmup (before the peak)")
        ax.set(xlabel="step", ylabel=ylabel)
        ax.set_title(_title(result, fixed), fontsize=9)
        if log:
            ax.set_yscale("log")
        elif base is not None and np.isfinite(curves).any():
            with quiet_nan():
                top = max(float(np.nanpercentile(curves[:, :1], 50)) + 0.3, base + 0.5)
            ax.set_ylim(max(0.0, base - 2.0), top)
        ax.grid(alpha=0.3)
    handles, labels = {}, []
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in handles:
                handles[label] = h
                labels.append(label)
    title = x if x else None
    fig.legend([handles[lbl] for lbl in labels], labels, title=title, loc="lower center", ncol=min(8, len(labels)),
               fontsize=8, title_fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.12 if len(axes) <= 3 else 0.06, 1, 1))
    return _save_keep_layout(fig, path)


def _save_keep_layout(fig, path: str) -> str:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path)
    pyplot().close(fig)
    return path


def write_all(result: SweepResult, out_dir: str, x: str | None = None, y: str | None = None) -> dict[str, str]:
    """The three figures in ``out_dir``; returns ``{name: path}``."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"heatmap": plot_heatmap(result, os.path.join(out_dir, "heatmap_final_loss.png"), x, y),
             "curves": plot_loss_curves(result, os.path.join(out_dir, "loss_curves.png"), x)}
    if any(k == "lr" or k.startswith("lr/") for k in result.curves):
        paths["learning_rates"] = plot_learning_rates(result, os.path.join(out_dir, "learning_rates.png"), x)
    return paths
