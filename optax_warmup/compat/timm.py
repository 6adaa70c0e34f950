"""timm's ``timm.scheduler`` schedulers (cosine, tanh, step, multistep, poly, wsd, plateau) in JAX.

``timm_schedule(name, learning_rate, **kwargs)`` gives, at Optax count ``k``, the learning rate timm gives the
``(k+1)``-th update when the scheduler is built with ``t_in_epochs=False`` and driven as in timm's
``train.py`` (``step_update(num_updates)`` after each update). That is timm's ``_get_lr(k)``, except at
``k = 0`` without warmup, where the optimizer still holds ``learning_rate`` (timm only writes its first value
after the first update). Values checked against timm 1.0.31 (``tests/data/compat_golden.json``). LR noise is
not supported: timm draws it from torch's random generator (``torch.Generator`` seeded with ``noise_seed + t``),
which no JAX program reproduces.

Quirks reproduced on purpose:

* the warmup never reaches its target: its last value is ``init + (W - 1) / W * (target - init)``;
* with ``warmup_prefix=False`` (the default of cosine, tanh and poly) the main schedule runs from count 0
  *under* the warmup, so the LR drops at ``warmup_t``; tanh instead warms up to its own value at ``warmup_t``;
* ``multistep`` decays one step *before* each milestone (``bisect_right(decay_t, t + 1)``).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import optax

from optax_warmup import _validate as V
from optax_warmup._phases import PhaseSchedule
from optax_warmup.compat._common import (
    Schedule,
    as_count,
    check_in_range,
    engine_schedule,
    finite,
    floor_div,
    safe_div,
    safe_pow,
    structural_list,
)
from optax_warmup.compat.plateau import plateau_transformation

TIMM_NAMES = ("cosine", "tanh", "step", "multistep", "poly", "wsd")

_NOISE_KEYS = ("noise_range_t", "noise_pct", "noise_std", "noise_seed", "noise_type")


def _cycle(t, t_initial, cycle_mul):
    """timm's cycle bookkeeping: cycle index ``i``, its length ``t_i`` and the position ``t_curr`` in it."""
    t0 = jnp.maximum(finite(t_initial), 1e-30)
    m = jnp.maximum(finite(cycle_mul), 1.0)
    geometric = m > 1.0
    m_safe = jnp.where(geometric, m, 2.0)

    def start(i):
        return t0 * (m_safe**i - 1.0) / (m_safe - 1.0)

    i_geo = jnp.floor(jnp.log1p(t / t0 * (m_safe - 1.0)) / jnp.log(m_safe))
    # timm takes the floor of a float log; on integer boundaries we settle it exactly.
    i_geo = jnp.where(t < start(i_geo), i_geo - 1.0, i_geo)
    i_geo = jnp.where(t >= start(i_geo + 1.0), i_geo + 1.0, i_geo)
    i_flat = floor_div(t, t0)
    i = jnp.where(geometric, i_geo, i_flat)
    t_i = jnp.where(geometric, t0 * m_safe**i_geo, t0)
    t_curr = jnp.where(geometric, t - start(i_geo), t - t0 * i_flat)
    return i, t_i, t_curr


def _cyclic(curve):
    """Wraps ``curve(tr_k, tr, lr_max, lr_min)`` into timm's cycle / decay / limit logic: ``(t, b) -> lr``."""

    def main(t, b, p):
        i, t_i, t_curr = _cycle(t, p["t_initial"], p["cycle_mul"])
        lr_max = b * safe_pow(jnp.maximum(finite(p["cycle_decay"]), 0.0), i)
        k = finite(p.get("k_decay", 1.0))  # tanh has none
        tr_k = safe_div(safe_pow(t_curr, k), safe_pow(t_i, k))
        value = curve(tr_k, t_curr / t_i, lr_max, finite(p["lr_min"]), p)
        return jnp.where(i < finite(p["cycle_limit"]), value, finite(p["lr_min"]))

    return main


_COSINE = _cyclic(lambda tr_k, tr, hi, lo, p: lo + 0.5 * (hi - lo) * (1.0 + jnp.cos(jnp.pi * tr_k)))
_POLY = _cyclic(
    lambda tr_k, tr, hi, lo, p: lo + (hi - lo) * safe_pow(jnp.clip(1.0 - tr_k, 0.0, 1.0), finite(p["power"]))
)
_TANH = _cyclic(
    lambda tr_k, tr, hi, lo, p: (
        lo + 0.5 * (hi - lo) * (1.0 - jnp.tanh(finite(p["lb"]) * (1.0 - tr) + finite(p["ub"]) * tr))
    )
)


def _step(t, b, p):
    size = finite(p["decay_t"])
    return b * safe_pow(
        jnp.maximum(finite(p["decay_rate"]), 0.0), floor_div(t, jnp.where(size > 0, size, 1.0))
    )


def _multistep(t, b, p):
    ms = jnp.asarray(p["decay_t"], V.float_dtype()).reshape(-1)
    passed = jnp.sum(ms <= (t + 1.0)[..., None], axis=-1)  # bisect_right(decay_t, t + 1)
    return b * safe_pow(jnp.maximum(finite(p["decay_rate"]), 0.0), passed)


_WSD_STABLE = ("constant", "rsqrt", "power")
_WSD_DECAY = ("linear", "1-sqrt", "cosine", "power", "exp")


def _wsd(t, b, p):
    """timm's ``WSDLRScheduler`` after its warmup (``t`` counted from the end of the warmup)."""
    lo = finite(p["lr_min"])
    stable = b
    if p["stable_fn"] != "constant":
        power = 0.5 if p["stable_fn"] == "rsqrt" else finite(p["stable_power"])
        ts = p["stable_timescale"] if p["stable_timescale"] is not None else p["warmup_t"]
        ts = finite(ts)
        stable = b * safe_pow(1.0 + t / jnp.where(ts > 0, ts, 1.0), -power)
    stable = jnp.maximum(stable, lo)
    d = finite(p["decay_t"])
    t_decay = t - (finite(p["t_initial"]) - d)
    frac = jnp.clip(safe_div(t_decay, d), 0.0, 1.0)
    fn = p["decay_fn"]
    if callable(fn):
        decay = jnp.asarray(fn(frac), frac.dtype)
    elif fn == "linear":
        decay = 1.0 - frac
    elif fn == "1-sqrt":
        decay = 1.0 - jnp.sqrt(frac)
    elif fn == "cosine":
        decay = 0.5 * (1.0 + jnp.cos(jnp.pi * frac))
    elif fn == "power":
        decay = 1.0 - safe_pow(frac, finite(p["decay_power"]))
    else:
        r = jnp.clip(finite(p["decay_ratio"]), 1e-30, 1.0 - 1e-7)
        decay = (safe_pow(r, frac) - r) / (1.0 - r)
    return jnp.where(t_decay <= 0, stable, lo + (stable - lo) * decay)


def _validate_wsd(p, given):
    V.check_positive("t_initial", p["t_initial"])
    V.check_positive("decay_t", p["decay_t"])
    V.check_at_least("t_initial", p["t_initial"], "decay_t", p["decay_t"])
    V.check_nonnegative("lr_min", p["lr_min"])
    if p["stable_fn"] not in _WSD_STABLE:
        raise ValueError(f"Invalid stable_fn ({p['stable_fn']!r}), must be one of {_WSD_STABLE}.")
    fn = p["decay_fn"]
    if not callable(fn) and fn not in _WSD_DECAY:
        raise ValueError(f"Invalid decay_fn ({fn!r}), must be one of {_WSD_DECAY} or a function.")
    # timm reads these only for one choice of stable_fn / decay_fn: elsewhere they would do nothing, so refuse.
    for key, needed, when in (
        ("stable_timescale", p["stable_fn"] != "constant", "stable_fn='rsqrt' or 'power'"),
        ("stable_power", p["stable_fn"] == "power", "stable_fn='power'"),
        ("decay_power", fn == "power", "decay_fn='power'"),
        ("decay_ratio", fn == "exp", "decay_fn='exp'"),
    ):
        if key in given and given[key] is not None and not needed:
            raise ValueError(f"{key} only applies with {when} (timm ignores it otherwise); drop it")
    p["stable_power"] = 0.5 if p["stable_power"] is None else p["stable_power"]
    p["decay_power"] = 0.5 if p["decay_power"] is None else p["decay_power"]
    p["decay_ratio"] = 0.1 if p["decay_ratio"] is None else p["decay_ratio"]
    V.check_positive("stable_power", p["stable_power"])
    V.check_positive("decay_power", p["decay_power"])
    check_in_range("decay_ratio", p["decay_ratio"], 0.0, 1.0, low_open=True, high_open=True)
    if p["stable_fn"] != "constant":
        ts = p["stable_timescale"] if p["stable_timescale"] is not None else p["warmup_t"]
        v = V.concrete("stable_timescale", ts)
        if v is not None and not v > 0:
            raise ValueError(
                f"stable_fn={p['stable_fn']!r} needs stable_timescale > 0 (it defaults to warmup_t, here {ts!r})"
            )


_CYCLE_DEFAULTS = dict(lr_min=0.0, cycle_mul=1.0, cycle_decay=1.0, cycle_limit=1, k_decay=1.0)
_WARMUP_DEFAULTS = dict(warmup_t=0, warmup_lr_init=0.0)
_SPECS: dict[str, tuple[Any, tuple[str, ...], dict[str, Any]]] = {
    # name: (main schedule, required keys, defaults)
    "cosine": (_COSINE, ("t_initial",), dict(_CYCLE_DEFAULTS, **_WARMUP_DEFAULTS, warmup_prefix=False)),
    "poly": (
        _POLY,
        ("t_initial",),
        dict(_CYCLE_DEFAULTS, **_WARMUP_DEFAULTS, warmup_prefix=False, power=0.5),
    ),
    "tanh": (
        _TANH,
        ("t_initial",),
        # timm's tanh has no k_decay
        dict({k: v for k, v in _CYCLE_DEFAULTS.items() if k != "k_decay"}, **_WARMUP_DEFAULTS, warmup_prefix=False,
             lb=-7.0, ub=3.0),
    ),
    "step": (_step, ("decay_t",), dict(_WARMUP_DEFAULTS, decay_rate=1.0, warmup_prefix=True)),
    "multistep": (_multistep, ("decay_t",), dict(_WARMUP_DEFAULTS, decay_rate=1.0, warmup_prefix=True)),
    "wsd": (
        _wsd,
        ("t_initial", "decay_t"),
        dict(
            _WARMUP_DEFAULTS,
            lr_min=0.0,
            stable_fn="constant",
            stable_timescale=None,
            stable_power=None,
            decay_fn="1-sqrt",
            decay_power=None,
            decay_ratio=None,
        ),
    ),
}


def _validate(name, p):
    if name in ("cosine", "poly", "tanh"):
        V.check_positive("t_initial", p["t_initial"])
        V.check_nonnegative("lr_min", p["lr_min"])
        check_in_range("cycle_mul", p["cycle_mul"], 1.0, None)  # timm's log breaks below 1 (timm issue #353)
        V.check_nonnegative("cycle_decay", p["cycle_decay"])
        V.check_nonnegative("cycle_limit", p["cycle_limit"])
        if "k_decay" in p:
            V.check_nonnegative("k_decay", p["k_decay"])
    if name == "poly":
        V.check_nonnegative("power", p["power"])
    if name == "tanh":
        V.check_finite("lb", p["lb"])
        V.check_finite("ub", p["ub"])
        V.check_at_least("ub", p["ub"], "lb", p["lb"], strict=True)
    if name == "step":
        V.check_positive("decay_t", p["decay_t"])
    if name == "multistep":
        p["decay_t"] = structural_list("decay_t", p["decay_t"])
    if name in ("step", "multistep"):
        V.check_nonnegative("decay_rate", p["decay_rate"])
    V.check_nonnegative("warmup_t", p["warmup_t"])
    V.check_nonnegative("warmup_lr_init", p["warmup_lr_init"])
    if not isinstance(p.get("warmup_prefix", True), bool):
        raise ValueError(f"warmup_prefix must be a bool, got {p['warmup_prefix']!r}")


_PLATEAU_DEFAULTS = dict(
    decay_rate=0.1,
    patience_t=10,
    threshold=1e-4,
    cooldown_t=0,
    warmup_t=0,
    warmup_lr_init=0.0,
    lr_min=0.0,
    mode="max",
)


def _refuse_unused_cycles(given: dict, p: dict) -> None:
    """With ``cycle_limit <= 1`` (timm's default) there is one cycle: ``cycle_mul`` and ``cycle_decay`` act on the
    cycles after it, so timm ignores them; refuse them rather than ignore them."""
    limit = V.concrete("cycle_limit", p["cycle_limit"]) if "cycle_limit" in p else None
    if limit is None or limit > 1:
        return
    for key in ("cycle_mul", "cycle_decay"):
        if key in given and (V.is_traced(given[key]) or V.concrete(key, given[key]) != 1.0):
            raise ValueError(
                f"{key} only acts after the first cycle, and cycle_limit={p['cycle_limit']!r} allows one (timm "
                f"ignores {key} then): raise cycle_limit, or drop {key}"
            )


def _refuse_epoch_arguments(kwargs: dict) -> None:
    for key in _NOISE_KEYS:
        if kwargs.get(key) is not None:
            raise ValueError(f"{key} is not supported: timm's LR noise is drawn from torch's random generator")
        kwargs.pop(key, None)
    if "t_in_epochs" in kwargs:
        raise ValueError(
            "t_in_epochs only chooses which of timm's step() / step_update() advances t; the count given to this "
            "schedule is t itself, so drop it"
        )
    if kwargs.pop("initialize", True) is not True:
        raise ValueError("initialize=False (timm then never writes its first LR) is not supported; drop it")


def timm_schedule(name: str, learning_rate, **kwargs) -> PhaseSchedule | optax.GradientTransformationExtraArgs:
    r"""The LR of timm's ``<Name>LRScheduler(optimizer, t_in_epochs=False, **kwargs)`` as ``count -> lr``.

    With ``b = learning_rate``, warmup ``W = warmup_t`` from ``I = warmup_lr_init``, and ``t`` the count
    shifted by ``W`` when ``warmup_prefix``:

    .. math::
      \mathrm{lr}(k) = \begin{cases} I + k (\mathrm{target} - I) / W & k < W \\ \mathrm{main}(t) & k \ge W
      \end{cases}

    where ``target = b`` (tanh without prefix: ``main(W)``) and ``main`` is, inside cycle ``i`` of length
    ``t_i = t_initial * cycle_mul**i`` at position ``t_c`` (``lr_max = b * cycle_decay**i``; ``lr_min`` once
    ``i >= cycle_limit``):

    * ``cosine``: ``lr_min + (lr_max - lr_min) (1 + cos(pi t_c**k / t_i**k)) / 2`` (``k = k_decay``)
    * ``poly``: ``lr_min + (lr_max - lr_min) (1 - t_c**k / t_i**k)**power``
    * ``tanh``: ``lr_min + (lr_max - lr_min) (1 - tanh(lb (1 - t_c/t_i) + ub t_c/t_i)) / 2``
    * ``step``: ``b * decay_rate**floor(t / decay_t)``
    * ``multistep``: ``b * decay_rate**(number of decay_t <= t + 1)``
    * ``wsd`` (``WSDLRScheduler``, warmup always a prefix): ``s = max(b * stable(t), lr_min)``, then over the last
      ``decay_t`` of ``t_initial`` steps ``lr_min + (s - lr_min) * decay(f)``, ``f`` the decay progress;
      ``stable`` is 1 (``constant``), ``(1 + t / tau)**-0.5`` (``rsqrt``) or ``**-stable_power`` (``power``),
      ``tau = stable_timescale`` (default ``warmup_t``); ``decay`` is ``1 - f``, ``1 - sqrt(f)``, the cosine,
      ``1 - f**decay_power``, ``(r**f - r) / (1 - r)`` (``exp``, ``r = decay_ratio``) or a JAX function of ``f``

    Args:
      name: ``"cosine"``, ``"tanh"``, ``"step"``, ``"multistep"``, ``"poly"``, ``"wsd"`` or ``"plateau"``.
      learning_rate: the optimizer's LR (timm's base value).
      **kwargs: the scheduler's keyword arguments, same names and defaults: ``t_initial``, ``lr_min``,
        ``warmup_t``, ``warmup_lr_init``, ``warmup_prefix``, ``cycle_mul``, ``cycle_decay``, ``cycle_limit``,
        ``k_decay``, ``decay_t``, ``decay_rate``, ``power``, ``lb``, ``ub``, and WSD's ``stable_fn``,
        ``stable_timescale``, ``stable_power``, ``decay_fn``, ``decay_power``, ``decay_ratio`` (each refused where
        timm would not read it). Noise arguments raise (timm draws
        the noise from torch's generator), and so does ``t_in_epochs`` (the count is timm's ``t``, whichever
        step method moves it); ``initialize=True`` is accepted (it is what timm does), ``False`` raises.

    ``"plateau"`` (``PlateauLRScheduler``) follows a metric, not the count: it returns the Optax transformation of
    ``torch_reduce_lr_on_plateau`` with timm's names and defaults (``decay_rate=0.1``, ``patience_t=10``,
    ``threshold=1e-4``, ``cooldown_t=0``, ``lr_min=0``, ``mode="max"``) and timm's warmup: ``warmup_t`` updates
    from ``warmup_lr_init`` (``lr = I + (k + 1) (b - I) / W`` after update ``k``, the metric unread) before the
    plateau logic starts. Each update is one of timm's ``step(epoch, metric)``.

    Every number may be traced, ``decay_t`` of ``multistep`` included (as a 1-D array); ``warmup_prefix`` is a
    Python bool and the length of ``decay_t`` is structural.

    Returns:
      A schedule ``count -> learning rate``.

    Example:
      >>> from optax_warmup.compat import timm_schedule
      >>> s = timm_schedule("cosine", 1.0, t_initial=10, warmup_t=2, warmup_prefix=True)
      >>> [round(float(s(k)), 4) for k in (0, 1, 2, 7, 12)]
      [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    kwargs = dict(kwargs)
    if name == "plateau":
        _refuse_epoch_arguments(kwargs)
        unknown = set(kwargs) - set(_PLATEAU_DEFAULTS)
        if unknown:
            raise TypeError(f"timm plateau scheduler got unexpected keyword arguments {sorted(unknown)}")
        p = dict(_PLATEAU_DEFAULTS, **kwargs)
        return plateau_transformation(
            learning_rate,
            mode=p["mode"],
            factor=p["decay_rate"],
            patience=p["patience_t"],
            threshold=p["threshold"],
            threshold_mode="rel",
            cooldown=p["cooldown_t"],
            min_lr=p["lr_min"],
            eps=1e-8,
            warmup_steps=p["warmup_t"],
            warmup_init=p["warmup_lr_init"],
            owner="timm_schedule('plateau')",
        )
    return _closed_form(name, learning_rate, **kwargs)


@engine_schedule
def _closed_form(name: str, learning_rate, **kwargs) -> Schedule:
    if name not in _SPECS:
        raise ValueError(f"name must be one of {list(TIMM_NAMES)} or 'plateau', got {name!r}")
    _refuse_epoch_arguments(kwargs)
    main, required, defaults = _SPECS[name]
    unknown = set(kwargs) - set(required) - set(defaults)
    if unknown:
        raise TypeError(f"timm {name} scheduler got unexpected keyword arguments {sorted(unknown)}")
    for key in required:
        if key not in kwargs:
            raise ValueError(f"timm {name} scheduler requires `{key}`")
    V.check_finite("learning_rate", learning_rate)
    p = dict(defaults, **kwargs)
    if name == "wsd":
        _validate_wsd(p, kwargs)
    _validate(name, p)
    _refuse_unused_cycles(kwargs, p)

    def schedule(count):
        k = as_count(count)
        b = finite(learning_rate)
        w, init = finite(p["warmup_t"]), finite(p["warmup_lr_init"])
        prefix = p.get("warmup_prefix", True)  # WSD's warmup is always a prefix
        t = k - w if prefix else k
        after = main(jnp.maximum(t, 0.0), b, p)
        target = b if (name != "tanh" or prefix) else main(w, b, p)
        ramp = init + k * safe_div(target - init, w)
        value = jnp.where(k < w, ramp, after)
        # Without warmup timm writes nothing before the first update: the optimizer keeps its own LR.
        value = jnp.where((k == 0) & (w <= 0), b, value)
        return value.astype(V.float_dtype())

    return schedule
