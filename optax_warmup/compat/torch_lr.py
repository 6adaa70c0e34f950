"""``torch.optim.lr_scheduler`` schedulers as pure JAX schedules.

``torch_schedule(name, learning_rate, **kwargs)`` gives, at Optax count ``k``, the learning rate that the
torch scheduler ``name(optimizer, **kwargs)`` gives the ``(k+1)``-th update when stepped as documented
(``optimizer.step()`` then ``scheduler.step()``, so ``last_epoch = k``). ``learning_rate`` is the optimizer's
LR (torch's ``base_lr``). Values checked against torch 2.14.1 (``tests/data/compat_golden.json``).

torch evaluates most schedulers *recursively* (each LR is the previous one times a ratio); this module uses
the closed forms, which agree up to the float drift of the recursion (about 1e-6 relative over a few hundred
steps).

Quirks reproduced on purpose:

* ``CosineAnnealingLR`` is periodic: after ``T_max`` it climbs back to ``base_lr`` (period ``2 T_max``).
* ``OneCycleLR`` at exactly ``k = total_steps`` continues the last phase past its end (``linear`` gives a
  negative LR there); torch raises for ``k > total_steps``, where this schedule holds the final LR
  ``max_lr / (div_factor * final_div_factor)``.
* ``LinearLR`` with ``total_iters=0`` stays at ``start_factor * base_lr`` forever, ``ConstantLR`` with
  ``total_iters=0`` stays at ``factor * base_lr`` and ``PolynomialLR`` with ``total_iters=0`` stays at
  ``base_lr`` (what torch's recursive forms do; the closed forms would divide by zero).

Not reproduced: ``ConstantLR(factor=0)`` divides by zero in torch at ``k = total_iters``; here the LR returns
to ``base_lr`` there, as the closed form says.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax.numpy as jnp

from optax_warmup import _validate as V
from optax_warmup.compat._common import (
    Schedule,
    as_count,
    check_in_range,
    concrete_value,
    engine_schedule,
    finite,
    floor_div,
    safe_div,
    safe_pow,
    structural_list,
)

TORCH_NAMES = (
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "StepLR",
    "MultiStepLR",
    "PolynomialLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "OneCycleLR",
    "CyclicLR",
    "SequentialLR",
)


def _finish(value):
    return jnp.asarray(value).astype(V.float_dtype())


def _constant_lr(learning_rate, factor=1.0 / 3, total_iters=5) -> Schedule:
    check_in_range("factor", factor, 0.0, 1.0)
    V.check_nonnegative("total_iters", total_iters)

    def schedule(count):
        e, n = as_count(count), finite(total_iters)
        f = finite(factor)
        return _finish(finite(learning_rate) * jnp.where((e >= n) & (n > 0), 1.0, f))

    return schedule


def _linear_lr(learning_rate, start_factor=1.0 / 3, end_factor=1.0, total_iters=5) -> Schedule:
    check_in_range("start_factor", start_factor, 0.0, 1.0, low_open=True)
    check_in_range("end_factor", end_factor, 0.0, 1.0)
    V.check_nonnegative("total_iters", total_iters)

    def schedule(count):
        e, n = as_count(count), finite(total_iters)
        sf, ef = finite(start_factor), finite(end_factor)
        f = jnp.where(n > 0, sf + (ef - sf) * safe_div(jnp.minimum(n, e), n), sf)
        return _finish(finite(learning_rate) * f)

    return schedule


def _exponential_lr(learning_rate, gamma) -> Schedule:
    V.check_nonnegative("gamma", gamma)

    def schedule(count):
        return _finish(finite(learning_rate) * safe_pow(jnp.maximum(finite(gamma), 0.0), as_count(count)))

    return schedule


def _step_lr(learning_rate, step_size, gamma=0.1) -> Schedule:
    V.check_positive("step_size", step_size)
    V.check_nonnegative("gamma", gamma)

    def schedule(count):
        size = finite(step_size)
        decays = floor_div(as_count(count), jnp.where(size > 0, size, 1.0))
        return _finish(finite(learning_rate) * safe_pow(jnp.maximum(finite(gamma), 0.0), decays))

    return schedule


def _multi_step_lr(learning_rate, milestones, gamma=0.1) -> Schedule:
    milestones = structural_list("milestones", milestones)
    V.check_nonnegative("gamma", gamma)

    def schedule(count):
        e = as_count(count)
        ms = jnp.asarray(milestones, V.float_dtype()).reshape(-1)
        # torch keeps a Counter of milestones, so a repeated milestone decays twice: count them all.
        passed = jnp.sum(ms <= e[..., None], axis=-1)
        return _finish(finite(learning_rate) * safe_pow(jnp.maximum(finite(gamma), 0.0), passed))

    return schedule


def _polynomial_lr(learning_rate, total_iters=5, power=1.0) -> Schedule:
    V.check_nonnegative("total_iters", total_iters)
    V.check_nonnegative("power", power)

    def schedule(count):
        e, n = as_count(count), finite(total_iters)
        remaining = jnp.clip(safe_div(n - jnp.minimum(n, e), n), 0.0, 1.0)
        f = jnp.where(n > 0, safe_pow(remaining, finite(power)), 1.0)
        return _finish(finite(learning_rate) * f)

    return schedule


def _cos_half(x):
    """``(1 + cos(pi x)) / 2``."""
    return 0.5 * (1.0 + jnp.cos(jnp.pi * x))


def _cosine_annealing_lr(learning_rate, T_max, eta_min=0.0) -> Schedule:
    V.check_positive("T_max", T_max)
    V.check_finite("eta_min", eta_min)

    def schedule(count):
        lo = finite(eta_min)
        return _finish(
            lo + (finite(learning_rate) - lo) * _cos_half(safe_div(as_count(count), finite(T_max)))
        )

    return schedule


def _check_int_like(name: str, x, minimum: float) -> None:
    v = concrete_value(name, x)
    if v is not None and (v != int(v) or v < minimum):
        raise ValueError(f"{name} must be an integer >= {minimum:g}, got {x!r}")


def _cosine_warm_restarts(learning_rate, T_0, T_mult=1, eta_min=0.0) -> Schedule:
    _check_int_like("T_0", T_0, 1)
    _check_int_like("T_mult", T_mult, 1)
    V.check_finite("eta_min", eta_min)

    def schedule(count):
        e = as_count(count)
        t0 = jnp.maximum(finite(T_0), 1.0)
        m = jnp.maximum(finite(T_mult), 1.0)
        geometric = m > 1.0
        m_safe = jnp.where(geometric, m, 2.0)

        def start(n):  # count at which cycle n begins: T_0 (m**n - 1) / (m - 1)
            return t0 * (m_safe**n - 1.0) / (m_safe - 1.0)

        n = jnp.floor(jnp.log1p(e / t0 * (m_safe - 1.0)) / jnp.log(m_safe))
        # The log can land a hair on the wrong side of a cycle boundary; torch counts integers, so fix it up.
        n = jnp.where(e < start(n), n - 1.0, n)
        n = jnp.where(e >= start(n + 1.0), n + 1.0, n)
        t_cur = jnp.where(geometric, e - start(n), e - t0 * floor_div(e, t0))
        t_i = jnp.where(geometric, t0 * m_safe**n, t0)
        lo = finite(eta_min)
        return _finish(lo + (finite(learning_rate) - lo) * _cos_half(t_cur / t_i))

    return schedule


def _one_cycle_lr(
    learning_rate,
    max_lr,
    total_steps=None,
    epochs=None,
    steps_per_epoch=None,
    pct_start=0.3,
    anneal_strategy="cos",
    cycle_momentum=True,
    base_momentum=0.85,
    max_momentum=0.95,
    div_factor=25.0,
    final_div_factor=1e4,
    three_phase=False,
) -> Schedule:
    del (
        learning_rate,
        cycle_momentum,
        base_momentum,
        max_momentum,
    )  # torch overwrites the LR; momentum is not ours
    if total_steps is not None:
        V.check_positive("total_steps", total_steps)
        total = total_steps
    elif epochs is not None and steps_per_epoch is not None:
        V.check_positive("epochs", epochs)
        V.check_positive("steps_per_epoch", steps_per_epoch)
        total = None
    else:
        raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
    check_in_range("pct_start", pct_start, 0.0, 1.0)
    if anneal_strategy not in ("cos", "linear"):
        raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy!r}")
    V.check_finite("max_lr", max_lr)
    V.check_positive("div_factor", div_factor)
    V.check_positive("final_div_factor", final_div_factor)

    def ends(n, pct):
        if three_phase:
            return [pct * n - 1.0, 2.0 * pct * n - 2.0, n - 1.0]
        return [pct * n - 1.0, n - 1.0]

    n_concrete = concrete_value("total_steps", total) if total is not None else None
    e = concrete_value("epochs", epochs) if total is None else None
    if e is not None:
        sp = concrete_value("steps_per_epoch", steps_per_epoch)
        n_concrete = None if sp is None else e * sp
    pct_concrete = concrete_value("pct_start", pct_start)
    if n_concrete is not None and pct_concrete is not None:
        bounds = [0.0, *ends(n_concrete, pct_concrete)]
        for i in range(len(bounds) - 1):
            if bounds[i + 1] == bounds[i]:
                raise ValueError(
                    f"OneCycleLR phase {i} is empty for total_steps={n_concrete:g}, pct_start={pct_start!r} "
                    "(torch divides by zero there)"
                )
    anneal = _cos_anneal if anneal_strategy == "cos" else _linear_anneal

    def schedule(count):
        s = as_count(count)
        n = finite(total) if total is not None else finite(epochs) * finite(steps_per_epoch)
        peak = finite(max_lr)
        initial = peak / finite(div_factor)
        low = initial / finite(final_div_factor)
        levels = [initial, peak, initial, low] if three_phase else [initial, peak, low]
        phase_ends = ends(n, finite(pct_start))
        # torch takes the first phase whose end step is >= s, or the last one: fill in from the last back.
        starts = [jnp.zeros_like(s), *phase_ends[:-1]]
        value = anneal(levels[-2], levels[-1], safe_div(s - starts[-1], phase_ends[-1] - starts[-1]))
        for i in reversed(range(len(phase_ends) - 1)):
            v = anneal(levels[i], levels[i + 1], safe_div(s - starts[i], phase_ends[i] - starts[i]))
            value = jnp.where(s <= phase_ends[i], v, value)
        return _finish(jnp.where(s > n, low, value))

    return schedule


def _cos_anneal(start, end, pct):
    return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1.0)


def _linear_anneal(start, end, pct):
    return (end - start) * pct + start


def _cyclic_lr(
    learning_rate,
    base_lr,
    max_lr,
    step_size_up=2000,
    step_size_down=None,
    mode="triangular",
    gamma=1.0,
    scale_fn: Callable | None = None,
    scale_mode="cycle",
    cycle_momentum=True,
    base_momentum=0.8,
    max_momentum=0.9,
) -> Schedule:
    del learning_rate, cycle_momentum, base_momentum, max_momentum  # torch sets the LR to base_lr
    if scale_fn is None and mode not in ("triangular", "triangular2", "exp_range"):
        raise ValueError(
            f"mode must be 'triangular', 'triangular2' or 'exp_range' (or give scale_fn), got {mode!r}"
        )
    if scale_fn is not None and scale_mode not in ("cycle", "iterations"):
        raise ValueError(f"scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
    V.check_finite("base_lr", base_lr)
    V.check_finite("max_lr", max_lr)
    V.check_positive("step_size_up", step_size_up)
    if step_size_down is not None:
        V.check_nonnegative("step_size_down", step_size_down)
    V.check_finite("gamma", gamma)
    if scale_fn is None:  # the built-in modes force their scale_mode, as in torch
        scale_mode = "iterations" if mode == "exp_range" else "cycle"

    def scale(x):
        if scale_fn is not None:
            return scale_fn(x)
        if mode == "triangular":
            return jnp.ones_like(x)
        if mode == "triangular2":
            return 1.0 / (2.0 ** (x - 1.0))
        return safe_pow(jnp.maximum(finite(gamma), 0.0), x)

    def schedule(count):
        e = as_count(count)
        up = finite(step_size_up)
        down = up if step_size_down is None else finite(step_size_down)
        total = jnp.maximum(up + down, 1e-30)
        ratio = up / total
        done = floor_div(e, total)  # completed cycles; torch's `cycle` is done + 1
        cycle = 1.0 + done
        x = (e - done * total) / total
        factor = jnp.where(x <= ratio, safe_div(x, ratio), safe_div(x - 1.0, ratio - 1.0))
        lo, hi = finite(base_lr), finite(max_lr)
        return _finish(lo + (hi - lo) * factor * scale(cycle if scale_mode == "cycle" else e))

    return schedule


def _sequential_lr(learning_rate, schedulers: Sequence, milestones) -> Schedule:
    schedulers = list(schedulers)
    if not schedulers:
        raise ValueError("SequentialLR expects at least one scheduler, but got no scheduler.")
    milestones = structural_list("milestones", milestones)
    if len(milestones) != len(schedulers) - 1:
        raise ValueError(
            "SequentialLR expects one milestone fewer than schedulers, got "
            f"{len(schedulers)} schedulers and milestones={list(milestones)!r}"
        )
    pieces = []
    for i, entry in enumerate(schedulers):
        if not (isinstance(entry, Sequence) and len(entry) == 2 and isinstance(entry[0], str)):
            raise ValueError(f"schedulers[{i}] must be a (name, kwargs) pair, got {entry!r}")
        name, kwargs = entry
        if name == "SequentialLR":
            raise ValueError(f"schedulers[{i}]: SequentialLR cannot be nested here")
        pieces.append(torch_schedule(name, learning_rate, **dict(kwargs)))

    def schedule(count):
        e = as_count(count)
        if not len(milestones):
            return _finish(pieces[0](e))
        ms = jnp.asarray(milestones, V.float_dtype()).reshape(-1)
        idx = jnp.sum(ms <= e[..., None], axis=-1)  # bisect_right
        shift = jnp.take(jnp.concatenate([jnp.zeros((1,), ms.dtype), ms]), idx)
        local = e - shift
        value = pieces[0](local)
        for i in range(1, len(pieces)):
            value = jnp.where(idx == i, pieces[i](local), value)
        return _finish(value)

    return schedule


_BUILDERS: dict[str, Callable[..., Schedule]] = {
    "ConstantLR": _constant_lr,
    "LinearLR": _linear_lr,
    "ExponentialLR": _exponential_lr,
    "StepLR": _step_lr,
    "MultiStepLR": _multi_step_lr,
    "PolynomialLR": _polynomial_lr,
    "CosineAnnealingLR": _cosine_annealing_lr,
    "CosineAnnealingWarmRestarts": _cosine_warm_restarts,
    "OneCycleLR": _one_cycle_lr,
    "CyclicLR": _cyclic_lr,
    "SequentialLR": _sequential_lr,
}


@engine_schedule
def torch_schedule(name: str, learning_rate=None, **kwargs) -> Schedule:
    r"""The learning rate of ``torch.optim.lr_scheduler.<name>(optimizer, **kwargs)`` as ``count -> lr``.

    With ``b = learning_rate`` and ``e = count`` (torch's ``last_epoch``):

    =============================== ===========================================================================
    ``ConstantLR``                  ``b * factor`` for ``e < total_iters``, then ``b``
    ``LinearLR``                    ``b * (sf + (ef - sf) * min(e, total_iters) / total_iters)``
    ``ExponentialLR``               ``b * gamma**e``
    ``StepLR``                      ``b * gamma**floor(e / step_size)``
    ``MultiStepLR``                 ``b * gamma**(number of milestones <= e)``
    ``PolynomialLR``                ``b * (1 - min(e, total_iters) / total_iters)**power``
    ``CosineAnnealingLR``           ``eta_min + (b - eta_min) (1 + cos(pi e / T_max)) / 2`` (periodic)
    ``CosineAnnealingWarmRestarts`` the same within cycle ``i`` of length ``T_0 T_mult**i``
    ``OneCycleLR``                  ``max_lr / div_factor`` up to ``max_lr`` until step ``pct_start N - 1``,
                                    then down to ``max_lr / (div_factor final_div_factor)`` at ``N - 1``
                                    (``three_phase`` goes back to the start first); ``cos`` or ``linear``
    ``CyclicLR``                    triangle between ``base_lr`` and ``max_lr`` times the mode's scale
    ``SequentialLR``                sub-schedule ``i`` (restarted at 0) from ``milestones[i-1]`` on
    =============================== ===========================================================================

    Args:
      name: one of ``TORCH_NAMES``.
      learning_rate: the optimizer's LR (torch's ``base_lr``). Unused by ``OneCycleLR`` and ``CyclicLR``,
        which overwrite the optimizer's LR with ``max_lr`` / ``base_lr`` in torch too.
      **kwargs: the scheduler's constructor arguments, same names and defaults (without ``optimizer`` and
        ``last_epoch``). ``SequentialLR`` takes ``schedulers=[(name, kwargs), ...]`` and ``milestones=[...]``.
        ``CyclicLR`` accepts a JAX-traceable ``scale_fn``. Momentum arguments are accepted and ignored.

    Every number may be a traced array, milestone lists included (pass a 1-D array). Structural: ``name``,
    ``anneal_strategy``, ``mode``, ``scale_mode``, ``three_phase``, the number of milestones and of
    ``SequentialLR`` sub-schedulers, and whether an optional argument (``total_steps``, ``step_size_down``...)
    is given.

    Returns:
      A schedule ``count -> learning rate``.

    Raises:
      ValueError: where torch's constructor raises (factors out of range, missing ``total_steps``, bad
        ``anneal_strategy`` / ``mode``, non-integer ``T_0`` / ``T_mult``, wrong number of milestones) and for
        concrete arguments that make torch divide by zero.
      TypeError: for a keyword the scheduler does not take.

    Example:
      >>> from optax_warmup.compat import torch_schedule
      >>> warm = ("LinearLR", {"start_factor": 0.5, "total_iters": 2})
      >>> decay = ("ExponentialLR", {"gamma": 0.5})
      >>> s = torch_schedule("SequentialLR", 1.0, schedulers=[warm, decay], milestones=[2])
      >>> [float(s(k)) for k in range(5)]
      [0.5, 0.75, 1.0, 0.5, 0.25]
    """
    if name not in _BUILDERS:
        raise ValueError(f"name must be one of {list(TORCH_NAMES)}, got {name!r}")
    if name not in ("OneCycleLR", "CyclicLR"):
        if learning_rate is None:
            raise ValueError(f"{name} needs learning_rate (the optimizer's LR)")
        V.check_finite("learning_rate", learning_rate)
    return _BUILDERS[name](learning_rate, **kwargs)
