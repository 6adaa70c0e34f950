"""An update-size limit relative to the parameters: no update moves a weight more than ``ratio`` of its norm."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optax_warmup import _numeric as N
from optax_warmup import _validate as V

ArrayLike = jax.typing.ArrayLike


class ClipByParamNormRatioState(NamedTuple):
    """State of ``clip_by_param_norm_ratio``.

    Attributes:
      count: updates so far (int32, saturating).
      ratio: the ratio ``r`` used in the last update (``r(0)`` before the first), float32 (float64 under x64).
      scale: the smallest factor applied to a leaf (or to the whole tree) in the last update: 1 when nothing was
        clipped.
    """

    count: jax.Array  # type: ignore[assignment]  # a field named like tuple.count, as in Optax's states
    ratio: jax.Array
    scale: jax.Array


def _ratio_at(ratio) -> Callable[[Any], jax.Array]:
    if callable(ratio):
        return lambda count: V.sanitize_length(jnp, ratio(count))
    v = V.concrete("ratio", ratio)
    if v is not None and not v >= 0:  # +inf is allowed: no limit
        raise ValueError(f"ratio must be a number >= 0 or a schedule, got {ratio!r}")
    return lambda count: V.sanitize_length(jnp, ratio)


def _leaf_norm(x) -> jax.Array:
    return jnp.sqrt(jnp.sum(jnp.square(x.astype(N.compute_dtype(x.dtype)))))


def clip_by_param_norm_ratio(
    ratio: ArrayLike | Callable[[ArrayLike], ArrayLike],
    per_leaf: bool = True,
    min_norm: ArrayLike = 1e-3,
    exempt_below: ArrayLike = 0.0,
) -> optax.GradientTransformation:
    r"""Scales each update down so that its norm is at most ``ratio`` times the norm of the parameters it moves.

    .. math::
      u \leftarrow u \cdot \min\left(1,\ \frac{r(t)\, \max(\lVert w \rVert_2,\ m)}{\lVert u \rVert_2}\right)

    per leaf (``per_leaf=True``: ``u`` and ``w`` are one parameter array and its update) or over the whole tree
    (``per_leaf=False``: global norms), with ``r(t) = ratio(count)`` (or the number ``ratio``) and
    ``m = min_norm``. So ``\lVert w_{t+1} - w_t \rVert \le r \lVert w_t \rVert``: however large the learning rate
    or the early Adam steps, one update cannot move the weights further than a fraction ``r`` of their size, the
    relative (angular) update size that Kosson et al. (2024) find warmup mostly exists to limit. Put it *last* in
    the chain, after the learning rate, so that it limits what is applied. Unclipped leaves come back bit for bit.

    **Zero and small parameters.** The floor ``m`` keeps a zero-initialized leaf (biases, zero-init output
    layers) movable, but only by ``r m`` per update until its norm exceeds ``m``: a zero bias with ``r = 0.01``
    and the default ``m = 1e-3`` moves by at most ``1e-5`` per update and needs about 800 updates to reach norm 1
    (its norm grows by a factor ``1 + r`` per update once above ``m``). To leave such leaves alone, give
    ``exempt_below``: a leaf whose parameter norm is below it is not limited at all (``exempt_below=1e-2``
    frees zero biases and anything still near zero; a leaf is limited again once its norm reaches
    ``exempt_below``). ``min_norm=0`` instead freezes exact zeros. To limit only the weight matrices whatever
    their size, wrap it in ``optax.masked`` with a mask such as ``jax.tree.map(lambda w: w.ndim >= 2, params)``.

    Differences from the peers: Kosson et al.'s LionAR *normalizes* every update to a fixed relative size (and
    projects out weight decay); this only caps it, so it composes with any optimizer. Levanter's
    ``clip_update_norm`` caps the global update norm at ``mean + k std`` of its recent history, not relative to
    the weights. Optax's ``adaptive_grad_clip`` is the same rule applied to *gradients*, per unit, before the
    optimizer.

    Args:
      ratio: ``r >= 0`` (``+inf``: no limit), or a schedule ``count -> r``, e.g. a warmup of the limit.
      per_leaf: one limit per parameter array (default), or one for the whole tree.
      min_norm: the floor ``m >= 0`` of the parameter norm.
      exempt_below: leaves (``per_leaf=False``: the whole tree) whose parameter norm is below this ``>= 0`` are
        not limited; 0 (default) exempts nothing.

    Every numeric argument may be traced; a NaN or negative ratio clamps to 0 (zero updates).

    Returns:
      A ``GradientTransformation``; ``update`` needs ``params``. ``state.ratio`` and ``state.scale`` log the limit
      used and how much it cut.

    Example:
      >>> import jax.numpy as jnp, optax_warmup as ow
      >>> tx = ow.clip_by_param_norm_ratio(0.01)
      >>> params = {"w": jnp.array([3.0, 4.0]), "b": jnp.zeros(2)}
      >>> grads = {"w": jnp.array([0.3, 0.4]), "b": jnp.ones(2)}
      >>> u, state = tx.update(grads, tx.init(params), params)
      >>> [round(x, 5) for x in u["w"].tolist()], [round(x, 7) for x in u["b"].tolist()]
      ([0.03, 0.04], [7.1e-06, 7.1e-06])

      The zero bias barely moves (``r m = 1e-5`` per update). Exempt the leaves that are still near zero:

      >>> tx = ow.clip_by_param_norm_ratio(0.01, exempt_below=1e-2)
      >>> u, state = tx.update(grads, tx.init(params), params)
      >>> [round(x, 5) for x in u["w"].tolist()], u["b"].tolist()
      ([0.03, 0.04], [1.0, 1.0])

    References:
      Kosson, Messmer & Jaggi, "Analyzing & Reducing the Need for Learning Rate Warmup in GPT Training",
      NeurIPS 2024, arXiv:2410.23922. Brock et al., "High-Performance Large-Scale Image Recognition Without
      Normalization" (2021), for the gradient version (AGC).
    """
    ratio_at = _ratio_at(ratio)
    if not isinstance(per_leaf, bool | np.bool_):
        raise TypeError(f"per_leaf must be a bool, got {type(per_leaf).__name__} {per_leaf!r}")
    V.check_nonnegative("min_norm", min_norm)
    V.check_nonnegative("exempt_below", exempt_below)

    def limit_scale(u_norm, w_norm, r):
        floor = V.sanitize_length(jnp, min_norm).astype(w_norm.dtype)
        bound = r.astype(w_norm.dtype) * jnp.maximum(w_norm, floor)
        scale = jnp.minimum(1.0, bound / jnp.maximum(u_norm, jnp.finfo(u_norm.dtype).tiny))
        exempt = w_norm < V.sanitize_length(jnp, exempt_below).astype(w_norm.dtype)
        # An exact 1 when within the bound (bit-for-bit updates); an infinite ratio never clips.
        return jnp.where((u_norm <= bound) | (r >= V._MAX_LENGTH) | exempt, 1.0, scale)

    def init_fn(params):
        del params
        count = jnp.zeros([], jnp.int32)
        return ClipByParamNormRatioState(count, ratio_at(count), jnp.ones([], V.float_dtype()))

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("clip_by_param_norm_ratio needs params: call update(updates, state, params)")
        r = ratio_at(state.count)
        if per_leaf:
            scales = jax.tree.map(lambda u, w: limit_scale(_leaf_norm(u), _leaf_norm(w), r), updates, params)
        else:
            s = limit_scale(optax.tree.norm(N.widen(updates)), optax.tree.norm(N.widen(params)), r)
            scales = jax.tree.map(lambda _: s, updates)

        def apply(u, s):
            dtype = N.compute_dtype(u.dtype)
            return (u.astype(dtype) * s.astype(dtype)).astype(u.dtype)

        out = jax.tree.map(apply, updates, scales)
        smallest = jnp.min(jnp.stack([jnp.ones([], V.float_dtype()), *jax.tree.leaves(scales)]))
        return out, ClipByParamNormRatioState(optax.safe_increment(state.count), r, smallest)

    return optax.GradientTransformation(init_fn, update_fn)
