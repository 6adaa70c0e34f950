"""Peer parity: the schedules of HF transformers, torch, timm, Keras and pytorch_warmup as JAX schedules."""

from optax_warmup.compat.hf import HF_NAMES, hf_schedule
from optax_warmup.compat.timm import TIMM_NAMES, timm_schedule
from optax_warmup.compat.torch_lr import TORCH_NAMES, torch_schedule

__all__ = ["HF_NAMES", "TIMM_NAMES", "TORCH_NAMES", "hf_schedule", "timm_schedule", "torch_schedule"]
