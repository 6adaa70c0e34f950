"""``sweep.run(record=...)``: values of the optimizer state recorded as curves, equal to a hand-written loop."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import sweep_tasks as T

import optax_warmup as ow
from optax_warmup import sweep

FIELDS = ("num_spikes", "progress", "factor")


def adaptive(hp):
    if hp["method"] == "sgd":  # a state without those fields: its curves read NaN
        return optax.sgd(hp["peak_value"])
    if hp["method"] == "calm":  # the defaults: nothing is judged before update 10
        return ow.adaptive_warmup(optax.adam(hp["peak_value"]), 8)
    return ow.adaptive_warmup(optax.adam(hp["peak_value"]), 8, min_observations=2, zscore=1.0, norm_ratio=1.05)


def hand_states(config, steps=T.STEPS):
    """The state fields after each update of one config, trained the plain way (``value=loss`` as the engine)."""
    task = T.device_task()
    key = jax.random.key(config["seed"])
    params = task.init(jax.random.fold_in(key, 0))
    tx = optax.with_extra_args_support(adaptive(config))
    state = tx.init(params)

    @jax.jit
    def step(params, state, s):
        batch = task.data(s, jax.random.fold_in(key, 1))
        (value, _), grads = jax.value_and_grad(task.loss, has_aux=True)(params, batch)
        updates, state = tx.update(grads, state, params, value=value)
        return optax.apply_updates(params, updates), state

    out = {name: [] for name in FIELDS}
    for s in range(steps):
        params, state = step(params, state, s)
        for name in FIELDS:
            out[name].append(float(getattr(state, name)))
    return {k: np.array(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def recorded():
    grid = {"method": ["adaptive", "sgd"], "peak_value": [0.05, 0.3], "seed": [0, 1]}
    return sweep.run(T.device_task(), adaptive, T.STEPS, grid, progress=False, record=FIELDS)


def test_recorded_fields_equal_the_state_of_a_hand_written_loop(recorded):
    r = recorded
    assert set(FIELDS) <= set(r.curves) and r.curves["num_spikes"].shape == (len(r), T.STEPS)
    spiked = 0
    for i, config in enumerate(r.configs):
        if config["method"] == "sgd":
            assert all(np.isnan(r.curves[name][i]).all() for name in FIELDS)
            continue
        want = hand_states(config)
        for name in FIELDS:
            np.testing.assert_allclose(r.curves[name][i], want[name], rtol=1e-5, err_msg=f"{config} {name}")
        spiked += int(want["num_spikes"][-1] > 0)
        # the progress advances by one per calm step: 1, 2, ... until the first back-off
        first = int(np.argmax(np.diff(np.r_[0, want["num_spikes"]]) > 0)) if want["num_spikes"][-1] else T.STEPS
        np.testing.assert_array_equal(r.curves["progress"][i, : min(first, 8)], np.arange(1, min(first, 8) + 1))
    assert spiked > 0  # the settings back off somewhere: the curves are not all zeros


def test_recorded_curves_survive_the_json_round_trip(recorded, tmp_path):
    loaded = sweep.load(recorded.to_json(tmp_path / "results.json"))
    np.testing.assert_array_equal(loaded.curves["num_spikes"], recorded.curves["num_spikes"])


def test_a_function_records_whatever_it_returns():
    def record(state):
        return {"twice_progress": 2.0 * optax.tree.get(state, "progress")}

    r = sweep.run(T.device_task(), adaptive, 6, {"method": ["calm"], "peak_value": [0.05]}, progress=False,
                  record=record)
    np.testing.assert_allclose(r.curves["twice_progress"][0], 2.0 * np.arange(1, 7))


@pytest.mark.parametrize("record, message", [
    (("loss",), "already a curve"),
    (("lr/backbone",), "already a curve"),
    ((3,), "non-empty strings"),
    (42, "names of optimizer-state fields"),
])
def test_bad_record_arguments_are_refused_before_anything_compiles(record, message):
    with pytest.raises(ValueError, match=message):
        sweep.run(T.device_task(), adaptive, 4, {"method": ["adaptive"], "peak_value": [0.05]}, progress=False,
                  record=record)


@pytest.mark.parametrize("name, message", [("count", "fields named 'count'"), ("mu", "must be a number")])
def test_ambiguous_or_non_scalar_fields_are_refused(name, message):
    with pytest.raises(ValueError, match=message):
        sweep.run(T.device_task(), adaptive, 4, {"method": ["adaptive"], "peak_value": [0.05]}, progress=False,
                  record=(name,))


def test_a_single_name_is_one_field():
    r = sweep.run(T.device_task(), adaptive, 3, {"method": ["calm"], "peak_value": [0.05]}, progress=False,
                  record="progress")
    np.testing.assert_array_equal(r.curves["progress"][0], [1.0, 2.0, 3.0])
    assert jnp.asarray(r.curves["progress"]).dtype == jnp.float32
