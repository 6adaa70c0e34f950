"""The compiled programs of a sweep: initialisation, training steps per strategy, evaluation."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from optax_warmup.sweep import _lr
from optax_warmup.sweep import grid as grid_lib
from optax_warmup.sweep._plan import AXIS, _Plan, _state_values
from optax_warmup.sweep._task import DATA_FOLD, INIT_FOLD, Calls, float_leaves_finite, loss_key

# ----------------------------------------------------------------------------------------- compiled functions


def _tree_where(cond, new, old):
    return jax.tree.map(lambda n, o: jnp.where(cond, n, o), new, old)


def _loss_with_aux(loss: Callable) -> Callable:
    """``loss(params, batch)`` -> ``(value, aux)`` for a loss without model state or key (the baselines')."""

    def fn(params, batch):
        out = loss(params, batch)
        if isinstance(out, tuple):
            value, aux = out
            return value, dict(aux)
        return out, {}

    return fn


def _hyperparams(plan: _Plan, group: int, hp: Mapping[str, Any]) -> dict[str, Any]:
    """What the factory sees for one config: static values as Python objects, numbers as traced scalars."""
    values = dict(plan.grid.groups[group].static)
    values.update({a: hp[a] for a in plan.grid.numeric})
    if grid_lib.SEED in plan.grid.axes:
        values[grid_lib.SEED] = hp[grid_lib.SEED]
    return {a: values[a] for a in plan.grid.axes}  # in the grid's axis order


def _per_device(plan: _Plan, one: Callable, n_local: int) -> Callable:
    """``one(*xs)`` over the leading (config) axis of ``xs`` on one device: vmap, map, or map over vmapped chunks.

    The loop strategy evaluates with ``lax.map`` (its training loop over configs is on the host)."""
    chunk = plan.chunk_size
    if plan.strategy in ("map", "loop") and chunk is None:
        chunk = 1
    if chunk is None or chunk >= n_local:
        return jax.vmap(one)
    if chunk == 1:
        return lambda *xs: jax.lax.map(lambda x: one(*x), xs)
    return lambda *xs: jax.lax.map(lambda x: one(*x), xs, batch_size=chunk)


def _shard_map(plan: _Plan, local: Callable, in_specs: tuple, out_specs: Any) -> Callable:
    """``local`` on every device's share of the config axis; on one device, ``local`` itself (the same program
    without the partitioner's passes: less to compile for a sweep on one device)."""
    if plan.mesh.devices.size == 1:
        return local
    return jax.shard_map(local, mesh=plan.mesh, in_specs=in_specs, out_specs=out_specs)


def _sharded(plan: _Plan, local: Callable, n_args: int, replicated: Sequence[int] = ()) -> Callable:
    specs = tuple(P() if i in replicated else P(AXIS) for i in range(n_args))
    return _shard_map(plan, local, specs, P(AXIS))


def _seed_key(seed) -> jax.Array:
    return jax.random.key(jnp.asarray(seed).astype(jnp.uint32))


def _build_init(plan: _Plan, calls: Calls, optimizer: Callable) -> Any:
    """(unique seeds or their host params, seed index per group, hp per group) -> the initial state per group.

    One program: the parameters (and model state) of every unique seed (unless the task made them on the host),
    each config's copy of its seed's, its optimizer state, the alive masks.
    """

    def group_init(g: int):
        def one(params, hp):
            with _lr.rate_in_state():
                tx = optimizer(_hyperparams(plan, g, hp))
            return tx.init(params)

        return _sharded(plan, jax.vmap(one), 2)

    inits = [group_init(g) for g in range(len(plan.grid.groups))]

    def sweep_init(source, seed_index, hps):
        if calls.task.host_init:
            unique, unique_state = source, {}  # type: ignore[var-annotated]
        else:
            keys = jax.vmap(lambda s: jax.random.fold_in(_seed_key(s), INIT_FOLD))(source)
            unique, unique_state = jax.vmap(calls.init)(keys)
        states = []
        for f, idx, hp in zip(inits, seed_index, hps, strict=True):
            take = lambda tree, idx=idx: jax.tree.map(lambda a: jnp.take(jnp.asarray(a), idx, axis=0), tree)  # noqa: E731
            params = take(unique)
            n = idx.shape[0]
            state = dict(params=params, opt=f(params, hp), alive=jnp.ones(n, bool),
                         diverged_at=jnp.full(n, -1, jnp.int32))
            if calls.wants_state:
                state["model_state"] = take(unique_state)
            states.append(state)
        return tuple(states)

    return jax.jit(sweep_init, out_shardings=NamedSharding(plan.mesh, P(AXIS)),
                   compiler_options=plan.compiler_options("init"))


def guarded_update(calls: Calls, tx, state: dict, batch, seed_key: jax.Array, step, train) -> tuple:
    """One training step of one config, frozen where it is not finite: the rule ``run()`` and ``search()`` share.

    ``state`` holds ``params``, ``opt`` and, for a model-state task, ``model_state``; the loss gets the engine's
    key for (seed, ``step``) when it asks for one. The step is kept where ``train & finite``, ``finite`` meaning a
    finite loss, gradient norm, new parameters and (with model state) new statistics; elsewhere the state is kept
    as it was. Returns ``(new state, loss, aux, grad_norm, finite, the optimizer state the step made)`` (the last
    unfrozen: the learning rates it holds are the step's curves)."""
    params, model_state = state["params"], state.get("model_state", {})
    key = loss_key(seed_key, step) if calls.wants_key else None
    (loss, (aux, new_model_state)), grads = jax.value_and_grad(calls.loss, has_aux=True)(
        params, model_state, batch, key)
    updates, new_opt = tx.update(grads, state["opt"], params, value=loss)
    new_params = optax.apply_updates(params, updates)
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & jnp.isfinite(optax.tree.norm(new_params))
    if calls.wants_state:
        finite = finite & float_leaves_finite(new_model_state)
    take = train & finite
    new = dict(params=_tree_where(take, new_params, params), opt=_tree_where(take, new_opt, state["opt"]))
    if calls.wants_state:
        new["model_state"] = _tree_where(take, new_model_state, model_state)
    return new, loss, aux, grad_norm, finite, new_opt


def _train_step(plan: _Plan, calls: Calls, optimizer: Callable, g: int) -> Callable:
    """``(carry, hp, batch, step) -> (carry, metrics)``: one training step of one config of group ``g``."""
    total = plan.steps

    def train_step(carry, hp, batch, step):
        alive = carry["alive"]
        with _lr.rate_in_state():
            tx = optax.with_extra_args_support(optimizer(_hyperparams(plan, g, hp)))
        active = step < total  # the last call may run past the end: those steps change nothing
        new_carry, loss, aux, grad_norm, finite, new_opt = guarded_update(
            calls, tx, carry, batch, _seed_key(hp[grid_lib.SEED]), step, alive & active)
        new_carry.update(alive=jnp.where(active, alive & finite, alive),
                         diverged_at=jnp.where(active & alive & ~finite, step, carry["diverged_at"]))
        shown = alive & active
        nan = jnp.float32(jnp.nan)
        metrics = {"loss": loss, "grad_norm": grad_norm, **(_lr.rates(new_opt) or {}), **aux}
        for name, value in _state_values(plan.record, new_opt).items():
            if name in metrics:
                raise ValueError(f"record: {name!r} is already a curve of this sweep; record another field")
            metrics[name] = value
        metrics = {name: jnp.where(shown, jnp.asarray(v, jnp.float32), nan) for name, v in metrics.items()}
        metrics["alive"] = new_carry["alive"]
        return new_carry, metrics

    return train_step


def _group_step(plan: _Plan, calls: Calls, optimizer: Callable, g: int) -> Callable:
    """Group ``g``'s training step, jitted once: the check before compiling traces it, and the training program
    reuses that trace (a nested jit is inlined when the program compiles)."""
    if g not in plan.train_steps:
        plan.train_steps[g] = jax.jit(_train_step(plan, calls, optimizer, g))
    return plan.train_steps[g]


def _steps_of_one(plan: _Plan, calls: Calls, optimizer: Callable, g: int) -> Callable:
    """``(carry, hp, batches, start) -> (carry, metrics [k])``: ``steps_per_call`` steps of one config, its batch
    of each step made from its own seed (device data) or taken from the stacked host batches ``[k, seed, ...]``."""
    train_step = _group_step(plan, calls, optimizer, g)
    make_batch = calls.task.data

    def one(carry, hp, batches, start):
        data_key = jax.random.fold_in(_seed_key(hp[grid_lib.SEED]), DATA_FOLD) if make_batch is not None else None

        def body(carry, k):
            if make_batch is not None:
                batch = make_batch(start + k, data_key)
            else:
                batch = jax.tree.map(lambda b: b[k, hp["_seed_index"]], batches)
            return train_step(carry, hp, batch, start + k)

        return _steps(body, carry, plan.steps_per_call)

    return one


def _steps(body: Callable, carry: Any, k: int):
    """``k`` steps of ``body`` in a ``lax.scan``; one step without a loop (XLA:CPU runs a convolution inside a
    loop several times slower than outside one)."""
    if k == 1:
        carry, metrics = body(carry, jnp.int32(0))
        return carry, jax.tree.map(lambda m: m[None], metrics)
    return jax.lax.scan(body, carry, jnp.arange(k))


def _build_call(plan: _Plan, calls: Calls, optimizer: Callable) -> Any:
    """vmap / map: ``(states, hps, data, start) -> (states, metrics)``: ``steps_per_call`` training steps of every
    config of every group in one program."""
    k_steps = plan.steps_per_call

    # One seed: every config sees the same batches and dropout keys, so under vmap they stay unbatched, and XLA
    # runs one product of the shared input with all configs' weights instead of a batched product per config.
    shared_seed = jnp.int32(int(plan.unique_seeds[0])) if len(plan.unique_seeds) == 1 else None

    def group_call(g: int):
        train_step = _group_step(plan, calls, optimizer, g)

        def one(carry, hp, batches, start):
            if shared_seed is not None:
                hp = {**hp, grid_lib.SEED: shared_seed, "_seed_index": jnp.int32(0)}

            def body(carry, k):
                batch = jax.tree.map(lambda b: b[k, hp["_seed_index"]], batches)
                return train_step(carry, hp, batch, start + k)

            return _steps(body, carry, k_steps)

        n_local = len(plan.padded[g]) // plan.devices

        def local(carry, hp, batches, start):  # batches and start are the same for every config
            return _per_device(plan, lambda c, h: one(c, h, batches, start), n_local)(carry, hp)

        return _shard_map(plan, local, (P(AXIS), P(AXIS), P(), P()), (P(AXIS), P(AXIS)))

    group_calls = [group_call(g) for g in range(len(plan.grid.groups))]
    make_batch = calls.task.data

    def sweep_train(states, hps, data, start):
        if make_batch is not None:  # data = the unique seeds; their batches are made here, on the device
            keys = jax.vmap(lambda s: jax.random.fold_in(_seed_key(s), DATA_FOLD))(data)
            steps = start + jnp.arange(k_steps)
            batches = jax.vmap(lambda s: jax.vmap(lambda key: make_batch(s, key))(keys))(steps)
        else:
            batches = data
        out = [f(st, hp, batches, start) for f, st, hp in zip(group_calls, states, hps, strict=True)]
        return tuple(o[0] for o in out), tuple(o[1] for o in out)

    return jax.jit(sweep_train, donate_argnums=0, compiler_options=plan.compiler_options("train"))


def _build_loop_call(plan: _Plan, calls: Calls, optimizer: Callable, g: int) -> Any:
    """loop: ``(state, hp, data, start, j) -> (state, metrics)``: ``steps_per_call`` steps of the ``j``-th chunk of
    configs (``chunk_size``, default 1) of every device's share of group ``g``, updated in place (the state is
    donated). The host calls it for j = 0, 1, ...: one compiled program for every chunk."""
    chunk = plan.chunk_size or 1
    one = _steps_of_one(plan, calls, optimizer, g)
    run_chunk = one if chunk == 1 else jax.vmap(one, in_axes=(0, 0, None, None))

    def sweep_train(block, hp_block, data, start, j):
        rows = j * chunk

        def cut(a):
            part = jax.lax.dynamic_slice_in_dim(a, rows, chunk, axis=0)
            return part[0] if chunk == 1 else part

        carry, metrics = run_chunk(jax.tree.map(cut, block), jax.tree.map(cut, hp_block), data, start)

        def put(a, c):
            return jax.lax.dynamic_update_slice_in_dim(a, c[None] if chunk == 1 else c, rows, axis=0)

        block = jax.tree.map(put, block, carry)
        metrics = jax.tree.map(lambda m: m[None] if chunk == 1 else m, metrics)  # [chunk, k]
        return block, metrics

    sharded = _shard_map(plan, sweep_train, (P(AXIS), P(AXIS), P(), P(), P()), (P(AXIS), P(AXIS)))
    return jax.jit(sharded, donate_argnums=0, compiler_options=plan.compiler_options("train"))


def _build_eval(plan: _Plan, calls: Calls) -> Any:
    """(params, model state) per group -> {metric: value} per group."""
    if not calls.has_eval:
        return None
    task = calls.task
    if task.eval is not None:
        evaluate = calls.evaluate
    else:
        # a list is a list of batches; anything else (an array, a tuple (x, y), a dict) is one batch
        batches = task.eval_batches if isinstance(task.eval_batches, list) else [task.eval_batches]
        stacked = jax.tree.map(lambda *b: np.stack([np.asarray(x) for x in b]), *batches)
        eval_key = jax.random.key(0)

        def evaluate(params, model_state):
            def one_batch(batch):
                loss, (aux, _) = calls.loss(params, model_state, batch, eval_key)
                return {"loss": loss, **aux}

            out = jax.lax.map(one_batch, stacked)
            return {k: jnp.mean(v).astype(jnp.float32) for k, v in out.items()}

    def group_eval(g: int):
        n_local = len(plan.padded[g]) // plan.devices
        return _sharded(plan, _per_device(plan, evaluate, n_local), 2)

    evals = [group_eval(g) for g in range(len(plan.grid.groups))]
    def sweep_eval(params, states):
        return tuple(f(p, s) for f, p, s in zip(evals, params, states, strict=True))

    return jax.jit(sweep_eval, compiler_options=plan.compiler_options("eval"))
