"""4. Curve evaluation: a schedule evaluated at every count of a long run, in elements (counts) per second.

Optax's schedules are evaluated through ``jax.vmap`` (some, like ``piecewise_interpolate_schedule``, do not take an
array of counts); ours both through ``jax.vmap`` and called directly on the array of counts. Each is one jitted
program, compiled before timing; a sample is one call on all counts, blocked on.
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
}


def run(quick: bool = False) -> dict:
    n = 100_000 if quick else 1_000_000
    rounds = 5 if quick else 25
    counts = jnp.arange(n, dtype=jnp.int32)
    results = {}
    for name, factory in CURVES.items():
        fns = {
            "optax_vmap": jax.jit(jax.vmap(factory(optax, n))),
            "ours_vmap": jax.jit(jax.vmap(factory(ow, n))),
            "ours_direct": jax.jit(factory(ow, n)),
        }
        reference = jax.block_until_ready(fns["optax_vmap"](counts))
        max_abs_diff = 0.0
        for f in fns.values():
            max_abs_diff = max(max_abs_diff, float(jnp.max(jnp.abs(jax.block_until_ready(f(counts)) - reference))))
        times = _common.interleaved({k: (lambda f=f: jax.block_until_ready(f(counts))) for k, f in fns.items()}, rounds)
        results[name] = {
            k: {"ms": _common.summary(t), "elements_per_s": n / _common.summary(t, scale=1.0)["median"]}
            for k, t in times.items()
        }
        results[name]["max_abs_diff_vs_optax"] = max_abs_diff
    return {"counts": n, "rounds": rounds, "curves": results}
