"""``skip_step_on_spikes``: drop an update whose loss or gradient norm spikes above its recent history."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optax_warmup import _numeric as N
from optax_warmup import _validate as V

ArrayLike = jax.typing.ArrayLike

WATCH = ("both", "loss", "grad_norm")
# Differences within float32 rounding of the mean are never spikes (a constant history has std 0).
_REL_TOL = 1e-6


class SkipStepState(NamedTuple):
    """State of ``skip_step_on_spikes``: arrays only (checkpointable, vmappable) plus the inner state.

    Attributes:
      count: updates seen, skipped ones included (int32, saturating).
      loss_history, grad_norm_history: the last ``window`` finite values (float32 ring buffers).
      loss_seen, grad_norm_seen: finite values observed so far (int32, saturating); the next one goes to slot
        ``seen % window`` and the window holds ``min(seen, window)`` of them.
      skipped: whether the last update was skipped (bool).
      num_skipped: updates skipped so far, spikes and non-finite ones together (int32).
      num_nonfinite: updates skipped because the loss or the gradient was NaN or infinite (int32).
      inner_state: state of the wrapped optimizer, left as it was by every skipped update.
    """

    count: jax.Array  # type: ignore[assignment]  # a field named like tuple.count, as in Optax's states
    loss_history: jax.Array
    grad_norm_history: jax.Array
    loss_seen: jax.Array
    grad_norm_seen: jax.Array
    skipped: jax.Array
    num_skipped: jax.Array
    num_nonfinite: jax.Array
    inner_state: Any


def rolling_mean_std(history, seen):
    """Mean and Bessel-corrected standard deviation (``ddof=1``, as ``torch.std``) of the filled slots."""
    window = history.shape[0]
    n = jnp.minimum(seen, window).astype(jnp.float32)
    filled = jnp.arange(window) < n
    mean = jnp.sum(jnp.where(filled, history, 0.0)) / jnp.maximum(n, 1.0)
    var = jnp.sum(jnp.where(filled, jnp.square(history - mean), 0.0)) / jnp.maximum(n - 1.0, 1.0)
    return mean, jnp.sqrt(var)


def _is_spike(x, history, seen, threshold, min_samples):
    mean, std = rolling_mean_std(history, seen)
    ready = seen.astype(jnp.float32) >= min_samples
    margin = jnp.maximum(threshold * std, _REL_TOL * jnp.abs(mean))
    return ready & (x - mean > margin)


def _record(x, history, seen, ok):
    slot = seen % history.shape[0]
    history = jnp.where(ok, history.at[slot].set(x), history)
    return history, jnp.where(ok, optax.safe_increment(seen), seen)


def skip_step_on_spikes(
    inner: optax.GradientTransformation,
    window: int = 128,
    threshold: ArrayLike = 6.0,
    min_samples: ArrayLike | None = None,
    watch: str = "both",
) -> optax.GradientTransformationExtraArgs:
    r"""Wraps any optimizer so that an update is skipped when the loss or the gradient norm spikes.

    For each watched signal ``x`` (the global norm of the incoming gradients, and the loss passed as
    ``update(..., loss=loss)``, as MaxText and Levanter call it, or ``value=loss``, as for
    ``optax.contrib.reduce_on_plateau``; giving both raises), with ``\mu`` and ``\sigma`` the mean
    and Bessel-corrected standard deviation of its last ``window`` values (the current one excluded), the update
    is skipped when

    .. math::
      n \ge n_{\min} \quad\text{and}\quad x - \mu > \max(z\,\sigma,\ 10^{-6} |\mu|)

    for either signal, with ``n`` the number of values in the window, ``z = threshold`` and
    ``n_{\min} = \max(2, \mathrm{min\_samples})``. A NaN or infinite loss or gradient is always skipped and
    never enters the window. A skipped update is all zeros and leaves the wrapped optimizer's state exactly as it
    was (its step count included); ``state.num_skipped`` counts them, ``state.skipped`` flags the last one.

    The rule is OLMo-core's ``SkipStepOptimizer`` (also MaxText's ``skip_step_on_spikes`` and Levanter's
    ``SkipStepConfig``), defaults included (``window=128``, ``threshold=6``, ``min_samples = window // 2``).
    Differences:

    * non-finite values: the peers let a NaN into the window, after which every step compares against a NaN
      mean and is skipped until the NaN leaves the window (``window`` steps later); here a non-finite step is
      skipped and kept out of the statistics.
    * ``min_samples`` counts earlier values: OLMo-core and MaxText count the current one too, so they judge one
      step earlier (63 earlier values by default); Levanter counts as here.
    * standard deviation: Bessel-corrected like OLMo-core and MaxText (Levanter: population std, floored at
      ``1e-6``); a rise within ``1e-6 |\mu|`` never counts, so a constant history does not flag rounding noise.
    * the loss is optional here (without it only the gradient norm is watched, and ``watch="both"``, the
      default, warns once that no loss came; MaxText then never skips, Levanter raises); ``watch`` restricts the
      test to one signal (``"loss"`` raises without a loss).

    As in all three, a spiking but finite value still enters the window, so a lasting change of level becomes the
    new baseline after a while.

    Args:
      inner: the optimizer to wrap (any ``GradientTransformation``; ``value=`` is passed on to it).
      window: values kept per signal (a Python int ``>= 2``: it is the shape of the state).
      threshold: ``z``, standard deviations above the mean that make a spike (``>= 0``).
      min_samples: earlier values needed before anything is skipped (``None``: ``max(2, window // 2)``);
        values below 2 act as 2.
      watch: ``"both"`` (default), ``"loss"`` (then the loss is required) or ``"grad_norm"``.

    ``threshold`` and ``min_samples`` may be traced. Concrete bad values raise ``ValueError``.

    Returns:
      A ``GradientTransformationExtraArgs``: ``update(grads, state, params, loss=loss)`` (or ``value=loss``); the
      loss is passed on to ``inner`` as ``value=``.

    Example:
      >>> import jax.numpy as jnp, optax, optax_warmup as ow
      >>> tx = ow.skip_step_on_spikes(optax.sgd(0.1), window=8, threshold=3.0)
      >>> params = jnp.zeros(2)
      >>> state = tx.init(params)
      >>> for loss in [2.0, 2.1, 1.9, 2.0, 2.05, 50.0]:
      ...     u, state = tx.update(jnp.ones(2), state, params, loss=jnp.float32(loss))
      >>> bool(state.skipped), int(state.num_skipped), u.tolist()
      (True, 1, [0.0, 0.0])

    References:
      OLMo-core ``olmo_core/optim/skip_step_optimizer.py``; MaxText ``optimizers.skip_step_on_spikes``;
      Levanter ``levanter/optim/skipstep.py``. Chowdhery et al., "PaLM" (2022), on skipping batches at spikes.
    """
    if not isinstance(inner, optax.GradientTransformation):
        raise TypeError(f"inner must be an optax.GradientTransformation, got {type(inner).__name__}")
    window = V.check_int("window", window, minimum=2)
    V.check_nonnegative("threshold", threshold)
    if min_samples is None:
        min_samples = max(2, window // 2)
    V.check_nonnegative("min_samples", min_samples)
    V.check_choice("watch", watch, WATCH)
    inner = optax.with_extra_args_support(inner)
    f32 = jnp.float32

    def init_fn(params):
        def izero():  # a fresh buffer per field, so the state can be donated
            return jnp.zeros([], jnp.int32)

        return SkipStepState(
            izero(), jnp.zeros([window], f32), jnp.zeros([window], f32), izero(), izero(),
            jnp.zeros([], bool), izero(), izero(), inner.init(params),
        )

    warned: list[bool] = []  # the warning below is given once per transformation, not at every trace

    def update_fn(updates, state, params=None, *, value=None, loss=None, **extra_args):
        if value is not None and loss is not None:
            raise ValueError("skip_step_on_spikes: pass the loss once, as value= or as loss=, not both")
        if loss is not None:
            value = loss  # MaxText's and Levanter's keyword
        if watch == "loss" and value is None:
            raise ValueError("skip_step_on_spikes(watch='loss') needs the loss: update(..., loss=loss)")
        if watch == "both" and value is None and not warned:
            warned.append(True)
            warnings.warn(
                "skip_step_on_spikes(watch='both') got no loss (update(..., loss=loss) or value=loss): only the "
                "gradient norm is watched. Pass the loss, or watch='grad_norm' to say that is what you want.",
                UserWarning,
                stacklevel=2,
            )
        z = V.sanitize_length(jnp, threshold).astype(f32)
        n_min = jnp.maximum(V.sanitize_length(jnp, min_samples).astype(f32), 2.0)
        norm = optax.tree.norm(N.widen(updates)).astype(f32)
        finite = jnp.isfinite(norm)
        use_loss = value is not None and watch != "grad_norm"
        if value is not None:
            loss = jnp.asarray(value, f32)
            if loss.shape != ():
                raise ValueError(f"value must be a scalar loss, got shape {loss.shape}")
            finite = finite & jnp.isfinite(loss)

        spike = jnp.zeros([], bool)
        norm_history, norm_seen = state.grad_norm_history, state.grad_norm_seen
        loss_history, loss_seen = state.loss_history, state.loss_seen
        if watch != "loss":
            spike = spike | _is_spike(norm, norm_history, norm_seen, z, n_min)
            norm_history, norm_seen = _record(norm, norm_history, norm_seen, finite)
        if use_loss:
            spike = spike | _is_spike(loss, loss_history, loss_seen, z, n_min)
            loss_history, loss_seen = _record(loss, loss_history, loss_seen, finite)
        skip = spike | ~finite

        # The inner optimizer never sees a non-finite gradient; a skipped update keeps its state as it was.
        clean = jax.tree.map(lambda g: jnp.where(finite, g, jnp.zeros_like(g)), updates)
        if value is not None:
            extra_args = {**extra_args, "value": value}
        inner_updates, inner_state = inner.update(clean, state.inner_state, params, **extra_args)
        inner_state = jax.tree.map(
            lambda new, old: jnp.where(skip, old, new).astype(jnp.asarray(old).dtype), inner_state, state.inner_state
        )
        out = jax.tree.map(lambda u: jnp.where(skip, jnp.zeros_like(u), u), inner_updates)
        new_state = SkipStepState(
            count=optax.safe_increment(state.count),
            loss_history=loss_history,
            grad_norm_history=norm_history,
            loss_seen=loss_seen,
            grad_norm_seen=norm_seen,
            skipped=skip,
            num_skipped=jnp.where(skip, optax.safe_increment(state.num_skipped), state.num_skipped),
            num_nonfinite=jnp.where(finite, state.num_nonfinite, optax.safe_increment(state.num_nonfinite)),
            inner_state=inner_state,
        )
        return out, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
