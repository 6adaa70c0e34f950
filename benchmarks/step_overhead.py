"""1. Step overhead: the same jitted AdamW train step with a constant learning rate, Optax's schedule and ours.

Every variant is one ``jax.jit`` of the same ``step(params, opt_state, x, y, hparams)`` with params and optimizer
state donated; only the optimizer built inside differs. ``hparams`` is an empty tuple except in the "traced"
variant, where peak, warmup and decay steps arrive as jit arguments (so one compiled step serves any values).
A timing sample is ``inner`` consecutive steps followed by ``jax.block_until_ready``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

import optax_warmup as ow
from benchmarks import _common

PEAK, INIT, WARMUP, DECAY = 1e-3, 0.0, 100, 10_000


class Setting(NamedTuple):
    sizes: tuple[int, ...]  # layer widths, input first
    batch: int
    rounds: int
    inner: int  # steps per timing sample


FULL = Setting(sizes=(512, 1024, 512), batch=64, rounds=30, inner=10)
QUICK = Setting(sizes=(128, 256, 128), batch=32, rounds=6, inner=5)


class Variant(NamedTuple):
    make_tx: Callable  # hparams -> optimizer, called inside the jitted step
    hparams: object = ()  # jit arguments of make_tx (traced); () for the variants with Python numbers
    pass_loss: bool = False  # call update(..., value=loss), as optax.contrib.reduce_on_plateau takes it


def _variants() -> dict[str, Variant]:
    """The issue's (a) to (e)."""
    traced = {"peak": jnp.float32(PEAK), "warmup": jnp.float32(WARMUP), "decay": jnp.float32(DECAY)}
    variants = {
        "a_constant": Variant(lambda h: optax.adamw(PEAK)),
        "b_optax_schedule": Variant(
            lambda h: optax.adamw(optax.warmup_cosine_decay_schedule(INIT, PEAK, WARMUP, DECAY))
        ),
        "c_ours_schedule": Variant(lambda h: optax.adamw(ow.warmup_cosine_decay_schedule(INIT, PEAK, WARMUP, DECAY))),
        "d_ours_traced": Variant(
            lambda h: optax.adamw(ow.warmup_cosine_decay_schedule(INIT, h["peak"], h["warmup"], h["decay"])), traced
        ),
    }
    # The transformations come from another branch; measure them once they are in the package.
    if hasattr(ow, "scale_by_warmup"):
        variants["e_scale_by_warmup"] = Variant(lambda h: optax.chain(optax.adamw(PEAK), ow.scale_by_warmup(WARMUP)))
    if hasattr(ow, "adaptive_warmup"):
        variants["e_adaptive_warmup"] = Variant(lambda h: ow.adaptive_warmup(optax.adamw(PEAK), WARMUP), (), True)
    return variants


def _make_step(variant: Variant):
    def step(params, opt_state, x, y, hparams):
        loss, grads = jax.value_and_grad(_common.mse)(params, x, y)
        extra = {"value": loss} if variant.pass_loss else {}
        updates, opt_state = variant.make_tx(hparams).update(grads, opt_state, params, **extra)
        return optax.apply_updates(params, updates), opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1))


class _Runner:
    """One variant's compiled step and its own (donated, so private) training state."""

    def __init__(self, variant: Variant, params, x, y, inner):
        self.step, self.hparams, self.x, self.y, self.inner = _make_step(variant), variant.hparams, x, y, inner
        self.params = jax.tree.map(jnp.copy, params)
        # Copied leaf by leaf: an init that puts one array in several fields cannot be donated ("donate the same
        # buffer twice"), and every variant must donate alike.
        self.opt_state = jax.tree.map(jnp.copy, variant.make_tx(variant.hparams).init(self.params))
        compiled = self.step.lower(self.params, self.opt_state, x, y, self.hparams).compile()
        self.flops = _common.flops(compiled)
        self()  # compile for real (jit's own cache) and touch every buffer once

    def __call__(self):
        for _ in range(self.inner):
            self.params, self.opt_state, loss = self.step(self.params, self.opt_state, self.x, self.y, self.hparams)
        jax.block_until_ready((self.params, loss))


def run(quick: bool = False) -> dict:
    s = QUICK if quick else FULL
    kx, ky, kp = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (s.batch, s.sizes[0]))
    y = jax.random.normal(ky, (s.batch, s.sizes[-1]))
    params = _common.init_mlp(kp, s.sizes)
    runners, skipped = {}, {}
    for name, variant in _variants().items():
        try:
            runners[name] = _Runner(variant, params, x, y, s.inner)
        except Exception as e:  # a transformation whose API differs from the guess above: report, don't crash
            skipped[name] = f"{type(e).__name__}: {e}"[:300]
    times = _common.interleaved(runners, s.rounds)
    base = times["a_constant"]
    rows = {}
    for name, seconds in times.items():
        per_step = [t / s.inner for t in seconds]
        rows[name] = {
            "step_ms": _common.summary(per_step),
            "ratio_to_a": _common.paired_ratio(seconds, base),
            "ratio_to_b": _common.paired_ratio(seconds, times["b_optax_schedule"]),
            # The fastest sample is the one least disturbed by other processes: a second estimate on a busy machine.
            "min_ratio_to_a": min(seconds) / min(base),
            "flops": runners[name].flops,
            "extra_flops_vs_a": runners[name].flops - runners["a_constant"].flops,
        }
    n_params = sum(p.size for p in jax.tree.leaves(params))
    return {
        "setting": {**s._asdict(), "params": int(n_params), "optimizer": "adamw", "donate": True},
        "schedule_args": {"init_value": INIT, "peak_value": PEAK, "warmup_steps": WARMUP, "decay_steps": DECAY},
        "variants": rows,
        "skipped": skipped,
    }
