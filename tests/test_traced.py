"""Every numeric hyperparameter may be traced: jit, vmap over it, grad through it; no recompilation per count."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow

COUNTS = jnp.array([0, 1, 7, 50, 99, 100, 101, 333, 640, 999, 1000, 5000])

# name -> kwargs; every number in kwargs is a hyperparameter that must be traceable.
TABLE = {
    "constant_schedule": dict(value=0.3),
    "linear_schedule": dict(init_value=0.1, end_value=1.0, transition_steps=300, transition_begin=40),
    "polynomial_schedule": dict(init_value=1.0, end_value=0.1, power=2.0, transition_steps=500, transition_begin=20),
    "cosine_decay_schedule": dict(init_value=1.0, decay_steps=900, alpha=0.1, exponent=1.5),
    "exponential_decay": dict(
        init_value=1.0, transition_steps=100, decay_rate=0.7, transition_begin=30, end_value=0.05
    ),
    "piecewise_constant_schedule": dict(init_value=1.0, boundaries=[100, 400], scales=[0.5, 0.1]),
    "piecewise_interpolate_schedule": dict(
        interpolate_type="cosine", init_value=1.0, boundaries=[100, 400], scales=[0.5, 0.1]
    ),
    "linear_onecycle_schedule": dict(
        transition_steps=900, peak_value=1.0, pct_start=0.3, pct_final=0.8, div_factor=20.0, final_div_factor=100.0
    ),
    "cosine_onecycle_schedule": dict(
        transition_steps=900, peak_value=1.0, pct_start=0.3, div_factor=20.0, final_div_factor=100.0
    ),
    "warmup_schedule": dict(init_value=0.1, peak_value=1.0, warmup_steps=100, shape="polynomial", exponent=2.0),
    "warmup_constant_schedule": dict(init_value=0.1, peak_value=1.0, warmup_steps=100),
    "warmup_cosine_decay_schedule": dict(
        init_value=0.1, peak_value=1.0, warmup_steps=100, decay_steps=1000, end_value=0.05, exponent=1.0
    ),
    "warmup_exponential_decay_schedule": dict(
        init_value=0.1,
        peak_value=1.0,
        warmup_steps=100,
        transition_steps=200,
        decay_rate=0.5,
        transition_begin=10,
        end_value=0.01,
    ),
    "warmup_linear_decay_schedule": dict(
        init_value=0.1, peak_value=1.0, warmup_steps=100, decay_steps=1000, end_value=0.05
    ),
    "warmup_polynomial_decay_schedule": dict(
        init_value=0.1, peak_value=1.0, warmup_steps=100, decay_steps=1000, end_value=0.05, power=2.0
    ),
    "warmup_rsqrt_schedule": dict(init_value=0.1, peak_value=1.0, warmup_steps=100, timescale=50.0),
    "noam_schedule": dict(d_model=64.0, warmup_steps=100, scale=2.0),
    "warmup_stable_decay_schedule": dict(
        init_value=0.1,
        peak_value=1.0,
        warmup_steps=100,
        stable_steps=400,
        decay_steps=300,
        end_value=0.05,
        decay_shape="cosine",
    ),
    "warmup_cosine_restarts_schedule": dict(
        init_value=0.1,
        peak_value=1.0,
        warmup_steps=50,
        cycle_steps=300,
        cycle_mult=1.5,
        peak_decay=0.8,
        end_value=0.05,
        num_cycles=4,
    ),
    "warmup_stable_decay_cycles_schedule": dict(
        init_value=0.1,
        peak_value=1.0,
        warmup_steps=50,
        cycle_lengths=[300, 400, 300],
        end_value=0.05,
        decay_fraction=0.25,
        rewarmup_steps=20,
        rewarmup_value=0.2,
    ),
}

SHAPED = [
    "warmup_cosine_decay_schedule",
    "warmup_stable_decay_schedule",
    "warmup_rsqrt_schedule",
    "warmup_cosine_restarts_schedule",
    "warmup_exponential_decay_schedule",
]


def _numeric(kwargs):
    out = {}
    for k, v in kwargs.items():
        if isinstance(v, list):
            out.update({(k, i): x for i, x in enumerate(v)})
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[k] = v
    return out


def _build(name, kwargs, numbers):
    kw = dict(kwargs)
    for key, value in numbers.items():
        if isinstance(key, tuple):
            kw[key[0]] = list(kw[key[0]])
            kw[key[0]][key[1]] = value
        else:
            kw[key] = value
    return getattr(ow, name)(**kw)


def _eager(name, kwargs, numbers):
    return np.asarray(_build(name, kwargs, numbers)(COUNTS))


def _perturb(key, value):
    name = key[0] if isinstance(key, tuple) else key
    if name == "cycle_mult":
        return value + 0.5
    if isinstance(value, int) or name in ("transition_steps", "decay_steps", "warmup_steps", "boundaries"):
        return value + 37  # (keeps boundaries sorted)
    return value * 0.5  # exact in binary, so the eager and traced inputs are the same number


def _cases():
    for name, kwargs in TABLE.items():
        yield name, kwargs, None
        if name in SHAPED:
            for shape in ("cosine", "geometric", "exponential"):
                yield name, kwargs, shape


CASES = list(_cases())
IDS = [f"{n}-{s or 'default'}" for n, _, s in CASES]


def _with_shape(kwargs, shape):
    return kwargs if shape is None else {**kwargs, "warmup_shape": shape}


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=IDS)
def test_all_hyperparameters_traced_under_jit(name, kwargs, shape):
    kwargs = _with_shape(kwargs, shape)
    numbers = _numeric(kwargs)
    keys = list(numbers)

    @jax.jit
    def f(vals, counts):
        return _build(name, kwargs, dict(zip(keys, vals, strict=True)))(counts)

    traced = np.asarray(f([jnp.asarray(numbers[k], jnp.float32) for k in keys], COUNTS))
    np.testing.assert_allclose(traced, _eager(name, kwargs, numbers), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,kwargs,shape", CASES, ids=IDS)
def test_vmap_over_each_hyperparameter(name, kwargs, shape):
    """One vmapped program: row 0 has the base values, row j perturbs hyperparameter j."""
    kwargs = _with_shape(kwargs, shape)
    numbers = _numeric(kwargs)
    keys = list(numbers)
    rows = [dict(numbers)] + [{**numbers, k: _perturb(k, numbers[k])} for k in keys]
    grid = [jnp.asarray([row[k] for row in rows], jnp.float32) for k in keys]

    def one(vals):
        return _build(name, kwargs, dict(zip(keys, vals, strict=True)))(COUNTS)

    got = np.asarray(jax.jit(jax.vmap(one))(grid))
    for j, row in enumerate(rows):
        np.testing.assert_allclose(
            got[j], _eager(name, kwargs, row), rtol=1e-5, atol=1e-7, err_msg=f"row {j}: {keys[j - 1] if j else 'base'}"
        )


FLOAT_PARAMS = [
    "init_value",
    "peak_value",
    "end_value",
    "alpha",
    "exponent",
    "decay_rate",
    "power",
    "scale",
    "value",
    "peak_decay",
    "div_factor",
    "timescale",
]


@pytest.mark.parametrize(
    "name,kwargs,shape",
    [c for c in CASES if c[2] is None],
    ids=[i for i, c in zip(IDS, CASES, strict=True) if c[2] is None],
)
def test_grad_wrt_float_hyperparameters_matches_finite_differences(name, kwargs, shape):
    numbers = _numeric(kwargs)
    keys = [k for k in numbers if k in FLOAT_PARAMS]
    counts = np.array([5.0, 60.0, 150.0, 420.0, 777.0])

    def total(vals):
        return jnp.sum(_build(name, kwargs, {**numbers, **dict(zip(keys, vals, strict=True))})(counts))

    x = np.array([numbers[k] for k in keys], np.float64)
    grads = np.asarray(jax.jit(jax.grad(total))(jnp.asarray(x, jnp.float32)))
    assert np.all(np.isfinite(grads))
    with jax.enable_x64(True):
        f64 = jax.jit(total)
        eps = 1e-4 * np.maximum(np.abs(x), 1.0)
        for i, key in enumerate(keys):
            step = np.eye(len(keys))[i] * eps[i]
            fd = (float(f64(jnp.asarray(x + step))) - float(f64(jnp.asarray(x - step)))) / (2 * eps[i])
            np.testing.assert_allclose(grads[i], fd, rtol=2e-3, atol=2e-4, err_msg=f"{name}: d/d{key}")


def test_grad_wrt_warmup_steps_is_finite_and_correct():
    # v(t) = P t / W in the warmup: dv/dW = -P t / W**2.
    g = jax.grad(lambda w: ow.warmup_cosine_decay_schedule(0.0, 2.0, w, 1000)(50.0))(100.0)
    assert float(g) == pytest.approx(-2.0 * 50 / 100**2, rel=1e-5)
    g0 = jax.grad(lambda w: ow.warmup_cosine_decay_schedule(0.0, 2.0, w, 1000)(0.0))(0.0)
    assert np.isfinite(float(g0))


def test_optax_cannot_vmap_over_warmup_steps_but_we_can():
    """The reason this library exists."""

    def ours(w):
        return ow.warmup_cosine_decay_schedule(0.0, 1.0, w, 1000)(50)

    def theirs(w):
        return optax.warmup_cosine_decay_schedule(0.0, 1.0, w, 1000)(50)

    np.testing.assert_allclose(jax.vmap(ours)(jnp.array([100.0, 200.0])), [0.5, 0.25], rtol=1e-6)
    with pytest.raises(jax.errors.TracerBoolConversionError):
        jax.vmap(theirs)(jnp.array([100.0, 200.0]))


@pytest.mark.parametrize("name", list(TABLE))
def test_no_recompilation_when_only_the_count_changes(name):
    sched = _build(name, TABLE[name], _numeric(TABLE[name]))
    f = jax.jit(sched)
    for c in [0, 1, 2, 500, 10**6, 2**31 - 1]:
        f(jnp.int32(c))
    assert f._cache_size() == 1


@pytest.mark.parametrize("count", [jnp.int32(2**31 - 1), jnp.float32(123.5), 7, 7.5])
def test_count_types(count):
    s = ow.warmup_cosine_decay_schedule(0.0, 1.0, 100, 1000, end_value=0.1)
    out = s(count)
    assert out.dtype == jnp.float32 and not out.weak_type
    assert np.isfinite(float(out))


def test_int64_counts_under_x64_give_float64():
    with jax.enable_x64(True):
        s = ow.warmup_linear_decay_schedule(0.0, 1.0, 10, 2**40)
        out = s(jnp.int64(2**39 + 5))
        assert out.dtype == jnp.float64
        assert float(out) == pytest.approx(1 - (2**39 + 5 - 10) / (2**40 - 10), rel=1e-12)


def test_negative_counts_give_count_zero_value_with_traced_zero_lengths():
    @jax.jit
    def f(w, t, b, counts):
        return (ow.warmup_cosine_decay_schedule(0.1, 1.0, w, 100.0)(counts),
                ow.linear_schedule(2.0, 5.0, t, b)(counts))

    for w, t, b in [(0.0, 0.0, 0.0), (10.0, 0.0, 3.0), (0.0, 4.0, 0.0)]:
        warm, lin = f(jnp.float32(w), jnp.float32(t), jnp.float32(b), jnp.array([-7, -1, 0]))
        np.testing.assert_array_equal(np.asarray(warm)[:2], float(warm[2]))
        np.testing.assert_array_equal(np.asarray(lin)[:2], float(lin[2]))
