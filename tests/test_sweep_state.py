"""The sweep engine on models with state: BatchNorm statistics and dropout keys carried per config, the trained
model kept and written, a checkpoint of another sweep refused, every common mistake one line before any compile,
and the result independent of how configs are spread over devices and processes."""

import os
import signal
import socket
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import sweep_tasks as T
from jax import monitoring

import optax_warmup as ow
from optax_warmup import sweep
from optax_warmup.sweep.tasks.digits import load

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 300

x_train, y_train, x_valid, y_valid = load()
X, Y = jnp.asarray(x_train.reshape(-1, 8, 8, 1)), jnp.asarray(y_train)
x_val, y_val = jnp.asarray(x_valid.reshape(-1, 8, 8, 1)), jnp.asarray(y_valid)


def data(step, key):
    idx = jax.random.randint(jax.random.fold_in(key, step), (32,), 0, X.shape[0])
    return X[idx], Y[idx]


def optimizer(hp):
    return optax.adamw(ow.warmup_cosine_decay_schedule(0.0, hp["peak_value"], 30, STEPS))


# ---- the snippet, as written (the data, x_val / y_val and optimizer above are the test's) ----
class CNN(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Conv(16, (3, 3))(x); x = nn.BatchNorm(use_running_average=not train)(x); x = nn.relu(x)  # noqa: E702
        x = nn.Dropout(0.1, deterministic=not train)(x.reshape(x.shape[0], -1))
        return nn.Dense(10)(x)
model = CNN()  # noqa: E305

def init(key):                                   # -> (params, model_state) when the task has model state  # noqa: E302
    v = model.init(key, jnp.zeros((1, 8, 8, 1)), train=False)
    return v["params"], {"batch_stats": v["batch_stats"]}

def loss(params, batch, *, model_state, key):   # extras asked for by name: model_state, key  # noqa: E302
    x, y = batch
    logits, new_state = model.apply({"params": params, **model_state}, x, train=True,
                                    mutable=["batch_stats"], rngs={"dropout": key})
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), {}, new_state

def evaluate(params, *, model_state):           # running statistics, no dropout  # noqa: E302
    logits = model.apply({"params": params, **model_state}, x_val, train=False)
    return {"loss": optax.softmax_cross_entropy_with_integer_labels(logits, y_val).mean(),
            "accuracy": (logits.argmax(-1) == y_val).mean()}
# ---- end of the snippet ----


@pytest.fixture(scope="module")
def snippet():
    task = sweep.Task(init=init, loss=loss, data=data, eval=evaluate, model_state=True)
    result = sweep.run(task, optimizer, steps=300, grid={"peak_value": [3e-3, 3e-2], "seed": [0, 1]},
                       keep="best", progress=False)
    params, model_state = result.best_params          # the recommended config's trained model
    return task, result, params, model_state


def hand_loop(config, steps=STEPS):
    """One config the plain way, with the engine's documented key rule."""
    key = jax.random.key(config["seed"])
    params, state = init(jax.random.fold_in(key, 0))
    tx = optimizer(config)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, state, opt_state, s):
        batch = data(s, jax.random.fold_in(key, 1))
        dropout = jax.random.fold_in(jax.random.fold_in(key, 2), s)
        (value, (_, new_state)), grads = jax.value_and_grad(
            lambda p: (lambda o: (o[0], (o[1], o[2])))(loss(p, batch, model_state=state, key=dropout)),
            has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_state, opt_state, value

    losses = []
    for s in range(steps):
        params, state, opt_state, value = step(params, state, opt_state, s)
        losses.append(float(value))
    return np.array(losses), params, state


def batch_stat_accuracy(params, model_state):
    logits, _ = model.apply({"params": params, **model_state}, x_val, train=True, mutable=["batch_stats"],
                            rngs={"dropout": jax.random.key(0)})
    return float((logits.argmax(-1) == y_val).mean())


def test_the_snippet_runs_and_running_statistics_evaluate_as_well_as_batch_statistics(snippet):
    task, result, params, model_state = snippet
    assert set(model_state) == {"batch_stats"} and model_state["batch_stats"]["BatchNorm_0"]["mean"].shape == (16,)
    best = result.best_index
    running = float(result.eval["accuracy"][best, -1])
    assert running == pytest.approx(float(evaluate(params, model_state=model_state)["accuracy"]))
    assert running >= batch_stat_accuracy(params, model_state) - 0.01
    assert running > 0.95
    # the running statistics moved away from their initial values (zero mean, unit variance)
    assert float(jnp.abs(model_state["batch_stats"]["BatchNorm_0"]["mean"]).max()) > 0.01


def test_model_state_and_dropout_keys_follow_the_documented_rule(snippet):
    # config 3 (peak 3e-2, seed 1) trained by hand: same losses, same params, same statistics
    _, result, _, _ = snippet
    config = result.configs[3]
    losses, params, state = hand_loop(config)
    np.testing.assert_allclose(result.curves["loss"][3], losses, rtol=2e-5, atol=1e-6)
    if result.best_index == 3:
        np.testing.assert_allclose(result.best_params[1]["batch_stats"]["BatchNorm_0"]["var"],
                                   state["batch_stats"]["BatchNorm_0"]["var"], rtol=1e-4)


def test_model_state_is_not_touched_by_weight_decay():
    # a zero learning rate with weight decay: params stay, the statistics move as the data says
    task = sweep.Task(init=init, loss=loss, data=data, eval=evaluate, model_state=True)

    def decaying(hp):
        return optax.adamw(hp["learning_rate"], weight_decay=10.0)

    r = sweep.run(task, decaying, 20, {"learning_rate": [0.0]}, keep="all", progress=False)
    params0, state0 = init(jax.random.fold_in(jax.random.key(0), 0))
    params, state = r.params_of(0)
    jax.tree.map(np.testing.assert_array_equal, params, params0)
    _, _, hand_state = hand_loop_lr0(20)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), state, hand_state)
    assert not np.allclose(state["batch_stats"]["BatchNorm_0"]["var"], state0["batch_stats"]["BatchNorm_0"]["var"])


def hand_loop_lr0(steps):
    key = jax.random.key(0)
    params, state = init(jax.random.fold_in(key, 0))
    for s in range(steps):
        batch = data(s, jax.random.fold_in(key, 1))
        _, _, state = loss(params, batch, model_state=state, key=jax.random.fold_in(jax.random.fold_in(key, 2), s))
    return None, params, state


def test_a_non_finite_model_state_freezes_the_config():
    def init_small(key):
        return {"w": jnp.ones(())}, {"count": jnp.zeros(())}

    def state_loss(params, batch, *, model_state):
        # the state blows up to inf at the 5th step for a peak of 1, never for the small peak
        grow = model_state["count"] + 1.0
        new = {"count": jnp.where(grow * params["w"] > 4.5, jnp.inf, grow)}
        return (params["w"] - 2.0) ** 2 + 0.0 * batch, {}, new

    def tiny_data(step, key):
        return jnp.float32(0)

    task = sweep.Task(init=init_small, loss=state_loss, data=tiny_data, model_state=True)
    r = sweep.run(task, lambda hp: optax.sgd(hp["learning_rate"]), 10, {"learning_rate": [0.0, 0.2]},
                  progress=False, keep="all")
    assert r.diverged_step.tolist() == [4, 2]
    _, state = r.params_of(0)
    assert float(state["count"]) == 4.0  # frozen at its last finite value


def test_keep_writes_the_trained_models_and_they_load_back(snippet, tmp_path):
    _, result, params, model_state = snippet
    result.write(tmp_path)
    back = sweep.load(tmp_path / "results.json")
    p2, s2 = back.best_params
    jax.tree.map(np.testing.assert_array_equal, p2, params)
    jax.tree.map(np.testing.assert_array_equal, s2, model_state)
    with pytest.raises(ValueError, match="config 0 was not kept"):
        result.params_of(0 if result.best_index else 1)


def test_keep_all_and_no_keep():
    r = sweep.run(T.device_task(), T.adamw, T.STEPS, {"peak_value": [1e-2, 1e-1], "warmup_steps": [0]},
                  keep="all", progress=False)
    p1 = r.params_of(1)
    assert p1["w"].shape == (T.DIM, 1) and not np.array_equal(p1["w"], r.params_of(0)["w"])
    assert r.best_index in (0, 1)
    r2 = sweep.run(T.device_task(), T.adamw, T.STEPS, {"peak_value": [1e-2], "warmup_steps": [0]}, progress=False)
    with pytest.raises(ValueError, match="keep='best' or keep='all'"):
        _ = r2.best_params
    with pytest.raises(ValueError, match="keep must be one of"):
        sweep.run(T.device_task(), T.adamw, T.STEPS, {"peak_value": [1e-2], "warmup_steps": [0]}, keep="last")


def test_a_dropout_sweep_interrupted_then_resumed_equals_an_uninterrupted_one(tmp_path):
    task = sweep.Task(init=init, loss=loss, data=data, eval=evaluate, model_state=True)
    grid = {"peak_value": [3e-3, 3e-2], "seed": [0]}
    full = sweep.run(task, optimizer, 40, grid, progress=False, keep="all")

    def stop(done, metrics):
        if done == 20:
            signal.raise_signal(signal.SIGINT)

    part = sweep.run(task, optimizer, 40, grid, progress=False, checkpoint_dir=tmp_path, checkpoint_every=10,
                     callback=stop)
    assert part.interrupted == "SIGINT" and part.completed_steps == 20
    resumed = sweep.run(task, optimizer, 40, grid, progress=False, checkpoint_dir=tmp_path, keep="all")
    np.testing.assert_array_equal(resumed.curves["loss"], full.curves["loss"])
    jax.tree.map(np.testing.assert_array_equal, resumed.params_of(1), full.params_of(1))

    # the same directory with another optimizer (a changed weight decay) is refused, naming what changed
    def other(hp):
        return optax.adamw(ow.warmup_cosine_decay_schedule(0.0, hp["peak_value"], 30, STEPS), weight_decay=0.02)

    with pytest.raises(ValueError, match=r"optimizer's traced update \(the factory changed") as e:
        sweep.run(task, other, 40, grid, progress=False, checkpoint_dir=tmp_path)
    assert "\n" not in str(e.value)

    def sgd(hp):
        return optax.sgd(hp["peak_value"])

    with pytest.raises(ValueError, match="optimizer state's structure"):
        sweep.run(task, sgd, 40, grid, progress=False, checkpoint_dir=tmp_path)


# -- mistakes: one line each, before anything compiles ---------------------------------------------------------

_EVENTS: list = []
monitoring.register_event_duration_secs_listener(
    lambda name, secs, **kw: _EVENTS.append(kw.get("fun_name")) if name.endswith("backend_compile_duration")
    else None)


def _sweep_compiles() -> int:
    """The engine's programs compiled so far (its jitted functions are named sweep_*); JAX versions that do not
    name the function in the event count nothing."""
    return sum(1 for name in _EVENTS if name and "sweep_" in name)


def _refused(task, factory, grid, match, **kwargs):
    before = _sweep_compiles()
    with pytest.raises(ValueError, match=match) as e:
        sweep.run(task, factory, T.STEPS, grid, progress=False, **kwargs)
    assert "\n" not in str(e.value), str(e.value)
    assert _sweep_compiles() == before, "compiled before refusing"
    return str(e.value)


GRID = {"peak_value": [1e-2, 1e-1], "warmup_steps": [0, 4]}


def test_a_loss_returning_logits_says_what_came_back():
    def loss_logits(params, batch):
        x, y = batch
        pred = x @ params["w"] + params["b"]
        return jnp.mean((pred - y) ** 2), pred

    msg = _refused(sweep.Task(init=T.init, loss=loss_logits, data=T.data), T.adamw, GRID,
                   r"returned \(float32\[\], float32\[16,1\]\).*dict of scalar metrics")
    assert "logits" in msg


def test_a_non_scalar_metric_or_loss_is_refused():
    def loss_vector_metric(params, batch):
        x, y = batch
        err = x @ params["w"] + params["b"] - y
        return jnp.mean(err**2), {"err": err}

    _refused(sweep.Task(init=T.init, loss=loss_vector_metric, data=T.data), T.adamw, GRID,
             r"metric 'err' is float32\[16,1\]")

    def loss_not_mean(params, batch):
        x, y = batch
        return (x @ params["w"] + params["b"] - y) ** 2

    _refused(sweep.Task(init=T.init, loss=loss_not_mean, data=T.data), T.adamw, GRID, "take the mean")


def test_a_python_branch_on_a_traced_setting_names_the_axis():
    def branching(hp):
        lr = hp["peak_value"] if hp["warmup_steps"] > 0 else 0.1 * hp["peak_value"]
        return optax.adam(lr)

    msg = _refused(T.device_task(), branching, GRID, r"branches in Python on hp\['warmup_steps'\]")
    assert "static=" in msg

    def optax_schedule(hp):
        return optax.adamw(optax.warmup_cosine_decay_schedule(0.0, hp["peak_value"], hp["warmup_steps"], 24))

    msg = _refused(T.device_task(), optax_schedule, GRID,
                   r"branches in Python on hp\['peak_value'\] and hp\['warmup_steps'\]")
    assert "drop-ins" in msg


def test_a_factory_returning_a_schedule_is_refused():
    def schedule(hp):
        return ow.warmup_cosine_decay_schedule(0.0, hp["peak_value"], hp["warmup_steps"], 24)

    _refused(T.device_task(), schedule, GRID, r"must return an optax.GradientTransformation.*got PhaseSchedule.*"
                                             r"optax.adamw\(learning_rate=schedule\)")


def test_ambiguous_warmup_axes_and_negative_rates_are_refused():
    def factory(hp):
        return optax.adamw(ow.warmup_cosine_decay_schedule(0.0, hp["peak_value"], hp["warmup"], 24))

    _refused(T.device_task(), factory, {"peak_value": [1e-2], "warmup": [0, 0.25]},
             r"axis 'warmup' holds 0.25: a fraction of the run or 0.25 steps\?")
    # marked as a duration, 0.25 is a quarter of the run
    r = sweep.run(T.device_task(), factory, T.STEPS, {"peak_value": [1e-2], "warmup": [0, 0.25]},
                  durations=["warmup"], progress=False)
    assert [c["warmup"] for c in r.configs] == [0, 6]
    _refused(T.device_task(), T.adamw, {"peak_value": [-1e-2, 1e-2], "warmup_steps": [0]},
             r"axis 'peak_value': a learning rate must be >= 0, got -0.01")


def test_init_seed_versus_key_is_named_in_the_error():
    dense = nn.Dense(1)

    def init_named_seed(seed):
        return dense.init(seed, jnp.zeros((1, T.DIM)))

    msg = _refused(sweep.Task(init=init_named_seed, loss=T.loss, data=T.data), T.adamw, GRID,
                   r"Task.init\(seed\) failed with the integer seed 0")
    assert "name it key: init(key)" in msg


def test_model_state_mismatches_are_refused():
    with pytest.raises(ValueError, match=r"Task.loss asks for model_state: give Task\(..., model_state=True\)"):
        sweep.run(sweep.Task(init=init, loss=loss, data=data), optimizer, 10, {"peak_value": [1e-3]},
                  progress=False)

    def init_params_only(key):
        return init(key)[0]

    _refused(sweep.Task(init=init_params_only, loss=loss, data=data, model_state=True), optimizer,
             {"peak_value": [1e-3]}, r"init\(key\) must return \(params, model_state\)")


# -- devices and hosts -------------------------------------------------------------------------------------------

def _gloo_available() -> bool:
    return hasattr(jax.config, "jax_cpu_collectives_implementation") and sys.platform.startswith("linux")


@pytest.mark.skipif(not _gloo_available(), reason="JAX's gloo CPU collectives run on Linux only")
def test_two_processes_of_two_devices_equal_one_process_of_four(tmp_path):
    script = os.path.join(ROOT, "tests", "_sweep_hosts.py")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = str(sock.getsockname()[1])
    procs = [subprocess.Popen([sys.executable, script, str(tmp_path / "multi.npz"), port, "2", str(i)], env=env,
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    single = subprocess.run([sys.executable, script, str(tmp_path / "single.npz")], cwd=ROOT, capture_output=True,
                            text=True, timeout=300,
                            env=dict(env, XLA_FLAGS="--xla_force_host_platform_device_count=4"))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert single.returncode == 0, single.stderr[-2000:]
    one_device = subprocess.run([sys.executable, script, str(tmp_path / "one.npz")], cwd=ROOT, capture_output=True,
                                text=True, timeout=300, env=dict(env, XLA_FLAGS=""))
    assert one_device.returncode == 0, one_device.stderr[-2000:]
    multi, one = np.load(tmp_path / "multi.npz"), np.load(tmp_path / "single.npz")
    alone = np.load(tmp_path / "one.npz")
    assert int(alone["devices"]) == 1
    np.testing.assert_array_equal(alone["loss"], one["loss"])  # 1 device = 4 devices, bit for bit
    assert (int(multi["devices"]), int(multi["processes"])) == (4, 2)
    assert (int(one["devices"]), int(one["processes"])) == (4, 1)
    assert multi["diverged"].tolist() == one["diverged"].tolist() and (one["diverged"] >= 0).sum() == 4
    # the loop strategy runs every config with the same one-config program: equal bit for bit
    np.testing.assert_array_equal(multi["loss"], one["loss"])
    np.testing.assert_array_equal(multi["eval_loss"], one["eval_loss"])


def test_the_compilation_cache_serves_a_rerun(tmp_path):
    from jax.experimental.compilation_cache import compilation_cache

    grid = {"peak_value": [1e-2], "warmup_steps": [0]}
    first = sweep.run(T.device_task(), T.adamw, T.STEPS, grid, progress=False, compilation_cache=tmp_path)
    stored = sorted(p.name for p in tmp_path.iterdir())
    assert any(name.startswith("jit_sweep_train") for name in stored), stored
    jax.clear_caches()  # a new process would start without the in-memory cache
    compilation_cache.reset_cache()
    hits: list = []
    monitoring.register_event_listener(lambda name, **kw: hits.append(name) if name.endswith("cache_hits") else None)
    again = sweep.run(T.device_task(), T.adamw, T.STEPS, grid, progress=False, compilation_cache=tmp_path)
    assert len(hits) >= 2  # the initialisation and the training programs were loaded, not compiled
    np.testing.assert_array_equal(again.curves["loss"], first.curves["loss"])


def test_the_nnx_example_trains_its_batchnorm_statistics():
    import importlib.util

    spec = importlib.util.spec_from_file_location("sweep_nnx", os.path.join(ROOT, "docs", "examples", "sweep_nnx.py"))
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    task = sweep.Task(init=ex.init, loss=ex.loss, data=ex.data, eval=ex.evaluate, model_state=True)
    r = sweep.run(task, ex.optimizer, 30, {"peak_value": [3e-2], "warmup_steps": [0]}, keep="best", progress=False)
    params, state = r.best_params
    state0 = ex.init(jax.random.fold_in(jax.random.key(0), 0))[1]
    mean, mean0 = (jax.tree.leaves(s["norm"]["mean"])[0] for s in (state, state0))
    assert mean.shape == (64,) and not np.allclose(np.asarray(mean), np.asarray(mean0))
    assert r.eval["loss"][0, -1] < r.eval["loss"][0, 0]
