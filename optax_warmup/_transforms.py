"""Warmup as Optax gradient transformations, and warmups of other hyperparameters.

Every transformation here keeps its step count in the optimizer state (an int32 that saturates at ``2**31 - 1``,
as ``optax.safe_increment``) and the value it applied in the last update (``state.factor``, ``state.max_norm``),
so it runs inside a compiled step, checkpoints with the rest of the state and can be logged with
``current_hyperparams``. The first update sees count 0, as with ``optax.scale_by_schedule``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optax_warmup import _numeric as N
from optax_warmup import _untuned, _warmup
from optax_warmup import _validate as V
from optax_warmup._deprecation import old_warmup_spelling
from optax_warmup._warmup import Schedule

ArrayLike = jax.typing.ArrayLike


class ScaleByWarmupState(NamedTuple):
    """State of the warmup transformations.

    Attributes:
      count: number of updates so far (int32, saturating).
      factor: the factor applied in the last update (the factor of count 0 before the first one), float32.
    """

    count: jax.Array  # type: ignore[assignment]  # a field named like tuple.count, as in Optax's states
    factor: jax.Array


def scale_by_factor_schedule(factor_schedule: Schedule) -> optax.GradientTransformation:
    """Multiplies updates by ``factor_schedule(count)``: ``optax.scale_by_schedule`` that keeps low-precision dtypes.

    Optax's ``scale_by_schedule`` casts the value to the update dtype first, so a bf16 update is scaled by a
    bf16-rounded factor. Here the factor stays float32 (float64 under x64) and each leaf is multiplied in
    ``promote_types(leaf.dtype, float32)``, then cast back: ``update.dtype`` never changes.

    Args:
      factor_schedule: any schedule ``count -> factor`` (ours or Optax's).

    Returns:
      A ``GradientTransformation`` whose state is ``ScaleByWarmupState(count, factor)``.

    Example:
      >>> import jax.numpy as jnp, optax_warmup as ow
      >>> tx = ow.scale_by_factor_schedule(ow.warmup_factor(4))
      >>> state = tx.init(jnp.zeros(2))
      >>> _, state = tx.update(jnp.ones(2), state)
      >>> u, state = tx.update(jnp.ones(2), state)
      >>> u.tolist(), float(state.factor)
      ([0.25, 0.25], 0.25)
    """
    if not callable(factor_schedule):
        raise TypeError(f"factor_schedule must be callable (count -> factor), got {type(factor_schedule).__name__}")

    def factor_at(count):
        value = jnp.asarray(factor_schedule(count))
        return value.astype(N.compute_dtype(value.dtype))

    def init_fn(params):
        del params
        count = jnp.zeros([], jnp.int32)
        return ScaleByWarmupState(count, factor_at(count))

    def update_fn(updates, state, params=None):
        del params
        factor = factor_at(state.count)
        return N.scale_tree(updates, factor), ScaleByWarmupState(optax.safe_increment(state.count), factor)

    return optax.GradientTransformation(init_fn, update_fn)


@old_warmup_spelling("warmup_steps", "init_value", "shape", "exponent")
def scale_by_warmup(
    warmup_steps: ArrayLike,
    init_value: ArrayLike = 0.0,
    *,
    warmup_shape: str = "linear",
    warmup_exponent: ArrayLike = 2.0,
) -> optax.GradientTransformation:
    r"""Multiplies updates by a warmup factor that goes from ``init_value`` to 1 over ``warmup_steps`` updates.

    .. math::
      u_t \leftarrow f(t)\, u_t, \qquad
      f(t) = \begin{cases} I + (1 - I)\, s(t / W) & t < W \\ 1 & t \ge W \end{cases}

    with ``s`` the warmup shape and ``t`` the count of updates so far (the first update has ``t = 0``, so with
    ``init_value=0`` it is zero, as with ``optax.linear_schedule``). The factor is ``warmup_factor(warmup_steps,
    init_value, warmup_shape=..., warmup_exponent=...)``; put the transformation after any optimizer to warm it up
    without touching its learning-rate argument.

    Args:
      warmup_steps: length ``W`` of the ramp; 0 means no warmup. May be traced.
      init_value: the factor of the first update, ``I``.
      warmup_shape: ``"linear"``, ``"cosine"``, ``"polynomial"``, ``"geometric"`` or ``"exponential"``
        (``optax_warmup.WARMUP_SHAPES``).
      warmup_exponent: the power of the ``"polynomial"`` shape.

    Returns:
      A ``GradientTransformation``; ``state.factor`` holds the factor of the last update.

    Example:
      >>> import jax.numpy as jnp, optax, optax_warmup as ow
      >>> tx = optax.chain(optax.sgd(1.0), ow.scale_by_warmup(10))
      >>> state = tx.init(jnp.zeros(1))
      >>> for _ in range(6):
      ...     u, state = tx.update(jnp.ones(1), state)
      >>> u.tolist()
      [-0.5]
    """
    _warmup.check_warmup_args(init_value, 1.0, warmup_steps, warmup_shape, warmup_exponent,
                              names=("init_value", "1.0", "warmup_steps", "warmup_shape", "warmup_exponent"))
    return scale_by_factor_schedule(_warmup.ramp_then(V.clamp_value(init_value), 1.0, V.clamp_length(warmup_steps),
                                                      warmup_shape, V.clamp_exponent(warmup_exponent), []))


@old_warmup_spelling("b2", "shape")
def scale_by_untuned_warmup(b2: ArrayLike, *, warmup_shape: str = "linear") -> optax.GradientTransformation:
    """Multiplies updates by the untuned warmup factor of Ma & Yarats (``untuned_warmup``, ``t = count + 1``).

    Args:
      b2: Adam's ``b2``: the warmup lasts about ``2 / (1 - b2)`` steps.
      warmup_shape: ``"linear"`` or ``"exponential"``, as ``untuned_warmup``.

    Example:
      >>> import jax.numpy as jnp, optax_warmup as ow
      >>> tx = ow.scale_by_untuned_warmup(0.9)  # linear over 2 / (1 - 0.9) = 20 steps
      >>> state = tx.init(jnp.zeros(1))
      >>> u, state = tx.update(jnp.ones(1), state)
      >>> round(float(u[0]), 6), round(float(state.factor), 6)
      (0.05, 0.05)

    After an optimizer: ``optax.chain(optax.adam(1e-3, b2=0.999), ow.scale_by_untuned_warmup(0.999))``.
    """
    return scale_by_factor_schedule(_untuned.untuned_warmup(b2, warmup_shape=warmup_shape))


def scale_by_radam_warmup(b2: ArrayLike, threshold: ArrayLike = 5.0) -> optax.GradientTransformation:
    """Multiplies updates by RAdam's rectification factor (``radam_warmup``, ``t = count + 1``).

    After ``optax.adam(lr, b2=b2)`` this is RAdam without its SGD fallback: no update while ``rho_t < threshold``.

    Args:
      b2: Adam's ``b2`` (the optimizer's before this transformation).
      threshold: no update while ``rho_t`` is below it (RAdam's 5).

    Example:
      >>> import jax.numpy as jnp, optax_warmup as ow
      >>> tx = ow.scale_by_radam_warmup(0.999)  # after optax.adam(lr, b2=0.999)
      >>> state = tx.init(jnp.zeros(1))
      >>> factors = []
      >>> for _ in range(6):
      ...     u, state = tx.update(jnp.ones(1), state)
      ...     factors.append(round(float(u[0]), 4))
      >>> factors  # no update until rho_t reaches the threshold, at t = 6
      [0.0, 0.0, 0.0, 0.0, 0.0, 0.0258]
    """
    return scale_by_factor_schedule(_untuned.radam_warmup(b2, threshold))


# --- clipping that follows a schedule -------------------------------------------------------------------------


class ClipByGlobalNormState(NamedTuple):
    """State of ``clip_by_global_norm_schedule``: the update count and the threshold used in the last update."""

    count: jax.Array  # type: ignore[assignment]  # a field named like tuple.count, as in Optax's states
    max_norm: jax.Array


def clip_by_global_norm_schedule(max_norm: ArrayLike | Schedule) -> optax.GradientTransformation:
    r"""``optax.clip_by_global_norm`` whose threshold may follow a schedule (e.g. a warmup of the clip norm).

    .. math::
      u \leftarrow u \cdot \min\left(1, \frac{m(t)}{\lVert u \rVert_2}\right)

    with ``m(t) = max_norm(count)`` (or the number ``max_norm``). The norm is taken over all leaves in float32
    (at least) and each leaf is scaled in ``promote_types(dtype, float32)``, then cast back. A negative or NaN
    threshold clamps to 0 (zero updates); ``+inf`` means no clipping. As in Optax, a norm that overflows float32
    (entries beyond about 1e19) clips the update to zero under a finite threshold.

    Args:
      max_norm: a number (concrete: must be ``>= 0``) or a schedule ``count -> threshold``.

    Returns:
      A ``GradientTransformation``; ``state.max_norm`` holds the threshold of the last update.

    Example:
      >>> import jax.numpy as jnp, optax_warmup as ow
      >>> tx = ow.clip_by_global_norm_schedule(ow.linear_schedule(1.0, 10.0, 100))
      >>> u, state = tx.update(jnp.array([3.0, 4.0]), tx.init(jnp.zeros(2)))
      >>> u.tolist(), float(state.max_norm)
      ([0.6000000238418579, 0.800000011920929], 1.0)
    """
    if callable(max_norm):
        threshold_at = lambda count: V.sanitize_length(jnp, max_norm(count))  # noqa: E731
    else:
        v = V.concrete("max_norm", max_norm)
        if v is not None and not v >= 0:  # +inf is allowed: no clipping
            raise ValueError(f"max_norm must be a number >= 0 or a schedule, got {max_norm!r}")
        threshold_at = lambda count: V.sanitize_length(jnp, max_norm)  # noqa: E731

    def init_fn(params):
        del params
        count = jnp.zeros([], jnp.int32)
        return ClipByGlobalNormState(count, threshold_at(count))

    def update_fn(updates, state, params=None):
        del params
        threshold = threshold_at(state.count)
        norm = optax.tree.norm(N.widen(updates))  # accumulated in float32 at least
        dtype = N.compute_dtype(norm.dtype)
        scale = jnp.minimum(1.0, threshold.astype(dtype) / jnp.maximum(norm, jnp.finfo(dtype).tiny))
        # An exact 1 when nothing is clipped, so unclipped updates come back bit for bit; an infinite threshold
        # never clips, even when the float32 norm overflows.
        scale = jnp.where((norm <= threshold) | (threshold >= V._MAX_LENGTH), 1.0, scale)
        return N.scale_tree(updates, scale), ClipByGlobalNormState(optax.safe_increment(state.count), threshold)

    return optax.GradientTransformation(init_fn, update_fn)


# --- batch-size warmup ------------------------------------------------------------------------------------------


@old_warmup_spelling("init_every_k", "peak_every_k", "warmup_steps", "shape", "exponent")
def batch_size_warmup(
    init_every_k: ArrayLike,
    peak_every_k: ArrayLike,
    warmup_steps: ArrayLike,
    *,
    warmup_shape: str = "linear",
    warmup_exponent: ArrayLike = 2.0,
) -> Callable[[ArrayLike], jax.Array]:
    r"""A batch-size warmup as the ``every_k_schedule`` of ``optax.MultiSteps``: micro-batches per real update.

    .. math::
      k(g) = \max\left(1, \left\lfloor \mathrm{warmup}(k_0 \to k_1, W)(g) + 10^{-3} \right\rfloor\right)

    ``g`` is the number of real (accumulated) updates made so far, MultiSteps' ``gradient_step``; the effective
    batch is ``k(g)`` times the micro-batch. The value is rounded down (a value within 1e-3 below an integer counts
    as that integer, so float32 rounding never delays a step), as in Megatron's batch-size ramp. Inside
    ``MultiSteps`` the wrapped optimizer and its learning-rate schedule count real updates only, so ``warmup_steps``
    and the learning-rate warmup are both in real updates.

    Args:
      init_every_k: micro-batches per update at the start (``>= 1``).
      peak_every_k: micro-batches per update from ``warmup_steps`` on (``>= 1``).
      warmup_steps: real updates the ramp takes; may be traced.
      warmup_shape: a warmup shape (``"linear"``, ``"cosine"``, ...).
      warmup_exponent: the power of the ``"polynomial"`` shape.

    Returns:
      A function ``gradient_step -> k`` returning an int32 scalar.

    Example:
      >>> import optax, optax_warmup as ow
      >>> # 1, 2, 3 micro-batches for 10 updates each, then 4
      >>> every_k = ow.batch_size_warmup(1, 4, 30)
      >>> [int(every_k(g)) for g in (0, 9, 10, 20, 30, 99)]
      [1, 1, 2, 3, 4, 4]
      >>> tx = optax.MultiSteps(optax.adam(1e-3), every_k_schedule=every_k)
    """
    for name, value in (("init_every_k", init_every_k), ("peak_every_k", peak_every_k)):
        v = V.concrete(name, value)
        if v is not None and not (v >= 1 and v < 2**31):
            raise ValueError(f"{name} must be a number >= 1 (micro-batches per update), got {value!r}")
    _warmup.check_warmup_args(init_every_k, peak_every_k, warmup_steps, warmup_shape, warmup_exponent,
                              names=("init_every_k", "peak_every_k", "warmup_steps", "warmup_shape",
                                     "warmup_exponent"))
    ramp = _warmup.ramp_then(V.clamp_value(init_every_k), V.clamp_value(peak_every_k), V.clamp_length(warmup_steps),
                             warmup_shape, V.clamp_exponent(warmup_exponent), [])

    def every_k_schedule(gradient_step):
        k = jnp.floor(ramp(gradient_step) + 1e-3)
        return jnp.clip(k, 1.0, 2.0**31 - 1).astype(jnp.int32)

    return every_k_schedule


# --- per-parameter-group warmups (fine-tuning) --------------------------------------------------------------------


def per_group_warmup(
    optimizer_factory: Callable[..., optax.GradientTransformation],
    schedules: Mapping[Hashable, ArrayLike | Schedule | None],
    param_labels: Any,
    *,
    inject: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """One optimizer per parameter group, each with its own learning-rate schedule: ``optax.partition`` in one line.

    For each ``label -> schedule`` this builds ``optimizer_factory(schedule)`` (wrapped in
    ``optax.inject_hyperparams`` when ``inject``, so the group's current learning rate is in the state and
    ``current_learning_rate`` can read it), and routes each parameter to the group its label names. A schedule
    of ``None`` freezes the group (``optax.set_to_zero()``).

    Args:
      optimizer_factory: called with the schedule as its first argument, e.g. ``optax.adamw`` or
        ``lambda learning_rate: optax.adamw(learning_rate, weight_decay=0.05)`` (name the argument
        ``learning_rate`` so that ``current_learning_rate`` finds it).
      schedules: ``{label: schedule | number | None}``.
      param_labels: a pytree of labels matching the parameters (or a prefix of them), or a function
        ``params -> labels``, as for ``optax.partition``.
      inject: wrap each group's optimizer in ``optax.inject_hyperparams``.

    Example:
      >>> import jax.numpy as jnp, optax, optax_warmup as ow
      >>> params = {"backbone": jnp.zeros(3), "head": jnp.zeros(2)}
      >>> slow = ow.warmup_constant_schedule(0.0, 1e-5, 500)
      >>> fast = ow.warmup_constant_schedule(0.0, 1e-3, 50)
      >>> groups = lambda p: {k: k for k in p}
      >>> tx = ow.per_group_warmup(optax.adamw, {"backbone": slow, "head": fast}, groups)
      >>> state = tx.init(params)
      >>> sorted(ow.current_learning_rate(state))
      ['backbone', 'head']
    """
    if not callable(optimizer_factory):
        raise TypeError(f"optimizer_factory must be callable (schedule -> optimizer), got {optimizer_factory!r}")
    if not isinstance(schedules, Mapping) or not schedules:
        raise ValueError(f"schedules must be a non-empty dict {{label: schedule}}, got {schedules!r}")
    if not isinstance(inject, bool | np.bool_):
        raise TypeError(f"inject must be a bool, got {type(inject).__name__} {inject!r}")
    factory = optax.inject_hyperparams(optimizer_factory) if inject else optimizer_factory
    transforms = {}
    for label, schedule in schedules.items():
        if schedule is None:
            transforms[label] = optax.set_to_zero()
        else:
            if not callable(schedule):
                V.check_finite(f"schedules[{label!r}]", schedule)
            transforms[label] = factory(schedule)
    return optax.partition(transforms, param_labels)
