"""check_hyperparams: every numeric argument of every public factory is checked per config on the host, nothing is
compiled, and the clamp each message announces is what a trace of the factory actually does."""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_hostile import COUNTS, NONNEG, NUMERIC, ROLE, TABLE, VALUE

import optax_warmup as ow

NUMERIC_ARGS = [
    pytest.param(name, arg, id=f"{name}-{arg}")
    for name, (_, args) in TABLE.items()
    for arg, (_, kind) in args.items()
    if kind in NUMERIC
]


def _defaults(name):
    return {arg: default for arg, (default, _) in TABLE[name][1].items()}


def test_messages_name_argument_config_value_and_clamp():
    problems = ow.check_hyperparams(
        ow.warmup_cosine_decay_schedule,
        0.0,
        np.array([1e-3, np.nan, 3e-3, np.inf]),
        warmup_steps=np.array([100, 100, -5, 100]),
        decay_steps=1000,
        warmup_exponent=-2.0,  # the same for every config: reported once, without an index
        warmup_shape="polynomial",
    )
    assert problems == [
        "warmup_exponent = -2.0: must be a finite number >= 0, got -2.0; traced, it would be clamped to 0",
        "peak_value[1] = nan: must be finite, got nan; traced, it would be clamped to 0",
        "warmup_steps[2] = -5: must be a finite number >= 0, got -5; traced, it would be clamped to 0",
        "peak_value[3] = inf: must be finite, got inf; traced, it would be clamped to 1e+30",
    ]


def test_several_problems_of_one_config_and_checks_without_a_known_clamp():
    problems = ow.check_hyperparams(
        ow.warmup_cosine_decay_schedule, np.array([np.nan, 0.0]), np.array([np.nan, 1.0]), np.array([-1, 50]), 20
    )
    assert [p.split(":")[0] for p in problems] == [
        "init_value[0] = nan",
        "peak_value[0] = nan",
        "warmup_steps[0] = -1",
        "decay_steps[1] = 20",  # decay_steps must be > warmup_steps: checked, but no single clamp value
    ]
    assert problems[-1].endswith("traced, it is not checked (how traced values are clamped: README, Guarantees)")
    problems = ow.check_hyperparams(ow.adaptive_warmup, None, 10, decay=jnp.asarray([0.9, 1.5, 0.99]))
    assert problems == [
        "decay[1] = 1.5: must be in [0, 1), got 1.5; traced, it is not checked (how traced values are clamped: "
        "README, Guarantees)"
    ]


def test_valid_grids_foreign_factories_and_structured_arguments():
    grid = dict(peak_value=np.geomspace(1e-4, 1e-1, 7), warmup_steps=np.arange(7) * 10, decay_steps=1000)
    assert ow.check_hyperparams(ow.warmup_cosine_decay_schedule, 0.0, **grid) == []
    assert ow.check_hyperparams(optax.warmup_cosine_decay_schedule, 0.0, np.array([np.nan]), 10, 100) == []
    # a list is a structured argument, the same for every config: only arrays are per config
    pieces = [ow.constant_schedule(1.0), ow.constant_schedule(0.5)]
    assert ow.check_hyperparams(ow.join_schedules, pieces, [10]) == []
    # an optional argument: None in some configs (an object array)
    problems = ow.check_hyperparams(ow.exponential_decay, 1.0, 10, 0.5, end_value=np.array([None, np.nan, 0.1], object))
    assert problems == ["end_value[1] = nan: must be finite, got nan; traced, it would be clamped to 0"]
    problems = ow.check_hyperparams(
        ow.sgdr_schedule, [dict(init_value=0.0, peak_value=np.nan, warmup_steps=0, decay_steps=10)]
    )
    assert problems == ["config: peak_value must be finite, got nan"]  # nested: the whole config is named


def test_misuse_raises():
    with pytest.raises(TypeError, match="check_hyperparams: warmup_cosine_decay_schedule: .*'peak_value'"):
        ow.check_hyperparams(ow.warmup_cosine_decay_schedule, 0.0, peek_value=1.0)
    with pytest.raises(ValueError, match=r"different lengths: \{'peak_value': 2, 'warmup_steps': 3\}"):
        ow.check_hyperparams(ow.warmup_constant_schedule, 0.0, np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="peak_value must be a number or a 1-D array"):
        ow.check_hyperparams(ow.warmup_constant_schedule, 0.0, np.ones((2, 2)), 10)
    with pytest.raises(TypeError, match="peak_value is traced"):
        jax.jit(lambda p: ow.check_hyperparams(ow.warmup_constant_schedule, 0.0, p, 10))(1.0)


def _configs(name, arg, *values):
    """The arguments of a grid whose configs have the table's defaults, but ``arg`` = each of ``values`` in turn
    (``None`` is the table's value of ``arg``; an object array when it is ``None``, as for an optional argument)."""
    default = TABLE[name][1][arg][0]
    column = [default if v is None else v for v in values]
    return TABLE[name][0], _defaults(name) | {arg: np.array(column, dtype=object if default is None else None)}


@pytest.mark.parametrize(("name", "arg"), NUMERIC_ARGS)
def test_every_numeric_argument_of_every_public_factory(name, arg):
    fn, kwargs = _configs(name, arg, None, math.nan, None)
    problems = ow.check_hyperparams(fn, **kwargs)
    assert len(problems) == 1 and problems[0].startswith(f"{arg}[1] = nan: "), problems


def _compile_events(calls) -> list[str]:
    """The XLA compilations while checking ``calls``, from a cold cache (so an eager op cannot hide in it)."""
    events = []

    def listener(event, duration, **kwargs):
        if "backend_compile" in event:
            events.append(event)

    jax.clear_caches()
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        for fn, kwargs in calls:
            assert ow.check_hyperparams(fn, **kwargs)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return events


def _nan_in_config_1(name, arg):
    return _configs(name, arg, None, math.nan)


# Factories that run a JAX op while they are built: with_warmup evaluates the schedule it is given at count 0, the
# RAdam warmups convert their constants with jnp.asarray.
BUILT_WITH_JAX_OPS = {"with_warmup", "radam_warmup", "scale_by_radam_warmup"}


def test_nothing_is_compiled():
    calls = [_nan_in_config_1(*p.values) for p in NUMERIC_ARGS if p.values[0] not in BUILT_WITH_JAX_OPS]
    assert _compile_events(calls) == []
    # The detector works: a factory that runs a JAX op while it is built is seen compiling it.
    def eager_factory(value):
        if not jnp.isfinite(jnp.asarray(value)):
            raise ValueError(f"value must be finite, got {value!r}")

    assert _compile_events([(eager_factory, {"value": np.array([1.0, math.nan])})]) != []


BAD = [math.nan, -1.0, math.inf, -math.inf]


def _announced(name, arg):
    """[(bad value, the value check_hyperparams says a trace clamps it to)] for one argument of one factory."""
    out = []
    for bad in BAD:
        fn, kwargs = _configs(name, arg, None, bad)
        for message in ow.check_hyperparams(fn, **kwargs):
            if m := re.fullmatch(rf"{arg}\[1\] = \S+: .*; traced, it would be clamped to (\S+)", message):
                out.append((bad, float(m.group(1))))
    return out


BUILT_ARGS = [p for p in NUMERIC_ARGS if ROLE.get(p.values[0], "schedule") != "number"]
ANNOUNCED = {tuple(p.values): a for p in BUILT_ARGS if (a := _announced(*p.values))}


def test_a_clamp_is_announced_for_every_value_length_and_exponent():
    kinds = {tuple(p.values): TABLE[p.values[0]][1][p.values[1]][1] for p in BUILT_ARGS}
    assert {k for k, kind in kinds.items() if kind in (VALUE, NONNEG)} <= set(ANNOUNCED)


def _outputs(name, built):
    """What a built object produces, traceably: a schedule's values over COUNTS, or a transformation's updates
    over three steps (one of them 100x larger) and its final state."""
    if ROLE.get(name, "schedule") != "transformation":
        return built(COUNTS)
    params = {"a": jnp.ones(3)}
    state, outs = built.init(params), []
    for scale in (1.0, 100.0, 1.0):
        updates, state = built.update(jax.tree.map(lambda p, s=scale: s * p, params), state, params)
        outs.append(updates["a"])
    leaves = [x for x in jax.tree.leaves(state) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
    return jnp.concatenate([jnp.ravel(jnp.asarray(x, jnp.float32)) for x in [*outs, *leaves]])


@pytest.mark.parametrize(("name", "arg"), list(ANNOUNCED), ids=[f"{n}-{a}" for n, a in ANNOUNCED])
def test_the_announced_clamp_is_what_a_trace_does(name, arg):
    """Traced, each bad value gives the same schedule (or updates) as the value the message says it is clamped to."""
    announced = ANNOUNCED[name, arg]
    values = jnp.asarray([v for pair in announced for v in pair], jnp.float32)
    fn = TABLE[name][0]
    build = lambda v: _outputs(name, fn(**(_defaults(name) | {arg: v})))  # noqa: E731
    out = np.asarray(jax.jit(jax.vmap(build))(values))
    for k, (bad, clamped) in enumerate(announced):
        np.testing.assert_array_equal(out[2 * k], out[2 * k + 1], err_msg=f"{arg}={bad} traced vs {clamped}")
