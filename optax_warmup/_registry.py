"""Every schedule factory that can be built from plain values, by name.

``optax_warmup.config.from_config({"schedule": name, ...})`` and the command line's ``optax-warmup plot
'name(...)'`` look names up here, so neither has to import the package from below it. The factories that take
other schedules or ``Phase`` objects (``join_schedules``, ``with_warmup``, ``warmup_overlay``,
``phase_schedule``) are not here: plain data cannot describe their arguments.
"""

from __future__ import annotations

from collections.abc import Callable

from optax_warmup import _composite, _decay, _power, _untuned, _warmup, _wsd_cycles
from optax_warmup._phases import PhaseSchedule

SCHEDULES: dict[str, Callable[..., PhaseSchedule]] = {
    fn.__name__: fn
    for fn in (
        _decay.constant_schedule,
        _decay.linear_schedule,
        _decay.polynomial_schedule,
        _decay.cosine_decay_schedule,
        _decay.exponential_decay,
        _decay.piecewise_constant_schedule,
        _decay.piecewise_interpolate_schedule,
        _decay.linear_onecycle_schedule,
        _decay.cosine_onecycle_schedule,
        _warmup.warmup_schedule,
        _warmup.warmup_factor,
        _composite.warmup_constant_schedule,
        _composite.warmup_cosine_decay_schedule,
        _composite.warmup_linear_decay_schedule,
        _composite.warmup_polynomial_decay_schedule,
        _composite.warmup_exponential_decay_schedule,
        _composite.warmup_rsqrt_schedule,
        _composite.noam_schedule,
        _composite.warmup_stable_decay_schedule,
        _composite.warmup_cosine_restarts_schedule,
        _composite.sgdr_schedule,
        _wsd_cycles.warmup_stable_decay_cycles_schedule,
        _power.power_schedule,
        _untuned.untuned_warmup,
        _untuned.radam_warmup,
    )
}
