"""Hostile inputs, argument by argument, for every public function.

Concrete bad values (wrong types, wrong shapes, NaN, inf, out-of-range numbers, unknown shape names) raise a
``ValueError`` or ``TypeError`` whose message names the argument. Values that are legitimately allowed (a negative
``end_value``, say) are marked as such in the table and must give a finite schedule. The same numbers passed as
TRACED arrays cannot be checked, so they are clamped: the schedule stays finite (rules in the README,
"Guarantees").
"""

from __future__ import annotations

import inspect
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow

# Argument kinds. Every numeric kind rejects str, None, list, complex, bool, a 1-D array, NaN and +-inf.
VALUE = "value"  # any finite number, negative allowed
NONNEG = "nonneg"  # >= 0 (lengths, exponents, factors)
POS = "pos"  # > 0
MULT = "mult"  # >= 1 (cycle_mult)
FRACTION = "fraction"  # in [0, 1] (pct_start, pct_final)
OPTIONAL_VALUE = "optional value"  # None allowed
OPTIONAL_POS = "optional pos"
CHOICE = "choice"
BOOL = "bool"
CALLABLE = "callable"
STRUCTURE = "structure"  # lists/dicts: tested by their own cases below
UNIT_OPEN = "[0, 1)"  # b2, decay
UNIT_CLOSED = "[0, 1]"  # backoff
RATIO = ">= 1"  # norm_ratio, loss_ratio, every_k
THRESHOLD = ">= 4"  # radam threshold
NONNEG_OR_SCHEDULE = "nonneg or schedule"  # max_norm
NEGATIVE = "< 0"  # the power scheduler's exponent b
TRANSFORMATION = "transformation"  # adaptive_warmup's inner (None allowed)
VALUE_OR_SCHEDULE = "value or schedule"  # learning_rate
FINITE_NONNEG_OR_SCHEDULE = "finite nonneg or schedule"  # weight_decay
OPTIONAL_NONNEG = "optional nonneg"  # min_samples
DURATION = "duration"  # steps, a fraction below 1, "10%" or {"fraction": f}: optax_warmup._duration
POS_OR_RAMP = "pos or ramp"  # tokens_per_step

NUMERIC = {
    VALUE,
    NONNEG,
    POS,
    MULT,
    FRACTION,
    OPTIONAL_VALUE,
    OPTIONAL_POS,
    UNIT_OPEN,
    UNIT_CLOSED,
    RATIO,
    THRESHOLD,
    NONNEG_OR_SCHEDULE,
    NEGATIVE,
    VALUE_OR_SCHEDULE,
    FINITE_NONNEG_OR_SCHEDULE,
    OPTIONAL_NONNEG,
    DURATION,
    POS_OR_RAMP,
}

# What a function returns, for the traced test: a schedule (default), a transformation, an every_k schedule
# (int32), or a number.
ROLE = {
    "scale_by_schedule_f32": "transformation",
    "scale_by_warmup": "transformation",
    "scale_by_untuned_warmup": "transformation",
    "scale_by_radam_warmup": "transformation",
    "scale_by_factor_schedule": "transformation",
    "clip_by_global_norm_schedule": "transformation",
    "adaptive_warmup": "transformation",
    "per_group_warmup": "transformation",
    "batch_size_warmup": "every_k",
    "untuned_warmup_steps": "number",
    "scale_by_gi_adam": "transformation",
    "gi_adamw": "transformation",
    "clip_by_param_norm_ratio": "transformation",
    "skip_step_on_spikes": "transformation",
    "batch_size_ramp": "every_k",
    "parse_batch_size_schedule": "parsed",
}
# Public callables that build no schedule or transformation from hyperparameters: the config round trip and the
# state readers (tested by test_config.py and test_transforms.py).
OUT_OF_SCOPE = {"from_config", "to_config", "current_hyperparams", "current_learning_rate", "check_hyperparams"}
WARMUP = {"warmup_shape": ("linear", CHOICE), "warmup_exponent": (2.0, NONNEG)}

TABLE: dict[str, tuple] = {
    "constant_schedule": (ow.constant_schedule, {"value": (0.1, VALUE)}),
    "polynomial_schedule": (
        ow.polynomial_schedule,
        {
            "init_value": (1.0, VALUE),
            "end_value": (0.0, VALUE),
            "power": (2.0, NONNEG),
            "transition_steps": (10, NONNEG),
            "transition_begin": (0, NONNEG),
        },
    ),
    "linear_schedule": (
        ow.linear_schedule,
        {
            "init_value": (1.0, VALUE),
            "end_value": (0.0, VALUE),
            "transition_steps": (10, NONNEG),
            "transition_begin": (0, NONNEG),
        },
    ),
    "cosine_decay_schedule": (
        ow.cosine_decay_schedule,
        {"init_value": (1.0, VALUE), "decay_steps": (100, POS), "alpha": (0.1, VALUE), "exponent": (1.0, NONNEG)},
    ),
    "exponential_decay": (
        ow.exponential_decay,
        {
            "init_value": (1.0, VALUE),
            "transition_steps": (10, POS),
            "decay_rate": (0.5, POS),
            "transition_begin": (0, NONNEG),
            "staircase": (False, BOOL),
            "end_value": (0.01, OPTIONAL_VALUE),
        },
    ),
    "piecewise_constant_schedule": (
        ow.piecewise_constant_schedule,
        {
            "init_value": (1.0, VALUE),
            "boundaries_and_scales": ({10: 0.1}, STRUCTURE),
            "boundaries": (None, STRUCTURE),
            "scales": (None, STRUCTURE),
        },
    ),
    "piecewise_interpolate_schedule": (
        ow.piecewise_interpolate_schedule,
        {
            "interpolate_type": ("linear", CHOICE),
            "init_value": (1.0, VALUE),
            "boundaries_and_scales": ({10: 0.1}, STRUCTURE),
            "boundaries": (None, STRUCTURE),
            "scales": (None, STRUCTURE),
        },
    ),
    "linear_onecycle_schedule": (
        ow.linear_onecycle_schedule,
        {
            "transition_steps": (100, POS),
            "peak_value": (1.0, VALUE),
            "pct_start": (0.3, FRACTION),
            "pct_final": (0.85, FRACTION),
            "div_factor": (25.0, POS),
            "final_div_factor": (1e4, POS),
        },
    ),
    "cosine_onecycle_schedule": (
        ow.cosine_onecycle_schedule,
        {
            "transition_steps": (100, POS),
            "peak_value": (1.0, VALUE),
            "pct_start": (0.3, FRACTION),
            "div_factor": (25.0, POS),
            "final_div_factor": (1e4, POS),
        },
    ),
    "warmup_constant_schedule": (
        ow.warmup_constant_schedule,
        {"init_value": (0.0, VALUE), "peak_value": (1.0, VALUE), "warmup_steps": (10, NONNEG), **WARMUP},
    ),
    "warmup_cosine_decay_schedule": (
        ow.warmup_cosine_decay_schedule,
        {
            "init_value": (0.0, VALUE),
            "peak_value": (1.0, VALUE),
            "warmup_steps": (10, NONNEG),
            "decay_steps": (100, POS),
            "end_value": (0.0, VALUE),
            "exponent": (1.0, NONNEG),
            **WARMUP,
        },
    ),
    "warmup_linear_decay_schedule": (
        ow.warmup_linear_decay_schedule,
        {
            "init_value": (0.0, VALUE),
            "peak_value": (1.0, VALUE),
            "warmup_steps": (10, NONNEG),
            "decay_steps": (100, POS),
            "end_value": (0.0, VALUE),
            **WARMUP,
        },
    ),
    "warmup_polynomial_decay_schedule": (
        ow.warmup_polynomial_decay_schedule,
        {
            "init_value": (0.0, VALUE),
            "peak_value": (1.0, VALUE),
            "warmup_steps": (10, NONNEG),
            "decay_steps": (100, POS),
            "end_value": (0.0, VALUE),
            "power": (2.0, NONNEG),
            **WARMUP,
        },
    ),
    "warmup_exponential_decay_schedule": (
        ow.warmup_exponential_decay_schedule,
        {
            "init_value": (0.0, VALUE),
            "peak_value": (1.0, VALUE),
            "warmup_steps": (10, NONNEG),
            "transition_steps": (10, POS),
            "decay_rate": (0.5, POS),
            "transition_begin": (0, NONNEG),
            "staircase": (False, BOOL),
            "end_value": (0.01, OPTIONAL_VALUE),
            **WARMUP,
        },
    ),
    "warmup_rsqrt_schedule": (
        ow.warmup_rsqrt_schedule,
        {
            "init_value": (0.0, VALUE),
            "peak_value": (1.0, VALUE),
            "warmup_steps": (10, NONNEG),
            "timescale": (10.0, OPTIONAL_POS),
            **WARMUP,
        },
    ),
    "noam_schedule": (
        ow.noam_schedule,
        {"d_model": (512, POS), "warmup_steps": (4000, NONNEG), "scale": (1.0, NONNEG)},
    ),
    "warmup_stable_decay_schedule": (
        ow.warmup_stable_decay_schedule,
        {
            "init_value": (0.0, VALUE),
            "peak_value": (1.0, VALUE),
            "warmup_steps": (10, NONNEG),
            "stable_steps": (80, NONNEG),
            "decay_steps": (10, NONNEG),
            "end_value": (0.0, VALUE),
            "decay_shape": ("linear", CHOICE),
            **WARMUP,
        },
    ),
    "warmup_cosine_restarts_schedule": (
        ow.warmup_cosine_restarts_schedule,
        {
            "init_value": (0.0, VALUE),
            "peak_value": (1.0, VALUE),
            "warmup_steps": (10, NONNEG),
            "cycle_steps": (100, POS),
            "cycle_mult": (2.0, MULT),
            "peak_decay": (0.5, NONNEG),
            "end_value": (0.0, VALUE),
            "num_cycles": (3, OPTIONAL_POS),
            **WARMUP,
        },
    ),
    "sgdr_schedule": (
        ow.sgdr_schedule,
        {"cosine_kwargs": ([dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=100)], STRUCTURE)},
    ),
    "join_schedules": (
        ow.join_schedules,
        {
            "schedules": ([ow.constant_schedule(1.0), ow.constant_schedule(0.5)], STRUCTURE),
            "boundaries": ([10], STRUCTURE),
        },
    ),
    "scale_by_schedule_f32": (ow.scale_by_schedule_f32, {"step_size_fn": (ow.constant_schedule(1.0), CALLABLE)}),
    "untuned_warmup": (ow.untuned_warmup, {"b2": (0.999, UNIT_OPEN), "warmup_shape": ("linear", CHOICE)}),
    "untuned_warmup_steps": (
        ow.untuned_warmup_steps, {"b2": (0.999, UNIT_OPEN), "warmup_shape": ("linear", CHOICE)}
    ),
    "radam_warmup": (ow.radam_warmup, {"b2": (0.999, UNIT_OPEN), "threshold": (5.0, THRESHOLD)}),
    "scale_by_warmup": (
        ow.scale_by_warmup,
        {"warmup_steps": (10, NONNEG), "init_value": (0.0, VALUE), **WARMUP},
    ),
    "scale_by_untuned_warmup": (
        ow.scale_by_untuned_warmup, {"b2": (0.999, UNIT_OPEN), "warmup_shape": ("linear", CHOICE)}
    ),
    "scale_by_radam_warmup": (ow.scale_by_radam_warmup, {"b2": (0.999, UNIT_OPEN), "threshold": (5.0, THRESHOLD)}),
    "scale_by_factor_schedule": (ow.scale_by_factor_schedule, {"factor_schedule": (ow.warmup_factor(10), CALLABLE)}),
    "clip_by_global_norm_schedule": (ow.clip_by_global_norm_schedule, {"max_norm": (1.0, NONNEG_OR_SCHEDULE)}),
    "batch_size_warmup": (
        ow.batch_size_warmup,
        {
            "init_every_k": (1, RATIO),
            "peak_every_k": (4, RATIO),
            "warmup_steps": (30, NONNEG),
            **WARMUP,
        },
    ),
    "adaptive_warmup": (
        ow.adaptive_warmup,
        {
            "inner": (None, TRANSFORMATION),
            "warmup_steps": (10, NONNEG),
            "init_value": (0.0, VALUE),
            "decay": (0.99, UNIT_OPEN),
            "zscore": (4.0, NONNEG),
            "norm_ratio": (2.0, RATIO),
            "loss_ratio": (1.2, RATIO),
            "min_observations": (20, NONNEG),
            "backoff": (0.5, UNIT_CLOSED),
            "backoff_steps": (0.0, NONNEG),
            "skip_spikes": (False, BOOL),
            **WARMUP,
        },
    ),
    "per_group_warmup": (
        ow.per_group_warmup,
        {
            "optimizer_factory": (optax.sgd, CALLABLE),
            "schedules": ({"a": ow.warmup_factor(10)}, STRUCTURE),
            "param_labels": (lambda p: {k: "a" for k in p}, STRUCTURE),
            "inject": (True, STRUCTURE),
        },
    ),
    "phase_schedule": (ow.phase_schedule, {"phases": ([ow.Phase(10, 0.0, 1.0)], STRUCTURE)}),
    "scale_by_gi_adam": (
        ow.scale_by_gi_adam,
        {
            "b1": (0.9, UNIT_OPEN),
            "b2": (0.999, UNIT_OPEN),
            "eps": (1e-8, NONNEG),
            "eps_root": (0.0, NONNEG),
            "mu_dtype": (None, STRUCTURE),
            "nesterov": (False, BOOL),
        },
    ),
    "gi_adamw": (
        ow.gi_adamw,
        {
            "learning_rate": (1e-3, VALUE_OR_SCHEDULE),
            "b1": (0.9, UNIT_OPEN),
            "b2": (0.999, UNIT_OPEN),
            "eps": (1e-8, NONNEG),
            "eps_root": (0.0, NONNEG),
            "mu_dtype": (None, STRUCTURE),
            "weight_decay": (1e-4, FINITE_NONNEG_OR_SCHEDULE),
            "mask": (None, STRUCTURE),
            "nesterov": (False, BOOL),
        },
    ),
    "clip_by_param_norm_ratio": (
        ow.clip_by_param_norm_ratio,
        {
            "ratio": (0.01, NONNEG_OR_SCHEDULE),
            "per_leaf": (True, BOOL),
            "min_norm": (1e-3, NONNEG),
            "exempt_below": (0.0, NONNEG),
        },
    ),
    "skip_step_on_spikes": (
        ow.skip_step_on_spikes,
        {
            "inner": (optax.sgd(0.1), TRANSFORMATION),
            "window": (8, STRUCTURE),
            "threshold": (6.0, NONNEG),
            "min_samples": (None, OPTIONAL_NONNEG),
            "watch": ("both", CHOICE),
        },
    ),
    "warmup_stable_decay_cycles_schedule": (
        ow.warmup_stable_decay_cycles_schedule,
        {
            "init_value": (0.0, VALUE),
            "peak_value": (1.0, VALUE),
            "warmup_steps": (10, DURATION),
            "cycle_lengths": ([100, 100], STRUCTURE),
            "end_value": (0.0, VALUE),
            "decay_fraction": (0.2, FRACTION),
            "decay_shape": ("1-sqrt", CHOICE),
            "boundaries": (None, STRUCTURE),
            "rewarmup_steps": (5, DURATION),
            "rewarmup_value": (None, OPTIONAL_VALUE),
            **WARMUP,
        },
    ),
    "parse_batch_size_schedule": (ow.parse_batch_size_schedule, {"text": ("0:8 1K:16", STRUCTURE)}),
    "batch_size_ramp": (
        ow.batch_size_ramp,
        {
            "schedule": ([(0, 8), (1000, 16)], STRUCTURE),
            "seq_len": (64, OPTIONAL_POS),
            "micro_batch_size": (8, RATIO),
            "rampup": (None, STRUCTURE),  # Megatron's classic ramp: tests/test_compat_parity.py
            "global_batch_size": (None, STRUCTURE),
        },
    ),
    "schedule_in_tokens": (
        ow.schedule_in_tokens,
        {"schedule": (ow.linear_schedule(0.0, 1.0, 1000.0), CALLABLE), "tokens_per_step": (100.0, POS_OR_RAMP)},
    ),
    "warmup_schedule": (
        ow.warmup_schedule,
        {"init_value": (0.0, VALUE), "peak_value": (1.0, VALUE), "warmup_steps": (10, NONNEG), **WARMUP},
    ),
    "warmup_factor": (
        ow.warmup_factor,
        {"warmup_steps": (10, NONNEG), "init_factor": (0.0, VALUE), **WARMUP},
    ),
    "power_schedule": (
        ow.power_schedule,
        {
            "peak_value": (0.02, POS),
            "warmup_steps": (10, NONNEG),
            "total_steps": (100, OPTIONAL_POS),
            "decay_steps": (10, NONNEG),
            "batch_size": (32, POS),
            "seq_len": (128, OPTIONAL_POS),
            "tokens_per_step": (None, OPTIONAL_POS),
            "a": (4.6, POS),
            "b": (-0.51, NEGATIVE),
            "init_value": (0.0, VALUE),
            "end_value": (0.0, VALUE),
            "decay_shape": ("exponential", CHOICE),
            **WARMUP,
        },
    ),
    "with_warmup": (
        ow.with_warmup,
        {
            "schedule": (ow.cosine_decay_schedule(1.0, 100), CALLABLE),
            "warmup_steps": (10, NONNEG),
            "init_value": (0.0, VALUE),
            **WARMUP,
        },
    ),
    "warmup_overlay": (
        ow.warmup_overlay,
        {
            "schedule": (ow.cosine_decay_schedule(1.0, 100), CALLABLE),
            "warmup_steps": (10, NONNEG),
            "init_factor": (0.0, VALUE),
            **WARMUP,
        },
    ),
}

COUNTS = np.asarray([0, 1, 5, 10, 11, 99, 100, 101, 1000, 2**31 - 1, -1], dtype=np.int32)

# (bad value, expected exception) for every numeric argument.
TYPE_ERRORS = [
    ("abc", TypeError),
    ([1.0], TypeError),
    (1 + 2j, TypeError),
    (True, TypeError),
    (np.complex64(1.0), TypeError),
    (jnp.array(True), TypeError),
]
NON_FINITE = [
    (math.nan, ValueError),
    (math.inf, ValueError),
    (-math.inf, ValueError),
    (np.float32("nan"), ValueError),
    (jnp.array(jnp.inf), ValueError),
]
SHAPE_ERRORS = [(np.ones(2), ValueError), (jnp.ones((1,)), ValueError)]
OUT_OF_RANGE = {
    VALUE: [],
    OPTIONAL_VALUE: [],
    NONNEG: [-1.0, -1e-9],
    POS: [0.0, -1.0],
    OPTIONAL_POS: [0.0, -1.0],
    MULT: [0.5, -1.0],
    FRACTION: [-0.1],
    UNIT_OPEN: [1.0, -0.1, 1.5],
    UNIT_CLOSED: [1.5, -0.1],
    RATIO: [0.5, 0.0, -1.0],
    THRESHOLD: [3.9, -1.0],
    NONNEG_OR_SCHEDULE: [-1.0],
    NEGATIVE: [0.0, 0.5],
    VALUE_OR_SCHEDULE: [],
    FINITE_NONNEG_OR_SCHEDULE: [-1.0, -1e-9],
    OPTIONAL_NONNEG: [-1.0, -1e-9],
    DURATION: [-1.0, 2.5],
    POS_OR_RAMP: [0.0, -1.0],
}
# Values allowed although unusual: each must give a finite schedule.
ALLOWED = {
    VALUE: [-1.0, 0.0, 1e30, -1e30, 1e-30],
    OPTIONAL_VALUE: [None, -1.0, 0.0],
    NONNEG: [0.0, 1e9],
    POS: [1e-6, 1e9],
    OPTIONAL_POS: [None, 1e-6],
    MULT: [1.0, 5.0],
    FRACTION: [0.0, 1.0],
    UNIT_OPEN: [0.0, 0.5, 0.999999],
    UNIT_CLOSED: [0.0, 1.0],
    RATIO: [1.0, 1e6],
    THRESHOLD: [4.0, 100.0],
    NONNEG_OR_SCHEDULE: [0.0, 1e30, math.inf, ow.constant_schedule(2.0)],
    NEGATIVE: [-1e-6, -0.51, -10.0],
    VALUE_OR_SCHEDULE: [-1.0, 0.0, 1e30, ow.constant_schedule(2.0)],
    FINITE_NONNEG_OR_SCHEDULE: [0.0, 1e9, ow.constant_schedule(0.1)],
    OPTIONAL_NONNEG: [None, 0.0, 1e9],
    DURATION: [0, 10, 1e9, 0.5, "10%", {"fraction": 0.25}, {"steps": 3}],
    POS_OR_RAMP: [1e-6, 1e9, ow.batch_size_ramp("0:1 1K:2", seq_len=10)],
}


def _id(value) -> str:
    """A test id without memory addresses (xdist workers must collect the same ids)."""
    if callable(value) and not isinstance(value, type):
        return getattr(value, "__name__", type(value).__name__)
    return repr(value)


def _defaults(name):
    return {arg: default for arg, (default, _) in TABLE[name][1].items()}


def _bad_cases():
    for name, (_, args) in TABLE.items():
        for arg, (_, kind) in args.items():
            bad: list = []
            if kind == DURATION:  # a string is a percentage, so "abc" is a bad value, not a bad type
                bad += [("abc", ValueError), ("150%", ValueError), ({"hours": 1}, ValueError)]
                bad += [(v, e) for v, e in TYPE_ERRORS if not isinstance(v, str)] + [(None, TypeError)]
                bad += NON_FINITE + SHAPE_ERRORS + [(v, ValueError) for v in OUT_OF_RANGE[kind]]
            elif kind in NUMERIC:
                non_finite = NON_FINITE
                if kind == NONNEG_OR_SCHEDULE:  # max_norm=+inf is documented: no clipping
                    non_finite = [(v, e) for v, e in NON_FINITE if not np.isposinf(v)]
                bad += TYPE_ERRORS + non_finite + SHAPE_ERRORS + [(v, ValueError) for v in OUT_OF_RANGE[kind]]
                if not kind.startswith("optional"):
                    bad.append((None, TypeError))
            elif kind == CHOICE:
                bad += [("no-such-shape", ValueError), (3, TypeError), (None, TypeError), (["linear"], TypeError)]
            elif kind == BOOL:
                bad += [("yes", TypeError), (1, TypeError), (None, TypeError)]
            elif kind == CALLABLE:
                bad += [(3, TypeError), (None, TypeError), ("cosine", TypeError)]
            elif kind == TRANSFORMATION:
                bad += [(3, TypeError), ("adam", TypeError), (optax.adam, TypeError)]
            for value, error in bad:
                yield pytest.param(name, arg, value, error, id=f"{name}-{arg}={_id(value)}"[:90])


# Where the other arguments' defaults constrain the range (decay_steps > warmup_steps, pct_start <= pct_final,
# RAdam's rho_inf = 2 / (1 - b2) - 1 > threshold).
ALLOWED_HERE = {
    ("radam_warmup", "b2"): [0.8, 0.999999],
    ("scale_by_radam_warmup", "b2"): [0.8, 0.999999],
    ("radam_warmup", "threshold"): [4.0, 100.0],
    ("scale_by_radam_warmup", "threshold"): [4.0, 100.0],
    ("batch_size_ramp", "seq_len"): [None, 1.0, 4096.0],
    ("batch_size_ramp", "micro_batch_size"): [1, 8],
    ("linear_onecycle_schedule", "pct_start"): [0.0, 0.85],
    ("linear_onecycle_schedule", "pct_final"): [0.3, 1.0],
    **{
        (n, "decay_steps"): [10.5, 1e9]
        for n in ("warmup_cosine_decay_schedule", "warmup_linear_decay_schedule", "warmup_polynomial_decay_schedule")
    },
    **{
        (n, "warmup_steps"): [0.0, 99.5]
        for n in ("warmup_cosine_decay_schedule", "warmup_linear_decay_schedule", "warmup_polynomial_decay_schedule")
    },
    # warmup + decay <= total (10 + 10 <= 100); tokens_per_step, when given with seq_len, is batch_size * seq_len.
    ("power_schedule", "warmup_steps"): [0.0, 90.0],
    ("power_schedule", "decay_steps"): [0.0, 90.0],
    ("power_schedule", "total_steps"): [20.0, 1e9],  # None (no decay) needs decay_steps=0: test_schedules
    ("power_schedule", "seq_len"): [1e-6, 1e9],
    ("power_schedule", "tokens_per_step"): [None, 4096.0],
}


def _allowed_cases():
    for name, (_, args) in TABLE.items():
        for arg, (_, kind) in args.items():
            for value in ALLOWED_HERE.get((name, arg), ALLOWED.get(kind, [])):
                yield pytest.param(name, arg, value, id=f"{name}-{arg}={_id(value)}")


def test_table_covers_every_argument_of_every_public_function():
    public = {n for n in ow.__all__ if callable(getattr(ow, n)) and not isinstance(getattr(ow, n), type)}
    assert set(TABLE) == public - OUT_OF_SCOPE
    for name, (fn, args) in TABLE.items():
        assert list(inspect.signature(fn).parameters) == list(args), name


def _expected_name(name, arg):
    return re.escape(arg)


@pytest.mark.parametrize(("name", "arg", "value", "error"), list(_bad_cases()))
def test_bad_argument_raises_naming_it(name, arg, value, error):
    fn = TABLE[name][0]
    kwargs = _defaults(name) | {arg: value}
    with pytest.raises(error, match=_expected_name(name, arg)):
        fn(**kwargs)


def _run(name, built):
    """What a built object produces over COUNTS: schedule values, three updates of a transformation, ..."""
    role = ROLE.get(name, "schedule")
    if role == "number":
        return np.asarray(built, np.float64)
    if role == "parsed":
        return np.asarray(built, np.float64).ravel()
    if role != "transformation":
        return np.asarray(built(COUNTS))
    params = {"a": jnp.ones(3)}
    state = built.init(params)
    outs = []
    for scale in (1.0, 100.0, 1.0):
        updates, state = built.update(jax.tree.map(lambda p, s=scale: s * p, params), state, params)
        outs.append(updates["a"])
    leaves = [x for x in jax.tree.leaves(state) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
    return np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in [*outs, *leaves]])


@pytest.mark.parametrize(("name", "arg", "value"), list(_allowed_cases()))
def test_allowed_unusual_value_gives_finite_schedule(name, arg, value):
    fn = TABLE[name][0]
    out = _run(name, fn(**(_defaults(name) | {arg: value})))
    assert np.isfinite(out).all(), out
    if ROLE.get(name, "schedule") in ("schedule", "every_k"):
        assert out.shape == COUNTS.shape


# --- structured arguments ------------------------------------------------------------------------------------------

STRUCTURE_CASES = [
    # (function, kwargs, error, the argument the message must name)
    (
        ow.piecewise_constant_schedule,
        dict(init_value=1.0, boundaries_and_scales=[(10, 0.1)]),
        TypeError,
        "boundaries_and_scales",
    ),
    (ow.piecewise_constant_schedule, dict(init_value=1.0, boundaries_and_scales={10: -0.1}), ValueError, "scales"),
    (ow.piecewise_constant_schedule, dict(init_value=1.0, boundaries_and_scales={10: math.nan}), ValueError, "scales"),
    (ow.piecewise_constant_schedule, dict(init_value=1.0, boundaries_and_scales={-10: 0.1}), ValueError, "boundaries"),
    (ow.piecewise_constant_schedule, dict(init_value=1.0, boundaries_and_scales={"a": 0.1}), TypeError, "boundaries"),
    (ow.piecewise_constant_schedule, dict(init_value=1.0, boundaries=[10, 20], scales=[0.1]), ValueError, "scales"),
    (ow.piecewise_constant_schedule, dict(init_value=1.0, boundaries=[10]), ValueError, "scales"),
    (
        ow.piecewise_constant_schedule,
        dict(init_value=1.0, boundaries=[math.inf], scales=[0.1]),
        ValueError,
        "boundaries",
    ),
    (ow.piecewise_constant_schedule, dict(init_value=1.0, boundaries=[10], scales=["x"]), TypeError, "scales"),
    (
        ow.piecewise_constant_schedule,
        dict(init_value=1.0, boundaries_and_scales={10: 0.1}, boundaries=[1], scales=[1.0]),
        ValueError,
        "boundaries",
    ),
    (
        ow.piecewise_interpolate_schedule,
        dict(interpolate_type="linear", init_value=1.0, boundaries_and_scales={10: -1.0}),
        ValueError,
        "scales",
    ),
    (
        ow.piecewise_interpolate_schedule,
        dict(interpolate_type="linear", init_value=1.0, boundaries=[None], scales=[1.0]),
        TypeError,
        "boundaries",
    ),
    (ow.sgdr_schedule, dict(cosine_kwargs=[]), ValueError, "cosine_kwargs"),
    (
        ow.sgdr_schedule,
        dict(cosine_kwargs=[dict(init_value=0.0, peak_value=1.0, warmup_steps=10)]),
        ValueError,
        "decay_steps",
    ),
    (ow.sgdr_schedule, dict(cosine_kwargs=["x"]), ValueError, "cosine_kwargs"),
    (
        ow.sgdr_schedule,
        dict(cosine_kwargs=[dict(init_value=0.0, peak_value=math.nan, warmup_steps=10, decay_steps=100)]),
        ValueError,
        "peak_value",
    ),
    (
        ow.sgdr_schedule,
        dict(cosine_kwargs=[dict(init_value=0.0, peak_value=1.0, warmup_steps=100, decay_steps=100)]),
        ValueError,
        "decay_steps",
    ),
    (ow.join_schedules, dict(schedules=[], boundaries=[]), ValueError, "schedules"),
    (ow.join_schedules, dict(schedules=[ow.constant_schedule(1.0)] * 3, boundaries=[10]), ValueError, "boundaries"),
    (ow.join_schedules, dict(schedules=[ow.constant_schedule(1.0), 3.0], boundaries=[10]), TypeError, "schedules"),
    (ow.join_schedules, dict(schedules=[ow.constant_schedule(1.0)] * 3, boundaries=[20, 10]), ValueError, "boundaries"),
    (ow.join_schedules, dict(schedules=[ow.constant_schedule(1.0)] * 2, boundaries=[-1]), ValueError, "boundaries"),
    (
        ow.join_schedules,
        dict(schedules=[ow.constant_schedule(1.0)] * 2, boundaries=[math.nan]),
        ValueError,
        "boundaries",
    ),
    (ow.join_schedules, dict(schedules=[ow.constant_schedule(1.0)] * 2, boundaries=["10"]), TypeError, "boundaries"),
    (ow.phase_schedule, dict(phases=[]), ValueError, "phases"),
    (ow.phase_schedule, dict(phases=[ow.Phase(10, 0.0, 1.0, "no-such-shape")]), ValueError, "shape"),
    (ow.phase_schedule, dict(phases=[ow.Phase(-1, 0.0, 1.0)]), ValueError, "length"),
    (ow.phase_schedule, dict(phases=[ow.Phase(10, math.nan, 1.0)]), ValueError, "start"),
    (ow.phase_schedule, dict(phases=[ow.Phase(10, 0.0, math.inf)]), ValueError, "end"),
    (ow.phase_schedule, dict(phases=[ow.Phase(10, 0.0, 1.0, "polynomial", -2.0)]), ValueError, "param"),
    (ow.phase_schedule, dict(phases=[ow.Phase(10, 0.0, "x")]), TypeError, "end"),
    (
        ow.per_group_warmup,
        dict(optimizer_factory=optax.sgd, schedules={}, param_labels=lambda p: p),
        ValueError,
        "schedules",
    ),
    (
        ow.per_group_warmup,
        dict(optimizer_factory=optax.sgd, schedules=[0.1], param_labels=lambda p: p),
        ValueError,
        "schedules",
    ),
    (
        ow.per_group_warmup,
        dict(optimizer_factory=optax.sgd, schedules={"a": "fast"}, param_labels=lambda p: p),
        TypeError,
        "schedules",
    ),
    (
        ow.per_group_warmup,
        dict(optimizer_factory=optax.sgd, schedules={"a": 0.1}, param_labels=lambda p: p, inject="yes"),
        TypeError,
        "inject",
    ),
    (ow.warmup_stable_decay_cycles_schedule, dict(init_value=0.0, peak_value=1.0, warmup_steps=10), ValueError,
     "cycle_lengths"),
    (ow.warmup_stable_decay_cycles_schedule,
     dict(init_value=0.0, peak_value=1.0, warmup_steps=10, cycle_lengths=[100], boundaries=[100]), ValueError,
     "boundaries"),
    (ow.warmup_stable_decay_cycles_schedule, dict(init_value=0.0, peak_value=1.0, warmup_steps=10, cycle_lengths=[]),
     ValueError, "cycle_lengths"),
    (ow.warmup_stable_decay_cycles_schedule,
     dict(init_value=0.0, peak_value=1.0, warmup_steps=10, cycle_lengths=[100, 0]), ValueError, "cycle_lengths[1]"),
    (ow.warmup_stable_decay_cycles_schedule,
     dict(init_value=0.0, peak_value=1.0, warmup_steps=10, cycle_lengths=[100, "50"]), TypeError, "cycle_lengths[1]"),
    (ow.warmup_stable_decay_cycles_schedule,
     dict(init_value=0.0, peak_value=1.0, warmup_steps=10, boundaries=[100, 50]), ValueError, "boundaries[1]"),
    (ow.warmup_stable_decay_cycles_schedule,
     dict(init_value=0.0, peak_value=1.0, warmup_steps=10, boundaries=[100, math.inf]), ValueError, "boundaries[1]"),
    (ow.parse_batch_size_schedule, dict(text=""), ValueError, "schedule"),
    (ow.parse_batch_size_schedule, dict(text="0:768 250X:1536"), ValueError, "250X:1536"),
    (ow.parse_batch_size_schedule, dict(text=[(0, 768)]), TypeError, "schedule"),
    (ow.batch_size_ramp, dict(schedule="10:8"), ValueError, "schedule[0]"),
    (ow.batch_size_ramp, dict(schedule=[(0, 8), (10, 16), (5, 32)]), ValueError, "schedule[2]"),
    (ow.batch_size_ramp, dict(schedule=[(0, 8), (10, math.nan)]), ValueError, "schedule[1]"),
    (ow.batch_size_ramp, dict(schedule=[(0, 8), (10, "16")]), TypeError, "schedule[1]"),
    (ow.batch_size_ramp, dict(schedule=[(0, 12)], micro_batch_size=8), ValueError, "micro_batch_size"),
    (ow.batch_size_ramp, dict(schedule=[]), ValueError, "schedule"),
    (ow.skip_step_on_spikes, dict(inner=optax.sgd(0.1), window=1), ValueError, "window"),
    (ow.skip_step_on_spikes, dict(inner=optax.sgd(0.1), window=12.5), TypeError, "window"),
    (ow.skip_step_on_spikes, dict(inner=optax.sgd(0.1), window=None), TypeError, "window"),
    # Cross-argument checks name both arguments.
    (
        ow.warmup_cosine_decay_schedule,
        dict(init_value=0.0, peak_value=1.0, warmup_steps=100, decay_steps=100),
        ValueError,
        "warmup_steps",
    ),
    (
        ow.linear_onecycle_schedule,
        dict(transition_steps=100, peak_value=1.0, pct_start=0.9, pct_final=0.5),
        ValueError,
        "pct_start",
    ),
    (ow.linear_onecycle_schedule, dict(transition_steps=100, peak_value=1.0, pct_final=1.5), ValueError, "pct_final"),
    (
        ow.warmup_schedule,
        dict(init_value=0.0, peak_value=1.0, warmup_steps=10, warmup_shape="geometric"),
        ValueError,
        "init_value",
    ),
    # The power scheduler: tokens from seq_len or tokens_per_step (consistent if both), decay needs a total.
    (
        ow.power_schedule,
        dict(peak_value=0.02, warmup_steps=10, batch_size=32),
        ValueError,
        "seq_len",
    ),
    (
        ow.power_schedule,
        dict(peak_value=0.02, warmup_steps=10, batch_size=32, seq_len=128, tokens_per_step=1000),
        ValueError,
        "tokens_per_step",
    ),
    (
        ow.power_schedule,
        dict(peak_value=0.02, warmup_steps=10, decay_steps=5, batch_size=32, seq_len=128),
        ValueError,
        "total_steps",
    ),
    (
        ow.power_schedule,
        dict(peak_value=0.02, warmup_steps=60, total_steps=100, decay_steps=50, batch_size=32, seq_len=128),
        ValueError,
        "total_steps",
    ),
    (
        ow.warmup_stable_decay_schedule,
        dict(
            init_value=0.1,
            peak_value=1.0,
            warmup_steps=10,
            stable_steps=10,
            decay_steps=10,
            end_value=0.0,
            decay_shape="exponential",
        ),
        ValueError,
        "end_value",
    ),
]


@pytest.mark.parametrize(
    ("fn", "kwargs", "error", "arg"),
    STRUCTURE_CASES,
    ids=[f"{c[0].__name__}-{c[3]}-{i}" for i, c in enumerate(STRUCTURE_CASES)],
)
def test_bad_structured_argument_raises_naming_it(fn, kwargs, error, arg):
    with pytest.raises(error, match=re.escape(arg)):
        fn(**kwargs)


@pytest.mark.parametrize("count", ["3", None, True, 1 + 2j, np.complex64(1.0), jnp.array([True])])
def test_bad_count_raises(count):
    schedule = ow.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100)
    with pytest.raises(TypeError):
        schedule(count)


# --- the same values, traced ---------------------------------------------------------------------------------------

# Every hostile number a sweep could feed in; the schedule must stay finite for each (clamping rules in
# the README section "Guarantees").
TRACED_HOSTILE = np.asarray(
    [np.nan, np.inf, -np.inf, -1.0, -1e-9, 0.0, 1e-45, 1e-30, 1e30, 3e38, -3e38, 0.5, 2**31, 1e12], np.float32
)


def _run_traced(name, built):
    if ROLE.get(name, "schedule") != "transformation":
        return built if ROLE.get(name) == "number" else built(COUNTS)
    params = {"a": jnp.ones(3)}
    state = built.init(params)
    outs = []
    for scale in (1.0, 100.0, 1.0):
        updates, state = built.update(jax.tree.map(lambda p, s=scale: s * p, params), state, params)
        outs.append(updates["a"])
    return jnp.concatenate([jnp.ravel(o) for o in outs])


def _traced_cases():
    for name, (_, args) in TABLE.items():
        numeric = [arg for arg, (_, kind) in args.items() if kind in NUMERIC]
        if numeric:
            yield pytest.param(name, numeric, id=name)


@pytest.mark.parametrize(("name", "numeric"), list(_traced_cases()))
def test_traced_hostile_values_give_finite_results(name, numeric):
    """Each numeric argument in turn takes every hostile value, traced; one compile per function (a vmap over the
    table of (argument, value) rows), all other arguments traced at their defaults."""
    fn = TABLE[name][0]
    defaults = _defaults(name)
    static = {k: v for k, v in defaults.items() if k not in numeric}
    rows = {k: [] for k in numeric}
    for arg in numeric:
        for value in TRACED_HOSTILE:
            for k in numeric:
                default = defaults[k] if defaults[k] is not None else 1.0
                rows[k].append(value if k == arg else np.float32(default))
    batch = {k: np.asarray(v, np.float32) for k, v in rows.items()}

    def evaluate(hp):
        return jnp.asarray(_run_traced(name, fn(**static, **hp)))

    out = np.asarray(jax.jit(jax.vmap(evaluate))(batch), np.float64)
    assert out.shape[0] == len(numeric) * len(TRACED_HOSTILE)
    out = out.reshape(out.shape[0], -1)
    bad = ~np.isfinite(out)
    where = [(numeric[i // len(TRACED_HOSTILE)], TRACED_HOSTILE[i % len(TRACED_HOSTILE)]) for i in np.where(bad)[0]]
    assert not bad.any(), f"non-finite for (argument, traced value): {sorted(set(where))[:10]}"
    # Every value is clamped to +-1e30 (transformations: updates of a unit gradient times a clamped factor).
    if ROLE.get(name, "schedule") == "schedule":
        assert np.abs(out).max() <= 1e30 * 1.0001


def test_traced_hostile_values_in_optax_optimizer():
    """A traced NaN warmup length inside optax.adamw: the parameters stay finite."""

    def run(warmup_steps):
        opt = optax.adamw(ow.warmup_cosine_decay_schedule(0.0, 1e-3, warmup_steps, 100.0))
        params = jnp.ones(3)
        state = opt.init(params)
        for _ in range(3):
            updates, state = opt.update(jnp.ones(3), state, params)
            params = optax.apply_updates(params, updates)
        return params

    out = jax.jit(jax.vmap(run))(jnp.asarray([jnp.nan, jnp.inf, -1.0, 1e30, 200.0]))
    assert np.isfinite(np.asarray(out)).all()


@pytest.mark.parametrize("traced", [False, True])
def test_onecycle_end_value_is_worked_out_before_the_clamp(traced):
    # P = 1e30, d = 0.5, f = 2: P / d = 2e30 is held at the 1e30 clamp, but the end value P / (d f) = 1e30 is
    # within it and must not be derived from the clamped 1e30 (which gave 5e29, below every breakpoint).
    def values(peak, div, final_div):
        s = ow.linear_onecycle_schedule(10, peak, 0.0, 0.0, div, final_div)
        return jnp.stack([s(0), s(5), s(10)])

    args = (np.float32(1e30), np.float32(0.5), np.float32(2.0))
    out = np.asarray(jax.jit(values)(*args) if traced else values(*args))
    np.testing.assert_allclose(out, [1e30, 1e30, 1e30], rtol=1e-6)
    # The same arithmetic in range: 10 / 0.5 = 20 down to 10 / (0.5 * 4) = 5.
    small = np.asarray(values(np.float32(10.0), np.float32(0.5), np.float32(4.0)))
    np.testing.assert_allclose(small, [20.0, 12.5, 5.0], rtol=1e-6)
