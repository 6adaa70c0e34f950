"""Warmup sweeps: a grid of small models trained simultaneously, one compiled step (`optax-warmup sweep`).

data (standard-library bytes) -> model (a byte-level Transformer LM) -> train (the batched, sharded step and the
loop) -> report (table, LR sensitivity, results.json, figures). Needs the `sweep` extra (flax, matplotlib, tqdm).
"""

from optax_warmup._extras import require

# The `sweep` extra, checked before anything is built or trained: one line naming it, no traceback from deep inside.
for _module in ("flax", "matplotlib", "tqdm"):
    require(_module, "sweep", "the sweep")
del _module

from optax_warmup.sweep.train import SweepConfig, run_sweep  # noqa: E402

__all__ = ["SweepConfig", "run_sweep"]
