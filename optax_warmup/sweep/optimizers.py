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


WARMUP_METHODS = ("none", "linear", "exponential", "untuned", "radam", "radam_sgd", "adaptive", "gi_adam",
                  "update_limit")
# The methods whose length is the ``warmup_steps`` axis; the others take their length from elsewhere (b2) or have
# none, and refuse a non-zero ``warmup_steps`` so that a grid cannot hold two copies of one config.
_TAKES_LENGTH = ("linear", "exponential", "adaptive")
def _radamw(learning_rate, b1, b2, weight_decay) -> optax.GradientTransformation:
    """RAdam with decoupled weight decay: Optax's RAdam scaling (SGD-with-momentum fallback while rho_t < 5), the
    weight decay, then the learning rate, in AdamW's order."""
    return optax.chain(optax.scale_by_radam(b1=b1, b2=b2), optax.add_decayed_weights(weight_decay),
                       optax.scale_by_learning_rate(learning_rate))


ADAPTIVE_AXES = ("decay", "zscore", "norm_ratio", "loss_ratio", "min_observations", "backoff", "backoff_steps",
                 "skip_spikes")


def warmup_methods(steps: int, *, b1: float = 0.9, b2: float = 0.95, weight_decay: float = 0.01,
                   end_fraction: float = 0.1, update_ratio: float = 0.05) -> Callable[[Mapping[str, Any]], Any]:
    r"""AdamW under one cosine decay, with the warmup chosen by a ``warmup_method`` axis: warmups head to head.

    Every method trains with the same base schedule, a cosine from the peak to ``end_fraction`` times the peak
    over the whole run, and differs only in the warmup multiplied onto it (so the decay after the warmup is the
    same for all; a fixed warmup does not shift or compress the cosine):

    .. math::
      \eta_t = \omega_t\, c_t, \qquad
      c_t = P \left(\alpha + (1 - \alpha)\, \tfrac{1 + \cos(\pi t / T)}{2}\right)

    with ``P`` the peak (``peak_value``), ``T = steps``, ``alpha = end_fraction``, ``t`` the update count from 0
    and ``W`` the ``warmup_steps`` axis (a duration: steps or a fraction of the run). The methods:

    * ``none``: ``omega = 1``.
    * ``linear``: ``omega = min(1, t / W)`` (``warmup_overlay(c, W)``).
    * ``exponential``: ``omega = 1 - exp(-2 t / W)`` (``warmup_overlay(c, W, warmup_shape="exponential")``:
      86.5% of the way at ``W``; the time constant of Ma & Yarats' exponential warmup is ``W / 2``).
    * ``untuned``: Ma & Yarats' untuned linear warmup, ``omega = min(1, (1 - b2) (t + 1) / 2)``: a linear warmup
      over ``2 / (1 - b2)`` steps, its length set by Adam's ``b2`` (``untuned_warmup(b2)``); no ``W``.
    * ``radam``: RAdam's rectification ``r_{t+1}`` as the factor (``radam_warmup(b2)``): no update while
      ``rho_t < 5``, then a rise to 1 over about ``1 / (1 - b2)`` steps; with Adam it is RAdam without the SGD
      fallback. No ``W``.
    * ``radam_sgd``: RAdam itself, as Optax has it (``optax.scale_by_radam``, then the decoupled weight decay and
      the cosine): while ``rho_t < 5`` the update is the bias-corrected first moment (SGD with momentum) instead
      of no update, then the rectified Adam step. ``omega = 1``; no ``W``.
    * ``adaptive``: ``adaptive_warmup(adamw(c), W)`` with the library's defaults: a linear warmup over ``W`` calm
      steps whose progress is halved on a gradient-norm or loss spike (the sweep passes ``value=loss``). The
      axes ``decay``, ``zscore``, ``norm_ratio``, ``loss_ratio``, ``min_observations``, ``backoff``,
      ``backoff_steps`` and ``skip_spikes``, when the grid has them, override its defaults.
    * ``gi_adam``: GI-Adam (``gi_adamw``: Adam's second moment starts at the first gradient squared), ``omega = 1``.
    * ``update_limit``: ``omega = 1``, and every update is capped at ``update_ratio`` times the norm of the
      parameter array it moves (``clip_by_param_norm_ratio``, per array, after AdamW), the relative update size
      that Kosson et al. find warmup mostly exists to limit.

    The optimizer is AdamW (``b1``, ``b2``, ``weight_decay``) for all. The factory reads ``warmup_method``
    (required, a static string: each method is its own group of the one compiled program), ``peak_value``
    (required), ``warmup_steps`` (0 for the methods without a ``W``: a non-zero one raises), and, when the grid
    has them, ``b1``, ``b2``, ``weight_decay``, ``end_fraction``, ``update_ratio`` and the adaptive axes.

    Args:
      steps: the run's length ``T``.
      b1, b2, weight_decay, end_fraction, update_ratio: defaults for the axes of the same names.

    Example:
      >>> import optax_warmup.sweep.optimizers as so
      >>> factory = so.warmup_methods(100, b2=0.98)
      >>> # a linear warmup over 100 steps
      >>> tx = factory({"warmup_method": "untuned", "peak_value": 1e-3})
    """
    from optax_warmup._adaptive import adaptive_warmup
    from optax_warmup._decay import cosine_decay_schedule
    from optax_warmup._gi_adam import gi_adamw
    from optax_warmup._untuned import radam_warmup, untuned_warmup
    from optax_warmup._update_limit import clip_by_param_norm_ratio
    from optax_warmup._warmup import warmup_overlay

    def factory(hp: Mapping[str, Any]):
        method = hp["warmup_method"]
        V.check_choice("warmup_method", method, WARMUP_METHODS)
        peak = hp["peak_value"]
        warmup = hp.get("warmup_steps", 0)
        w = V.concrete("warmup_steps", warmup)
        if method not in _TAKES_LENGTH and w is not None and w != 0:
            raise ValueError(f"warmup_method {method!r} takes no warmup_steps (its length comes from b2, or it has "
                             f"none): give 0, got {warmup!r}")
        if w is not None and w >= steps:
            raise ValueError(f"warmup_steps ({warmup!r}) must be shorter than the run ({steps} steps)")
        beta1, beta2 = hp.get("b1", b1), hp.get("b2", b2)
        decay = hp.get("weight_decay", weight_decay)
        base = cosine_decay_schedule(peak, steps, hp.get("end_fraction", end_fraction))

        def adamw(learning_rate):
            return optax.adamw(learning_rate, b1=beta1, b2=beta2, weight_decay=decay)

        if method == "none":
            return adamw(base)
        if method in ("linear", "exponential"):
            return adamw(warmup_overlay(base, warmup, warmup_shape=method))
        if method in ("untuned", "radam"):
            factor = untuned_warmup(beta2) if method == "untuned" else radam_warmup(beta2)
            return adamw(lambda count: factor(count) * base(count))
        if method == "adaptive":
            options = {k: hp[k] for k in ADAPTIVE_AXES if k in hp}
            return adaptive_warmup(adamw(base), warmup, **options)
        if method == "radam_sgd":  # injected, so that the sweep records its learning rate like the others'
            return optax.inject_hyperparams(_radamw)(learning_rate=base, b1=beta1, b2=beta2, weight_decay=decay)
        if method == "gi_adam":  # injected, so that the sweep records its learning rate like the others'
            return optax.inject_hyperparams(gi_adamw)(learning_rate=base, b1=beta1, b2=beta2, weight_decay=decay)
        return optax.chain(adamw(base), clip_by_param_norm_ratio(hp.get("update_ratio", update_ratio)))

    return factory
