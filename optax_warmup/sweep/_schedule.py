"""The one schedule the sweep uses, from the core library.

TEMPORARY: until branch `main` ships `optax_warmup.warmup_cosine_decay_schedule`, a private stand-in with the
same signature keeps this branch runnable. It is removed when `main` is merged.
"""

from __future__ import annotations

try:
    from optax_warmup import warmup_cosine_decay_schedule
except ImportError:  # pragma: no cover - removed once main is merged
    import jax.numpy as jnp

    def warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps, decay_steps, end_value=0.0,
                                     exponent=1.0, *, warmup_shape="linear", warmup_exponent=2.0):
        def schedule(count):
            t = jnp.asarray(count, jnp.float32)
            w = jnp.asarray(warmup_steps, jnp.float32)
            p = jnp.clip(t / jnp.maximum(w, 1.0), 0.0, 1.0)
            if warmup_shape == "linear":
                f = p
            elif warmup_shape == "cosine":
                f = 0.5 * (1.0 - jnp.cos(jnp.pi * p))
            elif warmup_shape == "polynomial":
                f = p**warmup_exponent
            else:
                raise NotImplementedError(warmup_shape)
            warm = init_value + (peak_value - init_value) * f
            d = jnp.clip((t - w) / jnp.maximum(decay_steps - w, 1.0), 0.0, 1.0)
            cos = end_value + (peak_value - end_value) * (0.5 * (1.0 + jnp.cos(jnp.pi * d))) ** exponent
            return jnp.where(t < w, warm, cos)

        return schedule

__all__ = ["warmup_cosine_decay_schedule"]
