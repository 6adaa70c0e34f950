"""Keras 3 ``keras.optimizers.schedules`` as pure JAX schedules.

``keras_schedule(name, **kwargs)`` is ``keras.optimizers.schedules.<name>(**kwargs)``: Keras already calls its
schedule with the optimizer's iteration count (0 for the first update), so count ``k`` maps to ``schedule(k)``
with no shift. Values checked against Keras 3.15.1 on the JAX backend (``tests/data/compat_golden.json``).

Keras computes in the dtype of ``initial_learning_rate`` (float32 by default); so do we (float64 under x64).
``CosineDecayRestarts`` finds its cycle with a float ``log``, as Keras does; we settle the cycle index exactly
on integer boundaries, which can differ from Keras by one cycle at a boundary where Keras's float32 ``log``
rounds the wrong way (none of the recorded cases hits one).
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import optax

from optax_warmup import _validate as V
from optax_warmup.compat._common import (
    Schedule,
    as_count,
    check_in_range,
    engine_schedule,
    finite,
    floor_div,
    safe_div,
    safe_pow,
    structural_list,
)
from optax_warmup.compat.plateau import plateau_transformation

KERAS_NAMES = (
    "CosineDecay",
    "CosineDecayRestarts",
    "ExponentialDecay",
    "PolynomialDecay",
    "PiecewiseConstantDecay",
    "InverseTimeDecay",
)


def _finish(value):
    return jnp.asarray(value).astype(V.float_dtype())


def _cos_half(x):
    return 0.5 * (1.0 + jnp.cos(jnp.pi * x))


def _cosine_decay(
    initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=None
) -> Schedule:
    if warmup_target is None and warmup_steps is not None:
        raise ValueError("warmup_steps needs warmup_target (Keras ignores warmup_steps without one); drop it")
    warmup_steps = 0 if warmup_steps is None else warmup_steps
    V.check_finite("initial_learning_rate", initial_learning_rate)
    V.check_positive("decay_steps", decay_steps)
    V.check_finite("alpha", alpha)
    if warmup_target is not None:
        V.check_finite("warmup_target", warmup_target)
        V.check_nonnegative("warmup_steps", warmup_steps)

    def decayed(step, d, peak):
        a = finite(alpha)
        return peak * ((1.0 - a) * _cos_half(step / d) + a)

    def schedule(count):
        k, d = as_count(count), finite(decay_steps)
        d = jnp.where(d > 0, d, 1.0)
        init = finite(initial_learning_rate)
        if warmup_target is None:  # Keras ignores warmup_steps then
            return _finish(decayed(jnp.minimum(k, d), d, init))
        w, target = finite(warmup_steps), finite(warmup_target)
        k = jnp.minimum(k, d + w)
        ramp = (target - init) * safe_div(k, w) + init
        return _finish(jnp.where(k < w, ramp, decayed(k - w, d, target)))

    return schedule


def _cosine_decay_restarts(
    initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0
) -> Schedule:
    V.check_finite("initial_learning_rate", initial_learning_rate)
    V.check_positive("first_decay_steps", first_decay_steps)
    # Below 1 the restart lengths sum to a finite total and Keras's log turns NaN past it; traced values are
    # clamped to 1.
    check_in_range("t_mul", t_mul, 1.0, None)
    V.check_nonnegative("m_mul", m_mul)
    V.check_finite("alpha", alpha)

    def schedule(count):
        k = as_count(count)
        first = finite(first_decay_steps)
        first = jnp.where(first > 0, first, 1.0)
        t = jnp.maximum(finite(t_mul), 1.0)
        geometric = t > 1.0
        t_safe = jnp.where(geometric, t, 2.0)

        def start(i):  # step at which restart i begins, in units of first_decay_steps
            return (1.0 - t_safe**i) / (1.0 - t_safe)

        f = k / first
        i_geo = jnp.floor(jnp.log1p(f * (t_safe - 1.0)) / jnp.log(t_safe))
        i_geo = jnp.where(k < first * start(i_geo), i_geo - 1.0, i_geo)
        i_geo = jnp.where(k >= first * start(i_geo + 1.0), i_geo + 1.0, i_geo)
        i_flat = floor_div(k, first)
        i = jnp.where(geometric, i_geo, i_flat)
        frac = jnp.where(geometric, (f - start(i_geo)) / t_safe**i_geo, (k - i_flat * first) / first)
        a = finite(alpha)
        m_fac = safe_pow(jnp.maximum(finite(m_mul), 0.0), i)
        return _finish(finite(initial_learning_rate) * ((1.0 - a) * m_fac * _cos_half(frac) + a))

    return schedule


def _exponent(k, decay_steps, staircase):
    d = finite(decay_steps)
    d = jnp.where(d > 0, d, 1.0)
    return floor_div(k, d) if staircase else k / d


def _exponential_decay(
    initial_learning_rate, decay_steps, decay_rate, staircase=False
) -> Schedule:
    V.check_finite("initial_learning_rate", initial_learning_rate)
    V.check_positive("decay_steps", decay_steps)
    V.check_nonnegative("decay_rate", decay_rate)

    def schedule(count):
        p = _exponent(as_count(count), decay_steps, staircase)
        return _finish(finite(initial_learning_rate) * safe_pow(jnp.maximum(finite(decay_rate), 0.0), p))

    return schedule


def _inverse_time_decay(
    initial_learning_rate, decay_steps, decay_rate, staircase=False
) -> Schedule:
    V.check_finite("initial_learning_rate", initial_learning_rate)
    V.check_positive("decay_steps", decay_steps)
    V.check_nonnegative("decay_rate", decay_rate)

    def schedule(count):
        p = _exponent(as_count(count), decay_steps, staircase)
        return _finish(finite(initial_learning_rate) / (1.0 + jnp.maximum(finite(decay_rate), 0.0) * p))

    return schedule


def _polynomial_decay(
    initial_learning_rate,
    decay_steps,
    end_learning_rate=0.0001,
    power=1.0,
    cycle=False,
) -> Schedule:
    V.check_finite("initial_learning_rate", initial_learning_rate)
    V.check_positive("decay_steps", decay_steps)
    V.check_finite("end_learning_rate", end_learning_rate)
    V.check_nonnegative("power", power)

    def schedule(count):
        k, d = as_count(count), finite(decay_steps)
        d = jnp.where(d > 0, d, 1.0)
        if cycle:  # the decay restarts from the top at every multiple of decay_steps (count 0 counts as 1)
            d = d * jnp.where(k == 0, 1.0, -floor_div(-k, d))
        else:
            k = jnp.minimum(k, d)
        remaining = jnp.clip((d - k) / d, 0.0, 1.0)
        init, end = finite(initial_learning_rate), finite(end_learning_rate)
        return _finish((init - end) * safe_pow(remaining, finite(power)) + end)

    return schedule


def _piecewise_constant_decay(boundaries, values) -> Schedule:
    boundaries = structural_list("boundaries", boundaries)
    values = structural_list("values", values)
    if len(values) != len(boundaries) + 1:
        raise ValueError(
            "The length of boundaries should be 1 less than the length of values, got "
            f"len(boundaries)={len(boundaries)} and len(values)={len(values)}"
        )

    def schedule(count):
        k = as_count(count)
        b = jnp.asarray(boundaries, V.float_dtype()).reshape(-1)
        v = jnp.asarray(values, V.float_dtype()).reshape(-1)
        # Keras: values[0] while k <= b[0], values[i] while b[i-1] < k <= b[i], values[-1] after the last.
        idx = jnp.sum(b < k[..., None], axis=-1)
        return _finish(jnp.take(v, idx))

    return schedule


_BUILDERS: dict[str, Callable[..., Schedule]] = {
    "CosineDecay": _cosine_decay,
    "CosineDecayRestarts": _cosine_decay_restarts,
    "ExponentialDecay": _exponential_decay,
    "PolynomialDecay": _polynomial_decay,
    "PiecewiseConstantDecay": _piecewise_constant_decay,
    "InverseTimeDecay": _inverse_time_decay,
}


@engine_schedule
def keras_schedule(name: str, **kwargs) -> Schedule:
    r"""``keras.optimizers.schedules.<name>(**kwargs)`` as a pure function ``count -> lr``.

    With ``I = initial_learning_rate``, ``D = decay_steps`` and ``k`` the count:

    * ``CosineDecay``: ``I ((1 - alpha) (1 + cos(pi min(k, D) / D)) / 2 + alpha)``; with
      ``warmup_target=P``: ``I + (P - I) k / W`` for ``k < W``, then the same from ``P`` on ``k - W``
      (clamped at ``D``).
    * ``CosineDecayRestarts``: ``I ((1 - alpha) m_mul**i (1 + cos(pi f)) / 2 + alpha)`` in restart ``i``
      (length ``first_decay_steps * t_mul**i``), ``f`` the fraction of it done.
    * ``ExponentialDecay``: ``I decay_rate**(k / D)`` (``floor`` of the exponent with ``staircase``).
    * ``PolynomialDecay``: ``(I - end) (1 - min(k, D) / D)**power + end``; with ``cycle``, ``D`` grows to the
      next multiple of ``decay_steps`` at or above ``k``.
    * ``PiecewiseConstantDecay``: ``values[i]`` for ``boundaries[i-1] < k <= boundaries[i]``.
    * ``InverseTimeDecay``: ``I / (1 + decay_rate k / D)`` (``floor`` of ``k / D`` with ``staircase``).

    Args:
      name: one of ``KERAS_NAMES``.
      **kwargs: the class's constructor arguments, same names and defaults (without Keras's
        ``name``, a label for serialization: the first argument here is the class name).

    Every number may be traced (``boundaries`` / ``values`` as 1-D arrays); ``staircase``, ``cycle``, whether
    ``warmup_target`` is given and the number of boundaries are structural.

    Returns:
      A schedule ``count -> learning rate``.

    Raises:
      ValueError: where Keras raises (``decay_steps`` / ``first_decay_steps`` not positive, boundaries and
        values of mismatched lengths) and for other concrete arguments out of range.
      TypeError: for a keyword the class does not take.

    Example:
      >>> from optax_warmup.compat import keras_schedule
      >>> s = keras_schedule("CosineDecay", initial_learning_rate=0.0, decay_steps=10,
      ...                    warmup_target=1.0, warmup_steps=5)
      >>> [round(float(s(k)), 4) for k in (0, 1, 5, 10, 15, 20)]
      [0.0, 0.2, 1.0, 0.5, 0.0, 0.0]
    """
    if name not in _BUILDERS:
        raise ValueError(f"name must be one of {list(KERAS_NAMES)}, got {name!r}")
    return _BUILDERS[name](**kwargs)


def keras_reduce_lr_on_plateau(
    learning_rate,
    monitor: str = "val_loss",
    factor=0.1,
    patience=10,
    mode: str = "auto",
    min_delta=1e-4,
    cooldown=0,
    min_lr=0.0,
    *,
    flip_sign: bool = True,
) -> optax.GradientTransformationExtraArgs:
    r"""Keras' ``keras.callbacks.ReduceLROnPlateau`` as an Optax transformation: the rate follows a metric.

    Keras calls the callback after each epoch with the monitored value ``m``. It is an improvement when
    ``m < best - |min_delta|`` (``mode="min"``; ``"auto"`` with ``monitor`` ``"loss"`` or ``"val_loss"``) or
    ``m > best + |min_delta|`` (``"max"``); the first value always is. Outside the cooldown, each value that is not an
    improvement counts; at ``patience`` of them in a row (at least one) the rate becomes
    ``max(lr * factor, min_lr)`` if ``lr > min_lr``, and the count stops for ``cooldown`` calls (the last of
    which counts again). That is ``torch_reduce_lr_on_plateau`` with ``threshold_mode="abs"``,
    ``threshold=min_delta``, torch's ``patience = max(patience - 1, 0)``, ``cooldown = max(cooldown - 1, 0)``
    and ``eps=0``, which is what this returns; the rates equal Keras' (``tests/data/compat_golden_parity.json``).

    Pass the monitored value as ``update(updates, state, params, value=m)``, once per update that ends an epoch
    (wrap it in ``optax.MultiSteps`` or call it only at epoch ends, as with torch's).

    Args:
      learning_rate: the optimizer's rate before any reduction.
      monitor: the metric's name; it only settles ``mode="auto"`` (for another name than a loss Keras asks the
        compiled model which way the metric goes, which needs ``mode="min"`` or ``"max"`` here).
      factor: the multiplier of a reduction, in ``[0, 1)``.
      patience: non-improving calls before a reduction.
      mode: ``"auto"``, ``"min"`` or ``"max"``.
      min_delta: the absolute margin of an improvement.
      cooldown: calls after a reduction before counting resumes.
      min_lr: the lowest rate.
      flip_sign: multiply by ``-lr`` (default, a descent step) or ``lr``.

    Every number may be a traced array. ``verbose`` and Keras' other logging arguments do not exist here.

    Returns:
      A ``GradientTransformationExtraArgs`` with state ``ReduceLROnPlateauState``; ``update`` requires ``value=``.

    Example:
      >>> import jax.numpy as jnp
      >>> from optax_warmup.compat import keras_reduce_lr_on_plateau
      >>> tx = keras_reduce_lr_on_plateau(1.0, patience=2)
      >>> state, rates = tx.init(jnp.zeros(1)), []
      >>> for val_loss in [1.0, 0.5, 0.6, 0.7, 0.8]:
      ...     _, state = tx.update(jnp.ones(1), state, value=val_loss)
      ...     rates.append(round(float(state.learning_rate), 4))
      >>> rates  # 0.6 and 0.7 do not improve on 0.5: two, so the 5th update has the new rate
      [1.0, 1.0, 1.0, 1.0, 0.1]
    """
    if not isinstance(monitor, str):
        raise ValueError(f"monitor must be the metric's name (a str), got {monitor!r}")
    V.check_choice("mode", mode, ("auto", "min", "max"))
    if mode == "auto":
        if monitor.removeprefix("val_") != "loss":  # Keras reads the direction off the compiled model's metric
            raise ValueError(
                f"mode='auto' is settled only for monitor='loss' or 'val_loss' (Keras asks the model's metric "
                f"otherwise), got monitor={monitor!r}: pass mode='min' or mode='max'"
            )
        mode = "min"
    V.check_nonnegative("patience", patience)
    V.check_nonnegative("cooldown", cooldown)
    V.check_finite("min_delta", min_delta)
    return plateau_transformation(
        learning_rate,
        mode=mode,
        factor=factor,
        patience=jnp.maximum(finite(patience) - 1.0, 0.0),
        threshold=jnp.abs(finite(min_delta)),
        threshold_mode="abs",
        cooldown=jnp.maximum(finite(cooldown) - 1.0, 0.0),
        min_lr=min_lr,
        eps=0.0,
        flip_sign=flip_sign,
        owner="keras_reduce_lr_on_plateau",
    )
