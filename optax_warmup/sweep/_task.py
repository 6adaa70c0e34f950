"""What a sweep trains (``Task``), and the one adapter through which the engine calls the user's functions.

The user writes ``init``, ``loss``, ``data`` / ``batches`` and ``eval`` in the shape their model needs: ``loss``
asks for the model state and a random key *by name* (keyword parameters ``model_state`` and ``key``), ``init``
returns ``(params, model_state)`` when the task has model state. ``Calls`` turns all of that into one fixed
signature for the engine, and checks what the functions return while they are traced (before any compile), so a
wrong return value is one line that says what came back and what is expected.

Keys, by config seed ``s`` (``key = jax.random.key(s)``):

* ``init`` gets ``jax.random.fold_in(key, 0)``;
* ``data`` gets ``jax.random.fold_in(key, 1)`` at every step (fold the step in yourself);
* ``loss`` (when it asks for ``key``) gets ``jax.random.fold_in(jax.random.fold_in(key, 2), step)``: a new key at
  every step, the same for configs that share a seed (they see the same dropout masks, as they see the same
  batches), and the same after a resume.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

INIT_FOLD, DATA_FOLD, LOSS_FOLD = 0, 1, 2


@dataclass(frozen=True)
class Task:
    """What to train: a model's initialisation, its loss, its data and (optionally) its evaluation.

    Attributes:
      init: ``init(key) -> params`` (any pytree), jittable; with ``model_state=True``,
        ``init(key) -> (params, model_state)``. Or ``init(seed)`` (the one parameter is *named* ``seed``): called
        on the host with the config's integer seed, for NumPy initialisers. Configs with the same seed share their
        initial parameters.
      loss: ``loss(params, batch) -> scalar`` or ``-> (scalar, {name: scalar})``: the extra metrics are recorded
        as curves too. It may ask for more by keyword: ``key`` (a new random key every step, for dropout) and,
        with ``model_state=True``, ``model_state``; it then returns ``(scalar, {name: scalar}, new_model_state)``.
      data: ``data(step, key) -> batch``, jittable: the batch of ``step`` in one seed's stream, made on the device.
      batches: instead of ``data``: ``batches(seed) -> iterator`` of host batches, one stream per seed. Resuming
        skips the batches already used, so a stream must be the same every time it is created.
      eval: ``eval(params) -> {name: scalar}`` (``eval(params, *, model_state)`` with model state), jittable,
        run every ``eval_every`` steps.
      eval_batches: instead of ``eval``: one batch, or a Python list of batches of the same shapes; their mean loss
        (and extra metrics) is the evaluation.
      model_state: the model carries state that is not trained by the optimizer (BatchNorm running statistics,
        linen's ``batch_stats`` or NNX's ``BatchStat``): ``init`` returns it beside the params, ``loss`` gets it
        and returns its update, ``eval`` gets the latest. It is kept per config, checkpointed, never touched by the
        optimizer (no weight decay), and a non-finite value in it freezes the config like a NaN loss.
      name: shown in reports.
      baseline_loss: the loss of a model that learned nothing useful (e.g. the unigram loss of a language model):
        drawn on the loss figures, and a run that ends at or above it is reported as collapsed.
      info: anything worth keeping with the results (data set sizes, model settings).

    Keys: config seed ``s`` gives ``key = jax.random.key(s)``; ``init`` gets ``jax.random.fold_in(key, 0)``,
    ``data`` gets ``jax.random.fold_in(key, 1)`` at every step (fold the step in yourself, as in
    ``jax.random.fold_in(key, step)``), and ``loss(..., key=)`` gets
    ``jax.random.fold_in(jax.random.fold_in(key, 2), step)``.

    Example (BatchNorm and dropout with Flax linen)::

        def init(key):
            v = model.init(key, x0, train=False)
            return v["params"], {"batch_stats": v["batch_stats"]}

        def loss(params, batch, *, model_state, key):
            logits, new_state = model.apply({"params": params, **model_state}, batch[0],
                                            train=True, mutable=["batch_stats"],
                                            rngs={"dropout": key})
            xent = optax.softmax_cross_entropy_with_integer_labels(logits, batch[1])
            return xent.mean(), {}, new_state

        task = sweep.Task(init=init, loss=loss, data=data, model_state=True)
    """

    init: Callable[[Any], Any]
    loss: Callable[..., Any]
    data: Callable[[Any, Any], Any] | None = None
    batches: Callable[[int], Iterable] | None = None
    eval: Callable[..., Mapping[str, Any]] | None = None
    eval_batches: Any = None
    model_state: bool = False
    name: str = "task"
    baseline_loss: float | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        for name in ("init", "loss"):
            if not callable(getattr(self, name)):
                raise ValueError(f"Task.{name} must be a function, got {getattr(self, name)!r}")
        if (self.data is None) == (self.batches is None):
            raise ValueError("Task: give exactly one of data(step, key) (on the device) and batches(seed) (host)")
        for name in ("data", "batches", "eval"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise ValueError(f"Task.{name} must be a function, got {value!r}")
        if self.eval is not None and self.eval_batches is not None:
            raise ValueError("Task: give eval(params) or eval_batches, not both")
        if not isinstance(self.model_state, bool):
            raise ValueError(f"Task.model_state must be True or False, got {self.model_state!r}")
        asks = _keywords(self.loss)
        if "model_state" in asks and not self.model_state:
            raise ValueError("Task.loss asks for model_state: give Task(..., model_state=True), and make init "
                             "return (params, model_state)")
        if self.model_state and "model_state" not in asks:
            raise ValueError("Task(model_state=True): loss must take the state by name, as "
                             "loss(params, batch, *, model_state) -> (loss, {metrics}, new_model_state)")
        if self.model_state and self.eval_batches is not None:
            raise ValueError("Task(model_state=True): give eval(params, *, model_state) for the evaluation "
                             "(eval_batches would run the loss in training mode)")
        if self.model_state and self.host_init:
            raise ValueError("Task(model_state=True) needs init(key) -> (params, model_state); a host init(seed) "
                             "returns params only")

    @property
    def host_init(self) -> bool:
        """Whether ``init`` is a host initialiser: its only parameter is named ``seed``."""
        try:
            return list(inspect.signature(self.init).parameters) == ["seed"]
        except (TypeError, ValueError):
            return False


def _keywords(fn: Callable) -> set[str]:
    """The names of ``fn``'s parameters that can be passed by keyword."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return set()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in params if p.kind in kinds}


def _describe(x: Any) -> str:
    """A short description of a traced value or pytree: ``f32[32,10]``, ``(f32[], f32[32,10])``, ``dict``."""
    if isinstance(x, tuple):
        return "(" + ", ".join(_describe(v) for v in x) + ")"
    if isinstance(x, Mapping):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in x.items()) + "}"
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"{jnp.dtype(x.dtype).name}{list(x.shape)}".replace(" ", "")
    return type(x).__name__


def loss_key(seed_key: jax.Array, step: Any) -> jax.Array:
    """The key ``loss`` gets at ``step`` in the stream of a config's seed key (see the module docstring)."""
    return jax.random.fold_in(jax.random.fold_in(seed_key, LOSS_FOLD), step)


class Calls:
    """The user's functions with one signature each, checked as they are traced.

    * ``init(key) -> (params, model_state)`` (``model_state`` is ``{}`` without model state);
    * ``loss(params, model_state, batch, key) -> (loss, (aux, new_model_state))``, shaped for
      ``jax.value_and_grad(..., has_aux=True)``;
    * ``evaluate(params, model_state) -> {name: float32 scalar}`` or None.
    """

    def __init__(self, task: Task):
        self.task = task
        asks = _keywords(task.loss)
        self.wants_key = "key" in asks
        self.wants_state = task.model_state
        self.eval_wants_state = task.eval is not None and "model_state" in _keywords(task.eval)
        if task.model_state and task.eval is not None and not self.eval_wants_state:
            raise ValueError("Task(model_state=True): eval must take the state by name, as "
                             "eval(params, *, model_state) -> {name: scalar}")

    def init(self, key: jax.Array) -> tuple[Any, Any]:
        out = self.task.init(key)
        if not self.wants_state:
            return out, {}
        if not (isinstance(out, tuple) and len(out) == 2):
            raise ValueError(f"Task(model_state=True): init(key) must return (params, model_state), got "
                             f"{_describe(out)}")
        return out

    def loss(self, params, model_state, batch, key):
        kwargs: dict[str, Any] = {}
        if self.wants_state:
            # rebuilt here, inside the gradient's trace: a framework whose variables remember the trace that made
            # them (Flax NNX's BatchStat) can then update them in the loss
            kwargs["model_state"] = jax.tree.map(lambda x: x, model_state)
        if self.wants_key:
            kwargs["key"] = key
        out = self.task.loss(params, batch, **kwargs)
        value, aux, new_state = self._unpack(out)
        return value, (aux, new_state if self.wants_state else model_state)

    def _unpack(self, out):
        expected = ("(loss, {name: scalar}, new_model_state)" if self.wants_state
                    else "a scalar loss or (loss, {name: scalar})")
        got = f"loss(params, batch) returned {_describe(out)}; expected {expected}"
        if self.wants_state:
            if not (isinstance(out, tuple) and len(out) == 3):
                raise ValueError(got)
            value, aux, new_state = out
        elif isinstance(out, tuple):
            if len(out) != 2:
                raise ValueError(got)
            value, aux = out
            new_state = None
        else:
            value, aux, new_state = out, {}, None
        if not (hasattr(value, "shape") and tuple(value.shape) == () or isinstance(value, int | float)):
            raise ValueError(f"{got} (the loss must be one number: take the mean over the batch)")
        if not isinstance(aux, Mapping):
            hint = " (if it is the logits, return (loss, {}) or scalar metrics such as accuracy)" if hasattr(
                aux, "shape") else ""
            raise ValueError(f"{got}: its second element must be a dict of scalar metrics{hint}")
        for name, v in aux.items():
            if not isinstance(name, str) or jnp.shape(v) != ():
                raise ValueError(f"{got}: metric {name!r} is {_describe(v)}, every metric must be one number")
        return value, {k: jnp.asarray(v, jnp.float32) for k, v in aux.items()}, new_state

    @property
    def has_eval(self) -> bool:
        return self.task.eval is not None or self.task.eval_batches is not None

    def evaluate(self, params, model_state) -> dict[str, jax.Array]:
        task = self.task
        if task.eval is not None:
            out = task.eval(params, model_state=model_state) if self.eval_wants_state else task.eval(params)
            if not isinstance(out, Mapping):
                raise ValueError(f"eval(params) returned {_describe(out)}; expected a dict {{name: scalar}}")
            for name, v in out.items():
                if jnp.shape(v) != ():
                    raise ValueError(f"eval(params): metric {name!r} is {_describe(v)}, every metric must be one "
                                     "number")
            return {k: jnp.asarray(v, jnp.float32) for k, v in out.items()}
        raise AssertionError("evaluate() without eval: use eval_batches through loss")  # pragma: no cover


def float_leaves_finite(tree: Any) -> jax.Array:
    """True when every floating-point leaf of ``tree`` is finite (integer leaves, e.g. counters, are skipped)."""
    ok = jnp.bool_(True)
    for leaf in jax.tree.leaves(tree):
        if jnp.issubdtype(jnp.result_type(leaf), jnp.floating):
            ok = ok & jnp.all(jnp.isfinite(leaf))
    return ok
