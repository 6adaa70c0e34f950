"""What the measurements share: interleaved timing, medians, a small MLP, op counts of a program, the machine."""

from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import jaxlib
import numpy
import optax

COUNT = jax.ShapeDtypeStruct((), jnp.int32)  # the step count Optax keeps in its state

# A StableHLO line that is not an operation: the module and function headers, terminators, closing braces of
# regions and block labels. Every other non-blank line of `lower().as_text()` holds exactly one operation.
_NOT_AN_OP = ("module", "func.func", "return", "func.return", "stablehlo.return", "}", "^")
_HLO_INSTRUCTION = re.compile(r"^\s*(ROOT\s+)?%\S+ = ")


def interleaved(fns: Mapping[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each function, one call of each per round (A B C, B C A, ...), ``rounds`` rounds.

    Interleaving spreads a change in machine load over every contender instead of one; rotating the order keeps
    any of them from always running first. Each function must block on its own result.
    """
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def summary(seconds: Sequence[float], scale: float = 1e3) -> dict[str, float]:
    """Median, quartiles and minimum of a list of timings, scaled (milliseconds by default)."""
    q = statistics.quantiles(seconds, n=4) if len(seconds) > 1 else [seconds[0]] * 3
    return {
        "median": statistics.median(seconds) * scale,
        "p25": q[0] * scale,
        "p75": q[2] * scale,
        "min": min(seconds) * scale,
        "n": len(seconds),
    }


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Median over rounds of ``numerator[i] / denominator[i]``: both ran in the same round, under the same load."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def init_mlp(key, sizes):
    """A plain-JAX MLP (list of (weight, bias)), the model of the step and sweep benchmarks."""
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (n_in, n_out)) / jnp.sqrt(n_in), jnp.zeros(n_out)))
    return params


def mlp(params, x):
    for i, (w, b) in enumerate(params):
        x = x @ w + b
        if i < len(params) - 1:
            x = jax.nn.relu(x)
    return x


def mse(params, x, y):
    return jnp.mean((mlp(params, x) - y) ** 2)


def stablehlo_ops(text: str) -> int:
    """Operations in a StableHLO module: its non-blank lines less headers, terminators and braces (see _NOT_AN_OP).

    A private function (``@clip``, ``@_where``) is counted once however often it is called; each call is one op.
    """
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith(_NOT_AN_OP))


def hlo_instructions(text: str) -> int:
    """Instructions of an optimized HLO module (``compiled.as_text()``), parameters excluded, fusions' bodies in."""
    return sum(1 for line in text.splitlines() if _HLO_INSTRUCTION.match(line) and " parameter(" not in line)


def flops(compiled) -> float:
    """``cost_analysis()["flops"]`` of a compiled program (a dict in recent JAX, a list of dicts in older ones)."""
    cost = compiled.cost_analysis()
    if isinstance(cost, list | tuple):
        cost = cost[0] if cost else {}
    return float((cost or {}).get("flops", 0.0))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> dict:
    return {
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "platform": platform.platform(),
        "jax_backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "numpy": numpy.__version__,
        "git_commit": _git_commit(),
        "load_average_start": load_average(),
    }
