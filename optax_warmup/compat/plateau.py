"""``torch.optim.lr_scheduler.ReduceLROnPlateau`` (and HF's and timm's forms of it) as an Optax transformation.

The rate follows a metric, so it cannot be a schedule of the count: it lives in the optimizer state, and each
``update(updates, state, params, value=metric)`` is one ``scheduler.step(metric)`` of torch. As in torch, the
update is scaled by the rate the optimizer holds *now*, and the metric then decides the rate of the next update
(torch: ``optimizer.step()``, then ``scheduler.step(metric)``). Values checked against torch 2.13, transformers
and timm (``tests/data/compat_golden_parity.json``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optax_warmup import _numeric as N
from optax_warmup import _validate as V
from optax_warmup.compat._common import check_in_range, finite

__all__ = ["GreedyLRState", "ReduceLROnPlateauState", "greedy_transformation", "torch_reduce_lr_on_plateau"]


class ReduceLROnPlateauState(NamedTuple):
    """State of ``torch_reduce_lr_on_plateau`` (arrays only: checkpointable, vmappable).

    Attributes:
      count: updates so far (int32, saturating): torch's ``last_epoch``.
      learning_rate: the rate the last update used (before the first update: the rate it will use); this is what
        ``current_learning_rate`` reads.
      next_learning_rate: the rate the next update will use (torch's ``param_group["lr"]`` after ``step``).
      best: the best metric so far (``+inf`` in mode ``min``, ``-inf`` in mode ``max`` before the first one).
      num_bad_epochs: metrics in a row that did not improve on ``best`` (int32).
      cooldown_counter: updates left before bad metrics count again (int32).
    """

    count: jax.Array  # type: ignore[assignment]  # a field named like tuple.count, as in Optax's states
    learning_rate: jax.Array
    next_learning_rate: jax.Array
    best: jax.Array
    num_bad_epochs: jax.Array
    cooldown_counter: jax.Array


def plateau_transformation(
    learning_rate,
    *,
    mode: str,
    factor,
    patience,
    threshold,
    threshold_mode: str,
    cooldown,
    min_lr,
    eps,
    warmup_steps=0,
    warmup_init=0.0,
    flip_sign: bool = True,
    owner: str = "torch_reduce_lr_on_plateau",
) -> optax.GradientTransformationExtraArgs:
    """The transformation behind the torch, HF and timm names; ``warmup_*`` is timm's linear warmup, during which
    (updates ``k`` with ``k + 1 <= warmup_steps``) the metric is not looked at."""
    V.check_choice("mode", mode, ("min", "max"))
    V.check_choice("threshold_mode", threshold_mode, ("rel", "abs"))
    V.check_finite("learning_rate", learning_rate)
    check_in_range("factor", factor, 0.0, 1.0, high_open=True)
    V.check_nonnegative("patience", patience)
    V.check_finite("threshold", threshold)
    V.check_nonnegative("cooldown", cooldown)
    V.check_finite("min_lr", min_lr)
    V.check_nonnegative("eps", eps)
    V.check_nonnegative("warmup_steps", warmup_steps)
    V.check_finite("warmup_init", warmup_init)
    if not isinstance(flip_sign, bool):
        raise ValueError(f"flip_sign must be a bool, got {flip_sign!r}")
    dtype = V.float_dtype()

    def initial_rate():
        w = V.sanitize_length(jnp, warmup_steps)
        return jnp.where(w > 0, finite(warmup_init), finite(learning_rate)).astype(dtype)

    def init_fn(params):
        del params
        rate = initial_rate()
        worst = jnp.asarray(jnp.inf if mode == "min" else -jnp.inf, dtype)
        zero = jnp.zeros([], jnp.int32)
        return ReduceLROnPlateauState(zero, rate, rate, worst, zero, jnp.zeros([], jnp.int32))

    def is_better(current, best):
        thr = finite(threshold).astype(dtype)
        if threshold_mode == "rel":
            bound = best * (1.0 - thr) if mode == "min" else best * (1.0 + thr)
        else:
            bound = best - thr if mode == "min" else best + thr
        return current < bound if mode == "min" else current > bound

    def plateau_step(current, state):
        better = is_better(current, state.best)
        best = jnp.where(better, current, state.best)
        bad = jnp.where(better, 0, optax.safe_increment(state.num_bad_epochs))
        in_cooldown = state.cooldown_counter > 0
        cooldown_counter = jnp.where(in_cooldown, state.cooldown_counter - 1, state.cooldown_counter)
        bad = jnp.where(in_cooldown, 0, bad)
        reduce = bad.astype(dtype) > V.sanitize_length(jnp, patience).astype(dtype)
        old = state.next_learning_rate
        f = jnp.clip(finite(factor), 0.0, 1.0).astype(dtype)
        new = jnp.maximum(old * f, finite(min_lr).astype(dtype))
        rate = jnp.where(reduce & (old - new > V.sanitize_length(jnp, eps).astype(dtype)), new, old)
        cooldown_value = jnp.round(V.sanitize_length(jnp, cooldown)).astype(jnp.int32)
        cooldown_counter = jnp.where(reduce, cooldown_value, cooldown_counter)
        bad = jnp.where(reduce, 0, bad)
        return rate, best, bad, cooldown_counter

    def update_fn(updates, state, params=None, *, value: Any = None, **extra_args):
        del params, extra_args
        if value is None:
            raise ValueError(
                f"{owner} follows a metric: call update(updates, state, params, value=metric) (the value torch "
                "passes to scheduler.step(metric))"
            )
        current = jnp.asarray(value, dtype)
        if current.shape != ():
            raise ValueError(f"value must be a scalar metric, got shape {current.shape}")
        used = state.next_learning_rate
        scale = -used if flip_sign else used
        out = N.scale_tree(updates, scale)

        rate, best, bad, cooldown_counter = plateau_step(current, state)
        # timm's warmup: step k + 1 <= warmup_steps sets the ramp value and ignores the metric.
        w = V.sanitize_length(jnp, warmup_steps).astype(dtype)
        step = state.count.astype(dtype) + 1.0
        warming = step <= w
        init = finite(warmup_init).astype(dtype)
        ramp = init + step * (finite(learning_rate).astype(dtype) - init) / jnp.maximum(w, 1.0)
        new_state = ReduceLROnPlateauState(
            count=optax.safe_increment(state.count),
            learning_rate=used,
            next_learning_rate=jnp.where(warming, ramp, rate),
            best=jnp.where(warming, state.best, best),
            num_bad_epochs=jnp.where(warming, state.num_bad_epochs, bad),
            cooldown_counter=jnp.where(warming, state.cooldown_counter, cooldown_counter),
        )
        return out, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def torch_reduce_lr_on_plateau(
    learning_rate,
    mode: str = "min",
    factor=0.1,
    patience=10,
    threshold=1e-4,
    threshold_mode: str = "rel",
    cooldown=0,
    min_lr=0.0,
    eps=1e-8,
    *,
    flip_sign: bool = True,
) -> optax.GradientTransformationExtraArgs:
    r"""``torch.optim.lr_scheduler.ReduceLROnPlateau`` as an Optax transformation: the rate follows a metric.

    Each ``update(updates, state, params, value=metric)`` scales the updates by the current rate ``lr`` (times
    -1, as ``optax.scale_by_learning_rate``), then takes torch's ``scheduler.step(metric)``: with ``b`` the best
    metric so far and ``z = threshold``, the metric ``a`` improves on it when

    .. math::
      a < b (1 - z) \ (\texttt{min, rel}),\quad a < b - z \ (\texttt{min, abs}),\quad
      a > b (1 + z) \ (\texttt{max, rel}),\quad a > b + z \ (\texttt{max, abs});

    otherwise it is one more bad epoch (none are counted during ``cooldown`` updates after a reduction). After
    more than ``patience`` bad epochs in a row the rate becomes ``max(lr * factor, min_lr)``, if that lowers it
    by more than ``eps``, and the cooldown starts. The first update uses ``learning_rate``.

    Compose it after the direction of an optimizer, ``optax.chain(optax.scale_by_adam(),
    torch_reduce_lr_on_plateau(1e-3))``, and put a warmup in front with ``scale_by_warmup`` in the same chain
    (``current_learning_rate`` then reports the product). For a metric known once per epoch, step a separate
    state once per epoch on an empty tree (``tx.update({}, state, value=metric)``) and give its
    ``next_learning_rate`` to an ``optax.inject_hyperparams`` optimizer (``docs/migration.md`` shows it).
    ``state.learning_rate`` holds the rate of the last update; ``state.next_learning_rate`` the one the next
    update will use.

    How it differs from ``optax.contrib.reduce_on_plateau``: that one is a factor (``scale``, from 1) over an
    optimizer's own rate; it reduces once ``patience`` bad values are seen (torch: more than ``patience``); it
    knows only ``min`` with ``rtol`` and ``atol`` both applied (``a < (1 - rtol) b - atol``), has no ``eps``,
    floors the factor (``min_scale``) rather than the rate; and it applies a reduction to the same update whose
    value triggered it, where torch (and this) apply it from the next one. Its ``accumulation_size`` averages
    several values into one step, which torch does not do.

    Args:
      learning_rate: the optimizer's LR at the start (torch's ``lr``).
      mode: ``"min"`` (the metric should fall) or ``"max"``.
      factor: the reduction, ``0 <= factor < 1``.
      patience: bad epochs tolerated before a reduction.
      threshold: the margin of an improvement, ``z``.
      threshold_mode: ``"rel"`` or ``"abs"``.
      cooldown: updates after a reduction during which bad epochs are not counted.
      min_lr: the lowest rate.
      eps: reductions smaller than this are skipped.
      flip_sign: multiply by ``-lr`` (default, a descent step as ``optax.scale_by_learning_rate``) or ``lr``.

    Every number may be a traced array (``jit``, ``vmap`` over ``factor``...); ``mode`` and ``threshold_mode``
    are Python strings. Concrete bad values raise ``ValueError`` naming them.

    Returns:
      A ``GradientTransformationExtraArgs`` with state ``ReduceLROnPlateauState``; ``update`` requires ``value=``.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> from optax_warmup.compat import torch_reduce_lr_on_plateau
      >>> tx = torch_reduce_lr_on_plateau(1.0, patience=1)
      >>> state = tx.init(jnp.zeros(1))
      >>> rates = []
      >>> for metric in [1.0, 0.5, 0.6, 0.7, 0.8, 0.9]:
      ...     u, state = tx.update(jnp.ones(1), state, value=metric)
      ...     rates.append(round(float(state.learning_rate), 4))
      >>> rates  # 0.6, 0.7: two bad epochs after the best (0.5); the 5th has the new rate
      [1.0, 1.0, 1.0, 1.0, 0.1, 0.1]
    """
    return plateau_transformation(
        learning_rate,
        mode=mode,
        factor=factor,
        patience=patience,
        threshold=threshold,
        threshold_mode=threshold_mode,
        cooldown=cooldown,
        min_lr=min_lr,
        eps=eps,
        flip_sign=flip_sign,
    )


class GreedyLRState(NamedTuple):
    """State of HF's ``greedy`` (``GreedyLR``) transformation: arrays only.

    Attributes:
      count: updates so far (int32, saturating).
      learning_rate: the rate the last update used (before the first update: the rate it will use).
      next_learning_rate: the rate the next update will use.
      best: the best (smoothed) metric since the start or the last reset.
      num_bad_epochs, num_good_epochs: metrics in a row that did not / did improve on ``best`` (int32).
      cooldown_counter: steps left after a reduction during which nothing is counted (int32).
      warmup_counter: steps left after an increase during which nothing is counted (int32).
      reset_counter: reductions at ``min_lr`` left before everything is reset to the start (int32).
      window: the last ``window_size`` metrics (``smooth=True``), a ring buffer.
      window_seen: metrics put in the window since the start or the last reset (int32).
    """

    count: jax.Array  # type: ignore[assignment]  # a field named like tuple.count, as in Optax's states
    learning_rate: jax.Array
    next_learning_rate: jax.Array
    best: jax.Array
    num_bad_epochs: jax.Array
    num_good_epochs: jax.Array
    cooldown_counter: jax.Array
    warmup_counter: jax.Array
    reset_counter: jax.Array
    window: jax.Array
    window_seen: jax.Array


def greedy_transformation(
    learning_rate,
    mode: str = "min",
    factor=0.95,
    patience=10,
    threshold=1e-6,
    threshold_mode: str = "abs",
    cooldown=0,
    warmup=0,
    min_lr=1e-3,
    max_lr=1.0,
    eps=1e-8,
    verbose: bool = False,
    smooth: bool = False,
    window_size: int = 50,
    reset_start=500,
    *,
    flip_sign: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """HF's ``GreedyLR`` (``get_scheduler("greedy", ...)``) as an Optax transformation; see ``hf_schedule``.

    Each ``update(..., value=metric)`` is one ``scheduler.step(metric)``: the metric (averaged over the last
    ``window_size`` ones with ``smooth``) is compared with the best as in ``ReduceLROnPlateau``; more than
    ``patience`` improvements in a row divide the rate by ``factor`` (up to ``max_lr``) and start ``warmup`` quiet
    steps, more than ``patience`` bad ones multiply it by ``factor`` (down to ``min_lr``) and start ``cooldown``
    quiet steps; after ``reset_start`` reductions at ``min_lr`` everything restarts from ``learning_rate``.
    """
    V.check_choice("mode", mode, ("min", "max"))
    V.check_choice("threshold_mode", threshold_mode, ("rel", "abs"))
    V.check_finite("learning_rate", learning_rate)
    check_in_range("factor", factor, 0.0, 1.0, low_open=True, high_open=True)
    for name, x in (("patience", patience), ("cooldown", cooldown), ("warmup", warmup), ("eps", eps)):
        V.check_nonnegative(name, x)
    V.check_finite("threshold", threshold)
    V.check_finite("min_lr", min_lr)
    V.check_finite("max_lr", max_lr)
    V.check_nonnegative("reset_start", reset_start)
    if verbose is not False:
        raise ValueError("verbose=True prints from GreedyLR's step; a compiled update cannot print: drop it")
    if not isinstance(smooth, bool):
        raise ValueError(f"smooth must be a bool, got {smooth!r}")
    window = V.check_int("window_size", window_size, minimum=1)
    if not smooth and window_size != 50:
        raise ValueError("window_size only applies with smooth=True (GreedyLR ignores it otherwise); drop it")
    if not isinstance(flip_sign, bool):
        raise ValueError(f"flip_sign must be a bool, got {flip_sign!r}")
    dtype = V.float_dtype()
    i32 = jnp.int32
    worst = jnp.inf if mode == "min" else -jnp.inf

    def ints(x):
        return jnp.round(V.sanitize_length(jnp, x)).astype(i32)

    def init_fn(params):
        del params
        rate = finite(learning_rate).astype(dtype)
        zero = jnp.zeros([], i32)
        return GreedyLRState(
            zero, rate, rate, jnp.asarray(worst, dtype), zero, zero, zero, zero, ints(reset_start),
            jnp.zeros([window], dtype), zero,
        )

    def is_better(current, best):
        thr = finite(threshold).astype(dtype)
        if threshold_mode == "rel":
            bound = best * (1.0 - thr) if mode == "min" else best * (1.0 + thr)
        else:
            bound = best - thr if mode == "min" else best + thr
        return current < bound if mode == "min" else current > bound

    def update_fn(updates, state, params=None, *, value: Any = None, **extra_args):
        del params, extra_args
        if value is None:
            raise ValueError("hf_schedule('greedy') follows a metric: call update(..., value=metric)")
        current = jnp.asarray(value, dtype)
        if current.shape != ():
            raise ValueError(f"value must be a scalar metric, got shape {current.shape}")
        used = state.next_learning_rate
        out = N.scale_tree(updates, -used if flip_sign else used)

        buf, seen = state.window, state.window_seen
        if smooth:
            buf = buf.at[seen % window].set(current)
            seen = optax.safe_increment(seen)
            n = jnp.minimum(seen, window)
            current = jnp.sum(jnp.where(jnp.arange(window) < n, buf, 0.0)) / n.astype(dtype)
        cooling, warming = state.cooldown_counter > 0, state.warmup_counter > 0
        quiet = cooling | warming
        better = is_better(current, state.best)
        best = jnp.where(quiet | ~better, state.best, current)
        bad = jnp.where(quiet | better, 0, state.num_bad_epochs + 1)
        good = jnp.where(quiet | ~better, 0, state.num_good_epochs + 1)
        p = ints(patience)
        f = jnp.clip(finite(factor), 1e-30, 1.0).astype(dtype)
        e = V.sanitize_length(jnp, eps).astype(dtype)
        lo, hi = finite(min_lr).astype(dtype), finite(max_lr).astype(dtype)
        increase = ~quiet & (good > p)
        reduce = ~quiet & ~increase & (bad > p)
        up = jnp.minimum(used / f, hi)
        down = jnp.maximum(used * f, lo)
        rate = jnp.where(increase & (up - used > e), up, used)
        rate = jnp.where(reduce & (used - down > e), down, rate)
        reset_counter = jnp.where(increase, ints(reset_start), state.reset_counter)
        at_min = reduce & ~(rate > lo)
        reset_counter = jnp.where(at_min, reset_counter - 1, reset_counter)
        reset = at_min & (reset_counter <= 0)
        new_state = GreedyLRState(
            count=optax.safe_increment(state.count),
            learning_rate=used,
            next_learning_rate=jnp.where(reset, finite(learning_rate).astype(dtype), rate),
            best=jnp.where(reset, jnp.asarray(worst, dtype), best),
            num_bad_epochs=jnp.where(reduce, 0, bad),
            num_good_epochs=jnp.where(increase | reset, 0, good),
            cooldown_counter=jnp.where(
                reduce, ints(cooldown), jnp.where(cooling, state.cooldown_counter - 1, state.cooldown_counter)
            ),
            warmup_counter=jnp.where(
                reset, 0,
                jnp.where(increase, ints(warmup),
                          jnp.where(~cooling & warming, state.warmup_counter - 1, state.warmup_counter)),
            ),
            reset_counter=jnp.where(reset, ints(reset_start), reset_counter),
            window=jnp.where(reset, jnp.zeros_like(buf), buf),
            window_seen=jnp.where(reset, 0, seen),
        )
        return out, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
