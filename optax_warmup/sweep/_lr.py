"""The learning rate each config used, read from its optimizer state.

``optax_warmup.current_learning_rate`` reads a learning rate that the state carries: one injected with
``optax.inject_hyperparams``, ``per_group_warmup``'s, times this library's warmup factors. A plain
``optax.adamw(schedule)`` keeps only a step count, so while the sweep builds a config's optimizer it asks Optax's
``scale_by_learning_rate`` (through which every Optax alias applies its learning rate) to inject a *callable*
learning rate: the state then carries the value each update used, and the updates are the same
(``inject_hyperparams`` evaluates the schedule at the same count and multiplies by the same number).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import jax.numpy as jnp
import optax

from optax_warmup._inspect import current_learning_rate

try:  # where every Optax alias looks up scale_by_learning_rate when it is called
    from optax._src import transform as _optax_transform
except ImportError:  # pragma: no cover - a future Optax layout: the rate is then recorded only when injected
    _optax_transform = None

_LOCK = threading.RLock()


@contextlib.contextmanager
def rate_in_state() -> Iterator[None]:
    """While active, Optax optimizers built with a schedule as learning rate keep its value in their state."""
    original = getattr(_optax_transform, "scale_by_learning_rate", None)
    if original is None:
        yield
        return

    def injected(learning_rate=None, *, flip_sign: bool = True):
        if callable(learning_rate):
            return optax.inject_hyperparams(original, static_args=("flip_sign",))(
                learning_rate=learning_rate, flip_sign=flip_sign)
        return original(learning_rate, flip_sign=flip_sign)

    with _LOCK:
        _optax_transform.scale_by_learning_rate = injected
        try:
            yield
        finally:
            _optax_transform.scale_by_learning_rate = original


def rates(opt_state: Any) -> dict[str, Any] | None:
    """``{"lr": rate}`` (or ``{"lr/group": rate, ...}`` for per-group rates) from a state; None if it has none."""
    try:
        rate = current_learning_rate(opt_state)
    except ValueError:
        return None
    if isinstance(rate, dict):
        return {f"lr/{k}": jnp.asarray(v, jnp.float32) for k, v in rate.items()}
    return {"lr": jnp.asarray(rate, jnp.float32)}
