"""optax_warmup.compat against learning rates recorded from the real peer libraries.

``tests/data/compat_golden.json`` is written by ``tools/make_golden.py``, which drives torch, transformers,
timm, Keras and pytorch_warmup as each documents (versions in the file). No peer is imported here.

Tolerance: ``rtol = 1e-5`` plus an absolute floor of ``1e-7 * max|lr|``. The floor is float32's resolution at
the peak; it only matters near the zeros of a cosine (where float32 ``cos`` near ``pi`` loses relative
precision) and for torch's recursive forms, which drift by a few 1e-6 over 300 steps.
"""

from __future__ import annotations

import copy
import json
import pathlib
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optax_warmup import compat

GOLDEN = json.loads((pathlib.Path(__file__).parent / "data" / "compat_golden.json").read_text())
CASES = GOLDEN["cases"]
BUILDERS = {
    "hf": compat.hf_schedule,
    "torch": compat.torch_schedule,
    "timm": compat.timm_schedule,
    "keras": compat.keras_schedule,
    "pytorch_warmup": compat.pytorch_warmup_schedule,
}


def _case_id(case) -> str:
    args = ",".join(f"{k}={v}" for k, v in case["args"].items() if k not in ("schedulers",))
    return f"{case['peer']}-{case['name']}-{args}"


def build(case, **override):
    args = dict(case["args"], **override)
    if "base" in case:
        peer, name, base_args = case["base"]
        args["learning_rate"] = BUILDERS[peer](name, **base_args)
    with warnings.catch_warnings():
        # OneCycleLR / CyclicLR recorded with torch's default cycle_momentum=True: the LR is the same, and the
        # warning that momentum needs torch_momentum_schedule is checked in test_compat_behaviour.py.
        warnings.filterwarnings("ignore", "(OneCycleLR|CyclicLR): torch also cycles the momentum", UserWarning)
        warnings.filterwarnings("ignore", "warmup_stable_decay: both", UserWarning)  # HF warns too
        return BUILDERS[case["peer"]](case["name"], **args)


def counts_of(case) -> np.ndarray:
    return np.asarray(case.get("counts", range(len(case["values"]))), dtype=np.int32)


def assert_matches(got, case, rtol=1e-5):
    want = np.asarray(case["values"], dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    atol = 1e-7 * np.max(np.abs(want))
    bad = np.abs(got - want) > rtol * np.abs(want) + atol
    if bad.any():
        i = int(np.argmax(bad))
        raise AssertionError(
            f"{_case_id(case)}: {bad.sum()} of {bad.size} values differ; "
            f"first at count {counts_of(case)[i]}: "
            f"got {got[i]!r}, peer gives {want[i]!r}"
        )


def test_golden_file_records_versions_and_covers_every_name():
    assert set(GOLDEN["versions"]) >= {"torch", "transformers", "timm", "keras", "pytorch_warmup"}
    covered = {(c["peer"], c["name"]) for c in CASES}
    names = {
        "hf": compat.HF_NAMES,
        "torch": compat.TORCH_NAMES,
        "timm": compat.TIMM_NAMES,
        "keras": compat.KERAS_NAMES,
        "pytorch_warmup": compat.PYTORCH_WARMUP_NAMES,
    }
    # The lambda, chained and SWA schedulers are in the parity file (tests/test_compat_parity.py).
    parity = json.loads((pathlib.Path(__file__).parent / "data" / "compat_golden_parity.json").read_text())
    covered |= {(c["peer"], c["name"]) for c in parity["cases"]}
    missing = {(peer, n) for peer, ns in names.items() for n in ns} - covered
    assert not missing, f"no golden values for {sorted(missing)}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matches_peer(case):
    # All recorded counts at once, as an int32 vector, compiled (eager dispatch of every op is the slow part).
    schedule = jax.jit(build(case))
    assert_matches(schedule(jnp.asarray(counts_of(case))), case)


# One case per schedule name without jit, one float count at a time (the shape an optimizer update uses).
_FIRST_PER_NAME = list({(c["peer"], c["name"]): c for c in reversed(CASES)}.values())


@pytest.mark.parametrize("case", _FIRST_PER_NAME, ids=_case_id)
def test_matches_peer_eagerly_with_scalar_float_counts(case):
    schedule = build(case)
    counts = counts_of(case)[:: max(1, len(case["values"]) // 12)]
    got = [schedule(float(k)) for k in counts]
    assert all(g.shape == () and g.dtype == jnp.float32 for g in got)
    values = [case["values"][i] for i in range(0, len(case["values"]), max(1, len(case["values"]) // 12))]
    assert_matches(got, dict(case, values=values, counts=list(counts)))


def _cases(peer, name, **fixed):
    found = [
        c
        for c in CASES
        if c["peer"] == peer and c["name"] == name and all(c["args"].get(k) == v for k, v in fixed.items())
    ]
    assert found, (peer, name, fixed)
    return copy.deepcopy(found)  # callers fill in defaults


def _vmap_check(cases, keys, peer_fn, n=None):
    """vmap one schedule over the hyperparameters ``keys`` of several golden cases; each row must match."""
    n = n or min(len(c["values"]) for c in cases)
    columns = {k: jnp.asarray([c["args"][k] for c in cases], jnp.float32) for k in keys}
    fixed = {k: v for k, v in cases[0]["args"].items() if k not in keys}

    def one(hyper):
        return peer_fn(**fixed, **hyper)(jnp.arange(n))

    rows = jax.jit(jax.vmap(one))(columns)
    for row, case in zip(rows, cases, strict=True):
        assert_matches(row, dict(case, values=case["values"][:n]))


def test_vmap_over_hf_warmup_steps():
    cases = _cases("hf", "linear", num_training_steps=200)
    assert len({c["args"]["num_warmup_steps"] for c in cases}) >= 3
    _vmap_check(cases, ["num_warmup_steps"], lambda **a: compat.hf_schedule("linear", **a))


def test_vmap_over_hf_wsd_lengths_and_floor():
    cases = _cases("hf", "warmup_stable_decay", num_training_steps=200)
    cases = [c for c in cases if "warmup_type" not in c["args"] and "decay_type" not in c["args"]]
    cases = [c for c in cases if "num_stable_steps" not in c["args"]]
    for c in cases:
        c["args"].setdefault("min_lr_ratio", 0.0)
        c["args"].setdefault("num_cycles", 0.5)
    keys = ["num_warmup_steps", "num_decay_steps", "min_lr_ratio", "num_cycles"]
    _vmap_check(cases, keys, lambda **a: compat.hf_schedule("warmup_stable_decay", **a))


def test_vmap_over_torch_cosine_annealing_period():
    cases = _cases("torch", "CosineAnnealingLR")
    cases = [c for c in cases if len(c["values"]) == 300]
    for c in cases:
        c["args"].setdefault("eta_min", 0.0)
    _vmap_check(cases, ["T_max", "eta_min"], lambda **a: compat.torch_schedule("CosineAnnealingLR", **a))


def test_vmap_over_torch_warm_restarts_cycle_lengths():
    cases = _cases("torch", "CosineAnnealingWarmRestarts")
    for c in cases:
        c["args"].setdefault("T_mult", 1)
        c["args"].setdefault("eta_min", 0.0)
    _vmap_check(
        cases,
        ["T_0", "T_mult", "eta_min"],
        lambda **a: compat.torch_schedule("CosineAnnealingWarmRestarts", **a),
    )


def test_vmap_over_torch_one_cycle_length():
    cases = [c for c in _cases("torch", "OneCycleLR", max_lr=0.1) if "total_steps" in c["args"]]
    for c in cases:
        c["args"].setdefault("three_phase", False)
    cases = [c for c in cases if not c["args"]["three_phase"]]
    _vmap_check(
        cases, ["total_steps"], lambda **a: compat.torch_schedule("OneCycleLR", **a, cycle_momentum=False)
    )


def test_vmap_over_timm_step_hyperparameters():
    cases = [c for c in _cases("timm", "step") if c["args"].get("warmup_prefix", True)]
    for c in cases:
        c["args"].setdefault("warmup_t", 0)
        c["args"].setdefault("warmup_lr_init", 0.0)
    keys = ["decay_t", "decay_rate", "warmup_t", "warmup_lr_init"]
    _vmap_check(cases, keys, lambda **a: compat.timm_schedule("step", **a))


def test_vmap_over_timm_cosine_cycles():
    cases = [c for c in _cases("timm", "cosine") if "warmup_t" not in c["args"]]
    for c in cases:
        for k, v in dict(cycle_mul=1.0, cycle_decay=1.0, lr_min=0.0).items():
            c["args"].setdefault(k, v)
    keys = ["t_initial", "cycle_mul", "cycle_decay", "cycle_limit", "lr_min"]
    _vmap_check(cases, keys, lambda **a: compat.timm_schedule("cosine", **a))


def test_vmap_over_keras_cosine_warmup():
    cases = _cases("keras", "CosineDecay", decay_steps=100)
    _vmap_check(
        cases,
        ["initial_learning_rate", "warmup_steps"],
        lambda **a: compat.keras_schedule("CosineDecay", **a),
    )


def test_vmap_over_keras_restart_multipliers():
    cases = [c for c in _cases("keras", "CosineDecayRestarts") if c["args"]["first_decay_steps"] != 30]
    for c in cases:
        c["args"].setdefault("t_mul", 2.0)
        c["args"].setdefault("m_mul", 1.0)
    keys = ["first_decay_steps", "t_mul", "m_mul"]
    _vmap_check(cases, keys, lambda **a: compat.keras_schedule("CosineDecayRestarts", **a))


def test_vmap_over_pytorch_warmup_period():
    cases = [c for c in _cases("pytorch_warmup", "LinearWarmup") if "base" not in c]
    _vmap_check(cases, ["warmup_period"], lambda **a: compat.pytorch_warmup_schedule("LinearWarmup", **a))


def test_vmap_over_radam_beta2_is_close_in_float32():
    # A traced beta2 is rounded to float32 (0.99 -> 0.99000001), which shifts the rectifier; 1e-4 is its size.
    cases = _cases("pytorch_warmup", "RAdamWarmup")[:2]
    n = 50

    def one(beta2):
        return compat.pytorch_warmup_schedule("RAdamWarmup", 0.1, beta2=beta2)(jnp.arange(n))

    rows = jax.jit(jax.vmap(one))(jnp.asarray([c["args"]["beta2"] for c in cases], jnp.float32))
    for row, case in zip(rows, cases, strict=True):
        assert_matches(row, dict(case, values=case["values"][:n]), rtol=2e-4)
