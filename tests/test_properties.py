"""Property tests over every public schedule: finite, in range, monotone warmup, continuous, Optax-equal, and the
same under ``jit``, ``vmap`` and eager.

Each schedule is built from TRACED hyperparameters inside one jitted, vmapped function (``_evaluator``: a batch
of hyperparameter draws, the same counts), so all hypothesis examples of a schedule reuse one compile, and the
traced path (clamping instead of checks) and ``vmap`` over hyperparameters are what is tested. The eager path
(concrete hyperparameters: checks, NumPy constants, no jit) is compared on fewer examples.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from schedule_cases import CASES, DROP_INS, HUGE, covered_factories, public_schedule_factories

N_EXAMPLES = settings().max_examples
INT32_MAX, INT32_MIN = 2**31 - 1, -(2**31)
N_GRID, N_BOUNDARY, N_EXACT, N_RANDOM = 17, 4, 8, 6
EXACT_LIMIT = 2**23  # float32 counts are exact integers below 2**24


BATCH = 2


@functools.cache
def _evaluator(case):
    """``(batch of hp, int32 counts, float32 counts) -> (values, values)``, each row's schedule built from traced
    hp; jitted and vmapped over the hyperparameters."""

    def evaluate(hp, icounts, fcounts):
        schedule = case.build(hp)
        return schedule(icounts), schedule(fcounts)

    return jax.jit(jax.vmap(evaluate, in_axes=(0, None, None)))


def _evaluate(case, hps, icounts, fcounts):
    vi, vf = _evaluator(case)(jax.tree.map(lambda *v: np.float32(v), *hps), icounts, fcounts)
    return np.asarray(vi, np.float64), np.asarray(vf, np.float64)


def _tolerance(lo, hi):
    return 1e-5 * max(abs(lo), abs(hi)) + 1e-37


def _int_counts(data, hp):
    horizon = int(min(max([abs(v) for v in jax.tree.leaves(hp)] + [10.0]) * 2, INT32_MAX))
    rand = data.draw(st.lists(st.integers(-5, horizon), min_size=10, max_size=10), label="counts")
    return np.asarray([0, -1, INT32_MIN, INT32_MAX, 1, 2, *rand], dtype=np.int32)


N_FLOAT = N_GRID + 3 * N_BOUNDARY + N_EXACT + N_RANDOM


def _float_counts(data, case, hp):
    grid = np.zeros(N_GRID)
    if case.warmup is not None:
        w = case.warmup(hp)[0]
        if w < EXACT_LIMIT:
            grid = np.linspace(0.0, w, N_GRID)
    bounds = [b for b, _ in case.boundaries(hp) if 1 <= b < EXACT_LIMIT][:N_BOUNDARY]
    triples = np.zeros(3 * N_BOUNDARY)
    for i, b in enumerate(bounds):
        triples[3 * i : 3 * i + 3] = (b - 1, b, b + 1)
    exact = [c for c, _ in case.exact(hp) if c < EXACT_LIMIT][:N_EXACT]
    exact = np.asarray(exact + [0.0] * (N_EXACT - len(exact)))
    rand = data.draw(
        st.lists(st.floats(-10.0, 1e7, width=32), min_size=N_RANDOM, max_size=N_RANDOM), label="float counts"
    )
    return np.concatenate([grid, triples, exact, rand]).astype(np.float32)


def test_registry_covers_every_public_schedule():
    assert public_schedule_factories() == covered_factories()


@pytest.mark.parametrize("case", CASES, ids=str)
@given(data=st.data())
def test_finite_in_range_monotone_continuous(case, data):
    hp, other = data.draw(case.hparams, label="hp"), data.draw(case.hparams, label="other row")
    icounts = _int_counts(data, hp)
    fcounts = _float_counts(data, case, hp)
    vi, vf = (v[0] for v in _evaluate(case, [hp, other], icounts, fcounts))

    assert np.isfinite(vi).all() and np.isfinite(vf).all(), (vi, vf)
    lo, hi = case.value_range(hp)
    tol = _tolerance(lo, hi)
    assert (vi >= lo - tol).all() and (vi <= hi + tol).all(), (lo, hi, icounts, vi)
    assert (vf >= lo - tol).all() and (vf <= hi + tol).all(), (lo, hi, fcounts, vf)
    # Negative counts give the value at count 0.
    assert vi[1] == vi[0] and vi[2] == vi[0], vi[:3]

    grid, rest = vf[:N_GRID], vf[N_GRID:]
    if case.warmup is not None:
        w, init, peak = case.warmup(hp)
        if peak >= init and w < EXACT_LIMIT:
            assert (np.diff(grid) >= -tol).all(), ("warmup not non-decreasing", grid)

    triples = rest[: 3 * N_BOUNDARY].reshape(N_BOUNDARY, 3)
    bounds = [(b, step) for b, step in case.boundaries(hp) if 1 <= b < EXACT_LIMIT][:N_BOUNDARY]
    for (b, step), (before, at, after) in zip(bounds, triples, strict=False):
        assert abs(at - before) <= step + tol, ("jump at boundary", b, before, at, step)
        assert abs(after - at) <= step + tol, ("jump after boundary", b, at, after, step)

    exact = [(c, v) for c, v in case.exact(hp) if c < EXACT_LIMIT][:N_EXACT]
    got = rest[3 * N_BOUNDARY : 3 * N_BOUNDARY + N_EXACT]
    for (c, want), v in zip(exact, got, strict=False):
        want = np.clip(want, -HUGE, HUGE)  # the documented clamp of every value
        assert abs(v - want) <= tol, ("closed form", c, v, want)


def _optax_values(case, hp, counts):
    schedule = case.optax(hp)
    return np.asarray([float(schedule(jnp.int32(c))) for c in counts])


@pytest.mark.parametrize("case", DROP_INS, ids=str)
@given(data=st.data())
def test_drop_in_equals_optax(case, data):
    hp = data.draw(case.hparams, label="hp")
    assume(case.optax_ok(hp))
    icounts = _int_counts(data, hp)
    icounts = np.maximum(icounts, 0)  # negative counts are a documented difference
    ours = _evaluate(case, [hp, hp], icounts, np.zeros(N_FLOAT, np.float32))[0][0]
    theirs = _optax_values(case, hp, icounts)
    # Where Optax overflows (inf, or 0 * inf = NaN) ours is clamped to +-1e30 (checked by the range property).
    ok = np.isfinite(theirs)
    lo, hi = case.value_range(hp)
    np.testing.assert_allclose(
        ours[ok], np.clip(theirs[ok], -HUGE, HUGE), rtol=2e-5, atol=_tolerance(lo, hi), err_msg=str(icounts[ok])
    )


@pytest.mark.parametrize("case", CASES, ids=str)
@settings(max_examples=max(2, N_EXAMPLES // 4))
@given(data=st.data())
def test_jit_vmap_eager_agree(case, data):
    """Each row of the jitted vmap equals the eager schedule built from the same (concrete) hyperparameters."""
    hps = [data.draw(case.hparams, label=f"hp{i}") for i in range(BATCH)]
    icounts = _int_counts(data, hps[0])
    rows = _evaluate(case, hps, icounts, np.zeros(N_FLOAT, np.float32))[0]
    for hp, row in zip(hps, rows, strict=True):
        eager = case.build(hp)(icounts)  # concrete Python numbers: validated, NumPy constants, no jit
        assert eager.dtype == np.float32 and eager.shape == icounts.shape
        lo, hi = case.value_range(hp)
        np.testing.assert_allclose(np.asarray(eager), row, rtol=1e-5, atol=_tolerance(lo, hi))
