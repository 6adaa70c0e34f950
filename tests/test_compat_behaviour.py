"""optax_warmup.compat: argument errors, traced hyperparameters, counts, dtypes and hand-worked peer quirks.

The peer values themselves are checked in ``test_compat_golden.py``; the expectations here are worked out by
hand from the peers' code (cited in each test) or are properties (finite, float32, count-0 value).
"""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optax_warmup.compat import (
    hf_schedule,
    keras_schedule,
    pytorch_warmup_schedule,
    timm_schedule,
    torch_schedule,
)

# One representative schedule per peer family, as (builder, kwargs).
REPRESENTATIVES = [
    (hf_schedule, dict(name="cosine", learning_rate=0.1, num_warmup_steps=10, num_training_steps=100)),
    (
        hf_schedule,
        dict(name="polynomial", learning_rate=0.1, num_warmup_steps=10, num_training_steps=100, power=2.0),
    ),
    (
        hf_schedule,
        dict(
            name="warmup_stable_decay",
            learning_rate=0.1,
            num_warmup_steps=10,
            num_decay_steps=30,
            num_training_steps=100,
            decay_type="1-sqrt",
            min_lr_ratio=0.1,
        ),
    ),
    (torch_schedule, dict(name="OneCycleLR", max_lr=0.1, total_steps=100, cycle_momentum=False)),
    (torch_schedule, dict(name="CosineAnnealingWarmRestarts", learning_rate=0.1, T_0=10, T_mult=2)),
    (
        timm_schedule,
        dict(name="cosine", learning_rate=0.1, t_initial=30, cycle_mul=2.0, cycle_limit=3, warmup_t=5),
    ),
    (keras_schedule, dict(name="CosineDecayRestarts", initial_learning_rate=0.1, first_decay_steps=10)),
    (pytorch_warmup_schedule, dict(name="RAdamWarmup", learning_rate=0.1, beta2=0.99)),
]


def _id(rep):
    return f"{rep[0].__name__}-{rep[1]['name']}"


# --- counts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rep", REPRESENTATIVES, ids=_id)
def test_negative_counts_give_the_count_zero_value(rep):
    builder, kwargs = rep
    s = builder(**kwargs)
    assert float(s(-5)) == float(s(0))
    assert float(s(jnp.int32(-1))) == float(s(0))


@pytest.mark.parametrize("rep", REPRESENTATIVES, ids=_id)
def test_int_and_float_counts_agree_and_output_is_float32(rep):
    builder, kwargs = rep
    s = builder(**kwargs)
    ints = s(jnp.arange(0, 120, 7, dtype=jnp.int32))
    floats = s(jnp.arange(0, 120, 7, dtype=jnp.float32))
    assert ints.dtype == floats.dtype == jnp.float32
    np.testing.assert_array_equal(ints, floats)


@pytest.mark.parametrize("rep", REPRESENTATIVES[:4], ids=_id)
def test_float64_under_x64(rep):
    builder, kwargs = rep
    with jax.enable_x64(True):
        value = builder(**kwargs)(jnp.int64(12))
        assert value.dtype == jnp.float64


# --- traced hyperparameters --------------------------------------------------------------------------------

# (builder, fixed kwargs, the traced argument)
TRACED = [
    (hf_schedule, dict(name="linear", learning_rate=0.1, num_training_steps=100), "num_warmup_steps"),
    (hf_schedule, dict(name="cosine", learning_rate=0.1, num_warmup_steps=10), "num_training_steps"),
    (
        hf_schedule,
        dict(name="polynomial", learning_rate=0.1, num_warmup_steps=10, num_training_steps=100),
        "power",
    ),
    (hf_schedule, dict(name="inverse_sqrt", learning_rate=0.1, num_warmup_steps=10), "timescale"),
    (
        hf_schedule,
        dict(name="warmup_stable_decay", learning_rate=0.1, num_warmup_steps=10, num_training_steps=100),
        "num_decay_steps",
    ),
    (torch_schedule, dict(name="CosineAnnealingLR", learning_rate=0.1), "T_max"),
    (torch_schedule, dict(name="CosineAnnealingWarmRestarts", learning_rate=0.1, T_0=5), "T_mult"),
    (torch_schedule, dict(name="StepLR", learning_rate=0.1), "step_size"),
    (torch_schedule, dict(name="OneCycleLR", max_lr=0.1, cycle_momentum=False), "total_steps"),
    (torch_schedule, dict(name="CyclicLR", base_lr=0.01, max_lr=0.1, cycle_momentum=False), "step_size_up"),
    (torch_schedule, dict(name="LinearLR", learning_rate=0.1), "total_iters"),
    (timm_schedule, dict(name="cosine", learning_rate=0.1, t_initial=20, cycle_limit=3), "cycle_mul"),
    (timm_schedule, dict(name="poly", learning_rate=0.1, t_initial=20), "warmup_t"),
    (timm_schedule, dict(name="tanh", learning_rate=0.1), "t_initial"),
    (keras_schedule, dict(name="CosineDecay", initial_learning_rate=0.0, warmup_target=0.1), "decay_steps"),
    (
        keras_schedule,
        dict(name="CosineDecayRestarts", initial_learning_rate=0.1, first_decay_steps=10),
        "t_mul",
    ),
    (keras_schedule, dict(name="PolynomialDecay", initial_learning_rate=0.1, cycle=True), "decay_steps"),
    (pytorch_warmup_schedule, dict(name="LinearWarmup", learning_rate=0.1), "warmup_period"),
    (pytorch_warmup_schedule, dict(name="UntunedExponentialWarmup", learning_rate=0.1), "beta2"),
    (pytorch_warmup_schedule, dict(name="RAdamWarmup", learning_rate=0.1), "beta2"),
]


def _tid(t):
    return f"{t[0].__name__}-{t[1]['name']}-{t[2]}"


@pytest.mark.parametrize("case", TRACED, ids=_tid)
def test_traced_bad_values_never_give_nan(case):
    builder, fixed, key = case
    counts = jnp.asarray([0, 1, 5, 20, 99, 100, 101, 10_000], jnp.float32)

    def run(x):
        return builder(**fixed, **{key: x})(counts)

    bad = jnp.asarray([jnp.nan, -1.0, 0.0, jnp.inf, 1e30, 0.5], jnp.float32)
    values = jax.jit(jax.vmap(run))(bad)
    assert bool(jnp.all(jnp.isfinite(values))), values


@pytest.mark.parametrize("case", TRACED, ids=_tid)
def test_traced_argument_matches_the_concrete_one(case):
    builder, fixed, key = case
    good = {"beta2": 0.99, "t_mul": 2.0, "T_mult": 2.0, "cycle_mul": 2.0, "power": 2.0}.get(key, 40.0)
    counts = jnp.arange(0, 130, 3)
    concrete = builder(**fixed, **{key: good})(counts)
    traced = jax.jit(lambda x: builder(**fixed, **{key: x})(counts))(jnp.float32(good))
    # Untuned periods are int()-truncated in float64 for a concrete beta2 (int(1 / (1 - 0.99)) = 99) and in
    # float32 when traced (100 for float32(0.99)): the one documented difference.
    rtol = 1e-2 if key == "beta2" else 1e-5
    np.testing.assert_allclose(traced, concrete, rtol=rtol, atol=1e-8)


@pytest.mark.parametrize("rep", REPRESENTATIVES, ids=_id)
def test_grad_wrt_learning_rate_is_finite_and_linear(rep):
    builder, kwargs = rep
    key = "initial_learning_rate" if "initial_learning_rate" in kwargs else "learning_rate"
    if key not in kwargs:
        key = "max_lr"
    fixed = {k: v for k, v in kwargs.items() if k != key}
    count = 7.0
    g = jax.grad(lambda lr: builder(**fixed, **{key: lr})(count))(0.1)
    # Every peer schedule is proportional to its base LR (value / lr), except where lr_min-like floors enter.
    assert np.isfinite(float(g))
    np.testing.assert_allclose(float(g), float(builder(**kwargs)(count)) / 0.1, rtol=1e-5)


def test_grad_wrt_warmup_length_is_finite():
    g = jax.grad(lambda w: hf_schedule("linear", 1.0, w, 100)(5.0))(10.0)
    assert math.isclose(float(g), -5.0 / 100.0, rel_tol=1e-5)  # d/dW (k / W) = -k / W**2


# --- hand-worked values and quirks -------------------------------------------------------------------------


def test_hf_cosine_is_periodic_past_training_but_restarts_clamp():
    # HF: max(0, 0.5 * (1 + cos(pi * 2 * 0.5 * p))) with p = (k - W) / (T - W) not clamped: k = T + 5 gives
    # p = 1.05.
    s = hf_schedule("cosine", 1.0, 10, 110)
    assert math.isclose(float(s(115)), 0.5 * (1 + math.cos(math.pi * 1.05)), rel_tol=1e-5)
    assert float(hf_schedule("cosine_with_restarts", 1.0, 10, 110)(115)) == 0.0


def test_hf_warmups_start_at_zero_except_cosine_warmup_with_min_lr():
    assert float(hf_schedule("linear", 1.0, 4, 10)(0)) == 0.0
    assert float(hf_schedule("cosine_warmup_with_min_lr", 1.0, 4, 10, min_lr_rate=0.1)(0)) == 0.25  # (0+1)/4


def test_hf_constant_with_warmup_refuses_the_scheduler_kwargs_hf_drops():
    # HF's get_scheduler forwards only num_warmup_steps to constant_with_warmup: num_cycles would do nothing.
    with pytest.raises(ValueError, match="HF ignores scheduler_specific_kwargs"):
        hf_schedule("constant_with_warmup", 1.0, 4, num_cycles=3.0)
    a = hf_schedule("constant_with_warmup", 1.0, 4)
    assert [float(a(k)) for k in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_hf_wsd_stable_steps_win_over_training_steps():
    # W=2, S=1, D=2 linear/linear, m=0: [0, .5, 1, 1, .5, 0, 0]; num_training_steps=100 is ignored.
    with pytest.warns(UserWarning, match="num_stable_steps is used"):
        s = hf_schedule(
            "warmup_stable_decay", 1.0, 2, 100, num_decay_steps=2, num_stable_steps=1, decay_type="linear"
        )
    assert [float(s(k)) for k in range(7)] == [0.0, 0.5, 1.0, 1.0, 0.5, 0.0, 0.0]


def test_torch_zero_total_iters_follow_the_recursive_forms():
    # LinearLR.get_lr: e == 0 -> lr * start_factor; e > total_iters (=0) -> unchanged: start_factor forever.
    assert float(torch_schedule("LinearLR", 1.0, start_factor=0.5, total_iters=0)(50)) == 0.5
    # ConstantLR.get_lr: e == 0 -> lr * factor; e != total_iters -> unchanged.
    assert float(torch_schedule("ConstantLR", 1.0, factor=0.25, total_iters=0)(50)) == 0.25
    # PolynomialLR.get_lr: initial or e > total_iters -> unchanged: the base LR forever.
    assert float(torch_schedule("PolynomialLR", 1.0, total_iters=0)(50)) == 1.0


def test_torch_one_cycle_holds_its_final_value_past_total_steps():
    s = torch_schedule("OneCycleLR", max_lr=1.0, total_steps=10, anneal_strategy="linear", cycle_momentum=False)
    # torch at e = N = 10 extrapolates the last phase: (min - max) * 8/7 + max with max=1, min=4e-6 (the peer
    # survey derives -0.142853); past N torch raises and we hold min_lr = 1 / (25 * 1e4).
    assert math.isclose(float(s(10)), (4e-6 - 1.0) * 8 / 7 + 1.0, rel_tol=1e-5)
    assert math.isclose(float(s(11)), 4e-6, rel_tol=1e-5)


def test_torch_sequential_restarts_each_sub_schedule_at_its_milestone():
    warm = ("LinearLR", {"start_factor": 0.5, "total_iters": 2})
    s = torch_schedule("SequentialLR", 1.0, schedulers=[warm, ("ExponentialLR", {"gamma": 0.5})], milestones=[2])
    assert [float(s(k)) for k in range(5)] == [0.5, 0.75, 1.0, 0.5, 0.25]


def test_timm_first_update_without_warmup_uses_the_optimizer_lr():
    # multistep decays at t + 1 >= milestone, so _get_lr(0) with decay_t=[1] is already decayed, but timm
    # writes nothing before the first update: count 0 is the base LR, count 1 the decayed one.
    s = timm_schedule("multistep", 1.0, decay_t=[1], decay_rate=0.1)
    assert [round(float(s(k)), 6) for k in range(3)] == [1.0, 0.1, 0.1]


def test_keras_piecewise_boundaries_belong_to_the_left_piece():
    s = keras_schedule("PiecewiseConstantDecay", boundaries=[2, 4], values=[1.0, 0.5, 0.1])
    np.testing.assert_array_equal(s(jnp.arange(7)), np.float32([1.0, 1.0, 1.0, 0.5, 0.5, 0.1, 0.1]))


def test_pytorch_warmup_untuned_period_truncates_like_int():
    # int(2 / (1 - 0.999)) == 1999 (1 - 0.999 is a hair above 1e-3), so the LR is full at count 1998.
    s = pytorch_warmup_schedule("UntunedLinearWarmup", 1.0, beta2=0.999)
    assert float(s(1998)) == 1.0
    assert math.isclose(float(s(1997)), 1998 / 1999, rel_tol=1e-6)


def test_pytorch_warmup_over_a_base_schedule_multiplies_it():
    base = torch_schedule("StepLR", 1.0, step_size=3, gamma=0.5)
    s = pytorch_warmup_schedule("LinearWarmup", base, warmup_period=4)
    assert [float(s(k)) for k in range(6)] == [0.25, 0.5, 0.75, 0.5, 0.5, 0.5]


# --- argument errors ---------------------------------------------------------------------------------------

ERRORS = [
    # (builder, kwargs, words the message must contain)
    (hf_schedule, dict(name="nope", learning_rate=0.1), "name"),
    (hf_schedule, dict(name="greedy", learning_rate=0.1, num_training_steps=3), "HF ignores"),
    (hf_schedule, dict(name="reduce_lr_on_plateau", learning_rate=0.1, num_warmup_steps=5), "HF ignores"),
    (hf_schedule, dict(name="linear", learning_rate=0.1, num_warmup_steps=10), "num_training_steps"),
    (hf_schedule, dict(name="cosine", learning_rate=0.1), "num_warmup_steps"),
    (
        hf_schedule,
        dict(name="linear", learning_rate=0.1, num_warmup_steps=-1, num_training_steps=10),
        "num_warmup_steps",
    ),
    (
        hf_schedule,
        dict(name="polynomial", learning_rate=0.1, num_warmup_steps=1, num_training_steps=9, lr_end=0.2),
        "lr_end",
    ),
    (
        hf_schedule,
        dict(name="polynomial", learning_rate=0.1, num_warmup_steps=9, num_training_steps=9),
        "num_warmup_steps",
    ),
    (hf_schedule, dict(name="inverse_sqrt", learning_rate=0.1, num_warmup_steps=9, timescale=0), "timescale"),
    (
        hf_schedule,
        dict(name="cosine_with_min_lr", learning_rate=0.1, num_warmup_steps=1, num_training_steps=9),
        "min_lr",
    ),
    (
        hf_schedule,
        dict(
            name="cosine_with_min_lr",
            learning_rate=0.1,
            num_warmup_steps=1,
            num_training_steps=9,
            min_lr=0.01,
            min_lr_rate=0.1,
        ),
        "Only one",
    ),
    (
        hf_schedule,
        dict(name="warmup_stable_decay", learning_rate=0.1, num_warmup_steps=1, num_training_steps=9),
        "num_decay_steps",
    ),
    (
        hf_schedule,
        dict(name="warmup_stable_decay", learning_rate=0.1, num_warmup_steps=1, num_decay_steps=3),
        "num_training_steps",
    ),
    (
        hf_schedule,
        dict(
            name="warmup_stable_decay",
            learning_rate=0.1,
            num_warmup_steps=1,
            num_training_steps=9,
            num_decay_steps=3,
            decay_type="exp",
        ),
        "decay type",
    ),
    (
        hf_schedule,
        dict(name="linear", learning_rate=float("nan"), num_warmup_steps=1, num_training_steps=9),
        "learning_rate",
    ),
    (torch_schedule, dict(name="LambdaR", learning_rate=0.1), "name"),
    (torch_schedule, dict(name="LinearLR", learning_rate=0.1, start_factor=0.0), "start_factor"),
    (torch_schedule, dict(name="LinearLR", learning_rate=0.1, end_factor=1.5), "end_factor"),
    (torch_schedule, dict(name="ConstantLR", learning_rate=0.1, factor=2.0), "factor"),
    (torch_schedule, dict(name="CosineAnnealingLR", learning_rate=0.1, T_max=0), "T_max"),
    (
        torch_schedule,
        dict(name="CosineAnnealingWarmRestarts", learning_rate=0.1, T_0=10, T_mult=1.5),
        "T_mult",
    ),
    (torch_schedule, dict(name="CosineAnnealingWarmRestarts", learning_rate=0.1, T_0=0), "T_0"),
    (torch_schedule, dict(name="OneCycleLR", max_lr=0.1, cycle_momentum=False), "total_steps"),
    (
        torch_schedule,
        dict(name="OneCycleLR", max_lr=0.1, total_steps=10, anneal_strategy="exp", cycle_momentum=False),
        "anneal_strategy",
    ),
    (
        torch_schedule,
        dict(name="OneCycleLR", max_lr=0.1, total_steps=10, pct_start=1.5, cycle_momentum=False),
        "pct_start",
    ),
    (torch_schedule, dict(name="OneCycleLR", max_lr=0.1, total_steps=10, pct_start=0.1, cycle_momentum=False), "empty"),
    (torch_schedule, dict(name="CyclicLR", base_lr=0.01, max_lr=0.1, mode="sine", cycle_momentum=False), "mode"),
    (torch_schedule, dict(name="StepLR", learning_rate=0.1, step_size=0), "step_size"),
    (
        torch_schedule,
        dict(name="SequentialLR", learning_rate=0.1, schedulers=[("StepLR", {"step_size": 2})], milestones=[3]),
        "milestone",
    ),
    (timm_schedule, dict(name="plateaux", learning_rate=0.1), "name"),
    (timm_schedule, dict(name="cosine", learning_rate=0.1), "t_initial"),
    (timm_schedule, dict(name="cosine", learning_rate=0.1, t_initial=0), "t_initial"),
    (timm_schedule, dict(name="cosine", learning_rate=0.1, t_initial=10, cycle_mul=0.5), "cycle_mul"),
    (timm_schedule, dict(name="tanh", learning_rate=0.1, t_initial=10, lb=3.0, ub=-7.0), "ub"),
    (timm_schedule, dict(name="cosine", learning_rate=0.1, t_initial=10, noise_range_t=5), "noise_range_t"),
    (timm_schedule, dict(name="step", learning_rate=0.1, decay_t=10, warmup_t=-2), "warmup_t"),
    (keras_schedule, dict(name="CosineDecay", initial_learning_rate=0.1, decay_steps=0), "decay_steps"),
    (
        keras_schedule,
        dict(name="CosineDecayRestarts", initial_learning_rate=0.1, first_decay_steps=-1),
        "first_decay_steps",
    ),
    (keras_schedule, dict(name="PiecewiseConstantDecay", boundaries=[1, 2], values=[1.0, 0.5]), "boundaries"),
    (keras_schedule, dict(name="LearningRateSchedule"), "name"),
    (pytorch_warmup_schedule, dict(name="LinearWarmup", learning_rate=0.1, warmup_period=0), "warmup_period"),
    (pytorch_warmup_schedule, dict(name="LinearWarmup", learning_rate=0.1), "warmup_period"),
    (pytorch_warmup_schedule, dict(name="RAdamWarmup", learning_rate=0.1, beta2=0.5), "beta2"),
    (pytorch_warmup_schedule, dict(name="UntunedLinearWarmup", learning_rate=0.1, beta2=1.0), "beta2"),
]


@pytest.mark.parametrize("case", ERRORS, ids=lambda c: f"{c[0].__name__}-{c[1]['name']}-{c[2]}")
def test_bad_concrete_arguments_raise_value_error_naming_them(case):
    builder, kwargs, words = case
    with pytest.raises(ValueError, match=words):
        builder(**kwargs)


@pytest.mark.parametrize(
    "builder, kwargs",
    [
        (
            hf_schedule,
            dict(name="cosine", learning_rate=0.1, num_warmup_steps=1, num_training_steps=9, cycles=2),
        ),
        (torch_schedule, dict(name="StepLR", learning_rate=0.1, step_size=2, gama=0.5)),
        (timm_schedule, dict(name="cosine", learning_rate=0.1, t_initial=10, decay_rate=0.5)),
        (
            keras_schedule,
            dict(name="ExponentialDecay", initial_learning_rate=0.1, decay_steps=2, decay_rate=0.5, a=1),
        ),
        (pytorch_warmup_schedule, dict(name="LinearWarmup", learning_rate=0.1, warmup_period=3, beta2=0.9)),
    ],
)
def test_unknown_keywords_raise_type_error(builder, kwargs):
    with pytest.raises(TypeError):
        builder(**kwargs)


# --------------------------------------------------------------------------- ChainedScheduler beyond products
COS_CHAIN = [("LinearLR", {"start_factor": 0.1, "total_iters": 20}), ("CosineAnnealingLR", {"T_max": 100})]


def _torch_chain_by_hand(base, steps, t_max, warm=20, start=0.1):
    """torch's ChainedScheduler([LinearLR, CosineAnnealingLR]) stepped one epoch at a time, in float64."""
    lr = base * start  # the constructors' initial steps: LinearLR's start factor, the cosine's identity
    out = [lr]
    for e in range(1, steps):
        if e <= warm:  # LinearLR's recursive ratio
            lr *= 1 + (1 - start) / (warm * start + (e - 1) * (1 - start))
        if (e - 1 - t_max) % (2 * t_max) == 0:
            lr += base * (1 - math.cos(math.pi / t_max)) / 2
        else:
            lr *= (1 + math.cos(math.pi * e / t_max)) / (1 + math.cos(math.pi * (e - 1) / t_max))
        out.append(lr)
    return np.array(out)


def test_chained_cosine_zeroes_then_restarts_from_the_base_lr_as_torch_steps_it():
    # Past T_max the warmup's factor is gone: the LR hit 0 at T_max, and the restart adds b (1 - cos(pi/T)) / 2.
    got = np.asarray(torch_schedule("ChainedScheduler", 0.1, schedulers=COS_CHAIN)(jnp.arange(450)))
    want = _torch_chain_by_hand(0.1, 450, 100)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-9)
    assert got[100] == 0.0 and got[300] < 1e-8
    np.testing.assert_allclose(got[200], 0.1, rtol=1e-6)  # the peak after the restart is the base LR, not 0.1 * 1


def test_chained_cosine_is_traceable_vmappable_and_differentiable():
    def lr(t_max, b, e):
        chain = [COS_CHAIN[0], ("CosineAnnealingLR", {"T_max": t_max})]
        return torch_schedule("ChainedScheduler", b, schedulers=chain)(e)

    counts = jnp.arange(0, 400, 7)
    sweep = jax.jit(jax.vmap(lambda t: lr(t, 0.1, counts)))(jnp.array([60.0, 100.0]))
    for row, t in zip(np.asarray(sweep), (60, 100), strict=True):
        np.testing.assert_allclose(row, _torch_chain_by_hand(0.1, 400, t)[::7], rtol=2e-5, atol=1e-9)
    grads = jax.vmap(jax.grad(lambda t, e: lr(t, 0.1, e)), in_axes=(None, 0))(100.0, counts)
    assert np.all(np.isfinite(np.asarray(grads)))


def test_lambda_lr_in_a_chain_overwrites_what_came_before_it():
    # torch: LambdaLR sets b * lambda(e) at every step, so the ExponentialLR before it is lost and the one after
    # it applies its ratio once per step (not gamma**e).
    chain = [("ExponentialLR", {"gamma": 0.5}), ("LambdaLR", {"lr_lambda": lambda e: 1.0 / (e + 1.0)}),
             ("ExponentialLR", {"gamma": 0.9})]
    got = np.asarray(torch_schedule("ChainedScheduler", 0.2, schedulers=chain)(jnp.arange(5)))
    np.testing.assert_allclose(got, [0.2, 0.2 / 2 * 0.9, 0.2 / 3 * 0.9, 0.2 / 4 * 0.9, 0.2 / 5 * 0.9], rtol=1e-6)


@pytest.mark.parametrize(
    ("chain", "words"),
    [
        ([("CosineAnnealingLR", {"T_max": 50, "eta_min": 0.01}), ("StepLR", {"step_size": 5})],
         "schedulers[0]: CosineAnnealingLR in a ChainedScheduler"),
        ([("CosineAnnealingLR", {"T_max": 50}), ("CosineAnnealingLR", {"T_max": 20})], "is a second one"),
        ([("StepLR", {"step_size": 5}), ("OneCycleLR", {"max_lr": 0.1, "total_steps": 10})],
         "schedulers[1]: OneCycleLR cannot be a ChainedScheduler child"),
        ([("ChainedScheduler", {"schedulers": [("SWALR", {"swa_lr": 0.1})]})],
         "schedulers[0].schedulers[0]: SWALR cannot"),
    ],
)
def test_chains_without_a_closed_form_are_refused_in_one_line(chain, words):
    with pytest.raises(ValueError, match=re.escape(words)) as info:
        torch_schedule("ChainedScheduler", 0.1, schedulers=chain)
    assert "\n" not in str(info.value)


def test_chained_cosine_with_traced_eta_min_is_refused_at_construction():
    chain = lambda eta: [("StepLR", {"step_size": 5}), ("CosineAnnealingLR", {"T_max": 50, "eta_min": eta})]  # noqa: E731
    with pytest.raises(ValueError, match="concrete eta_min=0"):
        jax.jit(lambda eta: torch_schedule("ChainedScheduler", 0.1, schedulers=chain(eta))(3))(0.0)
    # After a LambdaLR the cosine steps from a known LR: any eta_min, traced too.
    reset = [
        ("LambdaLR", {"lr_lambda": lambda e: jnp.ones_like(e)}),
        ("CosineAnnealingLR", {"T_max": 50, "eta_min": 0.01}),
    ]
    np.testing.assert_allclose(torch_schedule("ChainedScheduler", 0.1, schedulers=reset)(0), 0.1)
