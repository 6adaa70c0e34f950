"""2. Compiled size and compile time of every Optax schedule we drop in, ours vs Optax's, same Python arguments.

For each schedule ``s`` the program is ``jax.jit(lambda count: s(count))`` lowered for a scalar int32 count (the
count Optax keeps in its state). Sizes are exact (no timing noise): StableHLO ops of ``lower().as_text()`` (see
``_common.stablehlo_ops``), instructions of the optimized HLO and ``cost_analysis()`` flops of the compiled
program. Times are medians over rounds, each after ``jax.clear_caches()`` with a freshly built schedule, the two
libraries interleaved.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import optax

import optax_warmup as ow
from benchmarks import _common

JOIN_PIECES = (2, 8, 32)
PIECE_STEPS = 100


def join_pieces(lib, n: int, pieces_lib=None):
    """``n`` pieces of ``PIECE_STEPS`` steps, alternating a linear and a cosine decay (as the research note).

    ``pieces_lib`` builds the pieces (default: ``lib``, the library that joins them).
    """
    src = pieces_lib or lib
    pieces = [
        src.linear_schedule(1.0, 0.1, PIECE_STEPS) if i % 2 == 0 else src.cosine_decay_schedule(1.0, PIECE_STEPS, 0.1)
        for i in range(n)
    ]
    return lib.join_schedules(pieces, [PIECE_STEPS * (i + 1) for i in range(n - 1)])


_SGDR = [dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=100)] * 4
_SCALES = {100: 0.5, 500: 0.2, 900: 0.5}

# name -> factory(lib) building the schedule with the same Python arguments for both libraries.
SCHEDULES: dict[str, Callable] = {
    "constant_schedule": lambda lib: lib.constant_schedule(1e-3),
    "linear_schedule": lambda lib: lib.linear_schedule(0.0, 1.0, 1000, 100),
    "polynomial_schedule": lambda lib: lib.polynomial_schedule(1.0, 0.1, 2.0, 1000, 100),
    "cosine_decay_schedule": lambda lib: lib.cosine_decay_schedule(1.0, 1000, 0.1),
    "exponential_decay": lambda lib: lib.exponential_decay(1.0, 100, 0.9, 50, end_value=0.01),
    "piecewise_constant_schedule": lambda lib: lib.piecewise_constant_schedule(1.0, _SCALES),
    "piecewise_interpolate_schedule": lambda lib: lib.piecewise_interpolate_schedule("cosine", 1.0, _SCALES),
    "warmup_constant_schedule": lambda lib: lib.warmup_constant_schedule(0.0, 1.0, 100),
    "warmup_cosine_decay_schedule": lambda lib: lib.warmup_cosine_decay_schedule(0.0, 1.0, 100, 1000, 0.1),
    "warmup_exponential_decay_schedule": lambda lib: lib.warmup_exponential_decay_schedule(
        0.0, 1.0, 100, 100, 0.9, end_value=0.01
    ),
    "linear_onecycle_schedule": lambda lib: lib.linear_onecycle_schedule(1000, 1.0),
    "cosine_onecycle_schedule": lambda lib: lib.cosine_onecycle_schedule(1000, 1.0),
    "sgdr_schedule (4 cycles)": lambda lib: lib.sgdr_schedule(_SGDR),
}
JOINS: dict[str, Callable] = {
    f"join_schedules ({n} pieces)": (lambda lib, n=n: join_pieces(lib, n)) for n in JOIN_PIECES
}
# The same joins of Optax's own closures: ours sees foreign callables (one function segment each).
FOREIGN_JOINS: dict[str, Callable] = {
    f"join_schedules of Optax pieces ({n} pieces)": (lambda lib, n=n: join_pieces(lib, n, optax)) for n in JOIN_PIECES
}
LIBS = {"ours": ow, "optax": optax}


def _jit(schedule):
    return jax.jit(lambda count: schedule(count))


def sizes(lowered, compiled) -> dict:
    text = lowered.as_text()
    return {
        "stablehlo_ops": _common.stablehlo_ops(text),
        "stablehlo_lines": len(text.splitlines()),
        "hlo_instructions": _common.hlo_instructions(compiled.as_text()),
        "flops": _common.flops(compiled),
    }


def _cold_compile(factory, lib, out: dict):
    """One cold build: clear JAX's caches, build the schedule, time lower and compile; keep the program's sizes."""

    def once():
        jax.clear_caches()
        f = _jit(factory(lib))
        t0 = time.perf_counter()
        lowered = f.lower(_common.COUNT)
        t1 = time.perf_counter()
        compiled = lowered.compile()
        out.setdefault("lower", []).append(t1 - t0)
        out.setdefault("compile", []).append(time.perf_counter() - t1)
        out["sizes"] = sizes(lowered, compiled)  # the same every round

    return once


def measure(factories: dict[str, Callable], rounds: int) -> dict:
    rows = {}
    for name, factory in factories.items():
        raw = {lib: {} for lib in LIBS}
        _common.interleaved({lib: _cold_compile(factory, mod, raw[lib]) for lib, mod in LIBS.items()}, rounds)
        rows[name] = {
            lib: {**r["sizes"], "lower_ms": _common.summary(r["lower"]), "compile_ms": _common.summary(r["compile"])}
            for lib, r in raw.items()
        }
    return rows


def run(quick: bool = False) -> dict:
    rounds = 1 if quick else 7
    schedules = measure(SCHEDULES, rounds)
    joins = measure(JOINS, rounds)
    foreign = measure(FOREIGN_JOINS, rounds)
    names = [f"join_schedules ({n} pieces)" for n in JOIN_PIECES]
    growth = {lib: joins[names[-1]][lib]["stablehlo_ops"] / joins[names[0]][lib]["stablehlo_ops"] for lib in LIBS}
    growth_from_8 = {
        lib: joins[names[-1]][lib]["stablehlo_ops"] / joins[names[1]][lib]["stablehlo_ops"] for lib in LIBS
    }
    return {
        "rounds": rounds,
        "schedules": schedules,
        "joins": joins,
        "foreign_joins": foreign,
        "join_growth": growth,
        "join_growth_from_8": growth_from_8,
    }
