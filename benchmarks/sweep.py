"""3. Sweep: K configurations of (peak, warmup_steps), ours in one ``jit(vmap(train))`` vs Optax one jit per config.

The model is a small MLP regression trained full-batch with AdamW for ``steps`` steps (a ``lax.scan``) under
``warmup_cosine_decay_schedule(0, peak, warmup_steps, steps)``. Ours traces the two hyperparameters, so one
compiled program trains every configuration at once. The Optax way bakes them in as Python numbers, so each
configuration is its own trace, compile and run. Wall time counts everything from cold caches to finished final
losses; both give the same losses (checked, to a tolerance for summation order).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optax_warmup as ow
from benchmarks import _common

# Both ways train the same models: the schedules agree to float32 rounding, but vmap may change summation order.
# Final losses run from ~1e-3 to ~0.6, so the check is relative with an absolute floor for the smallest ones.
LOSS_RTOL, LOSS_ATOL = 1e-3, 1e-5


class Setting(NamedTuple):
    ks: tuple[int, ...]
    sizes: tuple[int, ...]
    examples: int
    steps: int
    rounds: int


FULL = Setting(ks=(8, 64), sizes=(8, 32, 32, 1), examples=256, steps=200, rounds=3)
QUICK = Setting(ks=(8,), sizes=(8, 16, 1), examples=64, steps=200, rounds=1)


def grid(k: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``k`` configurations: peaks log-spaced over [1e-3, 3e-2] crossed with warmups spread over [0, steps / 2)."""
    n_warmups = {8: 2, 64: 8}.get(k, 1)
    peaks = np.geomspace(1e-3, 3e-2, k // n_warmups)
    warmups = np.arange(n_warmups) * (steps // 2 // n_warmups)
    p, w = np.meshgrid(peaks, warmups, indexing="ij")
    return p.ravel().astype(np.float32), w.ravel().astype(np.int32)


def _problem(s: Setting):
    kx, kt, kp = jax.random.split(jax.random.key(1), 3)
    x = jax.random.normal(kx, (s.examples, s.sizes[0]))
    y = jnp.sin(x @ jax.random.normal(kt, (s.sizes[0], s.sizes[-1])))
    return _common.init_mlp(kp, s.sizes), x, y


def train(schedule, params, x, y, steps: int):
    """Final training loss after ``steps`` full-batch AdamW steps."""
    tx = optax.adamw(schedule)

    def body(carry, _):
        params, state = carry
        grads = jax.grad(_common.mse)(params, x, y)
        updates, state = tx.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    (params, _), _ = jax.lax.scan(body, (params, tx.init(params)), None, length=steps)
    return _common.mse(params, x, y)


def ours(peaks, warmups, problem, steps):
    """One trace and compile for every configuration. Returns (losses, compile seconds, run seconds)."""
    params, x, y = problem

    def one(peak, warmup):
        return train(ow.warmup_cosine_decay_schedule(0.0, peak, warmup, steps), params, x, y, steps)

    t0 = time.perf_counter()
    compiled = jax.jit(jax.vmap(one)).lower(peaks, warmups).compile()
    t1 = time.perf_counter()
    losses = jax.block_until_ready(compiled(peaks, warmups))
    return np.asarray(losses), t1 - t0, time.perf_counter() - t1


def optax_way(peaks, warmups, problem, steps):
    """A compile and a run per configuration, the hyperparameters baked in as Python numbers."""
    params, x, y = problem
    losses, compile_s, run_s = [], 0.0, 0.0
    for peak, warmup in zip(peaks.tolist(), warmups.tolist(), strict=True):
        schedule = optax.warmup_cosine_decay_schedule(0.0, peak, warmup, steps)
        t0 = time.perf_counter()
        compiled = jax.jit(lambda p, x, y, s=schedule: train(s, p, x, y, steps)).lower(params, x, y).compile()
        t1 = time.perf_counter()
        losses.append(float(compiled(params, x, y)))
        compile_s += t1 - t0
        run_s += time.perf_counter() - t1
    return np.asarray(losses), compile_s, run_s


def _cold_sample(fn, args, store: dict):
    """One timing sample of ``fn(*args)`` from cold caches; keeps its losses and compile / run seconds in ``store``."""

    def once():
        jax.clear_caches()
        losses, compile_s, run_s = fn(*args)
        for key, v in (("losses", losses), ("compile", compile_s), ("run", run_s)):
            store.setdefault(key, []).append(v)

    return once


def run(quick: bool = False) -> dict:
    s = QUICK if quick else FULL
    problem = _problem(s)
    n_params = sum(p.size for p in jax.tree.leaves(problem[0]))
    results = {}
    for k in s.ks:
        peaks, warmups = grid(k, s.steps)
        parts: dict[str, dict[str, list]] = {"ours": {}, "optax": {}}
        samplers = {
            name: _cold_sample(fn, (peaks, warmups, problem, s.steps), parts[name])
            for name, fn in (("ours", ours), ("optax", optax_way))
        }
        times = _common.interleaved(samplers, s.rounds)
        a, b = parts["ours"]["losses"][0], parts["optax"]["losses"][0]
        diff = np.abs(a - b)
        results[str(k)] = {
            "configs": {"peak": peaks.tolist(), "warmup_steps": warmups.tolist()},
            "ours_wall_s": _common.summary(times["ours"], scale=1.0),
            "optax_wall_s": _common.summary(times["optax"], scale=1.0),
            "ours_compile_s": _common.summary(parts["ours"]["compile"], scale=1.0),
            "ours_run_s": _common.summary(parts["ours"]["run"], scale=1.0),
            "optax_compile_s": _common.summary(parts["optax"]["compile"], scale=1.0),
            "optax_run_s": _common.summary(parts["optax"]["run"], scale=1.0),
            "speedup": _common.paired_ratio(times["optax"], times["ours"]),
            "final_loss_ours": a.tolist(),
            "final_loss_optax": b.tolist(),
            "max_abs_loss_diff": float(diff.max()),
            "max_rel_loss_diff": float((diff / np.abs(b)).max()),
            "losses_match": bool(np.all(diff <= LOSS_ATOL + LOSS_RTOL * np.abs(b))),
        }
    return {
        "setting": {**s._asdict(), "params": int(n_params), "loss_rtol": LOSS_RTOL, "loss_atol": LOSS_ATOL},
        "k": results,
    }
