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
from optax_warmup.sweep.result import SweepResult, _jsonable

BOOTSTRAP = 10_000  # resamples of the seeds for a 95% interval of their mean


# ------------------------------------------------------------------------------------------------- statistics


def seed_stats(values: Iterable[float]) -> dict:
    """Mean over seeds with its spread: the per-seed values, min, max, and a bootstrap 95% interval of the mean.

    With 3 seeds the bootstrap interval is close to the min-max range: read it as "the seeds went from ... to ...".
    NaN values (a diverged run) are kept in ``per_seed`` and make the mean NaN.
    """
    v = np.asarray(list(values), np.float64)
    out = dict(mean=float(np.mean(v)) if len(v) else float("nan"), per_seed=[float(x) for x in v], n=int(len(v)))
    finite = v[np.isfinite(v)]
    out["min"] = float(finite.min()) if len(finite) else float("nan")
    out["max"] = float(finite.max()) if len(finite) else float("nan")
    if len(v) > 1 and np.isfinite(v).all():
        rng = np.random.default_rng(0)
        means = v[rng.integers(0, len(v), size=(BOOTSTRAP, len(v)))].mean(axis=1)
        out["ci95"] = [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]
    else:
        out["ci95"] = [float("nan"), float("nan")]
    return out


def paired(a: ArrayLike, b: ArrayLike) -> dict:
    """``a - b`` seed by seed (same seed = same initialisation and batches), with ``seed_stats`` and how many seeds
    agree in sign with the mean."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    out = seed_stats(d)
    out["same_sign"] = int(np.sum(np.sign(d) == np.sign(out["mean"]))) if np.isfinite(out["mean"]) else 0
    return out


def _num(x) -> float:
    """A number read back from JSON, where NaN is written as null."""
    return float("nan") if x is None else float(x)


def inside_noise(stats: Mapping) -> bool:
    """Whether a difference is inside the noise: its seeds disagree in sign, or its 95% interval contains 0."""
    lo, hi = (_num(x) for x in stats["ci95"])
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return True
    return stats.get("same_sign", stats["n"]) < stats["n"] or lo <= 0.0 <= hi


def fmt(stats: Mapping, digits: int = 3) -> str:
    """``"2.531 (2.49-2.57)"``: the mean over seeds and the range of the seeds."""
    if not np.isfinite(_num(stats["mean"])):
        bad = sum(1 for x in stats["per_seed"] if not np.isfinite(_num(x)))
        return f"diverged ({bad}/{stats['n']})"
    if stats["n"] < 2:
        return f"{stats['mean']:.{digits}f}"
    return f"{stats['mean']:.{digits}f} ({stats['min']:.{digits}f}-{stats['max']:.{digits}f})"


def fmt_diff(stats: Mapping, digits: int = 3) -> str:
    """``"-0.12 [-0.18, -0.05], 3/3"``: mean difference, bootstrap interval, seeds agreeing in sign."""
    if not np.isfinite(_num(stats["mean"])):
        return "n/a"
    lo, hi = (_num(x) for x in stats["ci95"])
    ci = f" [{lo:+.{digits}f}, {hi:+.{digits}f}]" if np.isfinite(lo) else ""
    return f"{stats['mean']:+.{digits}f}{ci}, {stats.get('same_sign', stats['n'])}/{stats['n']}"


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


def final_losses(result: SweepResult, **fixed) -> list[float]:
    """Final (evaluation) loss per seed of one setting; NaN for a run frozen by a non-finite value."""
    return [float(result.final_loss[i]) for i in members(result, **fixed)]


def curve_band(curves: np.ndarray, smooth: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max over seeds (rows) of curves, each smoothed by a moving average of ``smooth`` steps."""
    if smooth > 1 and curves.shape[1] >= smooth:
        kernel = np.ones(smooth) / smooth
        curves = np.stack([np.convolve(np.nan_to_num(c, nan=np.inf), kernel, "valid") for c in curves])
        curves = np.where(np.isfinite(curves), curves, np.nan)
    with quiet_nan():
        return np.nanmean(curves, 0), np.nanmin(curves, 0), np.nanmax(curves, 0)


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
