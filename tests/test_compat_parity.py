"""The peers' lambda, chained and metric-driven schedulers and their momentum cycling, against recorded values.

``tests/data/compat_golden_parity.json`` is written by ``tools/make_golden.py`` (``--only parity``) from torch,
transformers and timm (versions in the file); no peer is imported here. A lambda is stored as the text of an
expression in ``e``, evaluated here with ``jax.numpy`` functions under the names the tool gives Python's.

Tolerance as in ``test_compat_golden.py``: ``rtol = 1e-5`` plus ``1e-7 * max|value|``.
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow
from optax_warmup import compat

GOLDEN = json.loads((pathlib.Path(__file__).parent / "data" / "compat_golden_parity.json").read_text())
CASES = GOLDEN["cases"]
LAMBDA_NAMESPACE = dict(
    min=jnp.minimum, max=jnp.maximum, cos=jnp.cos, sqrt=jnp.sqrt, pi=jnp.pi, floor=jnp.floor
)


def _lambda(expr: str):
    f = eval("lambda e: " + expr, dict(LAMBDA_NAMESPACE))  # our own fixed expressions
    return lambda e: jnp.asarray(f(e), jnp.float32) * jnp.ones_like(e)


def _jax_args(args: dict) -> dict:
    out = dict(args)
    if "lr_lambda" in out:
        out["lr_lambda"] = _lambda(out["lr_lambda"])
    if "schedulers" in out:
        out["schedulers"] = [(name, _jax_args(kwargs)) for name, kwargs in out["schedulers"]]
    return out


def _case_id(case) -> str:
    args = ",".join(f"{k}={v}" for k, v in case["args"].items() if k != "schedulers")
    kids = "+".join(n for n, _ in case["args"].get("schedulers", []))
    return f"{case['peer']}-{case['name']}-{kids or args}"


def assert_matches(got, case, rtol=1e-5):
    want = np.asarray(case["values"], dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    atol = 1e-7 * np.max(np.abs(want))
    bad = np.abs(got - want) > rtol * np.abs(want) + atol
    if bad.any():
        i = int(np.argmax(bad))
        raise AssertionError(
            f"{_case_id(case)}: {bad.sum()} of {bad.size} values differ; first at count {i}: got {got[i]!r}, "
            f"peer gives {want[i]!r}"
        )


def _plateau(case):
    args = dict(case["args"])
    if case["peer"] == "torch_plateau":
        return compat.torch_reduce_lr_on_plateau(**args)
    if case["peer"] == "hf":
        return compat.hf_schedule(case["name"], **args)
    if case["peer"] == "keras_plateau":
        return compat.keras_reduce_lr_on_plateau(**args)
    return compat.timm_schedule("plateau", **args)


def run_plateau(tx, metrics):
    """The rate each update used, driving ``tx`` with ``value=metrics[k]`` at update ``k`` (one compiled scan)."""
    params = jnp.zeros(2)

    def step(state, metric):
        _, state = tx.update(jnp.ones(2), state, params, value=metric)
        return state, state.learning_rate

    _, rates = jax.jit(lambda s, m: jax.lax.scan(step, s, m))(tx.init(params), jnp.asarray(metrics, jnp.float32))
    return rates


SCHEDULES = [c for c in CASES if c["peer"] == "torch"]
MOMENTUM = [c for c in CASES if c["peer"] == "torch_momentum"]
PLATEAU = [c for c in CASES if "metrics" in c]
MEGATRON = [c for c in CASES if c["peer"] == "megatron"]
TIMM = [c for c in CASES if c["peer"] == "timm" and "metrics" not in c]


def test_file_covers_every_new_name():
    covered = {(c["peer"], c["name"]) for c in CASES}
    assert covered >= {
        ("torch", "LambdaLR"),
        ("torch", "MultiplicativeLR"),
        ("torch", "ChainedScheduler"),
        ("torch", "SWALR"),
        ("torch", "SequentialLR"),
        ("torch_momentum", "OneCycleLR"),
        ("torch_momentum", "CyclicLR"),
        ("torch_plateau", "ReduceLROnPlateau"),
        ("hf", "reduce_lr_on_plateau"),
        ("hf", "greedy"),
        ("timm", "plateau"),
        ("keras_plateau", "ReduceLROnPlateau"),
        ("megatron", "rampup"),
        ("timm", "wsd"),
    }
    assert set(GOLDEN["versions"]) >= {"torch", "transformers", "timm"}
    # SequentialLR cases here all start with a ChainedScheduler (the quirk torch has there).
    assert all(c["args"]["schedulers"][0][0] == "ChainedScheduler" for c in SCHEDULES if c["name"] == "SequentialLR")


@pytest.mark.parametrize("case", SCHEDULES, ids=_case_id)
def test_schedule_matches_torch(case):
    schedule = compat.torch_schedule(case["name"], **_jax_args(case["args"]))
    counts = jnp.arange(len(case["values"]))
    assert_matches(jax.jit(schedule)(counts), case)
    # Eagerly, one float count at a time, on a few counts.
    some = list(range(0, len(case["values"]), 37))
    assert_matches([schedule(float(k)) for k in some], dict(case, values=[case["values"][k] for k in some]))


@pytest.mark.parametrize("case", TIMM, ids=_case_id)
def test_timm_schedule_matches_timm(case):
    schedule = compat.timm_schedule(case["name"], **case["args"])
    assert_matches(jax.jit(schedule)(jnp.arange(len(case["values"]))), case)


@pytest.mark.parametrize("case", MOMENTUM, ids=_case_id)
def test_momentum_matches_torch(case):
    momentum = compat.torch_momentum_schedule(case["name"], **case["args"])
    assert_matches(jax.jit(momentum)(jnp.arange(len(case["values"]))), case)


@pytest.mark.parametrize("case", PLATEAU, ids=_case_id)
def test_plateau_matches_peer(case):
    assert_matches(run_plateau(_plateau(case), case["metrics"]), case)


def test_plateau_cases_reduce_the_rate_and_exercise_each_option():
    # A golden table whose rate never moves would pass against a constant: each case must reduce at least once,
    # except torch's own tests 1, 4 and 6 (lr 0.5), whose point is that the rate stays.
    steady = [c for c in PLATEAU if min(c["values"]) == max(c["values"])]
    assert len(steady) == 3 and all(c["args"]["learning_rate"] == 0.5 for c in steady)
    options = {k for c in PLATEAU for k in c["args"]}
    assert options >= {"mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps"}


def test_vmap_over_plateau_hyperparameters():
    keys = {"factor": 0.1, "patience": 10, "threshold": 1e-4, "eps": 1e-8}
    cases = [c for c in PLATEAU if c["peer"] == "torch_plateau" and set(c["args"]) <= {"learning_rate", *keys}]
    cases = [c for c in cases if c["metrics"] == cases[0]["metrics"]]
    assert len(cases) >= 3
    columns = {k: jnp.asarray([c["args"].get(k, v) for c in cases], jnp.float32) for k, v in keys.items()}
    metrics = jnp.asarray(cases[0]["metrics"], jnp.float32)
    rows = jax.vmap(lambda h: run_plateau(compat.torch_reduce_lr_on_plateau(0.1, **h), metrics))(columns)
    for row, case in zip(rows, cases, strict=True):
        assert_matches(row, case)


def test_plateau_stepped_once_per_epoch_beside_inject_hyperparams():
    # The per-epoch pattern of docs/migration.md: the plateau steps on an empty tree, the optimizer reads its rate.
    case = next(c for c in PLATEAU if c["peer"] == "torch_plateau" and c["args"].get("patience") == 2)
    plateau = compat.torch_reduce_lr_on_plateau(**case["args"])
    plateau_state = plateau.init({})
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=case["args"]["learning_rate"])
    params = jnp.zeros(1)
    opt_state = opt.init(params)
    for epoch, metric in enumerate(case["metrics"][:40]):
        for _ in range(3):  # three updates per epoch at the epoch's rate
            u, opt_state = opt.update(jnp.ones(1), opt_state, params)
            np.testing.assert_allclose(float(u[0]), -case["values"][epoch], rtol=1e-6)
        _, plateau_state = plateau.update({}, plateau_state, value=metric)
        opt_state.hyperparams["learning_rate"] = plateau_state.next_learning_rate


def test_plateau_with_a_warmup_in_front_reports_the_product():
    # scale_by_warmup in the same chain multiplies the plateau's rate; current_learning_rate reads both.
    case = next(c for c in PLATEAU if c["peer"] == "torch_plateau" and len(c["args"]) == 1)
    tx = optax.chain(ow.scale_by_warmup(10), compat.torch_reduce_lr_on_plateau(**case["args"]))
    params = jnp.zeros(1)
    state = tx.init(params)
    for k, metric in enumerate(case["metrics"][:30]):
        u, state = tx.update(jnp.ones(1), state, params, value=metric)
        want = case["values"][k] * min(1.0, k / 10)
        np.testing.assert_allclose(float(ow.current_learning_rate(state)), want, rtol=1e-6)
        np.testing.assert_allclose(float(u[0]), -want, rtol=1e-6)


@pytest.mark.parametrize("case", MEGATRON, ids=_case_id)
def test_megatron_rampup_batch_sizes_and_consumed_samples(case):
    ramp = ow.batch_size_ramp(**case["args"])
    counts = jnp.arange(len(case["values"]))
    np.testing.assert_array_equal(np.asarray(ramp.batch_size(counts)), np.asarray(case["values"], np.float32))
    np.testing.assert_array_equal(np.asarray(ramp.samples_seen(counts)), np.asarray(case["samples_seen"], np.float32))
    # The command-line text gives the same ramp; with seq_len the thresholds are in tokens and nothing moves.
    start, increment, samples = case["args"]["rampup"]
    text = ow.batch_size_ramp(
        rampup=f"--rampup-batch-size {start} {increment} {samples}",
        global_batch_size=case["args"]["global_batch_size"],
    )
    np.testing.assert_array_equal(np.asarray(text.batch_size(counts)), np.asarray(ramp.batch_size(counts)))
    tokens = ow.batch_size_ramp(**case["args"], seq_len=8)
    np.testing.assert_array_equal(np.asarray(tokens.batch_size(counts)), np.asarray(ramp.batch_size(counts)))
    np.testing.assert_array_equal(
        np.asarray(tokens.tokens_seen(counts)), 8 * np.asarray(case["samples_seen"], np.float32)
    )


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(rampup=(32, 32, 1000), global_batch_size=100), "multiple of the increment"),
        (dict(rampup=(64, 32, 1000), global_batch_size=64), "positive multiple"),
        (dict(rampup=(32, 0, 1000), global_batch_size=128), "increment"),
        (dict(rampup=(32, 32), global_batch_size=128), "three numbers"),
        (dict(rampup="32 32 1e3x", global_batch_size=128), "rampup samples"),
        (dict(rampup=(32, 32, 1000)), "global_batch_size"),
        (dict(schedule="0:8 1K:16", rampup=(32, 32, 1000), global_batch_size=128), "not both"),
    ],
)
def test_megatron_rampup_refuses_what_megatron_asserts(kwargs, words):
    with pytest.raises(ValueError, match=words):
        ow.batch_size_ramp(**kwargs)
