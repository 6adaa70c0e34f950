"""GI-Adam: Adam whose second moment starts at the first gradient squared (Kalra & Barkeshli, 2024)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optax_warmup import _validate as V

ArrayLike = jax.typing.ArrayLike

# The largest float32 below 1: a traced decay rate is clipped to it, so the bias correction 1 - b**t never
# divides by zero.
_BELOW_ONE = float(np.nextafter(np.float32(1.0), np.float32(0.0)))


def decay_rate(name: str, value: Any) -> Any:
    """A moment decay rate in ``[0, 1)``: checked when concrete (``ValueError`` naming it), clipped when traced."""
    v = V.concrete(name, value)
    if v is None:
        return jnp.clip(jnp.nan_to_num(jnp.asarray(value, V.float_dtype()), nan=0.0), 0.0, _BELOW_ONE)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value


def nonnegative(name: str, value: Any) -> Any:
    """A number ``>= 0``: checked when concrete, NaN / negative clamped to 0 and +inf to 1e30 when traced."""
    V.check_nonnegative(name, value)
    return V.sanitize_length(jnp, value) if V.is_traced(value) else value


def scale_by_gi_adam(
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    eps_root: ArrayLike = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformation:
    r"""``optax.scale_by_adam`` whose second moment starts at the first gradient squared: GI-Adam.

    Adam's moments with ``m_0 = 0`` but ``v_0 = g_1^2``, where ``g_1`` is the first gradient this transformation
    receives; everything else, the bias corrections included, is Adam's:

    .. math::
      m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \qquad
      v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \qquad v_0 = g_1^2,

      u_t = \frac{m_t / (1 - \beta_1^t)}{\sqrt{v_t / (1 - \beta_2^t) + \epsilon_{root}} + \epsilon}

    so ``v_t = v^{Adam}_t + \beta_2^t g_1^2``. Keeping Adam's ``1 / (1 - \beta_2^t)`` on a ``v`` that is not
    biased towards zero makes the first updates small: with a constant gradient (and ``eps = 0``) the update is
    Adam's times ``\sqrt{1 - \beta_2^t}``, a built-in warmup over about ``1 / (1 - \beta_2)`` steps. This is the
    "GI-Adam" of Kalra & Barkeshli (2024), whose reference code (``optim_utils.adam_init`` in
    ``dayal-kalra/why-warmup``) sets ``nu = g_0^2`` at initialization and keeps the standard bias corrections.
    One difference: their ``g_0`` is a gradient computed on a batch of its own before training starts, while here
    ``v_0`` is the square of the first update's gradient (the two coincide in full-batch training). The state is
    ``optax.ScaleByAdamState``, so checkpoints and tools that read ``nu`` see an Adam state.

    Args:
      b1: decay rate of the first moment, in ``[0, 1)``.
      b2: decay rate of the second moment, in ``[0, 1)``.
      eps: added to the denominator outside the square root (``>= 0``).
      eps_root: added inside the square root (``>= 0``).
      mu_dtype: dtype of the first moment (``None``: that of the parameters).
      nesterov: Nesterov momentum, as in ``optax.scale_by_adam``.

    Every numeric argument may be traced (a traced decay rate is clipped to ``[0, 1)``).

    Returns:
      A ``GradientTransformation`` with Adam's state.

    Example:
      >>> import jax.numpy as jnp, optax_warmup as ow
      >>> tx = ow.scale_by_gi_adam(b2=0.99, eps=0.0)
      >>> state = tx.init(jnp.zeros(2))
      >>> u, state = tx.update(jnp.array([1.0, -2.0]), state)
      >>> [round(x, 4) for x in u.tolist()]  # Adam gives [1.0, -1.0]; sqrt(1 - 0.99) = 0.1
      [0.1, -0.1]

    References:
      Kalra & Barkeshli, "Why Warmup the Learning Rate? Underlying Mechanisms and Improvements", NeurIPS 2024,
      arXiv:2406.09405.
    """
    b1 = decay_rate("b1", b1)
    b2 = decay_rate("b2", b2)
    eps = nonnegative("eps", eps)
    eps_root = nonnegative("eps_root", eps_root)
    if not isinstance(nesterov, bool | np.bool_):
        raise TypeError(f"nesterov must be a bool, got {type(nesterov).__name__} {nesterov!r}")
    adam = optax.scale_by_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov)

    def update_fn(updates, state, params=None):
        # Before the first update Adam's v is 0; GI-Adam's is the first gradient squared.
        first = state.count == 0
        nu = jax.tree.map(
            lambda g, v: jnp.where(first, jnp.square(g.astype(v.dtype)), v), updates, state.nu
        )
        return adam.update(updates, state._replace(nu=nu), params)

    return optax.GradientTransformation(adam.init, update_fn)


def learning_rate_or_schedule(name: str, value: Any, *, nonnegative_only: bool = False) -> Any:
    """A number (checked when concrete, clamped to +-1e30 when traced) or a schedule (its values clamped)."""
    if callable(value):
        clamp = V.sanitize_length if nonnegative_only else V.sanitize_value
        return lambda count: clamp(jnp, value(count))
    if nonnegative_only:
        return nonnegative(name, value)
    V.check_finite(name, value)
    return V.sanitize_value(jnp, value) if V.is_traced(value) else value


def gi_adamw(
    learning_rate: ArrayLike | optax.Schedule,
    b1: ArrayLike = 0.9,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    eps_root: ArrayLike = 0.0,
    mu_dtype: Any = None,
    weight_decay: ArrayLike | optax.Schedule = 1e-4,
    mask: Any = None,
    *,
    nesterov: bool = False,
) -> optax.GradientTransformationExtraArgs:
    r"""``optax.adamw`` with GI-Adam's second moment (``scale_by_gi_adam``): same arguments, same order.

    .. math::
      w_{t} = w_{t-1} - \eta_t \left(u_t + \lambda w_{t-1}\right)

    with ``u_t`` the GI-Adam direction of ``scale_by_gi_adam`` and ``\lambda = weight_decay`` (decoupled weight
    decay, applied where ``mask`` is true). It differs from ``optax.adamw`` only through ``v_0 = g_1^2``: the
    second moments differ by ``\beta_2^t g_1^2``, so the two agree exactly when ``b2 = 0`` or when the first
    gradient is zero, and the difference fades as ``\beta_2^t``.

    Args:
      learning_rate: a number or a schedule ``count -> rate``.
      b1, b2, eps, eps_root, mu_dtype, nesterov: as in ``scale_by_gi_adam``.
      weight_decay: decoupled weight decay (``>= 0``), a number or a schedule.
      mask: where to apply the weight decay, as in ``optax.adamw``.

    Example:
      >>> import jax.numpy as jnp, optax_warmup as ow
      >>> tx = ow.gi_adamw(learning_rate=1e-3, weight_decay=0.0)
      >>> params = jnp.ones(3)
      >>> u, _ = tx.update(jnp.full(3, 0.5), tx.init(params), params)
      >>> round(float(u[0]), 7)  # lr * sqrt(1 - b2) = 1e-3 * 0.0316...
      -3.16e-05

    References:
      Kalra & Barkeshli, arXiv:2406.09405 (2024); Loshchilov & Hutter, "Decoupled Weight Decay Regularization"
      (2019).
    """
    learning_rate = learning_rate_or_schedule("learning_rate", learning_rate)
    weight_decay = learning_rate_or_schedule("weight_decay", weight_decay, nonnegative_only=True)
    return optax.chain(
        scale_by_gi_adam(b1, b2, eps, eps_root, mu_dtype, nesterov=nesterov),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )
