"""The one duration rule (steps, fractions, percentages, epochs, examples, tokens), and every entry point that
reads a duration agrees with it."""

import jax
import jax.numpy as jnp
import pytest

from optax_warmup._duration import duration_steps, parse_duration, unit_of
from optax_warmup.config import from_config

UNITS = {"steps_per_epoch": 40, "batch_size": 8, "seq_len": 1000}

# (duration, total, steps): worked out by hand.
CASES = [
    (0, 25, 0),
    (5, 25, 5),
    (1e2, 250, 100),  # a float with no fractional part is steps
    (0.1, 25, 3),  # 2.5 rounds up
    (0.1, 300, 30),  # 0.1 * 300 = 30.000000000000004 in floating point: still 30
    (0.02, 300, 6),
    (0.0333, 1000, 34),
    ("10%", 25, 3),
    ("0%", 25, 0),
    ("100%", 25, 25),
    ({"fraction": 0.5}, 25, 13),
    ({"steps": 7}, None, 7),
    ({"epochs": 2.5}, None, 100),
    ({"examples": 1001}, None, 126),  # a partial batch is a step
    ({"tokens": 64_000}, None, 8),
]


@pytest.mark.parametrize("spec, total, steps", CASES, ids=[str(c[0]) for c in CASES])
def test_duration_rule(spec, total, steps):
    got = duration_steps(spec, total, units=UNITS)
    assert got == steps and isinstance(got, int)


@pytest.mark.parametrize("spec, total, steps", [c for c in CASES if c[1] is not None])
def test_config_warmup_agrees_with_the_rule(spec, total, steps):
    s = from_config({"peak": 1.0, "total": total, "warmup": spec, "decay": "constant"})
    assert float(s(steps)) == 1.0
    if steps > 0:
        assert float(s(steps - 1)) < 1.0


@pytest.mark.parametrize("spec, message", [
    (-1, ">= 0"), (2.5, "whole number"), (float("nan"), "finite"), ("5 percent", "percentage"),
    ({"fraction": 1.5}, "<= 1"), ({"weeks": 1}, "one key"), (0.5, "needs a total"), (True, "number"),
])
def test_bad_durations_name_the_argument(spec, message):
    total = None if message == "needs a total" else 10
    with pytest.raises(ValueError, match=message) as info:
        duration_steps(spec, total, name="warmup_steps")
    assert str(info.value).startswith("warmup_steps")


def test_missing_unit_size_names_it():
    with pytest.raises(ValueError, match=r"config\['seq_len'\]: is required to convert tokens"):
        duration_steps({"tokens": 10}, units={"batch_size": 2}, units_name="config")


def test_traced_durations_round_up_with_ceil():
    f = jax.jit(lambda x, t: duration_steps({"fraction": x}, t))
    assert float(f(jnp.float32(0.1), jnp.float32(25.0))) == 3.0
    assert float(jax.jit(lambda w: duration_steps(w))(jnp.float32(7.0))) == 7.0


def test_command_line_tokens():
    assert [parse_duration(t) for t in ("0", "0.1", "25%", " 50 ", "1e2")] == [0, 0.1, "25%", 50, 100]
    assert [unit_of(v) for v in (0, 0.1, "25%", 50, {"epochs": 1})] == ["steps", "fraction", "fraction", "steps",
                                                                         "epochs"]
    with pytest.raises(ValueError, match="duration"):
        parse_duration("ten")
