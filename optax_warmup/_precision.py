"""Learning-rate scaling that keeps the schedule's float32 precision with bf16 / float16 gradients.

Optax's ``scale_by_schedule`` (used by every alias, ``optax.adamw(learning_rate=schedule)`` included) casts the
rate to the gradient dtype before multiplying: with bf16 gradients a 10,000-step linear warmup from 0 to 1e-3
takes only about 900 distinct bf16 rates, so the warmup moves in stairs. ``scale_by_schedule_f32`` multiplies in
float32 (the schedule's dtype; float64 under x64) and returns the updates in that wider dtype;
``optax.apply_updates`` then rounds ``params + updates`` once, back to the parameters' own dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from optax_warmup import _numeric as N


def scale_by_schedule_f32(step_size_fn: optax.Schedule) -> optax.GradientTransformation:
    """``optax.scale_by_schedule`` that multiplies in float32 instead of casting the rate to the gradient dtype.

    Same state (``optax.ScaleByScheduleState``, an int32 count that saturates at 2**31 - 1) and same count
    semantics (the first update uses count 0), so it drops into a chain in place of ``optax.scale_by_schedule``.
    Updates come out in ``promote_types(gradient dtype, float32)``; ``optax.apply_updates`` keeps each
    parameter's dtype.

    Args:
      step_size_fn: a schedule ``count -> step size`` (for a learning rate, pass ``lambda c: -schedule(c)``).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import jax.numpy as jnp, optax, optax_warmup as ow
      >>> lr = ow.warmup_constant_schedule(0.0, 1e-3, 10_000)
      >>> opt = optax.chain(optax.scale_by_adam(), ow.scale_by_schedule_f32(lambda c: -lr(c)))
      >>> params = jnp.ones(3, jnp.bfloat16)
      >>> updates, state = opt.update(jnp.ones(3, jnp.bfloat16), opt.init(params), params)
      >>> updates.dtype, optax.apply_updates(params, updates).dtype
      (dtype('float32'), dtype(bfloat16))
    """
    if not callable(step_size_fn):
        raise TypeError(f"step_size_fn must be callable (count -> step size), got {type(step_size_fn).__name__}")

    def init_fn(params):
        del params
        return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None):
        del params
        step_size = jnp.asarray(step_size_fn(state.count), N.float_dtype())
        updates = jax.tree.map(
            lambda g: step_size * g.astype(jnp.promote_types(g.dtype, step_size.dtype)), updates
        )
        return updates, optax.ScaleByScheduleState(count=optax.safe_increment(state.count))

    return optax.GradientTransformation(init_fn, update_fn)
