"""Compiled program size: never larger than Optax's for the same schedule; joins do not grow per piece.

Size is the number of StableHLO operations (lines with an assignment) of ``jax.jit(schedule).lower(count)``,
private functions included. These are sizes, not timings: they are deterministic for a given JAX version.
"""

import jax
import jax.numpy as jnp
import optax
import pytest

import optax_warmup as ow


def stablehlo_ops(schedule) -> int:
    text = jax.jit(schedule).lower(jnp.int32(5)).as_text()
    return sum(1 for line in text.splitlines() if " = " in line)


SAME_ARGS = [
    ("constant_schedule", dict(value=1.0)),
    ("linear_schedule", dict(init_value=0.0, end_value=1.0, transition_steps=10)),
    ("polynomial_schedule", dict(init_value=1.0, end_value=0.0, power=2, transition_steps=10)),
    ("cosine_decay_schedule", dict(init_value=1.0, decay_steps=100)),
    ("exponential_decay", dict(init_value=1.0, transition_steps=10, decay_rate=0.5)),
    ("piecewise_constant_schedule", dict(init_value=1.0, boundaries_and_scales={10: 0.5, 20: 0.5})),
    (
        "piecewise_interpolate_schedule",
        dict(interpolate_type="linear", init_value=1.0, boundaries_and_scales={10: 0.5, 20: 0.5}),
    ),
    ("linear_onecycle_schedule", dict(transition_steps=100, peak_value=1.0)),
    ("cosine_onecycle_schedule", dict(transition_steps=100, peak_value=1.0)),
    ("warmup_constant_schedule", dict(init_value=0.0, peak_value=1.0, warmup_steps=10)),
    ("warmup_cosine_decay_schedule", dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=100)),
    (
        "warmup_exponential_decay_schedule",
        dict(init_value=0.0, peak_value=1.0, warmup_steps=10, transition_steps=10, decay_rate=0.5),
    ),
]


@pytest.mark.parametrize("name,kwargs", SAME_ARGS, ids=[n for n, _ in SAME_ARGS])
def test_not_larger_than_optax(name, kwargs):
    assert stablehlo_ops(getattr(ow, name)(**kwargs)) <= stablehlo_ops(getattr(optax, name)(**kwargs))


def _join(lib, n, pieces_lib=None):
    src = pieces_lib or lib
    pieces = [
        src.linear_schedule(0.0, 1.0, 100) if i % 2 == 0 else src.cosine_decay_schedule(1.0, 100) for i in range(n)
    ]
    return lib.join_schedules(pieces, [100 * i for i in range(1, n)])


def stablehlo_lines(schedule) -> int:
    return len(jax.jit(schedule).lower(jnp.int32(5)).as_text().splitlines())


def test_join_does_not_grow_with_the_number_of_pieces():
    ours = {n: stablehlo_ops(_join(ow, n)) for n in (2, 8, 32)}
    theirs = {n: stablehlo_ops(_join(optax, n)) for n in (2, 32)}
    # From a few pieces on: one comparison against every begin and one gather, whatever the number of pieces.
    assert ours[32] <= ours[8], ours
    assert ours[2] <= theirs[2] and ours[32] < theirs[32] / 5, (ours, theirs)


@pytest.mark.parametrize("n", [2, 8, 32])
def test_join_of_optax_closures_is_no_larger_than_optax_join(n):
    """Foreign pieces are one function segment each, in one lax.cond / lax.switch: no more operations than
    Optax's join (which evaluates every piece and selects); from 8 pieces on no more lines either (at 2 pieces the
    two region braces of the cond cost one line more than Optax's select)."""
    ours, theirs = _join(ow, n, optax), _join(optax, n)
    assert stablehlo_ops(ours) <= stablehlo_ops(theirs)
    if n >= 8:
        assert stablehlo_lines(ours) <= stablehlo_lines(theirs)


def test_sgdr_does_not_grow_per_cycle():
    kw = dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=100)
    assert stablehlo_ops(ow.sgdr_schedule([kw] * 16)) <= stablehlo_ops(ow.sgdr_schedule([kw] * 2))


@pytest.mark.parametrize(
    "name, build",
    [
        ("rsqrt", lambda: ow.warmup_rsqrt_schedule(0.0, 1.0, 100)),
        ("noam", lambda: ow.noam_schedule(512, 4000)),
        ("exponential warmup", lambda: ow.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100, warmup_shape="exponential")),
        ("restarts", lambda: ow.warmup_cosine_restarts_schedule(0.0, 1.0, 10, 100)),
    ],
)
def test_joins_of_former_closures_do_not_grow_per_piece(name, build):
    """rsqrt, Noam, the exponential warmup and the restarts were closures whose joins grew 10x from 2 to 32 pieces
    (every piece evaluated at every count); as segments and layers of the engine they merge into one program."""
    two = stablehlo_ops(ow.join_schedules([build() for _ in range(2)], [1000]))
    many = stablehlo_ops(ow.join_schedules([build() for _ in range(32)], [1000 * i for i in range(1, 32)]))
    assert many <= 2 * two, (two, many)
