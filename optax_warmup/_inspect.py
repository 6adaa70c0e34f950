"""Reading the current learning rate, injected hyperparameters and warmup factors out of an optimizer state."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from optax_warmup._adaptive import AdaptiveWarmupState
from optax_warmup._transforms import ClipByGlobalNormState, ScaleByWarmupState

# The names our states report, and the ones that multiply the learning rate.
_FACTOR_NAMES = ("warmup_factor",)


def _unwrap(x: Any) -> Any:
    """A Flax NNX ``Variable`` (``nnx.Optimizer`` wraps every leaf of its state in one) -> its value."""
    if isinstance(x, jax.Array | np.ndarray | numbers.Number):
        return x
    if hasattr(x, "get_value"):  # flax >= 0.11
        return x.get_value()
    if type(x).__module__.startswith("flax.") and hasattr(x, "value"):  # older nnx Variables
        return x.value
    return x


def _records(node: Any, path: tuple[str, ...], out: list) -> None:
    node = _unwrap(node)
    if isinstance(node, tuple) and hasattr(node, "_fields"):  # a NamedTuple state
        if isinstance(node, ScaleByWarmupState):
            out.append((path, "warmup_factor", node.factor))
        elif isinstance(node, AdaptiveWarmupState):
            out.append((path, "warmup_factor", node.factor))
            out.append((path, "warmup_progress", node.progress))
        elif isinstance(node, ClipByGlobalNormState):
            out.append((path, "max_norm", node.max_norm))
        hyperparams = getattr(node, "hyperparams", None)
        if isinstance(hyperparams, Mapping):  # optax.inject_hyperparams
            out.extend((path, str(k), v) for k, v in hyperparams.items())
        for name in node._fields:
            if name not in ("hyperparams", "hyperparams_states"):
                _records(getattr(node, name), path, out)
    elif isinstance(node, Mapping):  # partition / multi_transform groups, named_chain names
        for key, value in node.items():
            _records(value, (*path, str(key)), out)
    elif isinstance(node, list | tuple):  # chain
        for value in node:
            _records(value, path, out)


def _collect(opt_state: Any) -> list[tuple[tuple[str, ...], str, Any]]:
    out: list = []
    _records(opt_state, (), out)
    return [(path, name, _unwrap(value)) for path, name, value in out]


def current_hyperparams(opt_state: Any) -> dict[str, jax.Array]:
    """The hyperparameters in an optimizer state, by name, for logging: ``{"learning_rate": 0.0003, ...}``.

    Walks the state tree and reports every ``optax.inject_hyperparams`` value (``learning_rate``, ``b1``,
    ``weight_decay``, ...) and this library's transformation states (``warmup_factor``,
    ``warmup_progress`` of ``adaptive_warmup``, ``max_norm`` of ``clip_by_global_norm_schedule``). Names inside a
    dict of the state (``optax.partition`` groups, ``optax.named_chain`` names) are prefixed by its keys,
    ``"head/learning_rate"``; a name that occurs twice at the same place gets a suffix, ``"warmup_factor_1"``.

    Each value is the one used in the last update (before the first update: the value for count 0), which is
    what ``inject_hyperparams`` stores. Works on plain Optax states, Flax ``TrainState.opt_state`` and
    ``nnx.Optimizer.opt_state``, inside or outside ``jit``.

    Example:
      >>> import jax.numpy as jnp, optax, optax_warmup as ow
      >>> tx = optax.chain(optax.inject_hyperparams(optax.adam)(learning_rate=1e-3), ow.scale_by_warmup(10))
      >>> hp = ow.current_hyperparams(tx.init(jnp.zeros(2)))
      >>> float(hp["learning_rate"]), float(hp["warmup_factor"])
      (0.001..., 0.0)
    """
    result: dict[str, jax.Array] = {}
    for path, name, value in _collect(opt_state):
        key = "/".join((*path, name))
        unique, i = key, 0
        while unique in result:
            i += 1
            unique = f"{key}_{i}"
        result[unique] = value
    return result


def current_learning_rate(opt_state: Any) -> jax.Array | dict[str, jax.Array]:
    """The learning rate the last update used: the injected ``learning_rate`` times our warmup factors over it.

    The learning rate must have been injected (``optax.inject_hyperparams(optax.adamw)(learning_rate=...)``, or
    ``per_group_warmup``); a ``warmup_factor`` of ``scale_by_warmup`` / ``adaptive_warmup`` / ... applies to the
    learning rates in its own part of the state and below it (``optax.chain(partition, scale_by_warmup(...))``
    scales every group).

    Returns:
      A scalar when the state has one learning rate at its top level, else a dict ``{group: learning_rate}`` keyed
      by the state's dict keys (``{"backbone": ..., "head": ...}`` for ``per_group_warmup``).

    Raises:
      ValueError: no injected ``learning_rate`` in the state, or two in the same group.
    """
    records = _collect(opt_state)
    rates: dict[tuple[str, ...], Any] = {}
    for path, name, value in records:
        if name == "learning_rate":
            if path in rates:
                raise ValueError(f"two learning rates in the same part of the state ({'/'.join(path) or 'top'})")
            rates[path] = value
    if not rates:
        raise ValueError(
            "no learning_rate in the optimizer state: inject it, e.g. "
            "optax.inject_hyperparams(optax.adamw)(learning_rate=schedule), or use per_group_warmup"
        )
    effective = {}
    for path, rate in rates.items():
        for fpath, name, factor in records:
            if name in _FACTOR_NAMES and path[: len(fpath)] == fpath:
                rate = rate * factor
        effective[path] = rate
    if list(effective) == [()]:
        return effective[()]
    return {"/".join(path): rate for path, rate in effective.items()}
