"""``pytorch_warmup`` (Ma & Yarats, 2021) warmups as pure JAX schedules.

pytorch_warmup multiplies whatever LR the optimizer holds by a factor ``omega(s)``; the constructor applies
``omega(0)`` before the first update, and each ``with warmup.dampening():`` block after an update moves to the
next step. So count ``k`` of ``pytorch_warmup_schedule`` is ``learning_rate(k) * omega(k)``, with the warmup
counted from 1: the first update already gets ``omega(0) = 1 / tau`` for the linear warmup (not 0). Checked
against pytorch_warmup 0.2.0 (``tests/data/compat_golden.json``).

The untuned periods truncate as the library does: ``tau = int(2 / (1 - beta2))`` is 1999, not 2000, for
``beta2 = 0.999`` because ``1 - 0.999`` is slightly above ``1e-3`` in float64. For a concrete ``beta2`` the
truncation and the RAdam offset are computed in float64 in Python, exactly as the library; for a traced
``beta2`` they are computed in the library dtype, which can move ``tau`` by one near an integer.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optax_warmup import _validate as V
from optax_warmup.compat._common import Schedule, as_count, check_in_range, engine_schedule, finite

PYTORCH_WARMUP_NAMES = (
    "LinearWarmup",
    "ExponentialWarmup",
    "UntunedLinearWarmup",
    "UntunedExponentialWarmup",
    "RAdamWarmup",
)

# The RAdam factor is evaluated exactly (float64, at construction) for the first steps, where the rectifier
# subtracts two nearly equal numbers; from there on the float32 formula is accurate to ~1e-6.
_RADAM_TABLE = 256
_MAX_OFFSET = 10_000


def _linear_factor(s, tau):
    return jnp.where(s + 1.0 >= tau, 1.0, (s + 1.0) / tau)


def _exponential_factor(s, tau):
    return -jnp.expm1(-(s + 1.0) / tau)


def _untuned_period(beta2, numerator: float):
    """``int(numerator / (1 - beta2))``: a Python int for a concrete ``beta2``, else a traced float."""
    b = V.concrete("beta2", beta2)
    if b is not None:
        return float(int(numerator / (1.0 - b)))
    traced = jnp.clip(finite(beta2), 0.0, 1.0 - 1e-7)
    return jnp.maximum(jnp.floor(numerator / (1.0 - traced)), 1.0)


def _rho(t, neg_log_beta2, rho_inf):
    """``rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)``, written with ``expm1`` to keep precision.

    Takes ``-log(beta2)``: for a concrete ``beta2`` it is computed in float64, since ``1 - beta2`` in float32
    is already off by 1e-5 relative for ``beta2 = 0.999``.
    """
    return rho_inf - 2.0 * t / jnp.expm1(t * neg_log_beta2)


def _radam_omega_np(steps: np.ndarray, beta2: float, rho_inf: float, offset: int) -> np.ndarray:
    t = steps + offset
    b2t = beta2**t
    rho = rho_inf - 2.0 * t * b2t / (1.0 - b2t)
    return np.sqrt((rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho))


def _radam_offset_python(beta2: float, rho_inf: float) -> int:
    offset = 1
    while True:
        b2t = beta2**offset
        if rho_inf - 2 * offset * b2t / (1 - b2t) > 4:
            return offset
        offset += 1


def _radam_offset_traced(neg_log_beta2, rho_inf):
    def cond(t):
        return (_rho(t, neg_log_beta2, rho_inf) <= 4.0) & (t < _MAX_OFFSET)

    return jax.lax.while_loop(cond, lambda t: t + 1.0, jnp.asarray(1.0, V.float_dtype()))


def _radam(beta2):
    b = V.concrete("beta2", beta2)
    if b is not None:
        if not b > 0.6:
            raise ValueError(f"beta2 ({beta2!r}) must be greater than 0.6")
        rho_inf = 2.0 / (1.0 - b) - 1.0
        offset = _radam_offset_python(b, rho_inf)
        table = _radam_omega_np(np.arange(_RADAM_TABLE, dtype=np.float64), b, rho_inf, offset)
        table = table.astype(V.float_dtype())

    def factor(s):
        neg_log: Any
        rho_inf_: Any
        off: Any
        if b is not None:
            neg_log, rho_inf_, off = -math.log(b), rho_inf, offset
        else:
            beta = jnp.clip(finite(beta2), 0.6 + 1e-6, 1.0 - 1e-7)
            neg_log = -jnp.log(beta)
            rho_inf_ = 2.0 / (1.0 - beta) - 1.0
            off = _radam_offset_traced(neg_log, rho_inf_)
        rho = _rho(s + off, neg_log, rho_inf_)
        ratio = (rho - 4.0) * (rho - 2.0) * rho_inf_ / ((rho_inf_ - 4.0) * (rho_inf_ - 2.0) * rho)
        omega = jnp.sqrt(jnp.clip(ratio, 0.0, 1.0))
        if b is not None:
            idx = jnp.clip(s, 0, _RADAM_TABLE - 1).astype(jnp.int32)
            omega = jnp.where(s < _RADAM_TABLE, jnp.take(jnp.asarray(table), idx), omega)
        return omega

    return factor


@engine_schedule
def pytorch_warmup_schedule(name: str, learning_rate, **kwargs) -> Schedule:
    r"""``learning_rate`` dampened as by ``pytorch_warmup.<name>(optimizer, ...)``: ``count -> lr * omega``.

    With ``s`` the count:

    ============================= ==========================================================================
    ``LinearWarmup``              ``omega = min(1, (s + 1) / warmup_period)``
    ``ExponentialWarmup``         ``omega = 1 - exp(-(s + 1) / warmup_period)``
    ``UntunedLinearWarmup``       linear with ``warmup_period = int(2 / (1 - beta2))``
    ``UntunedExponentialWarmup``  exponential with ``warmup_period = int(1 / (1 - beta2))``
    ``RAdamWarmup``               ``omega = sqrt((rho - 4)(rho - 2) R / ((R - 4)(R - 2) rho))`` with
                                  ``rho = rho_{s + d}``, ``rho_t = R - 2 t beta2**t / (1 - beta2**t)``,
                                  ``R = 2 / (1 - beta2) - 1`` and ``d`` the first ``t >= 1`` with
                                  ``rho_t > 4``
    ============================= ==========================================================================

    Args:
      name: one of ``PYTORCH_WARMUP_NAMES``.
      learning_rate: a number, or any schedule ``count -> lr`` (the LR scheduler stepped inside
        ``warmup.dampening()``, e.g. a ``torch_schedule``).
      **kwargs: ``warmup_period`` for ``LinearWarmup`` / ``ExponentialWarmup``; ``beta2`` (the optimizer's
        ``betas[1]``, default 0.999 as in ``torch.optim.Adam``) for the untuned and RAdam warmups.

    Every number may be traced; see the module docstring for the precision of a traced ``beta2``.

    Returns:
      A schedule ``count -> learning rate``.

    Raises:
      ValueError: ``warmup_period <= 0``, ``beta2`` outside ``[0, 1)``, or ``beta2 <= 0.6`` for RAdam (as the
        library).
      TypeError: for a keyword the warmup does not take.

    Example:
      >>> from optax_warmup.compat import pytorch_warmup_schedule
      >>> s = pytorch_warmup_schedule("LinearWarmup", 1.0, warmup_period=4)
      >>> [float(s(k)) for k in range(5)]
      [0.25, 0.5, 0.75, 1.0, 1.0]
    """
    if name not in PYTORCH_WARMUP_NAMES:
        raise ValueError(f"name must be one of {list(PYTORCH_WARMUP_NAMES)}, got {name!r}")
    if name in ("LinearWarmup", "ExponentialWarmup"):
        if set(kwargs) - {"warmup_period"}:
            raise TypeError(
                f"{name} got unexpected keyword arguments {sorted(set(kwargs) - {'warmup_period'})}"
            )
        if "warmup_period" not in kwargs:
            raise ValueError(f"{name} requires `warmup_period`")
        period = kwargs["warmup_period"]
        V.check_positive("warmup_period", period)
    else:
        if set(kwargs) - {"beta2"}:
            raise TypeError(f"{name} got unexpected keyword arguments {sorted(set(kwargs) - {'beta2'})}")
        beta2 = kwargs.get("beta2", 0.999)
        check_in_range("beta2", beta2, 0.0, 1.0, high_open=True)
    if callable(learning_rate):
        base = learning_rate
    else:
        V.check_finite("learning_rate", learning_rate)
        base = None

    if name == "RAdamWarmup":
        factor = _radam(beta2)
    else:
        shape = _linear_factor if "Linear" in name else _exponential_factor
        if name.startswith("Untuned"):
            period = _untuned_period(beta2, 2.0 if "Linear" in name else 1.0)

        def factor(s):
            tau = finite(period)
            return shape(s, jnp.where(tau > 0, tau, 1.0))

    def schedule(count):
        s = as_count(count)
        lr = finite(learning_rate) if base is None else jnp.asarray(base(count), V.float_dtype())
        return (lr * factor(s)).astype(V.float_dtype())

    return schedule
