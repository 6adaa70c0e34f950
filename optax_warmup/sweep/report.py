"""What a sweep found: per-config summaries, divergence, LR sensitivity, table, results.json, figures."""

from __future__ import annotations

import json
import math
import os
import warnings
from contextlib import contextmanager

import numpy as np

EARLY_FRACTION = 0.2  # early-spike metrics look at the first 20% of steps
LATE_FRACTION = 0.1  # "late in training": the last 10% of steps
UNIGRAM_MARGIN = 0.05  # nats: "at the unigram loss" is within this of it; "stuck" is improving by less


@contextmanager
def _quiet_nan():
    """All-NaN slices (diverged configs) are expected here: their mean is NaN, no warning needed."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _late(curve: np.ndarray) -> np.ndarray:
    """Mean over the last LATE_FRACTION of steps, per config. curve: (steps, configs)."""
    n = max(1, int(round(LATE_FRACTION * curve.shape[0])))
    with _quiet_nan():
        return np.nanmean(curve[-n:], axis=0)


def _smooth_min(curve: np.ndarray, window: int = 10) -> np.ndarray:
    kernel = np.ones(window) / window
    with _quiet_nan():
        return np.array([np.nanmin(np.convolve(np.nan_to_num(c, nan=np.inf), kernel, "valid"))
                         if len(c) >= window else np.nanmin(c) for c in curve.T])


def per_config(results: dict) -> list[dict]:
    """One summary per config (unaveraged): final losses, early-spike metrics, divergence and its reason.

    Diverged means: the step produced a non-finite value (the config was then frozen), or late in training
    (the last 10% of steps) the loss is at or above the unigram cross-entropy (what a byte-frequency table
    achieves) *and* it either climbed back there from lower down or is stuck there (it fell by less than
    UNIGRAM_MARGIN between the middle of the run and the end). The second condition keeps slow runs that are
    still improving from being called diverged.
    """
    loss, gnorm = results["curves"]["loss"], results["curves"]["grad_norm"]
    steps = loss.shape[0]
    early = max(2, int(math.ceil(EARLY_FRACTION * steps)))
    unigram = results["corpus"]["unigram_cross_entropy"]
    alive = results["alive"]
    late = _late(loss)
    middle = _late(loss[: max(1, steps // 2)])  # the same window, ending half-way through the run
    best = _smooth_min(loss)
    with _quiet_nan():
        jumps = np.nanmax(np.diff(loss[:early], axis=0), axis=0) if early > 1 else np.zeros(loss.shape[1])
        max_gnorm = np.nanmax(gnorm[:early], axis=0)
    rows = []
    for i, g in enumerate(results["grid"]):
        dead = np.flatnonzero(~alive[:, i])
        if dead.size:
            reason = f"non-finite at step {int(dead[0])}"
        elif late[i] > unigram - UNIGRAM_MARGIN and late[i] > best[i] + 2 * UNIGRAM_MARGIN:
            reason = f"loss climbed back to {late[i]:.2f} (unigram {unigram:.2f}, was {best[i]:.2f})"
        elif late[i] > unigram - UNIGRAM_MARGIN and middle[i] - late[i] < UNIGRAM_MARGIN:
            reason = f"loss stuck at {late[i]:.2f}, the unigram loss is {unigram:.2f}"
        else:
            reason = None
        rows.append(dict(**g, final_train_loss=float(late[i]),
                         final_val_loss=float(results["val_loss"][-1, i]) if not dead.size else float("nan"),
                         init_val_loss=float(results["val_loss"][0, i]),
                         early_max_grad_norm=float(max_gnorm[i]), early_max_loss_jump=float(jumps[i]),
                         diverged=reason is not None, diverged_reason=reason))
    return rows


def _key(row: dict) -> tuple:
    return (row["shape"], str(row["warmup"]), row["lr"])


def averaged(rows: list[dict]) -> list[dict]:
    """Rows averaged over seeds (diverged configs are counted, not averaged: a NaN final loss stays NaN)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(_key(r), []).append(r)
    out = []
    for members in groups.values():
        mean = lambda k, m=members: float(np.mean([r[k] for r in m]))
        out.append(dict(shape=members[0]["shape"], warmup=members[0]["warmup"],
                        warmup_steps=members[0]["warmup_steps"], lr=members[0]["lr"], seeds=len(members),
                        final_train_loss=mean("final_train_loss"), final_val_loss=mean("final_val_loss"),
                        early_max_grad_norm=mean("early_max_grad_norm"),
                        early_max_loss_jump=mean("early_max_loss_jump"),
                        diverged=sum(r["diverged"] for r in members)))
    return out


def lr_sensitivity(rows: list[dict]) -> list[dict]:
    """Wortsman et al. (2023), per (shape, warmup): over the LR grid, mean over LRs of min(L, L_init) minus
    the best L, computed per seed and averaged over seeds. L is the final validation loss; a run stopped by a
    non-finite value counts as L_init. Lower means the final loss depends less on getting the LR right."""
    by: dict[tuple, dict[int, list[tuple[float, float]]]] = {}
    for r in rows:
        L, L_init = r["final_val_loss"], r["init_val_loss"]
        L = min(L, L_init) if np.isfinite(L) else L_init  # NaN: the run was frozen (non-finite)
        cell = by.setdefault((r["shape"], str(r["warmup"])), {})
        cell.setdefault(r["seed"], []).append((L, r["warmup_steps"]))
    out = []
    for (shape, warmup), seeds in by.items():
        per_seed = [np.mean([L for L, _ in v]) - min(L for L, _ in v) for v in seeds.values()]
        out.append(dict(shape=shape, warmup=warmup, warmup_steps=next(iter(seeds.values()))[0][1],
                        sensitivity=float(np.mean(per_seed)),
                        sensitivity_per_seed=[float(s) for s in per_seed]))
    return out


def format_table(results: dict) -> str:
    """The terminal table: one line per (shape, warmup, lr), averaged over seeds; then the LR sensitivity."""
    rows = per_config(results)
    avg = averaged(rows)
    seeds = results["settings"]["seeds"]
    head = (f"{'shape':<11}{'warmup':>8}{'steps':>6}{'peak lr':>9}{'train':>8}{'valid':>8}"
            f"{'max|g| early':>13}{'max jump':>10}  diverged")
    lines = [f"final losses (nats/byte) averaged over {seeds} seed(s); early = first "
             f"{int(EARLY_FRACTION * 100)}% of steps; unigram cross-entropy "
             f"{results['corpus']['unigram_cross_entropy']:.3f}", head, "-" * len(head)]
    for r in avg:
        mark = f"{r['diverged']}/{r['seeds']}" if r["diverged"] else ""
        lines.append(f"{r['shape']:<11}{str(r['warmup']):>8}{r['warmup_steps']:>6}{r['lr']:>9.0e}"
                     f"{r['final_train_loss']:>8.3f}{r['final_val_loss']:>8.3f}"
                     f"{r['early_max_grad_norm']:>13.2f}{r['early_max_loss_jump']:>10.3f}  {mark}")
    lines += ["", "LR sensitivity (Wortsman et al. 2023; lower = less sensitive to the peak LR):"]
    for s in lr_sensitivity(rows):
        per = ", ".join(f"{v:.3f}" for v in s["sensitivity_per_seed"])
        lines.append(f"  {s['shape']:<11} warmup {str(s['warmup']):>6} ({s['warmup_steps']:>4} steps): "
                     f"{s['sensitivity']:.3f}   per seed [{per}]")
    diverged = [r for r in rows if r["diverged"]]
    if diverged:
        lines += ["", "diverged configs:"]
        lines += [f"  lr={r['lr']:g} warmup={r['warmup']} shape={r['shape']} seed={r['seed']}: "
                  f"{r['diverged_reason']}" for r in diverged]
    return "\n".join(lines)


def _jsonable(x):
    if isinstance(x, dict):
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


def results_json(results: dict) -> dict:
    """Everything, JSON-ready. Curves are indexed [config][step], configs in `configs` order; NaN is null."""
    rows = per_config(results)
    curves = {k: np.asarray(v).T for k, v in results["curves"].items()}
    return _jsonable(dict(
        settings=results["settings"], corpus=results["corpus"], timing=results["timing"],
        configs=rows, averaged=averaged(rows), lr_sensitivity=lr_sensitivity(rows),
        curves=dict(**curves, val_steps=results["eval_steps"], val_loss=np.asarray(results["val_loss"]).T),
        **({"sequential": results["sequential"]} if "sequential" in results else {}),
    ))


def load_results(path: str) -> dict:
    """Read a results.json back into the in-memory form `run_sweep` returns (to redo the table or figures)."""
    with open(path) as f:
        saved = json.load(f)
    as_array = lambda rows: np.array([[np.nan if x is None else x for x in row] for row in rows], np.float64).T
    curves = {k: as_array(saved["curves"][k]) for k in ("loss", "grad_norm", "lr")}
    keys = ("shape", "warmup", "warmup_steps", "lr", "seed")
    alive = np.ones_like(curves["loss"], bool)
    for i, c in enumerate(saved["configs"]):
        reason = c["diverged_reason"] or ""
        if reason.startswith("non-finite at step"):
            alive[int(reason.rsplit(" ", 1)[1]):, i] = False
    return dict(settings=saved["settings"], corpus=saved["corpus"], timing=saved["timing"],
                grid=[{k: c[k] for k in keys} for c in saved["configs"]], curves=curves, alive=alive,
                eval_steps=saved["curves"]["val_steps"], val_loss=as_array(saved["curves"]["val_loss"]),
                **({"sequential": saved["sequential"]} if "sequential" in saved else {}))


def write_outputs(results: dict, out_dir: str) -> dict[str, str]:
    """results.json, table.txt and the figures under out_dir; returns {name: path}."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"results": os.path.join(out_dir, "results.json"), "table": os.path.join(out_dir, "table.txt")}
    with open(paths["results"], "w") as f:
        json.dump(results_json(results), f)
    with open(paths["table"], "w") as f:
        f.write(format_table(results) + "\n")
    paths["heatmap"] = plot_heatmap(results, os.path.join(out_dir, "heatmap_val_loss.png"))
    paths["curves"] = plot_loss_curves(results, os.path.join(out_dir, "loss_curves.png"))
    paths["schedules"] = plot_lr_schedules(results, os.path.join(out_dir, "lr_schedules.png"))
    return paths


def _axes_grid(n: int, width: float = 3.4, height: float = 3.0):
    from optax_warmup.plotting import pyplot

    plt = pyplot()
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), dpi=90, squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def plot_heatmap(results: dict, path: str) -> str:
    """Final validation loss (mean over seeds) over peak LR x warmup, one panel per warmup shape."""
    from optax_warmup.plotting import save

    s = results["settings"]
    avg = averaged(per_config(results))
    fig, axes = _axes_grid(len(s["shapes"]), width=1.2 + 0.9 * len(s["lrs"]),
                           height=1.2 + 0.55 * len(s["warmups"]))
    for ax, shape in zip(axes, s["shapes"], strict=True):
        grid = np.full((len(s["warmups"]), len(s["lrs"])), np.nan)
        for r in avg:
            if r["shape"] == shape:
                grid[[str(w) for w in s["warmups"]].index(str(r["warmup"])), s["lrs"].index(r["lr"])] = (
                    r["final_val_loss"])
        im = ax.imshow(grid, cmap="viridis_r", aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, "div" if not np.isfinite(v) else f"{v:.2f}", ha="center", va="center", fontsize=8,
                    color="w" if np.isfinite(v) and v > np.nanmean(grid) else "k")
        ax.set_xticks(range(len(s["lrs"])), [f"{lr:g}" for lr in s["lrs"]])
        ax.set_yticks(range(len(s["warmups"])), [_warmup_label(w, s["steps"]) for w in s["warmups"]])
        ax.set(xlabel="peak learning rate", ylabel="warmup", title=f"final valid loss ({shape})")
        fig.colorbar(im, ax=ax, fraction=0.05)
    return save(fig, path)


def _warmup_label(w, steps: int) -> str:
    from optax_warmup.sweep.train import warmup_steps_of

    return f"{w:g} ({warmup_steps_of(w, steps)})" if isinstance(w, float) else str(w)


def _panels(results: dict):
    """(shape, warmup) panels, each with the config indices per LR."""
    s = results["settings"]
    for shape in s["shapes"]:
        for w in s["warmups"]:
            yield shape, w, {lr: [i for i, g in enumerate(results["grid"])
                                  if g["shape"] == shape and str(g["warmup"]) == str(w) and g["lr"] == lr]
                             for lr in s["lrs"]}


def _lr_colors(lrs):
    from optax_warmup.plotting import pyplot

    cmap = pyplot().get_cmap("plasma")
    return {lr: cmap(i / max(1, len(lrs) - 1) * 0.85) for i, lr in enumerate(lrs)}


def plot_loss_curves(results: dict, path: str, smooth: int = 10) -> str:
    """Training loss (smoothed, mean over seeds) per warmup setting, one line per peak LR."""
    from optax_warmup.plotting import save

    s = results["settings"]
    panels = list(_panels(results))
    fig, axes = _axes_grid(len(panels))
    colors = _lr_colors(s["lrs"])
    loss = results["curves"]["loss"]
    unigram = results["corpus"]["unigram_cross_entropy"]
    kernel = np.ones(smooth) / smooth
    for ax, (shape, w, by_lr) in zip(axes, panels, strict=True):
        for lr, idx in by_lr.items():
            with _quiet_nan():
                curve = np.nanmean(loss[:, idx], axis=1)
            if len(curve) >= smooth:
                curve = np.convolve(curve, kernel, "valid")
            ax.plot(np.arange(len(curve)) + (len(loss) - len(curve)), curve, color=colors[lr], lw=1.2,
                    label=f"{lr:g}")
        ax.axhline(unigram, color="gray", ls="--", lw=0.8)
        ax.set(title=f"{shape}, warmup {_warmup_label(w, s['steps'])}", xlabel="step", ylabel="train loss",
               ylim=(max(0.0, unigram - 1.5), results["corpus"]["log_vocab"] + 0.5))
        ax.grid(alpha=0.3)
    axes[0].legend(title="peak lr", fontsize=7)
    return save(fig, path)


def plot_lr_schedules(results: dict, path: str) -> str:
    """The learning rate each config actually used (recorded inside the step), per warmup setting."""
    from optax_warmup.plotting import save

    s = results["settings"]
    panels = list(_panels(results))
    fig, axes = _axes_grid(len(panels))
    colors = _lr_colors(s["lrs"])
    lr_curve = results["curves"]["lr"]
    for ax, (shape, w, by_lr) in zip(axes, panels, strict=True):
        for lr, idx in by_lr.items():
            ax.plot(lr_curve[:, idx[0]], color=colors[lr], lw=1.2, label=f"{lr:g}")
        ws = results["grid"][next(iter(by_lr.values()))[0]]["warmup_steps"]
        if ws:
            ax.axvspan(0, ws, color="gray", alpha=0.15, lw=0)
        ax.set(title=f"{shape}, warmup {_warmup_label(w, s['steps'])}", xlabel="step", ylabel="learning rate",
               yscale="log", ylim=(min(s["lrs"]) * s["end_fraction"] * 0.1, max(s["lrs"]) * 2))
        ax.grid(alpha=0.3)
    axes[0].legend(title="peak lr", fontsize=7)
    return save(fig, path)
