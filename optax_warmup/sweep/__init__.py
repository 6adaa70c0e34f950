"""Warmup sweeps: a grid of small models trained simultaneously, one compiled step (`optax-warmup sweep`).

data (standard-library bytes) -> model (a byte-level Transformer LM) -> train (the batched, sharded step and the
loop) -> report (table, LR sensitivity, results.json, figures). Needs the `sweep` extra (flax, matplotlib, tqdm).
"""

from optax_warmup.sweep.train import SweepConfig, run_sweep

__all__ = ["SweepConfig", "run_sweep"]
