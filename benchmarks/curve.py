"""4. Curve evaluation: a schedule evaluated at every count of a long run, in elements (counts) per second.

Two ways to evaluate many counts, each one jitted program compiled before timing (a sample is one call on all
counts, blocked on):

* **on an array** of counts: Optax's schedules through ``jax.vmap`` (some, like ``piecewise_interpolate_schedule``,
  do not take an array of counts); ours both through ``jax.vmap`` and called directly on the array. Every piece of
  a join is evaluated for every count and the right one selected.
* **one scalar count at a time**, in a ``lax.scan`` (what a training loop does: the optimizer state holds a scalar
  count). There a join of foreign pieces (Optax's closures) evaluates only the active piece in ours
  (``lax.cond`` / ``lax.switch``), every piece in Optax's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import optax_warmup as ow
from benchmarks import _common
from benchmarks.compile_size import join_pieces

CURVES = {
    "warmup_cosine_decay_schedule": lambda lib, n: lib.warmup_cosine_decay_schedule(0.0, 1.0, n // 100, n, 0.1),
    "join_schedules (32 pieces)": lambda lib, n: join_pieces(lib, 32),
    "join_schedules of Optax pieces (32 pieces)": lambda lib, n: join_pieces(lib, 32, optax),
}


def _scan(schedule):
    def run(counts):
        return jax.lax.scan(lambda carry, c: (carry, schedule(c)), None, counts)[1]

    return jax.jit(run)


def _flops_per_count(fn, counts) -> float:
    return _common.flops(fn.lower(counts).compile()) / counts.shape[0]


def run(quick: bool = False) -> dict:
    n = 100_000 if quick else 1_000_000
    n_scan = 10_000 if quick else 100_000
    rounds = 5 if quick else 41
    counts = jnp.arange(n, dtype=jnp.int32)
    scan_counts = jnp.arange(0, 3200, 3200 / n_scan).astype(jnp.int32)  # every piece of the joins, in order
    results = {}
    for name, factory in CURVES.items():
        fns = {
            "optax_vmap": (jax.jit(jax.vmap(factory(optax, n))), counts),
            "ours_vmap": (jax.jit(jax.vmap(factory(ow, n))), counts),
            "ours_direct": (jax.jit(factory(ow, n)), counts),
            "optax_scan": (_scan(factory(optax, n)), scan_counts),
            "ours_scan": (_scan(factory(ow, n)), scan_counts),
        }
        max_abs_diff = 0.0
        for kind in ("vmap", "scan"):
            reference = jax.block_until_ready(fns[f"optax_{kind}"][0](fns[f"optax_{kind}"][1]))
            for key, (f, x) in fns.items():
                if key.endswith(kind):
                    diff = jnp.max(jnp.abs(jax.block_until_ready(f(x)) - reference))
                    max_abs_diff = max(max_abs_diff, float(diff))
        times = _common.interleaved(
            {k: (lambda f=f, x=x: jax.block_until_ready(f(x))) for k, (f, x) in fns.items()}, rounds
        )
        results[name] = {
            k: {
                "ms": _common.summary(t),
                "elements_per_s": fns[k][1].shape[0] / _common.summary(t, scale=1.0)["median"],
                # Exact and free of timing noise: the compiled program's arithmetic per count (not for the scan,
                # whose loop body cost_analysis does not multiply out).
                "flops_per_count": None if k.endswith("scan") else _flops_per_count(*fns[k]),
            }
            for k, t in times.items()
        }
        results[name]["max_abs_diff_vs_optax"] = max_abs_diff
        # Speed relative to Optax's, from samples taken in the same round (under the same load): median over rounds.
        for k in fns:
            reference = times["optax_scan" if k.endswith("scan") else "optax_vmap"]
            results[name][k]["speed_vs_optax"] = _common.paired_ratio(reference, times[k])
    return {"counts": n, "scan_counts": n_scan, "rounds": rounds, "curves": results}
