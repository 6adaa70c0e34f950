"""Ready-made optimizer factories ``hp -> GradientTransformation`` for sweeps (the command line's default)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import optax

from optax_warmup import _validate as V
from optax_warmup._composite import warmup_cosine_decay_schedule


def warmup_adamw(steps: int, *, b1: float = 0.9, b2: float = 0.999, weight_decay: float = 0.01,
                 end_fraction: float = 0.1, use_optax: bool = False) -> Callable[[Mapping[str, Any]], Any]:
    """AdamW under a warmup-cosine schedule: ``warmup_cosine_decay_schedule(0, peak, W, steps, end_fraction * peak,
    warmup_shape=shape)``.

    The factory reads the axes ``peak_value`` (required), ``warmup_steps`` (default 0), ``warmup_shape``
    (default ``"linear"``) and, when the grid has them, ``b1``, ``b2``, ``weight_decay`` and ``end_fraction``
    (else the arguments given here).

    Args:
      steps: the run's length (the cosine ends there).
      b1, b2, weight_decay, end_fraction: defaults for the axes of the same names.
      use_optax: build Optax's own ``warmup_cosine_decay_schedule`` instead (Python numbers only, linear warmup
        only): the one-compile-per-config baseline.

    Example:
      >>> import optax_warmup.sweep.optimizers as so
      >>> tx = so.warmup_adamw(100)({"peak_value": 1e-3, "warmup_steps": 10})
    """

    def factory(hp: Mapping[str, Any]):
        peak = hp["peak_value"]
        warmup = hp.get("warmup_steps", 0)
        shape = hp.get("warmup_shape", "linear")
        w = V.concrete("warmup_steps", warmup)
        if w is not None and w >= steps:
            raise ValueError(f"warmup_steps ({warmup!r}) must be shorter than the run ({steps} steps)")
        end = hp.get("end_fraction", end_fraction) * peak
        if use_optax:
            if shape != "linear":
                raise ValueError(f"Optax's warmup_cosine_decay_schedule has only the linear warmup, got {shape!r}")
            schedule = optax.warmup_cosine_decay_schedule(0.0, peak, warmup, steps, end)
        else:
            schedule = warmup_cosine_decay_schedule(0.0, peak, warmup, steps, end, warmup_shape=shape)
        return optax.adamw(schedule, b1=hp.get("b1", b1), b2=hp.get("b2", b2),
                           weight_decay=hp.get("weight_decay", weight_decay))

    return factory
