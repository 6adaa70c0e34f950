"""Peer parity: the schedules of HF transformers, torch, timm, Keras and pytorch_warmup as JAX schedules.

Each ``<peer>_schedule`` returns a pure function ``count -> learning rate`` whose value at Optax count ``k``
is the LR the peer gives the ``(k+1)``-th optimizer update when used as documented. The metric-driven
schedulers (torch's ``ReduceLROnPlateau``, HF's ``reduce_lr_on_plateau``, timm's ``plateau``, Keras'
``ReduceLROnPlateau`` callback) are Optax transformations instead (``torch_reduce_lr_on_plateau``,
``keras_reduce_lr_on_plateau``), and ``torch_momentum_schedule`` gives the momentum
that torch's ``OneCycleLR`` / ``CyclicLR`` cycle. The documentation page
"Coming from PyTorch, HF, timm, Keras or pytorch_warmup" (``docs/migration.md``) has the migration tables.
"""

from optax_warmup.compat.hf import HF_NAMES, hf_schedule
from optax_warmup.compat.keras import KERAS_NAMES, keras_reduce_lr_on_plateau, keras_schedule
from optax_warmup.compat.plateau import GreedyLRState, ReduceLROnPlateauState, torch_reduce_lr_on_plateau
from optax_warmup.compat.pytorch_warmup import PYTORCH_WARMUP_NAMES, pytorch_warmup_schedule
from optax_warmup.compat.timm import TIMM_NAMES, timm_schedule
from optax_warmup.compat.torch_lr import TORCH_NAMES, torch_momentum_schedule, torch_schedule

__all__ = [
    "GreedyLRState",
    "HF_NAMES",
    "KERAS_NAMES",
    "PYTORCH_WARMUP_NAMES",
    "ReduceLROnPlateauState",
    "TIMM_NAMES",
    "TORCH_NAMES",
    "hf_schedule",
    "keras_reduce_lr_on_plateau",
    "keras_schedule",
    "pytorch_warmup_schedule",
    "timm_schedule",
    "torch_momentum_schedule",
    "torch_reduce_lr_on_plateau",
    "torch_schedule",
]
