"""optax_warmup: learning-rate warmup for JAX and Optax, with every hyperparameter traceable.

Schedules are pure functions ``count -> value`` usable wherever Optax takes a schedule
(``optax.adamw(learning_rate=...)``, ``optax.join_schedules``, a Flax ``TrainState``), and every numeric
hyperparameter may be a traced array, so ``jit``, ``vmap`` over hyperparameters and ``grad`` all work.

A concrete bad argument raises ``ValueError`` naming it; a traced one cannot be checked and is clamped instead
(a NaN value or length becomes 0, ±inf ±1e30, a negative length 0), so check a sweep's values first with
``optax_warmup.check_hyperparams``.
"""

from optax_warmup import compat  # noqa: E402  (peer parity: hf_schedule, torch_schedule, ...)
from optax_warmup._adaptive import AdaptiveWarmupState, adaptive_warmup
from optax_warmup._check import check_hyperparams
from optax_warmup._composite import (
    noam_schedule,
    sgdr_schedule,
    warmup_constant_schedule,
    warmup_cosine_decay_schedule,
    warmup_cosine_restarts_schedule,
    warmup_exponential_decay_schedule,
    warmup_linear_decay_schedule,
    warmup_polynomial_decay_schedule,
    warmup_rsqrt_schedule,
    warmup_stable_decay_schedule,
)
from optax_warmup._decay import (
    constant_schedule,
    cosine_decay_schedule,
    cosine_onecycle_schedule,
    exponential_decay,
    linear_onecycle_schedule,
    linear_schedule,
    piecewise_constant_schedule,
    piecewise_interpolate_schedule,
    polynomial_schedule,
)
from optax_warmup._gi_adam import gi_adamw, scale_by_gi_adam
from optax_warmup._inspect import current_hyperparams, current_learning_rate
from optax_warmup._join import join_schedules
from optax_warmup._phases import Phase, PhaseSchedule, phase_schedule
from optax_warmup._power import power_schedule
from optax_warmup._precision import scale_by_schedule_f32
from optax_warmup._shapes import SHAPES, WARMUP_SHAPES, WSD_DECAY_SHAPES
from optax_warmup._skip_step import SkipStepState, skip_step_on_spikes
from optax_warmup._tokens import BatchSizeRamp, batch_size_ramp, parse_batch_size_schedule, schedule_in_tokens
from optax_warmup._transforms import (
    ClipByGlobalNormState,
    ScaleByWarmupState,
    batch_size_warmup,
    clip_by_global_norm_schedule,
    per_group_warmup,
    scale_by_factor_schedule,
    scale_by_radam_warmup,
    scale_by_untuned_warmup,
    scale_by_warmup,
)
from optax_warmup._untuned import radam_warmup, untuned_warmup, untuned_warmup_steps
from optax_warmup._update_limit import ClipByParamNormRatioState, clip_by_param_norm_ratio
from optax_warmup._version import __version__ as __version__  # the one place: _version.py
from optax_warmup._warmup import warmup_factor, warmup_overlay, warmup_schedule, with_warmup
from optax_warmup._wsd_cycles import warmup_stable_decay_cycles_schedule
from optax_warmup.config import ConfiguredSchedule, from_config, to_config

__all__ = [
    "ConfiguredSchedule",
    "compat",
    "from_config",
    "to_config",
    "SHAPES",
    "WARMUP_SHAPES",
    "WSD_DECAY_SHAPES",
    "AdaptiveWarmupState",
    "BatchSizeRamp",
    "ClipByGlobalNormState",
    "ClipByParamNormRatioState",
    "Phase",
    "PhaseSchedule",
    "ScaleByWarmupState",
    "SkipStepState",
    "adaptive_warmup",
    "batch_size_ramp",
    "batch_size_warmup",
    "check_hyperparams",
    "clip_by_global_norm_schedule",
    "clip_by_param_norm_ratio",
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "current_hyperparams",
    "current_learning_rate",
    "exponential_decay",
    "gi_adamw",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "noam_schedule",
    "parse_batch_size_schedule",
    "per_group_warmup",
    "phase_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "polynomial_schedule",
    "power_schedule",
    "radam_warmup",
    "scale_by_factor_schedule",
    "scale_by_gi_adam",
    "scale_by_radam_warmup",
    "scale_by_schedule_f32",
    "scale_by_untuned_warmup",
    "scale_by_warmup",
    "schedule_in_tokens",
    "sgdr_schedule",
    "skip_step_on_spikes",
    "untuned_warmup",
    "untuned_warmup_steps",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_cosine_restarts_schedule",
    "warmup_exponential_decay_schedule",
    "warmup_factor",
    "warmup_linear_decay_schedule",
    "warmup_overlay",
    "warmup_polynomial_decay_schedule",
    "warmup_rsqrt_schedule",
    "warmup_schedule",
    "warmup_stable_decay_cycles_schedule",
    "warmup_stable_decay_schedule",
    "with_warmup",
]
