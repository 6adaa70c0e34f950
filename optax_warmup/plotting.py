"""Plotting helpers; matplotlib is imported only when a figure is drawn, on the Agg backend."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping

import numpy as np

from optax_warmup._extras import require


def pyplot():
    """matplotlib.pyplot, on the Agg backend (no display needed) unless pyplot is already in use; without
    matplotlib, a MissingExtra naming the ``plot`` extra.

    A program that imported pyplot before (a notebook, with its inline backend) keeps its backend: switching it
    to Agg would stop every later figure of the notebook from showing. Our figures are saved and closed either way.
    """
    matplotlib = require("matplotlib", "plot", "drawing figures")
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def schedule_values(schedule: Callable, steps: int) -> np.ndarray:
    """Values of `schedule` at counts 0..steps-1, evaluated in one vectorised call."""
    import jax
    import jax.numpy as jnp

    return np.asarray(jax.jit(jax.vmap(schedule))(jnp.arange(steps)))


def plot_schedules(schedules: Mapping[str, Callable], steps: int, path: str | os.PathLike,
                   warmup_steps: Mapping[str, float] | None = None, title: str = "learning-rate schedule",
                   log_y: bool = False) -> str:
    """Draw each labelled schedule over `steps` steps to a PNG; shade each schedule's warmup phase."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 3.6 + 0.25 * len(schedules)), dpi=100)
    for i, (label, schedule) in enumerate(schedules.items()):
        (line,) = ax.plot(np.arange(steps), schedule_values(schedule, steps), label=label, lw=1.6)
        w = (warmup_steps or {}).get(label)
        if w:
            ax.axvspan(0, w, color=line.get_color(), alpha=0.12, lw=0,
                       label="warmup" if i == 0 and len(schedules) == 1 else None)
            ax.axvline(w, color=line.get_color(), ls=":", lw=1)
    ax.set(xlabel="step", ylabel="learning rate", title=title)
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False)
    return save(fig, path)


def save(fig, path: str | os.PathLike) -> str:
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    pyplot().close(fig)
    return path
