"""Reading the current learning rate, injected hyperparameters and warmup factors out of an optimizer state.

The state is read by its field names, never by its classes, so nothing here imports a transformation. The walk
goes through tuples (``optax.chain``), dicts (``optax.partition`` groups, ``optax.named_chain`` names: their keys
prefix the names found below them, ``"head/learning_rate"``) and every field of a NamedTuple state
(``inner_state``, ``inner_opt_state``, ...), and reads these fields of a NamedTuple:

============================  ====================  ===============================================================
fields of the state           reported as           meaning
============================  ====================  ===============================================================
``hyperparams`` (a dict)      each key              ``optax.inject_hyperparams``: the values of the last update
``count`` and ``factor``      ``warmup_factor``     the factor the last update was multiplied by; it multiplies
                                                    the learning rates in its part of the state and below it
``count`` and ``progress``    ``warmup_progress``   how far a warmup has come (``adaptive_warmup``)
``count`` and ``max_norm``    ``max_norm``          the clipping threshold of the last update
``count`` and ``ratio``       ``update_ratio``      the largest update / parameter norm ratio allowed in the last
                                                    update (``clip_by_param_norm_ratio``)
``count`` and ``num_skipped`` ``num_skipped``       updates skipped so far (``skip_step_on_spikes``)
``count`` and                 ``learning_rate``     the rate of the last update, kept in the state by a
``learning_rate``                                   metric-driven transformation (``compat.torch_reduce_lr_on_
                                                    plateau``)
only ``count``                (with ``schedule=``)  the update count of ``optax.scale_by_schedule``, which
                                                    ``optax.adamw(learning_rate=schedule)`` uses: the last update
                                                    used ``schedule(count - 1)``
============================  ====================  ===============================================================

A new transformation is reported by naming its state's fields this way (a ``count`` next to the value it applied);
a new kind of value is one more row of ``REPORTED_FIELDS`` (and of ``FACTORS`` if it multiplies the learning rate).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# field of a NamedTuple state that also has a ``count`` -> the name it is reported under.
REPORTED_FIELDS = {
    "factor": "warmup_factor",
    "progress": "warmup_progress",
    "max_norm": "max_norm",
    "ratio": "update_ratio",
    "num_skipped": "num_skipped",
    "learning_rate": "learning_rate",
}
# Reported names that multiply the learning rates at their place in the state and below.
FACTORS = ("warmup_factor",)
_SCHEDULE_COUNT = "schedule_count"  # internal record name of a state whose only field is ``count``


def _unwrap(x: Any) -> Any:
    """A Flax NNX ``Variable`` (``nnx.Optimizer`` wraps every leaf of its state in one) -> its value."""
    if isinstance(x, jax.Array | np.ndarray | numbers.Number):
        return x
    if hasattr(x, "get_value"):  # flax >= 0.11
        return x.get_value()
    if type(x).__module__.startswith("flax.") and hasattr(x, "value"):  # older nnx Variables
        return x.value
    return x


def _is_state(node: Any) -> bool:
    return isinstance(node, tuple) and hasattr(node, "_fields")


def _opt_state(x: Any) -> Any:
    """What the readers walk: the optimizer state itself, or the ``opt_state`` of a Flax ``TrainState`` or
    ``nnx.Optimizer`` given in its place."""
    if _is_state(x) and set(x._fields) >= {"init", "update"}:
        raise TypeError(
            "got an optax GradientTransformation, not its state: pass the state, e.g. tx.init(params) or the "
            "opt_state your training step returns"
        )
    if not isinstance(x, tuple | list | Mapping) and hasattr(x, "opt_state"):
        return x.opt_state  # flax.training.train_state.TrainState, flax.nnx.Optimizer
    return x


def _records(node: Any, path: tuple[str, ...], out: list) -> None:
    node = _unwrap(node)
    if _is_state(node):
        fields = node._fields
        if "count" in fields:
            if fields == ("count",):
                out.append((path, _SCHEDULE_COUNT, node.count))
            out.extend((path, name, getattr(node, f)) for f, name in REPORTED_FIELDS.items() if f in fields)
        hyperparams = getattr(node, "hyperparams", None)
        if isinstance(hyperparams, Mapping):  # optax.inject_hyperparams
            out.extend((path, str(k), v) for k, v in hyperparams.items())
        for name in fields:
            if name not in ("hyperparams", "hyperparams_states"):
                _records(getattr(node, name), path, out)
    elif isinstance(node, Mapping):  # partition / multi_transform groups, named_chain names
        for key, value in node.items():
            _records(value, (*path, str(key)), out)
    elif isinstance(node, list | tuple):  # chain
        for value in node:
            _records(value, path, out)


def _collect(opt_state: Any, schedule: Callable | None) -> tuple[list[tuple[tuple[str, ...], str, Any]], bool]:
    """``(path, name, value)`` for everything the state reports, and whether it has a schedule count. With
    ``schedule``, each part of the state that has a schedule count (and no injected ``learning_rate`` of its own)
    reports ``learning_rate``."""
    if schedule is not None and not callable(schedule):
        raise TypeError(f"schedule must be the learning-rate schedule (count -> value), got {schedule!r}")
    out: list = []
    _records(_opt_state(opt_state), (), out)
    records = [(path, name, _unwrap(value)) for path, name, value in out]
    counts: dict[tuple[str, ...], Any] = {}
    for path, name, value in records:
        if name == _SCHEDULE_COUNT:
            counts.setdefault(path, value)  # several (adamw's weight decay schedule): they count the same updates
    records = [r for r in records if r[1] != _SCHEDULE_COUNT]
    if schedule is not None:
        injected = {path for path, name, _ in records if name == "learning_rate"}
        for path, count in counts.items():
            if path not in injected:
                records.append((path, "learning_rate", _rate_of_last_update(schedule, count)))
    return records, bool(counts)


def _rate_of_last_update(schedule: Callable, count: Any) -> jax.Array:
    """``schedule(count - 1)``: the count was incremented by the update that used the schedule; before any
    update (count 0), ``schedule(0)``, the rate the first update will use (``inject_hyperparams``' convention)."""
    return jnp.asarray(schedule(jnp.maximum(jnp.asarray(count) - 1, 0)))


def _looked_for(function: str, schedule: Callable | None, has_count: bool) -> str:
    """What a reader looked for and how to get a result, for the message of a state where it found nothing."""
    looked = (
        "looked for injected hyperparameters (optax.inject_hyperparams, per_group_warmup) and states with a count "
        f"and one of the fields {list(REPORTED_FIELDS)} (this library's transformations)"
    )
    if schedule is not None:
        return (
            f"{looked}, and, for schedule=, the update count of optax.scale_by_schedule (a state whose only field "
            "is count, as in optax.adamw(learning_rate=schedule)): none found; a learning rate given as a number "
            "is not kept in the state"
        )
    if has_count:
        return (
            f"{looked}; the state has the update count of optax.scale_by_schedule (optax.adamw(learning_rate="
            f"schedule) and the like): pass that schedule, {function}(opt_state, schedule=schedule)"
        )
    return looked


def current_hyperparams(opt_state: Any, *, schedule: Callable | None = None) -> dict[str, jax.Array]:
    """The hyperparameters in an optimizer state, by name, for logging: ``{"learning_rate": 0.0003, ...}``.

    Walks the state tree and reports every ``optax.inject_hyperparams`` value (``learning_rate``, ``b1``,
    ``weight_decay``, ...) and this library's transformation states (``warmup_factor``,
    ``warmup_progress`` of ``adaptive_warmup``, ``max_norm`` of ``clip_by_global_norm_schedule``); the fields it
    reads are listed in the module docstring of ``optax_warmup._inspect``. Names inside a dict of the state
    (``optax.partition`` groups, ``optax.named_chain`` names) are prefixed by its keys, ``"head/learning_rate"``;
    a name that occurs twice at the same place gets a suffix, ``"warmup_factor_1"``.

    Each value is the one used in the last update (before the first update: the value for count 0), which is
    what ``inject_hyperparams`` stores. Works on plain Optax states, inside or outside ``jit``; a Flax
    ``TrainState`` or ``nnx.Optimizer`` may be given in place of its ``opt_state``.

    Args:
      opt_state: an optimizer state, or a Flax ``TrainState`` / ``nnx.Optimizer``.
      schedule: the learning-rate schedule of an optimizer that was not wrapped in ``optax.inject_hyperparams``
        (``optax.adamw(learning_rate=schedule)``): adds ``learning_rate``, ``schedule(count - 1)`` with the count
        of ``optax.scale_by_schedule`` in the state (``schedule(0)`` before the first update).

    Returns:
      ``{name: value}``. When the state holds nothing to report, an empty dict and a ``UserWarning`` that says
      what was looked for (an empty dict is what a logger would silently record).

    Example:
      >>> import jax.numpy as jnp, optax, optax_warmup as ow
      >>> adam = optax.inject_hyperparams(optax.adam)(learning_rate=1e-3)
      >>> tx = optax.chain(adam, ow.scale_by_warmup(10))
      >>> hp = ow.current_hyperparams(tx.init(jnp.zeros(2)))
      >>> float(hp["learning_rate"]), float(hp["warmup_factor"])
      (0.001..., 0.0)
    """
    records, has_count = _collect(opt_state, schedule)
    result: dict[str, jax.Array] = {}
    for path, name, value in records:
        key = "/".join((*path, name))
        unique, i = key, 0
        while unique in result:
            i += 1
            unique = f"{key}_{i}"
        result[unique] = value
    if not result:
        looked = _looked_for("current_hyperparams", schedule, has_count)
        warnings.warn(f"current_hyperparams: nothing to report in the optimizer state; {looked}", stacklevel=2)
    return result


def current_learning_rate(opt_state: Any, *, schedule: Callable | None = None) -> jax.Array | dict[str, jax.Array]:
    """The learning rate the last update used: the learning rate times the warmup factors over it.

    The learning rate is found in the state: an injected one (``optax.inject_hyperparams(optax.adamw)(
    learning_rate=...)``, or ``per_group_warmup``), or, given ``schedule=``, ``schedule(count - 1)`` with the
    update count of ``optax.scale_by_schedule``, which a plain ``optax.adamw(learning_rate=schedule)`` keeps in its
    state. Before the first update (count 0) that is ``schedule(0)``, the rate the first update will use, as
    ``inject_hyperparams`` stores it. A ``warmup_factor`` of ``scale_by_warmup`` / ``adaptive_warmup`` / ... applies
    to the learning rates in its own part of the state and below it (``optax.chain(partition,
    scale_by_warmup(...))`` scales every group). A Flax ``TrainState`` or ``nnx.Optimizer`` may be given in place of
    its ``opt_state``.

    Args:
      opt_state: an optimizer state, or a Flax ``TrainState`` / ``nnx.Optimizer``.
      schedule: the learning-rate schedule given to an optimizer that was not wrapped in
        ``optax.inject_hyperparams``; ignored by the parts of the state that have an injected ``learning_rate``.

    Returns:
      A scalar when the state has one learning rate at its top level, else a dict ``{group: learning_rate}`` keyed
      by the state's dict keys (``{"backbone": ..., "head": ...}`` for ``per_group_warmup``).

    Raises:
      ValueError: no learning rate in the state (the message says what was looked for), or two in the same group.
      TypeError: an optax ``GradientTransformation`` instead of its state.

    Example:
      >>> import jax.numpy as jnp, optax, optax_warmup as ow
      >>> schedule = ow.linear_schedule(0.0, 1.0, 10)
      >>> tx = optax.adamw(learning_rate=schedule)
      >>> state = tx.init(jnp.zeros(2))
      >>> for _ in range(3):
      ...     _, state = tx.update(jnp.ones(2), state, jnp.zeros(2))
      >>> # the third update used count 2
      >>> round(float(ow.current_learning_rate(state, schedule=schedule)), 6)
      0.2
    """
    records, has_count = _collect(opt_state, schedule)
    rates: dict[tuple[str, ...], Any] = {}
    for path, name, value in records:
        if name == "learning_rate":
            if path in rates:
                raise ValueError(f"two learning rates in the same part of the state ({'/'.join(path) or 'top'})")
            rates[path] = value
    if not rates:
        found = sorted({"/".join((*path, name)) for path, name, _ in records})
        raise ValueError(
            f"current_learning_rate: no learning rate in the optimizer state (found {found or 'nothing'}); "
            + _looked_for("current_learning_rate", schedule, has_count)
        )
    effective = {}
    for path, rate in rates.items():
        for fpath, name, factor in records:
            if name in FACTORS and path[: len(fpath)] == fpath:
                rate = rate * factor
        effective[path] = rate
    if list(effective) == [()]:
        return effective[()]
    return {"/".join(path): rate for path, rate in effective.items()}
