"""``torch.optim.lr_scheduler`` schedulers as pure JAX schedules.

``torch_schedule(name, learning_rate, **kwargs)`` gives, at Optax count ``k``, the learning rate that the
torch scheduler ``name(optimizer, **kwargs)`` gives the ``(k+1)``-th update when stepped as documented
(``optimizer.step()`` then ``scheduler.step()``, so ``last_epoch = k``). ``learning_rate`` is the optimizer's
LR (torch's ``base_lr``). Values checked against torch 2.14.1 (``tests/data/compat_golden.json``) and, for
``LambdaLR``, ``MultiplicativeLR``, ``ChainedScheduler``, ``SWALR`` and the momentum schedules, torch 2.13.0
(``tests/data/compat_golden_parity.json``).

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

import functools
import warnings
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from optax_warmup import _validate as V
from optax_warmup._phases import from_function
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
    "LambdaLR",
    "MultiplicativeLR",
    "ChainedScheduler",
    "SWALR",
)
# Schedulers whose ``get_lr`` multiplies the current LR by a ratio: these are the ones a ``ChainedScheduler``
# composes into a product (the others overwrite the LR or add to it, so torch's chain is not a product).
CHAINABLE = (
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "StepLR",
    "MultiStepLR",
    "PolynomialLR",
    "MultiplicativeLR",
    "ChainedScheduler",
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


def _warn_momentum(name: str, cycle_momentum, base_momentum, max_momentum) -> None:
    """``cycle_momentum=True`` (torch's default) cycles the optimizer's momentum too: say where that lives."""
    if not isinstance(cycle_momentum, bool):
        raise ValueError(f"cycle_momentum must be a bool, got {cycle_momentum!r}")
    if cycle_momentum:
        warnings.warn(
            f"{name}: torch also cycles the momentum (Adam's beta1) when cycle_momentum=True (its default); "
            "this learning-rate schedule does not. Feed compat.torch_momentum_schedule("
            f"{name!r}, ...same arguments...) to optax.inject_hyperparams (b1= or momentum=), or pass "
            "cycle_momentum=False to keep the momentum fixed.",
            UserWarning,
            stacklevel=5,
        )
    elif base_momentum is not None or max_momentum is not None:
        raise ValueError(
            f"{name}: base_momentum / max_momentum only matter with cycle_momentum=True (torch ignores them "
            "otherwise); drop them, or use compat.torch_momentum_schedule"
        )


def _no_learning_rate(name: str, learning_rate) -> None:
    if learning_rate is not None:
        raise ValueError(
            f"{name} does not use learning_rate: torch overwrites the optimizer's LR "
            f"({'max_lr / div_factor' if name == 'OneCycleLR' else 'base_lr'}); drop it"
        )


def _one_cycle(
    max_lr,
    total_steps=None,
    epochs=None,
    steps_per_epoch=None,
    pct_start=0.3,
    anneal_strategy="cos",
    base_momentum=None,
    max_momentum=None,
    div_factor=25.0,
    final_div_factor=1e4,
    three_phase=False,
    *,
    momentum: bool,
) -> Schedule:
    """``OneCycleLR``'s LR (``momentum=False``) or the momentum it sets (``momentum=True``)."""
    if total_steps is not None:
        if epochs is not None or steps_per_epoch is not None:
            raise ValueError(
                "OneCycleLR: give total_steps or (epochs and steps_per_epoch), not both (torch ignores epochs "
                "and steps_per_epoch when total_steps is given)"
            )
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
    if not isinstance(three_phase, bool):
        raise ValueError(f"three_phase must be a bool, got {three_phase!r}")
    V.check_finite("max_lr", max_lr)
    V.check_positive("div_factor", div_factor)
    V.check_positive("final_div_factor", final_div_factor)
    base_m = 0.85 if base_momentum is None else base_momentum
    max_m = 0.95 if max_momentum is None else max_momentum
    if momentum:
        V.check_finite("base_momentum", base_m)
        V.check_finite("max_momentum", max_m)

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
        if momentum:
            hi, lo = finite(max_m), finite(base_m)
            levels = [hi, lo, hi, hi] if three_phase else [hi, lo, hi]
        else:
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
        return _finish(jnp.where(s > n, levels[-1], value))

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
    base_momentum=None,
    max_momentum=None,
    div_factor=25.0,
    final_div_factor=1e4,
    three_phase=False,
) -> Schedule:
    _no_learning_rate("OneCycleLR", learning_rate)
    _warn_momentum("OneCycleLR", cycle_momentum, base_momentum, max_momentum)
    return _one_cycle(
        max_lr, total_steps, epochs, steps_per_epoch, pct_start, anneal_strategy, base_momentum, max_momentum,
        div_factor, final_div_factor, three_phase, momentum=False,
    )


def _cos_anneal(start, end, pct):
    return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1.0)


def _linear_anneal(start, end, pct):
    return (end - start) * pct + start


def _cyclic(
    base_lr,
    max_lr,
    step_size_up=2000,
    step_size_down=None,
    mode=None,
    gamma=None,
    scale_fn: Callable | None = None,
    scale_mode=None,
    base_momentum=None,
    max_momentum=None,
    *,
    momentum: bool,
) -> Schedule:
    """``CyclicLR``'s LR (``momentum=False``) or the momentum it sets (``momentum=True``)."""
    if scale_fn is None:
        mode = "triangular" if mode is None else mode
        if mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(
                f"mode must be 'triangular', 'triangular2' or 'exp_range' (or give scale_fn), got {mode!r}"
            )
        if scale_mode is not None:
            raise ValueError("scale_mode only applies with scale_fn (torch fixes it for the built-in modes)")
        if gamma is not None and mode != "exp_range":
            raise ValueError(f"gamma only applies to mode='exp_range' (torch ignores it for {mode!r})")
        scale_mode = "iterations" if mode == "exp_range" else "cycle"
    else:
        if not callable(scale_fn):
            raise ValueError(f"scale_fn must be a function, got {scale_fn!r}")
        if mode is not None or gamma is not None:
            raise ValueError("mode and gamma do not apply when scale_fn is given (torch ignores them then)")
        scale_mode = "cycle" if scale_mode is None else scale_mode
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
    gamma = 1.0 if gamma is None else gamma
    V.check_finite("base_lr", base_lr)
    V.check_finite("max_lr", max_lr)
    V.check_positive("step_size_up", step_size_up)
    if step_size_down is not None:
        V.check_nonnegative("step_size_down", step_size_down)
    V.check_finite("gamma", gamma)
    base_m = 0.8 if base_momentum is None else base_momentum
    max_m = 0.9 if max_momentum is None else max_momentum
    if momentum:
        V.check_finite("base_momentum", base_m)
        V.check_finite("max_momentum", max_m)

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
        height = factor * scale(cycle if scale_mode == "cycle" else e)
        if momentum:  # the momentum moves the other way: max_momentum at base_lr
            hi, lo = finite(max_m), finite(base_m)
            return _finish(hi - (hi - lo) * height)
        lo, hi = finite(base_lr), finite(max_lr)
        return _finish(lo + (hi - lo) * height)

    return schedule


def _cyclic_lr(
    learning_rate,
    base_lr,
    max_lr,
    step_size_up=2000,
    step_size_down=None,
    mode=None,
    gamma=None,
    scale_fn: Callable | None = None,
    scale_mode=None,
    cycle_momentum=True,
    base_momentum=None,
    max_momentum=None,
) -> Schedule:
    _no_learning_rate("CyclicLR", learning_rate)
    _warn_momentum("CyclicLR", cycle_momentum, base_momentum, max_momentum)
    return _cyclic(
        base_lr, max_lr, step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode, base_momentum,
        max_momentum, momentum=False,
    )


def _lambda_lr(learning_rate, lr_lambda) -> Schedule:
    _check_lambda(lr_lambda)

    def schedule(count):
        return _finish(finite(learning_rate) * lr_lambda(as_count(count)))

    return schedule


def _check_lambda(lr_lambda) -> None:
    if isinstance(lr_lambda, list | tuple):
        raise ValueError("lr_lambda: one function for every parameter group (per-group lists are not supported)")
    if not callable(lr_lambda):
        raise ValueError(f"lr_lambda should be a function, but got {type(lr_lambda).__name__}")


def _running_product(factor, e):
    """``prod(factor(i) for i in 1..e)`` for a float count ``e``, with a loop whose length is traced (one
    compilation for every count; ``e`` iterations per evaluation)."""

    def one(last):
        def body(state):
            i, acc = state
            return i + 1.0, acc * jnp.asarray(factor(i), acc.dtype)

        _, acc = jax.lax.while_loop(lambda st: st[0] <= last, body, (jnp.ones_like(last), jnp.ones_like(last)))
        return acc

    return jnp.vectorize(one)(e)


def _multiplicative_lr(learning_rate, lr_lambda) -> Schedule:
    _check_lambda(lr_lambda)

    def schedule(count):
        return _finish(finite(learning_rate) * _running_product(lr_lambda, as_count(count)))

    return schedule


def _swalr(learning_rate, swa_lr, anneal_epochs=10, anneal_strategy="cos") -> Schedule:
    V.check_finite("swa_lr", swa_lr)
    _check_int_like("anneal_epochs", anneal_epochs, 0)
    if anneal_strategy not in ("cos", "linear"):
        raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy!r}")

    def schedule(count):
        e, a = as_count(count), finite(anneal_epochs)
        # torch: t = e / max(1, A) clipped to [0, 1]; with A = 0 it is 1 from the first update on.
        t = jnp.where(a > 0, jnp.clip(e / jnp.maximum(a, 1.0), 0.0, 1.0), 1.0)
        alpha = 0.5 * (1.0 - jnp.cos(jnp.pi * t)) if anneal_strategy == "cos" else t
        return _finish(finite(swa_lr) * alpha + finite(learning_rate) * (1.0 - alpha))

    return schedule


def _children(owner: str, schedulers) -> list[tuple[str, dict]]:
    if isinstance(schedulers, str | bytes) or not isinstance(schedulers, Sequence):
        raise ValueError(f"{owner} expects schedulers=[(name, kwargs), ...], got {schedulers!r}")
    children = []
    for i, entry in enumerate(schedulers):
        if not (isinstance(entry, Sequence) and len(entry) == 2 and isinstance(entry[0], str)):
            raise ValueError(f"schedulers[{i}] must be a (name, kwargs) pair, got {entry!r}")
        children.append((entry[0], dict(entry[1])))
    if not children:
        raise ValueError(f"{owner} expects at least one scheduler, but got no scheduler.")
    return children


# How a child of a ``ChainedScheduler`` acts when the chain steps (torch calls every child's ``step`` in turn, each
# on the LR the previous one left): ``CHAINABLE`` children multiply it by their own ratio, ``_RESETS`` overwrite it
# with their closed form from the base LR, and ``CosineAnnealingLR`` maps it by ``eta + r_e (lr - eta)`` (plus a
# jump at each restart).
_RESETS = ("LambdaLR", "CosineAnnealingWarmRestarts")
_CHAIN_KINDS = {**{n: "mult" for n in CHAINABLE}, **{n: "reset" for n in _RESETS}, "CosineAnnealingLR": "cos"}


def _chain_leaves(schedulers, where: str = "schedulers") -> list[tuple[str, str, dict]]:
    """The children of a ``ChainedScheduler`` in torch's stepping order, nested chains flattened:
    ``(where, name, kwargs)``."""
    leaves = []
    for i, (name, kwargs) in enumerate(_children("ChainedScheduler", schedulers)):
        at = f"{where}[{i}]"
        if name == "ChainedScheduler":
            leaves += _chain_leaves(kwargs.get("schedulers"), f"{at}.schedulers")
        elif name not in _CHAIN_KINDS:
            raise ValueError(
                f"{at}: {name} cannot be a ChainedScheduler child here (torch's chain steps it from the LR the "
                f"others left, which has no closed form); children: {sorted(_CHAIN_KINDS)}"
            )
        else:
            leaves.append((at, name, kwargs))
    return leaves


def _cos_sq(e, t):
    """``(1 + cos(pi e / t)) / 2`` written as ``sin(pi (t - e mod 2t) / 2t)**2``: the argument stays small next to
    the zeros at ``e = t, 3t, ...``, where float32 would otherwise lose the digits a ratio of two of them needs."""
    return jnp.sin(jnp.pi * (t - jnp.mod(e, 2.0 * t)) / (2.0 * t)) ** 2


def _ratio(f: Callable, a, b):
    """``f(b) / f(a)``: the product of a multiplying child's step ratios from step ``a`` to ``b`` (1 once ``f`` has
    reached 0, where torch's ratio is 1 too)."""
    fa = f(a)
    return jnp.where(fa == 0, 1.0, safe_div(f(b), fa))


class _Chain:
    """A ``ChainedScheduler`` in closed form.

    With only multiplying children the LR is ``b * f_1(e) * ... * f_n(e)``. After a resetting child ``j`` (the
    last one), each step starts from its value ``A_j(e)`` and only the children after it act, each once.
    Otherwise a ``CosineAnnealingLR`` child ``k`` (one, with ``eta_min=0``) zeroes the LR at ``T, 3T, ...`` and
    restarts it at ``s = T + 1 + 2mT`` with ``b (1 - cos(pi/T)) / 2``, so from the last restart ``s`` on
    ``lr = b C(e) prod_{i<k} f_i(e)/f_i(s) prod_{i>k} f_i(e)/f_i(s-1)``, ``C(e) = (1 + cos(pi e/T)) / 2``.
    """

    def __init__(self, learning_rate, schedulers):
        leaves = self._leaves = _chain_leaves(schedulers)
        self.base = learning_rate
        self.cos_args: dict[int, tuple] = {}
        self.kinds = [_CHAIN_KINDS[name] for _, name, _ in leaves]
        self.children: list[Callable] = []
        for i, ((_, name, kwargs), kind) in enumerate(zip(leaves, self.kinds, strict=True)):
            # a multiplying child as its factor (base LR 1); the others from the base LR (a cosine's is built for
            # torch's own checks of its arguments, and when it is the only child)
            self.children.append(torch_schedule(name, 1.0 if kind == "mult" else learning_rate, **kwargs))
            if kind == "cos":
                self.cos_args[i] = (kwargs["T_max"], kwargs.get("eta_min", 0.0))
        self.last_reset = max((i for i, k in enumerate(self.kinds) if k == "reset"), default=-1)
        cosines = [i for i, k in enumerate(self.kinds) if k == "cos" and i > self.last_reset]
        self.cos = cosines[0] if cosines else -1
        if self.last_reset < 0 and cosines and len(self.kinds) > 1:
            extra = "" if len(cosines) == 1 else f"; {leaves[cosines[1]][0]} is a second one"
            at, _, kwargs = leaves[cosines[0]]
            eta = concrete_value(f"{at}: eta_min", kwargs.get("eta_min", 0.0))
            if len(cosines) > 1 or eta != 0.0:
                raise ValueError(
                    f"{at}: CosineAnnealingLR in a ChainedScheduler steps from the LR the other children left "
                    f"(eta_min + r_e (lr - eta_min)), which has a closed form only for one such child with a "
                    f"concrete eta_min=0 or after a LambdaLR; got eta_min={kwargs.get('eta_min', 0.0)!r}{extra}"
                )

    def _cos_step(self, i, x, e):
        """Child ``i`` (``CosineAnnealingLR``) stepping from ``x`` to epoch ``e >= 1``."""
        t_max, eta = (finite(v) for v in self.cos_args[i])
        t = jnp.maximum(t_max, 1.0)
        restart = jnp.mod(e - 1.0 - t, 2.0 * t) == 0
        jump = x + (finite(self.base) - eta) * (1.0 - jnp.cos(jnp.pi / t)) / 2.0
        ratio = safe_div(_cos_sq(e, t), _cos_sq(e - 1.0, t))
        return jnp.where(restart, jump, eta + ratio * (x - eta))

    def _after_reset(self, e):
        j = self.last_reset
        e1 = jnp.maximum(e, 1.0)
        first, later = self.children[j](e), self.children[j](e1)
        for i in range(j + 1, len(self.kinds)):
            if self.kinds[i] == "mult":
                first = first * self.children[i](e)
                later = later * _ratio(self.children[i], e1 - 1.0, e1)
            else:  # a cosine (j is the last resetting child)
                later = self._cos_step(i, later, e1)
        return jnp.where(e < 1, first, later)

    def _with_cosine(self, e):
        k = self.cos
        t = jnp.maximum(finite(self.cos_args[k][0]), 1.0)
        c_e = _cos_sq(e, t)
        before = c_e
        for i, f in enumerate(self.children):
            if i != k:
                before = before * f(e)
        s = t + 1.0 + 2.0 * t * jnp.floor(jnp.maximum(e - t - 1.0, 0.0) / (2.0 * t))
        since = c_e
        for i, f in enumerate(self.children):
            if i != k:
                since = since * _ratio(f, s if i < k else s - 1.0, e)
        return jnp.where(e <= t, before, since)

    def __call__(self, count):
        e = as_count(count)
        if self.last_reset >= 0:
            value = self._after_reset(e)
        elif self.cos >= 0 and len(self.children) == 1:
            value = self.children[0](e)  # the cosine alone: its own closed form, eta_min included
        elif self.cos >= 0:
            value = finite(self.base) * self._with_cosine(e)
        else:
            value = finite(self.base)
            for f in self.children:
                value = value * f(e)
        return _finish(value)

    def first_piece(self, count):
        """The chain as the first scheduler of a ``SequentialLR``. torch resets the LR to the base LR and re-runs
        the chain's first step with every child outside its initial mode, at epoch 0: ``ExponentialLR``,
        ``PolynomialLR`` and ``MultiplicativeLR`` apply one more factor (``_first_step_factor``) and
        ``CosineAnnealingLR`` its step ratio from epoch -1, ``1 / C(1)``. Those factors last until a resetting
        child overwrites the LR (from epoch 1 on) or the cosine reaches zero (after ``T_max``)."""
        e = as_count(count)
        value = self(e)
        j = self.last_reset
        extra = [
            _first_step_factor(name, dict(kwargs))
            for i, (kind, (_, name, kwargs)) in enumerate(zip(self.kinds, self._leaves, strict=True))
            if kind == "mult" and i > j
        ]
        product = functools.reduce(lambda acc, f: acc * f(e), extra, jnp.ones_like(e))
        if j >= 0:
            x = self.children[j](jnp.zeros_like(e))
            for i in range(j + 1, len(self.kinds)):
                if self.kinds[i] == "mult":
                    x = x * self.children[i](jnp.zeros_like(e))
                elif self.kinds[i] == "cos":
                    x = self._cos_step(i, x, jnp.zeros_like(e))
            return _finish(jnp.where(e < 1, x * product, value))
        if self.cos >= 0:
            t = jnp.maximum(finite(self.cos_args[self.cos][0]), 1.0)
            if len(self.children) == 1:  # eta_min may be non-zero here: the step from epoch -1 is affine
                x = self._cos_step(self.cos, finite(self.base), jnp.zeros_like(e))
                lo = finite(self.cos_args[self.cos][1])
                first = lo + safe_div(x - lo, finite(self.base) - lo) * (value - lo)
                return _finish(jnp.where(e <= t, first, value))
            return _finish(jnp.where(e <= t, safe_div(value * product, _cos_sq(1.0, t)), value))
        return _finish(value * product)


def _chained(learning_rate, schedulers) -> Schedule:
    return _Chain(learning_rate, schedulers)


def _first_step_factor(name: str, kwargs: dict) -> Callable:
    """The factor a chained child applies once more when ``SequentialLR`` starts the chain.

    ``SequentialLR`` undoes every child's first step and re-runs it through the chain, outside torch's
    "initial" mode: ``ExponentialLR``, ``PolynomialLR`` and ``MultiplicativeLR`` then take a step at epoch 0
    (``gamma``, ``(T / (T + 1))**power`` and ``lr_lambda(0)``), which every later value keeps.
    """
    if name == "ExponentialLR":
        return lambda e: finite(kwargs["gamma"])
    if name == "PolynomialLR":
        n, p = kwargs.get("total_iters", 5), kwargs.get("power", 1.0)
        return lambda e: jnp.where(finite(n) > 0, safe_pow(safe_div(finite(n), finite(n) + 1.0), finite(p)), 1.0)
    if name == "MultiplicativeLR":
        return lambda e: jnp.asarray(kwargs["lr_lambda"](jnp.zeros_like(e)), e.dtype)
    return lambda e: jnp.ones_like(e)


# At a milestone torch restarts the next scheduler with ``_update_lr(0)``; these have no closed form there and
# continue from the previous scheduler's LR (or, for ChainedScheduler, raise NotImplementedError).
_NO_RESTART = ("MultiplicativeLR", "ChainedScheduler", "SWALR")


def _sequential_lr(learning_rate, schedulers: Sequence, milestones) -> Schedule:
    children = _children("SequentialLR", schedulers)
    milestones = structural_list("milestones", milestones)
    if len(milestones) != len(children) - 1:
        raise ValueError(
            "SequentialLR expects one milestone fewer than schedulers, got "
            f"{len(children)} schedulers and milestones={list(milestones)!r}"
        )
    pieces: list[Callable] = []
    for i, (name, kwargs) in enumerate(children):
        if name == "SequentialLR":
            raise ValueError(f"schedulers[{i}]: SequentialLR cannot be nested here")
        if i > 0 and name in _NO_RESTART:
            raise ValueError(
                f"schedulers[{i}]: torch cannot restart {name} at a milestone (it has no closed form: it continues "
                "from the previous LR, or raises for ChainedScheduler); put it first, or use its closed-form peers"
            )
        piece: Callable = torch_schedule(name, learning_rate, **kwargs)
        if i == 0 and name == "ChainedScheduler":
            piece = _Chain(learning_rate, kwargs["schedulers"]).first_piece
        pieces.append(piece)

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
    "LambdaLR": _lambda_lr,
    "MultiplicativeLR": _multiplicative_lr,
    "ChainedScheduler": _chained,
    "SWALR": _swalr,
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
    ``LambdaLR``                    ``b * lr_lambda(e)``
    ``MultiplicativeLR``            ``b * lr_lambda(1) * ... * lr_lambda(e)`` (the running product)
    ``ChainedScheduler``            ``b * f_1(e) * ... * f_n(e)``, ``f_i`` child ``i``'s LR over its base LR,
                                    for children that multiply (below for the others)
    ``SWALR``                       ``swa_lr a + b (1 - a)``, ``a = s(min(1, e / anneal_epochs))``, ``s`` the
                                    ``cos`` (``(1 - cos(pi t)) / 2``) or ``linear`` anneal (``a = 1`` if
                                    ``anneal_epochs = 0``); ``torch.optim.swa_utils.SWALR``
    =============================== ===========================================================================

    ``ChainedScheduler`` steps its children in turn on the LR the previous one left, as torch does. The ones
    that multiply (``CHAINABLE``) give the product above; ``LambdaLR`` and ``CosineAnnealingWarmRestarts``
    overwrite the LR from the base LR at each step (what comes before them is lost, children after them act once
    per step); ``CosineAnnealingLR`` steps by ``eta_min + r_e (lr - eta_min)`` with a restart jump after
    ``T_max``, which has a closed form with ``eta_min=0`` (one such child), after a ``LambdaLR``, or alone, and
    raises otherwise. Nested chains are flattened; ``OneCycleLR``, ``CyclicLR``, ``SWALR`` and
    ``SequentialLR`` children raise. Inside a ``SequentialLR`` a ``ChainedScheduler`` can only come first (torch
    raises ``NotImplementedError`` when it reaches one at a milestone), and there torch re-runs the children's
    first step outside its initial mode: ``ExponentialLR`` already applies ``gamma`` at count 0,
    ``PolynomialLR`` ``(T / (T + 1))**power``, ``MultiplicativeLR`` ``lr_lambda(0)`` and ``CosineAnnealingLR``
    its step from epoch -1. That is reproduced.

    ``OneCycleLR`` and ``CyclicLR`` also cycle the momentum (or Adam's ``beta1``) in torch when
    ``cycle_momentum=True``, their default: that is ``torch_momentum_schedule``, and this function warns (once per
    construction) to say so; ``cycle_momentum=False`` keeps the momentum fixed, as in torch.

    Args:
      name: one of ``TORCH_NAMES``.
      learning_rate: the optimizer's LR (torch's ``base_lr``). ``OneCycleLR`` and ``CyclicLR`` overwrite it
        with ``max_lr / div_factor`` / ``base_lr`` in torch, so they refuse it.
      **kwargs: the scheduler's constructor arguments, same names and defaults (without ``optimizer`` and
        ``last_epoch``). ``SequentialLR`` takes ``schedulers=[(name, kwargs), ...]`` and ``milestones=[...]``,
        ``ChainedScheduler`` ``schedulers=[(name, kwargs), ...]``. ``CyclicLR`` accepts a JAX-traceable
        ``scale_fn``; ``LambdaLR`` and ``MultiplicativeLR`` a JAX-traceable ``lr_lambda(epoch) -> factor``,
        called with the count as a float array. An argument torch would ignore raises instead (``gamma`` outside
        ``mode="exp_range"``, ``mode`` with ``scale_fn``, ``epochs`` with ``total_steps``, momentum bounds with
        ``cycle_momentum=False``).

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


MOMENTUM_NAMES = ("OneCycleLR", "CyclicLR")


def torch_momentum_schedule(name: str, **kwargs) -> Schedule:
    r"""The momentum (or Adam's ``beta1``) that torch's ``OneCycleLR`` / ``CyclicLR`` set before each update.

    With ``cycle_momentum=True`` (their default) torch moves the momentum opposite to the LR: ``OneCycleLR``
    anneals it from ``max_momentum`` down to ``base_momentum`` while the LR warms up, back to ``max_momentum``
    while it decays (three-phase: down, up, then held), with the same ``anneal_strategy`` and phase ends;
    ``CyclicLR`` sets ``max_momentum - (max_momentum - base_momentum) * h(e)``, ``h`` the same triangle (times
    the mode's scale) that lifts the LR from ``base_lr`` to ``max_lr``. Count ``k`` is the ``(k+1)``-th update,
    as in ``torch_schedule``; past ``total_steps`` (where torch raises) ``OneCycleLR`` holds ``max_momentum``.

    Feed it to ``optax.inject_hyperparams`` as ``b1`` (Adam) or ``momentum`` (SGD).

    Args:
      name: ``"OneCycleLR"`` or ``"CyclicLR"``.
      **kwargs: the same arguments as for ``torch_schedule(name, ...)``. ``cycle_momentum=False`` raises (torch
        then leaves the momentum alone: keep it a constant).

    Every number may be a traced array.

    Returns:
      A schedule ``count -> momentum``.

    Example:
      >>> import optax
      >>> from optax_warmup.compat import torch_momentum_schedule, torch_schedule
      >>> args = dict(max_lr=1.0, total_steps=10, cycle_momentum=False)
      >>> b1 = torch_momentum_schedule("OneCycleLR", max_lr=1.0, total_steps=10)
      >>> [round(float(b1(k)), 4) for k in (0, 1, 2, 9)]
      [0.95, 0.9, 0.85, 0.95]
      >>> lr = torch_schedule("OneCycleLR", **args)
      >>> tx = optax.inject_hyperparams(optax.adam)(learning_rate=lr, b1=b1)
    """
    if name not in MOMENTUM_NAMES:
        raise ValueError(f"name must be one of {list(MOMENTUM_NAMES)} (the ones that cycle momentum), got {name!r}")
    kwargs = dict(kwargs)
    if kwargs.pop("cycle_momentum", True) is not True:
        raise ValueError(
            "cycle_momentum=False: torch leaves the momentum as it is, so there is no momentum schedule; "
            "keep the optimizer's momentum constant"
        )
    if kwargs.pop("learning_rate", None) is not None:
        _no_learning_rate(name, 0.0)
    builder = _one_cycle if name == "OneCycleLR" else _cyclic
    return from_function(builder(**kwargs, momentum=True))
