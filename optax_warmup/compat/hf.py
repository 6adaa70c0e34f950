"""HuggingFace ``transformers.get_scheduler`` schedules as pure JAX schedules.

``hf_schedule(name, learning_rate, num_warmup_steps, num_training_steps, **scheduler_specific_kwargs)`` gives,
at Optax count ``k``, the learning rate HF's ``LambdaLR`` gives the ``(k+1)``-th optimizer update
(``optimizer.step()`` then ``scheduler.step()``), i.e. ``learning_rate * f(k)`` with HF's multiplier ``f``.
Values checked against transformers 5.24.0 (``tests/data/compat_golden.json``).

Quirks reproduced on purpose (they are what HF users get):

* every warmup except ``cosine_warmup_with_min_lr``'s starts at exactly 0 (``f(0) = 0``);
* ``cosine`` and ``cosine_with_min_lr`` are not clamped after ``num_training_steps``: the cosine rises again;
* ``warmup_stable_decay`` with both ``num_training_steps`` and ``num_stable_steps`` uses ``num_stable_steps``
  (and warns, as HF).

An argument HF accepts and drops (``scheduler_specific_kwargs`` of ``constant`` and ``constant_with_warmup``,
``num_training_steps`` of ``inverse_sqrt``...) raises ``ValueError`` here instead of being ignored.

Where HF divides by zero at some step (``polynomial`` with ``num_warmup_steps == num_training_steps``,
``inverse_sqrt`` with ``timescale=0``, ``min_lr`` with ``learning_rate=0``) a concrete argument raises
``ValueError`` here at construction.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import optax

from optax_warmup import _validate as V
from optax_warmup._phases import PhaseSchedule
from optax_warmup.compat._common import (
    Schedule,
    as_count,
    concrete_value,
    engine_schedule,
    finite,
    require,
    safe_div,
    safe_pow,
)
from optax_warmup.compat.plateau import greedy_transformation, torch_reduce_lr_on_plateau

HF_NAMES = (
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "cosine_with_min_lr",
    "cosine_warmup_with_min_lr",
    "warmup_stable_decay",
)
_METRIC_DRIVEN = ("reduce_lr_on_plateau", "greedy")
_WSD_TYPES = ("linear", "cosine", "1-sqrt")


def _warmup(k, w):
    """HF's shared warmup multiplier ``k / max(1, W)``."""
    return k / jnp.maximum(1.0, w)


def _progress(k, w, t):
    return (k - w) / jnp.maximum(1.0, t - w)


def _schedule(learning_rate, multiplier) -> Schedule:
    def schedule(count):
        k = as_count(count)
        return (finite(learning_rate) * multiplier(k)).astype(V.float_dtype())

    return schedule


def _constant(learning_rate) -> Schedule:
    return _schedule(learning_rate, lambda k: jnp.ones_like(k))


def _constant_with_warmup(learning_rate, num_warmup_steps) -> Schedule:
    def f(k):
        w = finite(num_warmup_steps)
        return jnp.where(k < w, _warmup(k, w), 1.0)

    return _schedule(learning_rate, f)


def _linear(learning_rate, num_warmup_steps, num_training_steps) -> Schedule:
    def f(k):
        w, t = finite(num_warmup_steps), finite(num_training_steps)
        decay = jnp.maximum(0.0, (t - k) / jnp.maximum(1.0, t - w))
        return jnp.where(k < w, _warmup(k, w), decay)

    return _schedule(learning_rate, f)


def _cosine(learning_rate, num_warmup_steps, num_training_steps, num_cycles=0.5) -> Schedule:
    V.check_finite("num_cycles", num_cycles)

    def f(k):
        w, t = finite(num_warmup_steps), finite(num_training_steps)
        p = _progress(k, w, t)
        decay = jnp.maximum(0.0, 0.5 * (1.0 + jnp.cos(jnp.pi * finite(num_cycles) * 2.0 * p)))
        return jnp.where(k < w, _warmup(k, w), decay)

    return _schedule(learning_rate, f)


def _cosine_with_restarts(learning_rate, num_warmup_steps, num_training_steps, num_cycles=1) -> Schedule:
    V.check_finite("num_cycles", num_cycles)

    def f(k):
        w, t = finite(num_warmup_steps), finite(num_training_steps)
        p = _progress(k, w, t)
        decay = jnp.maximum(0.0, 0.5 * (1.0 + jnp.cos(jnp.pi * jnp.mod(finite(num_cycles) * p, 1.0))))
        return jnp.where(k < w, _warmup(k, w), jnp.where(p >= 1.0, 0.0, decay))

    return _schedule(learning_rate, f)


def _polynomial(learning_rate, num_warmup_steps, num_training_steps, lr_end=1e-7, power=1.0) -> Schedule:
    V.check_finite("lr_end", lr_end)
    V.check_nonnegative("power", power)
    lr_init, end = concrete_value("learning_rate", learning_rate), concrete_value("lr_end", lr_end)
    if lr_init is not None and end is not None and not lr_init > end:
        raise ValueError(
            f"lr_end ({lr_end!r}) must be smaller than initial lr (learning_rate={learning_rate!r})"
        )
    w = concrete_value("num_warmup_steps", num_warmup_steps)
    t = concrete_value("num_training_steps", num_training_steps)
    if w is not None and w == t:
        raise ValueError(
            "polynomial needs num_warmup_steps != num_training_steps (HF divides by zero at step "
            f"{t:g}), got "
            f"num_warmup_steps={num_warmup_steps!r}, num_training_steps={num_training_steps!r}"
        )

    # The multiplier is taken relative to `learning_rate` (HF's `optimizer.defaults["lr"]`), so the schedule
    # is written directly in learning-rate units.
    def schedule(count):
        k = as_count(count)
        b, e = finite(learning_rate), finite(lr_end)
        w, t = finite(num_warmup_steps), finite(num_training_steps)
        # (T - k) / (T - W), not 1 - (k - W) / (T - W): exactly 0 at k = T even when XLA multiplies by a
        # reciprocal instead of dividing.
        remaining = jnp.clip(safe_div(t - k, t - w), 0.0, 1.0)
        remaining = jnp.where(t == w, 0.0, remaining)
        decay = (b - e) * safe_pow(remaining, finite(power)) + e
        value = jnp.where(k < w, b * _warmup(k, w), jnp.where(k > t, e, decay))
        return value.astype(V.float_dtype())

    return schedule


def _inverse_sqrt(learning_rate, num_warmup_steps, timescale=None) -> Schedule:
    if timescale is not None:
        V.check_positive("timescale", timescale)

    def f(k):
        w = finite(num_warmup_steps)
        # HF: `timescale = num_warmup_steps or 10_000`.
        ts = jnp.where(w > 0, w, 10_000.0) if timescale is None else finite(timescale)
        ts = jnp.where(ts > 0, ts, 1.0)
        decay = jax.lax.rsqrt(jnp.maximum((k + ts - w) / ts, 1e-30))
        return jnp.where(k < w, _warmup(k, w), decay)

    return _schedule(learning_rate, f)


def _min_lr_rate(learning_rate, min_lr, min_lr_rate):
    if min_lr is not None and min_lr_rate is not None:
        raise ValueError("Only one of min_lr or min_lr_rate should be set")
    if min_lr is None and min_lr_rate is None:
        raise ValueError("One of min_lr or min_lr_rate should be set (HF: through `lr_scheduler_kwargs`)")
    if min_lr_rate is not None:
        V.check_finite("min_lr_rate", min_lr_rate)
        return lambda: finite(min_lr_rate)
    V.check_finite("min_lr", min_lr)
    if concrete_value("learning_rate", learning_rate) == 0.0:
        raise ValueError("min_lr needs learning_rate != 0 (HF computes min_lr_rate = min_lr / learning_rate)")
    return lambda: safe_div(finite(min_lr), finite(learning_rate))


def _min_lr_cosine(p, num_cycles, rate):
    factor = 0.5 * (1.0 + jnp.cos(jnp.pi * finite(num_cycles) * 2.0 * p))
    return jnp.maximum(0.0, factor * (1.0 - rate) + rate)


def _cosine_with_min_lr(
    learning_rate, num_warmup_steps, num_training_steps, num_cycles=0.5, min_lr=None, min_lr_rate=None
) -> Schedule:
    V.check_finite("num_cycles", num_cycles)
    rate = _min_lr_rate(learning_rate, min_lr, min_lr_rate)

    def f(k):
        w, t = finite(num_warmup_steps), finite(num_training_steps)
        return jnp.where(k < w, _warmup(k, w), _min_lr_cosine(_progress(k, w, t), num_cycles, rate()))

    return _schedule(learning_rate, f)


def _cosine_warmup_with_min_lr(
    learning_rate,
    num_warmup_steps,
    num_training_steps,
    num_cycles=0.5,
    min_lr=None,
    min_lr_rate=None,
    warmup_lr_rate=None,
) -> Schedule:
    V.check_finite("num_cycles", num_cycles)
    if warmup_lr_rate is not None:
        V.check_finite("warmup_lr_rate", warmup_lr_rate)
    rate = _min_lr_rate(learning_rate, min_lr, min_lr_rate)

    def f(k):
        w, t = finite(num_warmup_steps), finite(num_training_steps)
        if warmup_lr_rate is None:
            ramp = (k + 1.0) / jnp.maximum(1.0, w)
        else:
            r = finite(warmup_lr_rate)
            ramp = r + (1.0 - r) * k / jnp.maximum(1.0, w - 1.0)
        p = (k - w + 1.0) / jnp.maximum(1.0, t - w)
        return jnp.where(k < w, ramp, _min_lr_cosine(p, num_cycles, rate()))

    return _schedule(learning_rate, f)


def _wsd(
    learning_rate,
    num_warmup_steps,
    num_decay_steps=None,
    num_training_steps=None,
    num_stable_steps=None,
    warmup_type="linear",
    decay_type="cosine",
    min_lr_ratio=0.0,
    num_cycles=None,
) -> Schedule:
    require("num_decay_steps", num_decay_steps, "warmup_stable_decay")
    if num_cycles is not None and decay_type != "cosine":
        raise ValueError(f"warmup_stable_decay: num_cycles only applies to decay_type='cosine' (HF ignores it for "
                         f"{decay_type!r}); drop it")
    num_cycles = 0.5 if num_cycles is None else num_cycles
    if num_training_steps is not None and num_stable_steps is not None:
        warnings.warn(
            "warmup_stable_decay: both num_training_steps and num_stable_steps given; num_stable_steps is used "
            "(as HF does, with the same warning)",
            UserWarning,
            stacklevel=5,
        )
    if num_training_steps is None and num_stable_steps is None:
        raise ValueError("Either num_training_steps or num_stable_steps must be specified.")
    if warmup_type not in _WSD_TYPES:
        raise ValueError(f"Unknown warmup type: {warmup_type!r}, expected 'linear', 'cosine' or '1-sqrt'")
    if decay_type not in _WSD_TYPES:
        raise ValueError(f"Unknown decay type: {decay_type!r}, expected 'linear', 'cosine' or '1-sqrt'")
    V.check_nonnegative("num_decay_steps", num_decay_steps)
    if num_stable_steps is not None:
        V.check_finite("num_stable_steps", num_stable_steps)
    else:
        V.check_nonnegative("num_training_steps", num_training_steps)
    V.check_finite("min_lr_ratio", min_lr_ratio)
    V.check_finite("num_cycles", num_cycles)

    def f(k):
        w, d, m = finite(num_warmup_steps), finite(num_decay_steps), finite(min_lr_ratio)
        s = finite(num_stable_steps) if num_stable_steps is not None else finite(num_training_steps) - w - d
        p = jnp.clip(k / jnp.maximum(1.0, w), 0.0, 1.0)
        up = {
            "linear": lambda: p,
            "cosine": lambda: 0.5 * (1.0 - jnp.cos(jnp.pi * p)),
            "1-sqrt": lambda: 1.0 - safe_pow(1.0 - p, 0.5),
        }[warmup_type]()
        q = jnp.maximum((k - w - s) / jnp.maximum(1.0, d), 0.0)
        down = {
            "linear": lambda: 1.0 - q,
            "cosine": lambda: 0.5 * (1.0 + jnp.cos(jnp.pi * finite(num_cycles) * 2.0 * q)),
            "1-sqrt": lambda: 1.0 - safe_pow(q, 0.5),
        }[decay_type]()
        value = jnp.where(k < w + s + d, jnp.maximum(0.0, down * (1.0 - m) + m), m)
        value = jnp.where(k < w + s, 1.0, value)
        return jnp.where(k < w, jnp.maximum(0.0, up * (1.0 - m) + m), value)

    return _schedule(learning_rate, f)


def hf_schedule(
    name: str,
    learning_rate,
    num_warmup_steps=None,
    num_training_steps=None,
    **scheduler_specific_kwargs,
) -> PhaseSchedule | optax.GradientTransformationExtraArgs:
    r"""The schedule of ``transformers.get_scheduler(name, ...)`` as a pure function ``count -> lr``.

    With ``W = num_warmup_steps``, ``T = num_training_steps``, ``b = learning_rate`` and
    ``p = (k - W) / max(1, T - W)``, the value at count ``k`` is ``b * f(k)`` where, for ``k >= W``:

    .. math::
      f(k) = \begin{cases}
        1 & \texttt{constant}, \texttt{constant\_with\_warmup} \\
        \max(0, (T - k) / \max(1, T - W)) & \texttt{linear} \\
        \max(0, \tfrac12(1 + \cos 2\pi c p)) & \texttt{cosine} \\
        \tfrac12(1 + \cos(\pi ((c p) \bmod 1))),\ 0 \text{ for } p \ge 1 & \texttt{cosine\_with\_restarts} \\
        ((b - e)(1 - p)^{q} + e) / b,\ e / b \text{ for } k > T & \texttt{polynomial} \\
        1 / \sqrt{(k + \tau - W) / \tau} & \texttt{inverse\_sqrt} \\
        \max(0, r + (1 - r)\tfrac12(1 + \cos 2\pi c p)) & \texttt{cosine\_with\_min\_lr}
      \end{cases}

    and ``f(k) = k / max(1, W)`` for ``k < W``. ``cosine_warmup_with_min_lr`` warms up with ``(k + 1) / max(1,
    W)`` (or ``rho + (1 - rho) k / max(1, W - 1)`` with ``warmup_lr_rate=rho``) and uses ``p = (k - W + 1) /
    max(1, T - W)``; ``warmup_stable_decay`` is warmup / stable / decay with shapes ``linear``, ``cosine``,
    ``1-sqrt`` scaled into ``[min_lr_ratio, 1]``. Here ``c = num_cycles``, ``e = lr_end``, ``q = power``,
    ``tau = timescale`` (default ``W`` or 10000), ``r = min_lr_rate`` (or ``min_lr / b``).

    ``reduce_lr_on_plateau`` follows a metric, not the count: it returns the Optax transformation
    ``torch_reduce_lr_on_plateau(learning_rate, **scheduler_specific_kwargs)`` (HF builds a plain torch
    ``ReduceLROnPlateau`` with torch's defaults); HF ignores the warmup there, so ``num_warmup_steps`` and
    ``num_training_steps`` raise (put ``scale_by_warmup`` in front instead). ``greedy`` (HF's ``GreedyLR``) is
    an Optax transformation too, ``update(..., value=metric)`` with state ``GreedyLRState``: with ``m`` the
    metric (the mean of the last ``window_size`` with ``smooth=True``), judged like ``ReduceLROnPlateau``'s
    (defaults ``mode="min"``, ``threshold=1e-6``, ``threshold_mode="abs"``), more than ``patience`` improvements
    in a row divide the rate by ``factor`` (0.95; at most ``max_lr=1``) and hold it ``warmup`` steps, more than
    ``patience`` bad ones multiply it by ``factor`` (at least ``min_lr=1e-3``) and hold it ``cooldown`` steps,
    and ``reset_start`` (500) reductions at ``min_lr`` restart everything from ``learning_rate``.

    Args:
      name: one of ``HF_NAMES`` (HF's ``SchedulerType`` values with a closed form), ``"reduce_lr_on_plateau"``
        or ``"greedy"``.
      learning_rate: the optimizer's learning rate (HF's ``base_lr`` and ``optimizer.defaults["lr"]``).
      num_warmup_steps: ``W``; required by every name but ``constant``, as in HF.
      num_training_steps: ``T``; required by every name except ``constant``, ``constant_with_warmup``,
        ``inverse_sqrt`` and ``warmup_stable_decay`` (which can take ``num_stable_steps`` instead).
      **scheduler_specific_kwargs: HF's ``scheduler_specific_kwargs`` (``num_cycles``, ``lr_end``, ``power``,
        ``timescale``, ``min_lr``, ``min_lr_rate``, ``warmup_lr_rate``, ``num_decay_steps``,
        ``num_stable_steps``, ``warmup_type``, ``decay_type``, ``min_lr_ratio``), same names and defaults.

    Every number may be a traced array (``jit``, ``vmap`` over ``learning_rate`` or ``num_warmup_steps``...);
    ``name``, ``warmup_type`` and ``decay_type`` are Python strings, and which optional arguments are given
    (``None`` or not) is structural.

    Returns:
      A schedule ``count -> learning rate`` (float32, float64 under x64); for ``reduce_lr_on_plateau`` an Optax
      transformation.

    Raises:
      ValueError: where HF raises (unknown name, missing ``num_warmup_steps`` / ``num_training_steps`` /
        ``num_decay_steps``, both or neither of ``min_lr`` / ``min_lr_rate``, ``lr_end >= learning_rate``, bad
        WSD types), for concrete arguments that make HF divide by zero, and for
        an argument HF would drop (``num_warmup_steps`` of ``constant``, ``num_training_steps`` of
        ``constant_with_warmup`` and ``inverse_sqrt``, any scheduler-specific keyword of ``constant`` and
        ``constant_with_warmup``).
      TypeError: for a keyword the HF schedule does not take.

    Example:
      >>> from optax_warmup.compat import hf_schedule
      >>> s = hf_schedule("linear", 1.0, num_warmup_steps=3, num_training_steps=10)
      >>> [round(float(s(k)), 4) for k in (0, 1, 3, 4, 10)]
      [0.0, 0.3333, 1.0, 0.8571, 0.0]
    """
    name = str(getattr(name, "value", name))  # accept HF's SchedulerType enum too
    if name in _METRIC_DRIVEN:
        if num_warmup_steps is not None or num_training_steps is not None:
            raise ValueError(
                f"{name}: HF ignores num_warmup_steps and num_training_steps there; drop them (for a warmup, "
                "chain scale_by_warmup in front)"
            )
        if name == "greedy":
            return greedy_transformation(learning_rate, **scheduler_specific_kwargs)
        return torch_reduce_lr_on_plateau(learning_rate, **scheduler_specific_kwargs)
    return _closed_form(name, learning_rate, num_warmup_steps, num_training_steps, **scheduler_specific_kwargs)


def _dropped(name: str, **given) -> None:
    """HF drops these arguments for ``name``: refuse them rather than ignore them."""
    for key, value in given.items():
        if value is not None and value != {}:
            raise ValueError(f"{name}: HF ignores {key} for this schedule; drop it")


@engine_schedule
def _closed_form(name: str, learning_rate, num_warmup_steps, num_training_steps, **kwargs) -> Schedule:
    if name not in HF_NAMES:
        raise ValueError(f"name must be one of {list(HF_NAMES)}, 'reduce_lr_on_plateau' or 'greedy', got {name!r}")
    V.check_finite("learning_rate", learning_rate)
    if name == "constant":
        _dropped(name, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps,
                 scheduler_specific_kwargs=kwargs)
        return _constant(learning_rate)
    require("num_warmup_steps", num_warmup_steps, name)
    V.check_nonnegative("num_warmup_steps", num_warmup_steps)
    if name == "constant_with_warmup":
        _dropped(name, num_training_steps=num_training_steps, scheduler_specific_kwargs=kwargs)
        return _constant_with_warmup(learning_rate, num_warmup_steps)
    if name == "inverse_sqrt":
        _dropped(name, num_training_steps=num_training_steps)
        return _inverse_sqrt(learning_rate, num_warmup_steps, **kwargs)
    if name == "warmup_stable_decay":
        return _wsd(learning_rate, num_warmup_steps, num_training_steps=num_training_steps, **kwargs)
    require("num_training_steps", num_training_steps, name)
    V.check_nonnegative("num_training_steps", num_training_steps)
    return _BUILDERS[name](learning_rate, num_warmup_steps, num_training_steps, **kwargs)


_BUILDERS = {
    "linear": _linear,
    "cosine": _cosine,
    "cosine_with_restarts": _cosine_with_restarts,
    "polynomial": _polynomial,
    "cosine_with_min_lr": _cosine_with_min_lr,
    "cosine_warmup_with_min_lr": _cosine_warmup_with_min_lr,
}
