"""``warmup_methods``: every method's learning rate, read from its optimizer state, against its closed form."""

import math

import numpy as np
import pytest
import sweep_tasks as T

from optax_warmup import sweep
from optax_warmup.sweep.optimizers import WARMUP_METHODS, warmup_methods

STEPS, PEAK, W, B2 = 24, 0.05, 6, 0.95


def cosine(t):
    return PEAK * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t / STEPS)))


def radam_factor(t, b2=B2):
    """RAdam's rectification at Adam step t (float64, from the paper's formulas)."""
    rho_inf = 2 / (1 - b2) - 1
    rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
    if rho < 5:
        return 0.0
    return math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))


OMEGA = {  # the warmup factor of each method at update count t (from 0)
    "none": lambda t: 1.0,
    "linear": lambda t: min(1.0, t / W),
    "exponential": lambda t: 1 - math.exp(-2 * t / W),
    "untuned": lambda t: min(1.0, (1 - B2) * (t + 1) / 2),
    "radam": lambda t: radam_factor(t + 1),
    "radam_sgd": lambda t: 1.0,  # the rectification is in the update, not the rate
    "adaptive": lambda t: min(1.0, t / W),  # no back-off before update 10, and none on this calm problem
    "gi_adam": lambda t: 1.0,
    "update_limit": lambda t: 1.0,
}
LENGTH = {"linear": W, "exponential": W, "adaptive": W}


@pytest.fixture(scope="module")
def methods():
    grid = [dict(warmup_method=m, warmup_steps=LENGTH.get(m, 0), peak_value=PEAK, b2=B2) for m in WARMUP_METHODS]
    return sweep.run(T.device_task(), warmup_methods(STEPS), STEPS, grid, progress=False, record=("num_spikes",))


def test_every_method_trains_with_its_closed_form_learning_rate(methods):
    assert set(OMEGA) == set(WARMUP_METHODS)
    for i, config in enumerate(methods.configs):
        omega = OMEGA[config["warmup_method"]]
        want = [omega(t) * cosine(t) for t in range(STEPS)]
        np.testing.assert_allclose(methods.curves["lr"][i], want, rtol=2e-5, atol=1e-9, err_msg=str(config))
    adaptive = methods.configs.index(next(c for c in methods.configs if c["warmup_method"] == "adaptive"))
    assert methods.curves["num_spikes"][adaptive, -1] == 0


def test_untuned_warmup_is_a_linear_warmup_over_two_over_one_minus_b2(methods):
    i = next(i for i, c in enumerate(methods.configs) if c["warmup_method"] == "untuned")
    lr = methods.curves["lr"][i]
    # 2 / (1 - 0.95) = 40 steps: at count 19 (step t = 20) half way, scaled by the cosine
    np.testing.assert_allclose(lr[19], 0.5 * cosine(19), rtol=2e-5)


def test_methods_differ_and_all_train(methods):
    final = methods.curves["loss"][:, -1]
    assert np.isfinite(final).all() and (final < methods.curves["loss"][:, 0]).all()
    none, gi, limit = (methods.curves["loss"][WARMUP_METHODS.index(m)] for m in ("none", "gi_adam", "update_limit"))
    assert not np.allclose(none, gi) and not np.allclose(none, limit)  # same rate, different updates


def test_radam_sgd_is_optax_radam_with_decoupled_weight_decay():
    """Its first updates are SGD with momentum (while rho_t < 5: 5 steps at b2 0.95), then rectified Adam: the
    same numbers as optax.radam under the same cosine, and AdamW's decoupled decay on top."""
    import jax.numpy as jnp
    import optax

    ours = warmup_methods(STEPS)({"warmup_method": "radam_sgd", "peak_value": PEAK, "weight_decay": 0.1})
    params = jnp.array([1.0, -2.0, 0.5])
    s_ours = ours.init(params)
    ref = optax.radam(optax.cosine_decay_schedule(PEAK, STEPS, 0.1), b1=0.9, b2=B2)
    s_ref = ref.init(params)
    for t in range(8):
        g = jnp.array([0.3, -1.0, 2.0]) * (t + 1)
        u, s_ours = ours.update(g, s_ours, params)
        r, s_ref = ref.update(g, s_ref, params)
        np.testing.assert_allclose(u, r - cosine(t) * 0.1 * params, rtol=1e-5, atol=1e-8)
        if t < 5:  # SGD with momentum: the bias-corrected first moment, not a zero update
            assert float(jnp.abs(r).max()) > 0


@pytest.mark.parametrize("config, message", [
    (dict(warmup_method="untuned", warmup_steps=5), "takes no warmup_steps"),
    (dict(warmup_method="cosine", warmup_steps=0), "warmup_method"),
    (dict(warmup_method="linear", warmup_steps=STEPS), "shorter than the run"),
])
def test_bad_settings_are_refused_before_anything_compiles(config, message):
    with pytest.raises(ValueError, match=message):
        sweep.run(T.device_task(), warmup_methods(STEPS), STEPS, [dict(config, peak_value=PEAK)], progress=False)
