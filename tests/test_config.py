"""optax_warmup.config: schedules from plain data, durations in every unit, errors naming the key, round trip.

Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optax_warmup.config import ConfiguredSchedule, from_config, to_config


def values(schedule, counts):
    return [float(schedule(k)) for k in counts]


def close(a, b, rtol=1e-6):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-7)


def test_linear_warmup_then_linear_decay():
    s = from_config({"peak": 1.0, "total": 100, "warmup": 10, "decay": "linear"})
    # ramp 0 -> 1 over 10 steps, then 1 -> 0 over the remaining 90; held after.
    close(values(s, [0, 5, 10, 55, 100, 150]), [0.0, 0.5, 1.0, 0.5, 0.0, 0.0])


def test_cosine_to_a_floor_given_as_a_factor_of_the_peak():
    s = from_config({"peak": 2.0, "total": 110, "warmup": "10%", "decay": {"shape": "cosine", "end_factor": 0.1}})
    # warmup ceil(0.1 * 110) = 11 steps; halfway through the 99 decay steps: 0.2 + (2 - 0.2) / 2 = 1.1.
    close(values(s, [11, 11 + 49.5, 110]), [2.0, 1.1, 0.2])


def test_warmup_shape_and_init():
    s = from_config({"peak": 1.0, "total": 100, "warmup": {"length": 10, "shape": "cosine", "init": 0.1}})
    close(values(s, [0, 5, 10]), [0.1, 0.55, 1.0])  # 0.1 + 0.9 * (1 - cos(pi / 2)) / 2


def test_wsd_with_one_minus_sqrt_cooldown():
    s = from_config({"peak": 1.0, "total": 100, "warmup": 10, "stable": 60, "decay": "1-sqrt"})
    # decay over 100 - 10 - 60 = 30 steps; at step 80 p = 1/3 and the value is 1 - sqrt(1/3).
    close(values(s, [10, 69, 70, 80, 100]), [1.0, 1.0, 1.0, 1 - math.sqrt(1 / 3), 0.0])


def test_polynomial_and_exponential_decays():
    s = from_config({"peak": 1.0, "total": 20, "decay": {"shape": "polynomial", "exponent": 2.0}})
    close(values(s, [0, 10, 20]), [1.0, 0.25, 0.0])  # (1 - 1/2)**2
    s = from_config({"peak": 1.0, "total": 100, "decay": {"shape": "exponential", "end": 0.01}})
    close(values(s, [50, 100]), [0.1, 0.01], rtol=1e-5)  # 1 * (0.01 / 1)**0.5


def test_rsqrt_and_constant_need_no_total():
    s = from_config({"peak": 1.0, "warmup": 10, "decay": "rsqrt"})
    close(values(s, [5, 10, 40]), [0.5, 1.0, 0.5])  # sqrt(10 / (30 + 10)) at step 40
    s = from_config({"peak": 2.0, "warmup": 4, "decay": "constant"})
    close(values(s, [2, 4, 10_000]), [1.0, 2.0, 2.0])


def test_decay_length_given_explicitly_leaves_a_floor():
    s = from_config({"peak": 1.0, "total": 1000, "decay": {"shape": "linear", "length": 10, "end": 0.5}})
    close(values(s, [0, 5, 10, 500]), [1.0, 0.75, 0.5, 0.5])


@pytest.mark.parametrize(
    "spec, steps",
    [
        (30, 30),
        (1e4, 10_000),
        (0.05, 50),  # fraction of the total (1000), as HF's warmup_steps < 1
        ("5%", 50),
        (0.0333, 34),  # ceil(33.3)
        ({"steps": 7}, 7),
        ({"fraction": 0.1}, 100),
        ({"epochs": 2.5}, 100),  # 2.5 * 40 steps per epoch
        ({"examples": 1000}, 125),  # 1000 / batch 8
        ({"examples": 1001}, 126),  # a partial batch is a step
        ({"tokens": 64_000}, 8),  # 64000 / (8 * 1000)
    ],
)
def test_warmup_durations_in_every_unit(spec, steps):
    cfg = {"peak": 1.0, "total": 1000, "steps_per_epoch": 40, "batch_size": 8, "seq_len": 1000}
    s = from_config(dict(cfg, warmup=spec, decay="constant"))
    assert float(s(steps)) == 1.0
    if steps > 1:
        assert float(s(steps - 1)) < 1.0


def test_total_in_tokens_and_warmup_in_examples():
    cfg = {"peak": 1.0, "total": {"tokens": 1e6}, "batch_size": 8, "seq_len": 1000}
    s = from_config(dict(cfg, warmup={"examples": 200}, decay="linear"))
    # total 1e6 / 8000 = 125 steps, warmup 200 / 8 = 25 steps, decay 100 steps: step 75 is halfway.
    close(values(s, [25, 75, 125]), [1.0, 0.5, 0.0])


def test_peer_schedules_by_name():
    s = from_config({"hf": "linear", "learning_rate": 1.0, "num_warmup_steps": 3, "num_training_steps": 10})
    # HF linear W=3 T=10 (peer survey section 8, confirmed by the golden file): k/3, then (10 - k)/7.
    close(values(s, range(12)), [0, 1 / 3, 2 / 3, 1, 6 / 7, 5 / 7, 4 / 7, 3 / 7, 2 / 7, 1 / 7, 0, 0])
    s = from_config({"torch": "StepLR", "learning_rate": 1.0, "step_size": 2, "gamma": 0.5})
    close(values(s, range(5)), [1.0, 1.0, 0.5, 0.5, 0.25])
    s = from_config({"keras": "InverseTimeDecay", "initial_learning_rate": 1.0, "decay_steps": 1, "decay_rate": 1.0})
    close(values(s, [0, 1, 3]), [1.0, 0.5, 0.25])
    s = from_config({"timm": "step", "learning_rate": 1.0, "decay_t": 2, "decay_rate": 0.1})
    close(values(s, [0, 2]), [1.0, 0.1])
    s = from_config({"pytorch_warmup": "LinearWarmup", "learning_rate": 1.0, "warmup_period": 2})
    close(values(s, [0, 1]), [0.5, 1.0])


def test_library_schedule_by_name():
    cfg = {"schedule": "warmup_cosine_decay_schedule", "init_value": 0.0, "peak_value": 1.0}
    s = from_config(dict(cfg, warmup_steps=10, decay_steps=110))
    close(values(s, [5, 10, 60, 110]), [0.5, 1.0, 0.5, 0.0])  # Optax: decay_steps counts the warmup


CONFIGS = [
    {"peak": 3e-4, "total": {"epochs": 3}, "steps_per_epoch": 100, "warmup": "2%", "decay": "cosine"},
    {
        "peak": 1.0,
        "total": 200,
        "warmup": {"length": 0.1, "shape": "exponential"},
        "stable": 0.5,
        "decay": {"shape": "square", "end": 0.1},
    },
    {"peak": 1.0, "warmup": 10, "decay": {"shape": "rsqrt", "timescale": 40}},
    {
        "hf": "warmup_stable_decay",
        "learning_rate": 0.1,
        "num_warmup_steps": 5,
        "num_training_steps": 50,
        "num_decay_steps": 10,
    },
    {
        "schedule": "warmup_linear_decay_schedule",
        "init_value": 0.0,
        "peak_value": 1.0,
        "warmup_steps": 5,
        "decay_steps": 50,
    },
]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_round_trip_through_json(cfg):
    s = from_config(cfg)
    assert isinstance(s, ConfiguredSchedule)
    saved = json.dumps(to_config(s))
    again = from_config(json.loads(saved))
    assert to_config(again) == to_config(s)
    counts = jnp.arange(0, 300, 7)
    np.testing.assert_array_equal(jax.jit(again)(counts), jax.jit(s)(counts))


def test_config_is_normalized_with_defaults():
    s = from_config({"peak": 1.0, "total": 10, "warmup": 2})
    assert s.config == {
        "peak": 1.0,
        "total": 10,
        "warmup": {"length": 2, "shape": "linear", "init": 0.0, "exponent": 2.0},
        "decay": {"shape": "cosine", "end": 0.0, "exponent": 1.0},
        "stable": 0,
    }


def test_jit_vmap_over_peak_and_use_in_optax():
    def at(peak):
        return from_config({"peak": peak, "total": 100, "warmup": 10, "decay": "linear"})(55)

    close(jax.jit(jax.vmap(at))(jnp.asarray([1.0, 3.0])), [0.5, 1.5])
    opt = optax.sgd(from_config({"peak": 1.0, "total": 10, "warmup": 2}))
    params = {"w": jnp.ones(())}
    state = opt.init(params)
    updates, _ = opt.update({"w": jnp.ones(())}, state, params)
    assert float(updates["w"]) == 0.0  # the first update uses count 0 of the warmup: lr 0


ERRORS = [
    ({"total": 10}, "config['peak']"),
    ({"peak": 1.0, "total": 10, "peek": 1}, "config: unknown key"),
    ({"peak": 1.0}, "config['total']"),
    ({"peak": 1.0, "total": 10, "warmup": {"length": 2, "shape": "sine"}}, "config['warmup']['shape']"),
    ({"peak": 1.0, "total": 10, "warmup": {"lenght": 2}}, "config['warmup']: unknown key"),
    ({"peak": 1.0, "total": 10, "decay": "cosin"}, "config['decay']['shape']"),
    (
        {"peak": 1.0, "total": 10, "decay": {"shape": "cosine", "end": 0.0, "end_factor": 0.1}},
        "config['decay']",
    ),
    ({"peak": 1.0, "total": 10, "decay": {"shape": "linear", "exponent": 2}}, "config['decay']['exponent']"),
    ({"peak": 1.0, "total": 10, "decay": {"shape": "exponential", "end": 0.0}}, "config['decay']['end']"),
    ({"peak": 1.0, "total": 10, "warmup": {"epochs": 1}}, "config['steps_per_epoch']"),
    ({"peak": 1.0, "total": 10, "warmup": {"tokens": 1}, "batch_size": 2}, "config['seq_len']"),
    ({"peak": 1.0, "total": 0.5}, "config['total']"),
    ({"peak": 1.0, "total": 10, "warmup": 12.5}, "config['warmup']['length']"),
    ({"peak": 1.0, "total": 10, "warmup": "5 percent"}, "config['warmup']['length']"),
    ({"peak": 1.0, "total": 10, "warmup": {"fraction": 2.0}}, "config['warmup']['length']"),
    ({"peak": 1.0, "total": 10, "warmup": {"steps": 1, "epochs": 1}}, "config['warmup']['length']"),
    ({"peak": 1.0, "total": 10, "warmup": 8, "stable": 5}, "config['total']: is shorter"),
    ({"peak": "3e-4 per step", "total": 10}, "config['peak']"),  # "3e-4" alone is a number (YAML 1.1)
    ({"peak": "nan", "total": 10}, "config['peak']"),
    ({"peak": 1.0, "total": 10, "batch_size": 0}, "config['batch_size']"),
    ({"peak": 1.0, "warmup": 10, "stable": 5, "decay": "rsqrt"}, "config['stable']"),
    ({"hf": "cosine", "torch": "StepLR"}, "more than one"),
    ({"hf": "cosin", "learning_rate": 1.0}, "name"),
    (
        {"hf": "cosine", "learning_rate": 1.0, "num_warmup_steps": 2, "num_training_steps": 8, "cycles": 2},
        "config",
    ),
    ({"schedule": "Phase"}, "config['schedule']"),
    ({"schedule": "warmup_cosine_decay_schedule", "peak": 1.0}, "config"),
]


@pytest.mark.parametrize("cfg, where", ERRORS, ids=[e[1] for e in ERRORS])
def test_errors_name_the_bad_key(cfg, where):
    with pytest.raises(ValueError) as info:
        from_config(cfg)
    assert where in str(info.value)


def test_to_config_of_a_plain_schedule_raises():
    with pytest.raises(ValueError, match="from_config"):
        to_config(optax.constant_schedule(1.0))


YAML_CONFIG = """
peak: 3e-4            # YAML 1.1 (PyYAML): a string, no decimal point
total: {tokens: 2e9}
batch_size: 256
seq_len: 2048
warmup: {length: 2%, shape: linear, init: 1e-2}
stable: 5e2
decay: {shape: cosine, end_factor: 1e-1}
"""
SAME_IN_JSON = {
    "peak": 3e-4,
    "total": {"tokens": 2e9},
    "batch_size": 256,
    "seq_len": 2048,
    "warmup": {"length": "2%", "shape": "linear", "init": 1e-2},
    "stable": 500,
    "decay": {"shape": "cosine", "end_factor": 0.1},
}


def test_yaml_numbers_that_pyyaml_reads_as_strings():
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load(YAML_CONFIG)
    assert config["peak"] == "3e-4" and config["total"] == {"tokens": "2e9"}  # what PyYAML does
    s, reference = from_config(config), from_config(SAME_IN_JSON)
    # total: ceil(2e9 / (256 * 2048)) = 3815 steps; warmup ceil(0.02 * 3815) = 77; stable 500; decay 3238 steps
    counts = [0, 40, 77, 300, 577, 577 + 1619, 3815]
    close(values(s, counts), values(reference, counts))
    close(values(s, [0, 577 + 1619, 3815]), [1e-2, 3e-4 * (1 + 0.1) / 2, 3e-5])
    assert s.config["peak"] == 3e-4 and s.config["total"] == {"tokens": 2e9} and s.config["stable"] == 500
    peer = from_config({"hf": "linear", "learning_rate": "1e0", "num_warmup_steps": "2", "num_training_steps": "4"})
    assert values(peer, [1, 3]) == [0.5, 0.5]
