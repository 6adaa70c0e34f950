"""What the evidence experiments share: seed statistics, the machine they ran on, tables and output files."""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from optax_warmup._numeric import quiet_nan
from optax_warmup.sweep import stats
from optax_warmup.sweep.result import SweepResult, _jsonable

ALPHA = 0.05  # family-wise error of a table (Holm)


# ------------------------------------------------------------------------------------------------- seeds


def seeds(size: Mapping) -> tuple[list[int], list[int]]:
    """The seeds that choose (``0 .. choose_seeds - 1``) and the fresh seeds that report (the next
    ``report_seeds``). Every choice of an experiment (best LR, best fixed warmup, defaults) reads only the first;
    every number it reports reads only the second."""
    choose = list(range(size["choose_seeds"]))
    return choose, list(range(len(choose), len(choose) + size["report_seeds"]))


def seed_range(seed_list: Sequence[int]) -> str:
    """``"seeds 0-4"`` (or ``"seed 0"``)."""
    return f"seed {seed_list[0]}" if len(seed_list) == 1 else f"seeds {seed_list[0]}-{seed_list[-1]}"


def all_seeds(size: Mapping) -> list[int]:
    choose, report = seeds(size)
    return choose + report


# ------------------------------------------------------------------------------------------------- statistics


def _num(x) -> float:
    """A number read back from JSON, where NaN is written as null."""
    return float("nan") if x is None else float(x)


def describe(values: Iterable[float], fill: ArrayLike | None = None) -> dict:
    """Mean over seeds with its Student-t 95% interval (``sweep.stats.interval``), the per-seed values and how
    many runs diverged.

    A diverged run (NaN) is replaced by ``fill`` (the experiments pass its loss before training: a diverged run
    counts as having learnt nothing); without ``fill`` a diverged run makes the whole entry "diverged".
    """
    v = np.asarray(list(values), np.float64)
    bad = ~np.isfinite(v)
    if fill is not None:
        v = np.where(bad, np.broadcast_to(np.asarray(fill, np.float64), v.shape), v)
    out = dict(per_seed=[float(x) for x in v], n=int(v.size), diverged=int(bad.sum()))
    if v.size == 0 or not np.isfinite(v).all():
        return dict(out, mean=float("nan"), sd=float("nan"), low=float("nan"), high=float("nan"), known=False)
    iv = stats.interval(v)
    return dict(out, mean=iv.mean, sd=iv.sd, low=iv.low, high=iv.high, known=iv.known)


def compare(a: ArrayLike, b: ArrayLike) -> dict:
    """``a - b`` seed by seed (same seed = same initialisation and batches): ``sweep.stats.paired`` (mean
    difference, its t-interval, p-value, Cohen's d_z) and the per-seed differences. ``correct`` adds the Holm
    p-value of the table it belongs to. NaN anywhere (a diverged run nobody filled) gives an unknown comparison."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = x - y
    if d.size == 0 or not np.isfinite(d).all():
        nan = float("nan")
        return dict(difference=nan, n=int(d.size), low=nan, high=nan, p=nan, d_z=nan, known=False,
                    per_seed=[float(v) for v in d])
    out = stats.paired(x, y).to_dict()
    out.pop("distinguishable", None)
    out.pop("confidence", None)
    return dict(out, per_seed=[float(v) for v in d])


def correct(comparisons: Iterable[dict]) -> list[dict]:
    """Holm's correction across one table's comparisons (in place): each gains ``p_holm`` and
    ``distinguishable`` (``p_holm < ALPHA``: only then does the page call a difference real)."""
    rows = list(comparisons)
    for row, p in zip(rows, stats.holm([_num(r["p"]) for r in rows]), strict=True):
        row["p_holm"] = p
        row["distinguishable"] = bool(np.isfinite(p) and p < ALPHA)
    return rows


def distinguishable(c: Mapping) -> bool:
    return bool(c.get("distinguishable", False))


def fmt(d: Mapping, digits: int = 3) -> str:
    """``"2.531 ± 0.012"``: the mean over seeds and the half-width of its 95% t-interval."""
    mean = _num(d["mean"])
    if not np.isfinite(mean):
        return f"diverged ({d.get('diverged', 0)}/{d['n']})"
    lo, hi = _num(d["low"]), _num(d["high"])
    if not np.isfinite(lo):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {(hi - lo) / 2:.{digits}f}"


def fmt_p(p: float) -> str:
    p = _num(p)
    if not np.isfinite(p):
        return "n/a"
    return "<0.001" if p < 1e-3 else f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def fmt_diff(c: Mapping, digits: int = 3) -> str:
    """``"-0.120 [-0.180, -0.050], d_z -1.9, p_Holm 0.004"`` (mean difference, 95% t-interval, effect size,
    corrected p), ending in `` ~`` when the difference is not distinguishable."""
    mean = _num(c["difference"])
    if not np.isfinite(mean):
        return "n/a"
    lo, hi = _num(c["low"]), _num(c["high"])
    ci = f" [{lo:+.{digits}f}, {hi:+.{digits}f}]" if np.isfinite(lo) else ""
    dz = _num(c["d_z"])
    p = c.get("p_holm", c["p"])
    tail = "" if distinguishable(c) else " ~"
    return f"{mean:+.{digits}f}{ci}, d_z {dz:+.1f}, p_Holm {fmt_p(p)}{tail}"


STATS_NOTE = ("mean difference [95% paired t-interval], Cohen's d_z, Holm-corrected p across this table; "
              "~ = not distinguishable (corrected p >= 0.05); negative = lower loss")


def scale(task, steps: int) -> dict:
    """The size of one experiment's model and run: parameters, steps, examples seen (steps x batch) and, for a
    language model, tokens (steps x batch x context)."""
    import jax

    params = task.init(0) if task.host_init else task.init(jax.random.key(0))
    params = params[0] if task.model_state else params
    n = int(sum(np.size(x) for x in jax.tree.leaves(params)))
    info = task.info or {}
    batch = info.get("batch_size")
    context = (info.get("model") or {}).get("context")
    out = dict(parameters=n, steps=int(steps), batch_size=batch)
    if batch is not None:
        out["examples"] = int(steps * batch)
        if context is not None:
            out.update(context=context, tokens=int(steps * batch * context))
    return out


def scale_line(s: Mapping) -> str:
    """``"25.6k parameters, 200 steps, 102k tokens"``."""
    def k(x):
        return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k" if x >= 1e3 else str(x)

    parts = [f"{k(s['parameters'])} parameters", f"{s['steps']:,} steps"]
    what = "tokens" if "tokens" in s else "examples" if "examples" in s else None
    if what:
        parts.append(f"{k(s[what])} {what} seen (batch {s['batch_size']})")
    return ", ".join(parts)


# ----------------------------------------------------------------------------------------------- the machine


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux / macOS
        return []


def machine() -> dict:
    """The machine an experiment ran on: CPU, cores JAX may use, backend, versions."""
    import jax

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        cores: int | None = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        cores = os.cpu_count()
    return dict(cpu=cpu, cores=cores, backend=jax.default_backend(), devices=jax.device_count(),
                python=platform.python_version(), jax=jax.__version__, platform=platform.platform())


@dataclass
class Clock:
    """Wall time and load average of one experiment (the machine may be shared: say how busy it was)."""

    start: float = field(default_factory=time.perf_counter)
    load_start: list[float] = field(default_factory=load_average)
    samples: list[float] = field(default_factory=list)

    def sample(self) -> None:
        load = load_average()
        if load:
            self.samples.append(load[0])

    def done(self) -> dict:
        self.sample()
        return dict(wall_s=round(time.perf_counter() - self.start, 1), load_average_start=self.load_start,
                    load_average_end=load_average(),
                    load_1min_during=[min(self.samples), max(self.samples)] if self.samples else [])


# ------------------------------------------------------------------------------------------------- tables


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------- per-seed values


def members(result: SweepResult, **fixed) -> list[int]:
    """Configs whose given values match ``fixed``, in grid order (so seeds come in order)."""
    return [i for i, g in enumerate(result.given) if all(g.get(k) == v for k, v in fixed.items())]


def at_seeds(result: SweepResult, values: ArrayLike, seed_list: Sequence[int], **fixed) -> np.ndarray:
    """``values[i]`` of the one config per seed (in ``seed_list``'s order) whose given values match ``fixed``:
    per-seed arrays that line up for paired comparisons."""
    values = np.asarray(values)
    out = []
    for s in seed_list:
        idx = members(result, seed=s, **fixed)
        if len(idx) != 1:
            raise ValueError(f"{len(idx)} configs match seed {s} and {fixed}; expected one")
        out.append(values[idx[0]])
    return np.asarray(out, np.float64)


def lr_sensitivity(losses: ArrayLike, initial: ArrayLike) -> np.ndarray:
    """Wortsman et al.'s LR sensitivity per seed from ``[lr, seed]`` final losses: the mean over the LR grid of
    ``min(L, L_init)`` minus the best ``L`` (a diverged run, NaN, counts as ``L_init``)."""
    losses, initial = np.asarray(losses, np.float64), np.asarray(initial, np.float64)
    capped = np.minimum(np.where(np.isfinite(losses), losses, initial), initial)
    return capped.mean(0) - capped.min(0)


def learnt(result: SweepResult) -> np.ndarray:
    """Final evaluation loss per config, a diverged run counted as its loss before training."""
    final = np.asarray(result.final_loss, np.float64)
    return np.where(np.isfinite(final), final, np.asarray(result.initial_loss, np.float64))


def final_losses(result: SweepResult, **fixed) -> list[float]:
    """Final (evaluation) loss per seed of one setting; NaN for a run frozen by a non-finite value."""
    return [float(result.final_loss[i]) for i in members(result, **fixed)]


def trailing_mean(curves: np.ndarray, window: int) -> np.ndarray:
    """Each row's mean over the last ``window`` steps, from step 0 on (the first steps average what there is), so
    a smoothed curve starts where the run starts."""
    if window <= 1:
        return np.asarray(curves, np.float64)
    c = np.asarray(curves, np.float64)
    csum = np.cumsum(np.c_[np.zeros(len(c)), c], axis=1)
    t = np.arange(1, c.shape[1] + 1)
    lo = np.maximum(t - window, 0)
    return (csum[:, t] - csum[:, lo]) / (t - lo)


def curve_band(curves: np.ndarray, smooth: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds (rows) of curves, each a trailing mean of ``smooth`` steps from step 0, with the 95%
    t-interval of that mean at every step (NaN steps, after a run froze, are left out)."""
    curves = trailing_mean(curves, smooth)
    with quiet_nan():
        n = np.sum(np.isfinite(curves), 0)
        mean, sd = np.nanmean(curves, 0), np.nanstd(curves, 0, ddof=1)
    half = np.full_like(mean, np.nan)
    ok = n >= stats.MIN_SEEDS
    if ok.any():
        half[ok] = stats._t().ppf(0.975, n[ok] - 1) * sd[ok] / np.sqrt(n[ok])
    return mean, mean - half, mean + half


# ------------------------------------------------------------------------------------------------- outputs


def read_json(out: str, name: str) -> dict:
    with open(os.path.join(out, name)) as f:
        return json.load(f)


def finish(outputs: Outputs, summary: dict, clock: Clock, draw: Callable[[dict], None]) -> dict:
    """Stamp the timing, write ``summary.json``, read it back and draw the report and figures from what was
    read (what ``--replot`` reads: the same report either way); the summary gains the paths written."""
    summary["timing"] = clock.done()
    outputs.json("summary.json", summary)
    summary = read_json(outputs.out, "summary.json")
    draw(summary)
    summary["outputs"] = dict(outputs.written)
    return summary


def timing_line(summary: Mapping, note: str = "") -> str:
    """The report's last line: wall time, load average and machine."""
    t = summary["timing"]
    return (f"Wall time {t['wall_s']:.0f} s{note}; load average {t['load_average_start']} at the start, "
            f"{t['load_average_end']} at the end; {summary['machine']['cores']} cores ({summary['machine']['cpu']}).")


def shrink_png(path: str, colors: int = 128) -> None:
    """Rewrites a PNG with a palette of ``colors`` colours (line plots and heatmaps do not need more)."""
    from PIL import Image

    with Image.open(path) as img:
        small = img.convert("RGB").quantize(colors=colors)
    small.save(path, optimize=True)


@dataclass
class Outputs:
    """Where an experiment writes: ``out`` for everything, ``figures`` (optional) for copies of the figures."""

    out: str
    figures: str | None = None
    written: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        os.makedirs(self.out, exist_ok=True)
        if self.figures:
            os.makedirs(self.figures, exist_ok=True)

    def path(self, name: str) -> str:
        return os.path.join(self.out, name)

    def figure(self, name: str, draw: Callable[[str], str]) -> str:
        """Draws a figure into ``out/name`` (a PNG of at most 128 colours: a quarter of the bytes, the same look)
        and copies it to ``figures/name``."""
        path = draw(self.path(name))
        shrink_png(path)
        if self.figures:
            shutil.copyfile(path, os.path.join(self.figures, name))
        self.written[name] = path
        return path

    def json(self, name: str, data: Any) -> str:
        path = self.path(name)
        with open(path, "w") as f:
            json.dump(_jsonable(data), f, indent=1)
        self.written[name] = path
        return path

    def text(self, name: str, text: str) -> str:
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        self.written[name] = path
        return path
