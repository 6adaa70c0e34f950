"""Reading the learning rate and hyperparameters back from optimizer states: plain optimizers given their schedule,
Flax wrappers, states read by their fields, and what a reader says when it finds nothing."""

from __future__ import annotations

import ast
import inspect
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
import pytest

import optax_warmup as ow
from optax_warmup import _inspect


def linear(c):
    """ow.linear_schedule(0, 1, 10) by hand: c / 10 up to count 10."""
    return min(c, 10) / 10


def _train(tx, n, params=None):
    params = jnp.zeros(2) if params is None else params
    state = tx.init(params)
    for _ in range(n):
        _, state = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
    return state


@pytest.mark.parametrize("n", [0, 1, 3, 12])
def test_learning_rate_of_a_plain_optimizer_given_its_schedule(n):
    schedule = ow.linear_schedule(0.0, 1.0, 10)
    # optax.adamw(learning_rate=schedule) as in the README quick start; a scheduled weight decay adds a second
    # count-only state (optax's WeightDecaySchedule), which counts the same updates.
    state = _train(optax.adamw(learning_rate=schedule, weight_decay=lambda c: 0.1), n)
    lr = ow.current_learning_rate(state, schedule=schedule)
    # the n-th update used count n - 1; before any update, the rate of the first one (count 0)
    assert float(lr) == pytest.approx(linear(max(n - 1, 0)))
    # the same number inject_hyperparams records for the same optimizer
    injected = _train(optax.inject_hyperparams(optax.adamw)(learning_rate=schedule), n)
    assert float(lr) == float(ow.current_learning_rate(injected))
    assert float(ow.current_hyperparams(state, schedule=schedule)["learning_rate"]) == float(lr)
    assert float(jax.jit(lambda s: ow.current_learning_rate(s, schedule=schedule))(state)) == float(lr)


def test_plain_optimizer_with_warmup_factor_groups_and_multisteps():
    schedule = ow.linear_schedule(0.0, 1.0, 10)
    state = _train(optax.chain(optax.sgd(schedule), ow.scale_by_warmup(4)), 3)
    assert float(ow.current_learning_rate(state, schedule=schedule)) == pytest.approx(linear(2) * 2 / 4)

    params = {"x": jnp.zeros(1), "y": jnp.zeros(1)}
    grouped = optax.partition({"a": optax.sgd(schedule), "b": optax.set_to_zero()}, {"x": "a", "y": "b"})
    lrs = ow.current_learning_rate(_train(grouped, 5, params), schedule=schedule)
    assert {k: float(v) for k, v in lrs.items()} == {"a": pytest.approx(linear(4))}  # the frozen group has none

    # MultiSteps: 6 micro-steps of 2 are 3 real updates, counts 0, 1, 2
    state = _train(optax.MultiSteps(optax.adam(schedule), 2), 6)
    assert float(ow.current_learning_rate(state, schedule=schedule)) == pytest.approx(linear(2))


def test_an_injected_learning_rate_wins_over_schedule_in_its_part_of_the_state():
    schedule = ow.linear_schedule(0.0, 1.0, 10)
    state = _train(optax.inject_hyperparams(optax.sgd)(learning_rate=0.5), 3)
    assert float(ow.current_learning_rate(state, schedule=schedule)) == 0.5


def test_a_reader_that_finds_nothing_says_what_it_looked_for():
    schedule = ow.linear_schedule(0.0, 1.0, 10)
    state = _train(optax.adamw(learning_rate=schedule), 2)
    with pytest.raises(ValueError, match=r"inject_hyperparams.*schedule=schedule"):
        ow.current_learning_rate(state)
    with pytest.warns(UserWarning, match=r"nothing to report.*inject_hyperparams.*schedule=schedule") as record:
        assert ow.current_hyperparams(state) == {}
    assert record[0].filename == __file__  # the warning points at the caller's line
    # a constant learning rate is not in the state at all, whatever schedule is given
    with pytest.raises(ValueError, match=r"scale_by_schedule.*none found"):
        ow.current_learning_rate(_train(optax.adam(0.1), 1), schedule=schedule)
    with pytest.raises(TypeError, match="not its state"):
        ow.current_learning_rate(optax.adam(0.1))
    with pytest.raises(TypeError, match="schedule"):
        ow.current_learning_rate(state, schedule=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # something to report: no warning
        assert set(ow.current_hyperparams(_train(ow.scale_by_warmup(2), 1))) == {"warmup_factor"}


class _NewWarmupState(NamedTuple):  # a transformation the reader has never heard of
    count: Any
    factor: Any
    max_norm: Any
    inner_state: Any


def test_states_are_read_by_their_fields():
    inner = _train(optax.inject_hyperparams(optax.sgd)(learning_rate=0.5), 1)
    state = _NewWarmupState(jnp.asarray(3), jnp.asarray(0.25), jnp.asarray(2.0), {"head": inner})
    hp = ow.current_hyperparams(state)
    assert {k: float(v) for k, v in hp.items()} == {"warmup_factor": 0.25, "max_norm": 2.0, "head/learning_rate": 0.5}
    assert {k: float(v) for k, v in ow.current_learning_rate(state).items()} == {"head": 0.125}
    # the fields of the update-limit and skip-step states (issue 13)
    class Limit(NamedTuple):
        count: Any
        ratio: Any
        scale: Any

    class Skip(NamedTuple):
        count: Any
        num_skipped: Any
        inner_state: Any

    state = Skip(jnp.asarray(5), jnp.asarray(2), (Limit(jnp.asarray(5), jnp.asarray(0.125), jnp.asarray(1.0)),))
    hp = {k: float(v) for k, v in ow.current_hyperparams(state).items()}
    assert hp == {"num_skipped": 2.0, "update_ratio": 0.125}
    # a `factor` without a `count` is not a warmup factor
    class FactorOnly(NamedTuple):
        factor: Any

    with pytest.warns(UserWarning, match="nothing to report"):
        assert ow.current_hyperparams(FactorOnly(jnp.asarray(0.5))) == {}


def test_inspect_imports_no_state_class():
    tree = ast.parse(inspect.getsource(_inspect))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    } | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {m for m in imported if m.startswith("optax_warmup")}, imported


def test_flax_train_state_and_nnx_optimizer_in_place_of_their_opt_state():
    nnx = pytest.importorskip("flax.nnx")
    from flax.training import train_state

    schedule = ow.linear_schedule(0.0, 1.0, 10)
    tx = optax.chain(optax.sgd(schedule), ow.scale_by_warmup(4))
    state = train_state.TrainState.create(apply_fn=None, params={"w": jnp.ones(2)}, tx=tx)
    for _ in range(3):
        state = state.apply_gradients(grads={"w": jnp.ones(2)})
    assert float(ow.current_learning_rate(state, schedule=schedule)) == pytest.approx(linear(2) * 2 / 4)
    assert float(ow.current_hyperparams(state)["warmup_factor"]) == pytest.approx(0.5)

    model = nnx.Linear(2, 1, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    grads = jax.tree.map(jnp.ones_like, nnx.state(model, nnx.Param))
    for _ in range(5):
        optimizer.update(model, grads)
    assert float(ow.current_learning_rate(optimizer, schedule=schedule)) == pytest.approx(linear(4))
    assert float(ow.current_learning_rate(optimizer.opt_state, schedule=schedule)) == pytest.approx(linear(4))
