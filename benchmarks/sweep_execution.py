"""7. The sweep engine against the loops a user would write, on three models: an MLP, a CNN with BatchNorm and
dropout, a small Transformer LM (digits images; random bytes for the LM), K = 16 and K = 64 configs.

Every method trains the same K configs (peak learning rates log-spaced over [1e-3, 1e-2] crossed with 4 warmup
lengths; AdamW under a warmup-cosine schedule; the hyperparameters are traced arrays wherever a method allows) from
the same initial parameters on the same batches, for the same steps, and its wall time counts everything: tracing,
compiling, initialising, training, reading the losses back. In one process, one after the other, caches cleared
before each:

* **(a) one jit per config**: a fresh ``jax.jit`` of the step for each config, its hyperparameters as Python
  numbers (how a grid runs with Optax's own schedules);
* **(b) one jit, configs one after another**: one ``jax.jit`` of the step, reused for every config (its
  hyperparameters passed as arrays), each config trained to the end before the next;
* **(c) one jit, vmapped over the configs**: one ``jax.jit(jax.vmap(step))``, all configs in every call;
* **engine**: ``optax_warmup.sweep.run`` with its defaults (``strategy="auto"``), no evaluation.

The target: the engine at most 1.05x the fastest baseline for every task and K. ``config_steps_per_s`` is
K x steps / wall. The script runs unchanged on an accelerator (it reports the backend and device).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optax_warmup as ow
from optax_warmup import sweep
from optax_warmup._duration import duration_steps

FULL = dict(ks=(16, 64), steps=100, tasks=("mlp", "cnn", "transformer"))
QUICK = dict(ks=(4,), steps=4, tasks=("mlp",))
TARGET = 1.05
WARMUPS = (0, 0.1, 0.2, 0.3)  # fractions of the run (the duration rule)


def _digits(image: bool):
    from optax_warmup.sweep.tasks.digits import load

    x, y, _, _ = load()
    x = x.reshape(-1, 8, 8, 1) if image else x
    return jnp.asarray(x), jnp.asarray(y)


def _mlp_task() -> sweep.Task:
    x, y = _digits(image=False)
    sizes = (64, 128, 128, 10)

    def init(key):
        keys = jax.random.split(key, len(sizes) - 1)
        return [dict(w=jax.random.normal(k, (m, n)) * jnp.sqrt(2.0 / m), b=jnp.zeros(n))
                for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True)]

    def loss(params, batch):
        h, labels = batch
        for layer in params[:-1]:
            h = jax.nn.relu(h @ layer["w"] + layer["b"])
        logits = h @ params[-1]["w"] + params[-1]["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    def data(step, key):
        idx = jax.random.randint(jax.random.fold_in(key, step), (32,), 0, x.shape[0])
        return x[idx], y[idx]

    return sweep.Task(init=init, loss=loss, data=data, name="mlp")


def _cnn_task() -> sweep.Task:
    import flax.linen as nn

    x, y = _digits(image=True)

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, h, train: bool):
            h = nn.Conv(16, (3, 3))(h)
            h = nn.BatchNorm(use_running_average=not train)(h)
            h = nn.relu(h)
            h = nn.Dropout(0.1, deterministic=not train)(h.reshape(h.shape[0], -1))
            return nn.Dense(10)(h)

    model = CNN()

    def init(key):
        v = model.init(key, jnp.zeros((1, 8, 8, 1)), train=False)
        return v["params"], {"batch_stats": v["batch_stats"]}

    def loss(params, batch, *, model_state, key):
        h, labels = batch
        logits, new_state = model.apply({"params": params, **model_state}, h, train=True, mutable=["batch_stats"],
                                        rngs={"dropout": key})
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), {}, new_state

    def data(step, key):
        idx = jax.random.randint(jax.random.fold_in(key, step), (32,), 0, x.shape[0])
        return x[idx], y[idx]

    return sweep.Task(init=init, loss=loss, data=data, model_state=True, name="cnn")


def _transformer_task() -> sweep.Task:
    from optax_warmup.sweep.tasks._bytelm_model import ByteLM, loss_fn

    model = ByteLM(d_model=64, n_layers=2, n_heads=4, context=32)
    tokens = jnp.asarray(np.random.default_rng(0).integers(0, 256, (4096, 33)), jnp.int32)

    def init(key):
        return model.init(key, jnp.zeros((1, 32), jnp.int32))

    def loss(params, batch):
        return loss_fn(model, params, batch)

    def data(step, key):
        return tokens[jax.random.randint(jax.random.fold_in(key, step), (16,), 0, tokens.shape[0])]

    return sweep.Task(init=init, loss=loss, data=data, name="transformer")


TASKS: dict[str, Callable[[], sweep.Task]] = {"mlp": _mlp_task, "cnn": _cnn_task, "transformer": _transformer_task}


def _grid(k: int) -> dict:
    return {"peak_value": [float(v) for v in np.geomspace(1e-3, 1e-2, k // len(WARMUPS))],
            "warmup_steps": list(WARMUPS)}


def _factory(steps: int):
    def optimizer(hp):
        peak = hp["peak_value"]
        return optax.adamw(ow.warmup_cosine_decay_schedule(0.0, peak, hp["warmup_steps"], steps, 0.1 * peak))

    return optimizer


def _user_step(task: sweep.Task, optimizer: Callable, calls) -> Callable:
    """The step a user writes: batch, loss (model state and dropout key by the engine's rule), update."""
    from optax_warmup.sweep._task import DATA_FOLD, loss_key

    def step(params, model_state, opt_state, hp, seed_key, i):
        batch = task.data(i, jax.random.fold_in(seed_key, DATA_FOLD))
        key = loss_key(seed_key, i) if calls.wants_key else None
        (value, (_, new_state)), grads = jax.value_and_grad(calls.loss, has_aux=True)(params, model_state, batch,
                                                                                      key)
        updates, opt_state = optimizer(hp).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_state, opt_state, value

    return step


def _configs(k: int, steps: int) -> list[dict]:
    g = _grid(k)
    return [{"peak_value": p, "warmup_steps": duration_steps(w, steps)} for p in g["peak_value"]
            for w in g["warmup_steps"]]


def _init_one(calls, seed_key):
    from optax_warmup.sweep._task import INIT_FOLD

    return calls.init(jax.random.fold_in(seed_key, INIT_FOLD))


def _one_jit_per_config(task, optimizer, calls, configs, steps) -> np.ndarray:
    seed_key = jax.random.key(0)
    init = jax.jit(lambda key: _init_one(calls, key))
    losses = []
    for config in configs:
        step = jax.jit(lambda p, s, o, i, config=config: _user_step(task, optimizer, calls)(
            p, s, o, config, seed_key, i))
        params, state = init(seed_key)
        opt_state = optimizer(config).init(params)
        out = []
        for i in range(steps):
            params, state, opt_state, value = step(params, state, opt_state, jnp.int32(i))
            out.append(value)
        losses.append(out)
    return np.asarray(jax.device_get(losses))


def _one_jit_sequential(task, optimizer, calls, configs, steps) -> np.ndarray:
    seed_key = jax.random.key(0)
    init = jax.jit(lambda key: _init_one(calls, key))
    step = jax.jit(_user_step(task, optimizer, calls))
    opt_init = jax.jit(lambda params, hp: optimizer(hp).init(params))
    losses = []
    for config in configs:
        hp = {k: jnp.asarray(v, jnp.float32 if k == "peak_value" else jnp.int32) for k, v in config.items()}
        params, state = init(seed_key)
        opt_state = opt_init(params, hp)
        out = []
        for i in range(steps):
            params, state, opt_state, value = step(params, state, opt_state, hp, seed_key, jnp.int32(i))
            out.append(value)
        losses.append(out)
    return np.asarray(jax.device_get(losses))


def _one_jit_vmapped(task, optimizer, calls, configs, steps) -> np.ndarray:
    seed_key = jax.random.key(0)
    hp = {"peak_value": jnp.asarray([c["peak_value"] for c in configs], jnp.float32),
          "warmup_steps": jnp.asarray([c["warmup_steps"] for c in configs], jnp.int32)}
    k = len(configs)

    @jax.jit
    def init_all(hp):
        params, state = _init_one(calls, seed_key)
        params, state = jax.tree.map(lambda a: jnp.broadcast_to(a, (k, *a.shape)), (params, state))
        return params, state, jax.vmap(lambda p, h: optimizer(h).init(p))(params, hp)

    step = jax.jit(jax.vmap(_user_step(task, optimizer, calls), in_axes=(0, 0, 0, 0, None, None)))
    params, state, opt_state = init_all(hp)
    out = []
    for i in range(steps):
        params, state, opt_state, value = step(params, state, opt_state, hp, seed_key, jnp.int32(i))
        out.append(value)
    return np.asarray(jax.device_get(out)).T


def _engine(task, optimizer, calls, configs, steps) -> tuple[np.ndarray, dict]:
    k = len(configs)
    result = sweep.run(task, optimizer, steps, _grid(k), eval_every=steps, progress=False)
    return result.curves["loss"], dict(strategy=result.settings["strategy"],
                                       reason=result.settings.get("strategy_reason", ""),
                                       timing={n: v for n, v in result.timing.items() if isinstance(v, float)})


METHODS = {"a_one_jit_per_config": _one_jit_per_config, "b_one_jit_sequential": _one_jit_sequential,
           "c_one_jit_vmapped": _one_jit_vmapped}
REPEATED = ("b_one_jit_sequential", "c_one_jit_vmapped")  # run twice; (a) once


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    jax.clear_caches()
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run(quick: bool = False) -> dict:
    from optax_warmup.sweep._task import Calls

    s = QUICK if quick else FULL
    steps = s["steps"]
    rows = []
    for name in s["tasks"]:
        task = TASKS[name]()
        calls = Calls(task)
        optimizer = _factory(steps)
        for k in s["ks"]:
            configs = _configs(k, steps)
            row: dict[str, Any] = dict(task=name, k=k, steps=steps)
            losses = {}
            args = (task, optimizer, calls, configs, steps)
            # Each way twice, mirrored (engine, a, b, c, c, b, engine), so that the machine's drift over the row
            # falls on both sides; (a), 4-10x slower than the others, once. Each time is the faster of its runs.
            runs: dict[str, list[float]] = {}
            (losses["engine"], info), t = _timed(partial(_engine, *args))
            runs["engine"] = [t]
            for method in (*METHODS, *reversed(REPEATED)):
                losses[method], t = _timed(partial(METHODS[method], *args))
                runs.setdefault(method, []).append(t)
            (_, info), t = _timed(partial(_engine, *args))
            runs["engine"].append(t)
            for method in METHODS:
                row[method] = dict(wall_s=min(runs[method]), wall_s_runs=runs[method],
                                   config_steps_per_s=k * steps / min(runs[method]))
            engine_s = min(runs["engine"])
            row["engine"] = dict(wall_s=engine_s, wall_s_runs=runs["engine"],
                                 config_steps_per_s=k * steps / engine_s, **info)
            best = min(METHODS, key=lambda m: row[m]["wall_s"])
            row["best_baseline"] = best
            row["ratio_to_best"] = engine_s / row[best]["wall_s"]
            # run by run: the engine's first (last) run against the best way's first (last) run
            row["ratio_to_best_runs"] = [e / b for e, b in zip(runs["engine"], runs[best][:1] + runs[best][-1:],
                                                               strict=True)]
            # the same models: the first steps' losses agree to float rounding
            first = min(10, steps)
            ref = losses["b_one_jit_sequential"][:, :first]
            row["max_rel_loss_diff_first_steps"] = {
                m: float(np.max(np.abs(losses[m][:, :first] - ref) / np.abs(ref))) for m in losses}
            rows.append(row)
            print(f"[sweep_execution] {name} K={k}: engine {engine_s:.1f} s ({info['strategy']}), "
                  + ", ".join(f"{m[:1]} {row[m]['wall_s']:.1f} s" for m in METHODS)
                  + f"; ratio to best {row['ratio_to_best']:.3f}", flush=True)
    return dict(rows=rows, target=TARGET, backend=jax.default_backend(), device=str(jax.devices()[0].device_kind),
                devices=len(jax.devices()))
