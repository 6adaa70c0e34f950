"""Before anything compiles: one training step of one config of every group is traced (``jax.make_jaxpr``, no
compile), so that a mistake in the user's functions is one line now rather than a traceback after a long compile,
and what decides the computation is fingerprinted for checkpoints.

What is caught here: a loss or eval that returns the wrong thing (``_task.Calls`` says what came back and what is
expected), a Python branch on a traced setting (the axis is named, with ``static=`` as the way out), a factory
whose optimizer cannot be traced. The fingerprint of a group is a hash of the traced optimizer update, of the
traced training step and of the optimizer state's structure: a checkpoint written by a different optimizer or
task (a changed ``weight_decay``, another loss) is refused, naming which of them changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optax_warmup.sweep import _lr
from optax_warmup.sweep import grid as grid_lib
from optax_warmup.sweep._task import Calls

# What each part of the fingerprint means, for the message that refuses a checkpoint.
MEANING = {
    "optimizer_state": "the optimizer state's structure (another optimizer or chain)",
    "optimizer_update": "the optimizer's traced update (the factory changed, e.g. a weight_decay or b2)",
    "training_step": "the traced training step (the loss, the model or the data changed)",
}


def _sub_jaxprs(value: Any):
    """The jaxprs inside an equation's parameter (a jaxpr, a closed jaxpr, or tuples / lists of them)."""
    if hasattr(value, "eqns"):
        yield value
    elif hasattr(value, "jaxpr") and hasattr(value.jaxpr, "eqns"):
        yield value.jaxpr
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _sub_jaxprs(v)


def step_flops(jaxpr: Any) -> float:
    """2 x the multiply-adds of the matrix products and convolutions of a traced step (forward and backward): the
    work of one config-step, for the engine's choice of strategy. A ``scan`` counts its length times its body;
    other loops count their body once."""
    total = 0.0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            k = float(np.prod([lhs[d] for d in contract])) if contract else 1.0
            total += 2.0 * k * float(np.prod(eqn.outvars[0].aval.shape))
        elif name == "conv_general_dilated":
            rhs = eqn.invars[1].aval.shape
            spec = eqn.params["dimension_numbers"].rhs_spec  # (out feature, in feature, spatial...)
            per_output = float(np.prod([rhs[d] for d in spec[1:]]))
            total += 2.0 * per_output * float(np.prod(eqn.outvars[0].aval.shape))
        times = float(eqn.params.get("length", 1)) if name == "scan" else 1.0
        for param in eqn.params.values():
            for sub in _sub_jaxprs(param):
                total += times * step_flops(sub)
    return total


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def abstract_model(calls: Calls, host_source: Any) -> tuple[Any, Any]:
    """The shapes of one config's ``(params, model_state)``."""
    if calls.task.host_init:
        params = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a)[1:], np.asarray(a).dtype), host_source)
        return params, {}
    return jax.eval_shape(calls.init, jax.random.key(0))


def abstract_batch(calls: Calls, seed: int) -> Any:
    task = calls.task
    if task.data is not None:
        return jax.eval_shape(task.data, jnp.int32(0), jax.random.key(seed))
    assert task.batches is not None  # Task.check: one of data and batches
    first = next(iter(task.batches(int(seed))))
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), first)


def check_and_fingerprint(*, grid: grid_lib.Grid, calls: Calls, optimizer: Callable, host_source: Any,
                          seed: int, hyperparams: Callable[[int, Mapping[str, Any]], dict],
                          train_step: Callable[[int], Callable], fingerprint: bool = True,
                          flops: list[float] | None = None) -> dict[str, list[str]]:
    """Traces one step of every group; raises ``ValueError`` (one line) on a mistake; returns the fingerprint
    (with ``fingerprint=False``, only checks: the optimizer's update is not traced on its own, nothing is hashed).
    ``flops``, when given, receives each group's ``step_flops``.

    Args:
      hyperparams: ``(group, hp arrays) -> what the factory sees`` (the engine's rule).
      train_step: ``group -> (carry, hp, batch, step) -> (carry, metrics)``.
    """
    params, model_state = abstract_model(calls, host_source)
    batch = abstract_batch(calls, seed)
    out: dict[str, list[str]] = {k: [] for k in MEANING}
    for g in range(len(grid.groups)):
        hp = {a: jax.ShapeDtypeStruct((), grid.dtype(a)) for a in grid.numeric}
        hp[grid_lib.SEED] = jax.ShapeDtypeStruct((), jnp.int32)
        hp["_seed_index"] = jax.ShapeDtypeStruct((), jnp.int32)

        def build(hp, g=g):
            with _lr.rate_in_state():
                return optax.with_extra_args_support(optimizer(hyperparams(g, hp)))

        try:
            opt = jax.eval_shape(lambda p, h: build(h).init(p), params, hp)
            carry = dict(params=params, opt=opt, alive=jax.ShapeDtypeStruct((), jnp.bool_),
                         diverged_at=jax.ShapeDtypeStruct((), jnp.int32))
            if calls.wants_state:
                carry["model_state"] = model_state
            step = jax.make_jaxpr(train_step(g))(carry, hp, batch, jax.ShapeDtypeStruct((), jnp.int32))
            if flops is not None:
                flops.append(step_flops(step.jaxpr))
            if not fingerprint:
                continue
            update = jax.make_jaxpr(lambda gr, o, p, h: build(h).update(gr, o, p, value=jnp.float32(0)))(
                params, opt, params, hp)
        except jax.errors.ConcretizationTypeError as e:
            raise ValueError(_branch_message(grid, g, build, params, e)) from None
        out["optimizer_state"].append(_hash(str(jax.tree.structure(opt)) + str(jax.tree.leaves(opt))))
        out["optimizer_update"].append(_hash(str(update)))
        out["training_step"].append(_hash(str(step)))
    return out if fingerprint else {}


def _branch_message(grid: grid_lib.Grid, g: int, build: Callable, params: Any, error: BaseException) -> str:
    """Which traced axis the optimizer branches on in Python: each numeric axis is traced alone (the others as
    this group's first config's Python values) until one fails."""
    first = grid.configs[int(grid.groups[g].index[0])]
    culprits = []
    for axis in grid.numeric:
        def trace(value, axis=axis):
            hp = {a: first[a] for a in grid.numeric}
            hp[axis] = value
            hp[grid_lib.SEED] = first.get(grid_lib.SEED, 0)
            tx = build(hp)
            state = tx.init(params)
            return tx.update(params, state, params, value=jnp.float32(0))

        try:
            jax.eval_shape(trace, jax.ShapeDtypeStruct((), grid.dtype(axis)))
        except jax.errors.ConcretizationTypeError:
            culprits.append(axis)
        except Exception:  # noqa: BLE001 - another failure says nothing about branching; the first error is shown
            pass
    if not culprits:
        return (f"the training step branches in Python on a traced value ({_first_line(error)}): a sweep traces "
                "the numeric axes, the loss and the data; use jnp.where instead of if, or name an axis in static=")
    names = " and ".join(f"hp[{a!r}]" for a in culprits)
    return (f"optimizer(hp) branches in Python on {names}, which the sweep traces so that all its values share "
            f"one program: use this library's schedules (Optax's own branch in Python on their arguments; "
            f"optax_warmup has drop-ins of the same names) or jnp.where, or name the axis in static= (one program "
            f"per value)")
