"""One registry of every public schedule, shared by the reliability tests.

A ``Case`` says how to build a schedule from a dict of hyperparameters (plain floats, or traced scalars under
``jit``/``vmap``), how hypothesis draws valid hyperparameters (including 0, tiny, huge, equal levels and a warmup
longer than training), the range its documented formula allows, where its increasing warmup is, its phase
boundaries with the largest one-step change the adjacent phase allows, and, for the Optax drop-ins, the Optax
schedule it must equal and which inputs Optax handles the same way (see the module docstring of ``_decay.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import optax
from hypothesis import strategies as st

import optax_warmup as ow

# Public names that are gradient transformations, not schedules (tested in test_precision / test_resume / ...).
TRANSFORMATIONS = {
    "scale_by_schedule_f32",
    "scale_by_warmup",
    "scale_by_untuned_warmup",
    "scale_by_radam_warmup",
    "scale_by_factor_schedule",
    "clip_by_global_norm_schedule",
    "adaptive_warmup",
    "per_group_warmup",
    "scale_by_gi_adam",
    "gi_adamw",
    "clip_by_param_norm_ratio",
    "skip_step_on_spikes",
}
# Public callables that are neither: an int32 every_k schedule for MultiSteps, a number, the config round trip,
# the state readers (tested in test_transforms / test_config on main and in test_hostile here).
NOT_SCHEDULES = {
    "batch_size_warmup",
    "untuned_warmup_steps",
    "from_config",
    "to_config",
    "current_hyperparams",
    "current_learning_rate",
    "check_hyperparams",
    "ConfiguredSchedule",
    "AdaptiveWarmupState",
    "ClipByGlobalNormState",
    "ScaleByWarmupState",
    "compat",
    "batch_size_ramp",
    "parse_batch_size_schedule",
    "BatchSizeRamp",
    "SkipStepState",
    "ClipByParamNormRatioState",
}

F32_MAX_LENGTH = 2**31  # what 2**31 - 1 becomes in float32
HUGE = 1e30  # the library's clamp for traced values (``_validate._MAX_VALUE``)


def f32(x: float) -> float:
    """``x`` rounded to float32; float32 subnormals become 0, as XLA on CPU flushes them to zero."""
    v = np.float32(x)
    return 0.0 if abs(v) < np.finfo(np.float32).tiny else float(v)


# --- strategies ---------------------------------------------------------------------------------------------------

VALUES = st.one_of(
    st.sampled_from([0.0, 1e-30, 1e-8, 1e-3, 1.0, 1e30, -1.0]),
    st.floats(-1e3, 1e3, allow_nan=False),
).map(f32)
POS_VALUES = st.one_of(
    st.sampled_from([1e-30, 1e-8, 1e-3, 1.0, 1e30]),
    st.floats(1e-6, 1e3),
).map(f32)
STEPS = st.one_of(
    st.sampled_from([0, 1, 2, 3, 10, 100]),
    st.integers(0, 3000),
    st.sampled_from([10**6, 2**31 - 1]),
)
POS_STEPS = st.one_of(
    st.sampled_from([1, 2, 3, 10, 100]),
    st.integers(1, 3000),
    st.sampled_from([10**6, 2**31 - 1]),
)
EXPONENTS = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.floats(0.0, 8.0)).map(f32)
FRACTIONS = st.one_of(st.sampled_from([0.0, 0.3, 0.5, 0.7, 0.85, 1.0]), st.floats(0.0, 1.0)).map(f32)


@st.composite
def levels(draw, n: int, values=VALUES):
    """``n`` values, sometimes all equal (equal init/peak/end), sometimes sharing one."""
    kind = draw(st.sampled_from(["free", "equal", "some-equal"]))
    if kind == "equal":
        v = draw(values)
        return [v] * n
    out = [draw(values) for _ in range(n)]
    if kind == "some-equal" and n > 1:
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        out[i] = out[j]
    return out


# --- slope bounds for the continuity check -------------------------------------------------------------------------


def step_bound(start: float, end: float, length: float, slope: float = 1.0) -> float:
    """Largest change over one step inside a phase of ``length`` steps whose shape has max slope ``slope``."""
    if length < 1:
        return abs(end - start)
    return abs(end - start) * min(1.0, slope / length)


def cosine_slope(k: float) -> float | None:
    """Max |d/dp ((1 + cos(pi p)) / 2)**k|; None when unbounded (k < 1: steep at p = 1)."""
    return None if k < 1 else k * math.pi / 2


def power_slope(k: float) -> float | None:
    return None if k < 1 else k


WARMUP_SLOPE = {"linear": 1.0, "cosine": math.pi / 2, "geometric": None, "exponential": None}


def warmup_slope(shape: str, k: float) -> float | None:
    if shape == "polynomial":
        return power_slope(k)
    return WARMUP_SLOPE[shape]


@dataclass(frozen=True, repr=False)
class Case:
    name: str
    build: Callable[[dict], Callable]
    hparams: st.SearchStrategy
    value_range: Callable[[dict], tuple[float, float]]
    # (warmup_steps, init, peak) of an increasing-when-peak>=init warmup starting at count 0, or None.
    warmup: Callable[[dict], tuple[float, float, float]] | None = None
    # [(boundary count, largest allowed one-step change next to it)]; omitted where the slope is unbounded.
    boundaries: Callable[[dict], list[tuple[float, float]]] = lambda hp: []
    # Exact value at given counts from the documented formula: [(count, value)].
    exact: Callable[[dict], list[tuple[float, float]]] = lambda hp: []
    optax: Callable[[dict], Callable] | None = None
    optax_ok: Callable[[dict], bool] = lambda hp: True
    tags: tuple[str, ...] = field(default_factory=tuple)

    def __repr__(self) -> str:
        return self.name


def _rng(*vs) -> tuple[float, float]:
    vs = [float(np.clip(v, -HUGE, HUGE)) for v in vs]
    return min(vs), max(vs)


def _warm(hp):
    return (hp["warmup_steps"], hp["init_value"], hp["peak_value"])


# --- the drop-ins --------------------------------------------------------------------------------------------------


def _lvl(names, values=VALUES):
    return levels(len(names), values).map(lambda vs: dict(zip(names, vs, strict=True)))


def _merge(*strategies):
    return st.tuples(*strategies).map(lambda ds: {k: v for d in ds for k, v in d.items()})


def _fixed(**kw):
    return st.fixed_dictionaries(kw)


def _exp_range(init, rate, end, begin, steps):
    """Range of ``init * rate**((t - B) / T)`` over counts up to 2**31, clipped by ``end`` as documented."""
    p_max = max(F32_MAX_LENGTH - begin, 0.0) / steps
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        far = init * np.float64(rate) ** p_max if np.isfinite(p_max) else 0.0
    far = float(np.clip(np.nan_to_num(far, nan=0.0), -HUGE, HUGE))  # 0 * inf: the limit is 0
    if init != 0 and rate > 1 and p_max * math.log(rate) > math.log(np.finfo(np.float32).max):
        # rate**p overflows float32 before init scales it down: documented clamp to +-1e30.
        far = math.copysign(HUGE, init)
    lo, hi = _rng(init, far)
    if end is not None:
        clip = (lambda v: max(v, end)) if rate < 1 else (lambda v: min(v, end))
        lo, hi = sorted((clip(lo), clip(hi)))
    return lo, hi


def _prefix_products(init, scales):
    """``I * prod(s_1..s_i)``, each clamped to +-1e30 (the product is exact, only the result is clamped)."""
    return [float(np.clip(init * np.prod(scales[:i], dtype=np.float64), -HUGE, HUGE)) for i in range(len(scales) + 1)]


def _exp_decay_kwargs(hp):
    return dict(
        transition_steps=hp["transition_steps"],
        decay_rate=hp["decay_rate"],
        transition_begin=hp["transition_begin"],
    )


RATES = st.one_of(st.sampled_from([0.5, 0.9, 1.0, 1.5, 1e-30]), st.floats(1e-3, 2.0)).map(f32)


def _boundaries_and_scales(n):
    return st.lists(st.integers(1, 3000), min_size=n, max_size=n, unique=True).flatmap(
        lambda bs: st.lists(
            st.one_of(st.sampled_from([0.0, 0.1, 1.0, 2.0]), st.floats(0.0, 10.0)).map(f32),
            min_size=n,
            max_size=n,
        ).map(lambda ss: {"boundaries": sorted(bs), "scales": ss})
    )


def _pw_dict(hp):
    return dict(zip(hp["boundaries"], hp["scales"], strict=True))


def _traced_floor(pct, t):
    """The core's traced ``int(pct * T)``: a float32 product nudged up by 2**-23 relative, floored."""
    return float(np.floor(np.float32(pct) * np.float32(t) * np.float32(1.0 + 2.0**-23)))


def _pcts_unambiguous(hp, names):
    """``int(pct * T)`` is floored in the hyperparameter's precision (float32 when traced, float64 when a Python
    float): keep draws where both agree, so the traced, eager and Optax boundaries are the same."""
    t = hp["transition_steps"]
    return all(_traced_floor(hp[n], t) == math.floor(hp[n] * t) for n in names)


def _onecycle_ok(hp, pcts):
    # Optax widens zero-length pieces to one step; ours skips them. Compare where every piece has a step, and
    # where no breakpoint value passes the +-1e30 clamp (ours clamps before interpolating).
    if abs(hp["peak_value"] / hp["div_factor"]) > HUGE:
        return False
    t = hp["transition_steps"]
    bounds = [0] + [int(p * t) for p in pcts] + [t]
    return all(b > a for a, b in zip(bounds, bounds[1:], strict=False)) and t < 10**6


def _onecycle_bounds(hp, pcts):
    t = hp["transition_steps"]
    return [0.0] + [_traced_floor(p, t) for p in pcts] + [float(t)]


ONECYCLE = dict(
    transition_steps=POS_STEPS,
    peak_value=VALUES,
    div_factor=st.one_of(st.sampled_from([1.0, 25.0]), st.floats(1e-3, 1e4)).map(f32),
    final_div_factor=st.one_of(st.sampled_from([1.0, 1e4]), st.floats(1e-3, 1e4)).map(f32),
)


def _onecycle_range(hp):
    low = hp["peak_value"] / hp["div_factor"]
    return _rng(hp["peak_value"], low, low / hp["final_div_factor"])


def _linear_onecycle_phases(hp):
    b = _onecycle_bounds(hp, [hp["pct_start"], hp["pct_final"]])
    low = hp["peak_value"] / hp["div_factor"]
    return b, [low, hp["peak_value"], low, low / hp["final_div_factor"]]


def _cosine_onecycle_phases(hp):
    b = _onecycle_bounds(hp, [hp["pct_start"]])
    low = hp["peak_value"] / hp["div_factor"]
    return b, [low, hp["peak_value"], low / hp["final_div_factor"]]


def _chain_exact(bounds, vals):
    """Value at each boundary: the start of the last piece that begins there (zero-length pieces are skipped)."""
    return [(b, vals[max(j for j, bj in enumerate(bounds) if bj == b)]) for b in bounds[1:]]


def _onecycle_warmup(hp, pcts, start_value):
    """The rising first piece; at its end the next piece takes over, or a later one if the next is empty."""
    b = _onecycle_bounds(hp, pcts)
    w = b[1] if b[2] > b[1] else max(b[1] - 0.5, 0.0)
    return (w, start_value, hp["peak_value"])


def _chain_boundaries(bounds, vals, slope):
    """Boundaries between consecutive pieces ``vals[i] -> vals[i+1]`` on ``[bounds[i], bounds[i+1])``."""
    out = []
    for i in range(1, len(bounds) - 1):
        before, after = bounds[i] - bounds[i - 1], bounds[i + 1] - bounds[i]
        # after >= 2: count b + 1 must still be inside the next piece (a zero-length piece after it jumps).
        if before >= 1 and after >= 2 and slope is not None:
            out.append(
                (
                    bounds[i],
                    max(
                        step_bound(vals[i - 1], vals[i], before, slope),
                        step_bound(vals[i], vals[i + 1], after, slope),
                    ),
                )
            )
    return out


def _sgdr_kwargs(hp):
    return [
        dict(
            init_value=hp[f"init{i}"],
            peak_value=hp[f"peak{i}"],
            warmup_steps=hp[f"warmup{i}"],
            decay_steps=hp[f"decay{i}"],
            end_value=hp[f"end{i}"],
        )
        for i in range(2)
    ]


@st.composite
def _sgdr_hp(draw):
    hp = {}
    for i in range(2):
        init, peak, end = draw(levels(3))
        w = draw(STEPS.filter(lambda w: w < 2**31 - 1))
        hp.update({f"init{i}": init, f"peak{i}": peak, f"end{i}": end, f"warmup{i}": w})
        hp[f"decay{i}"] = w + draw(st.sampled_from([1, 2, 100]) | st.integers(1, 3000))
    return hp


@st.composite
def _warmup_decay_hp(draw, *, exponent_name=None, optax_ints=True):
    init, peak, end = draw(levels(3))
    w = draw(STEPS.filter(lambda w: w < 10**9))
    extra = draw(st.sampled_from([1, 2, 10]) | st.integers(1, 3000) | st.just(10**6))
    hp = {"init_value": init, "peak_value": peak, "end_value": end, "warmup_steps": w, "decay_steps": w + extra}
    if exponent_name:
        hp[exponent_name] = draw(EXPONENTS)
    return hp


def _warmup_decay_boundaries(hp, decay_slope):
    w, d = hp["warmup_steps"], hp["decay_steps"]
    out = []
    if w >= 1 and d - w >= 2 and decay_slope is not None:
        out.append(
            (
                w,
                max(
                    step_bound(hp["init_value"], hp["peak_value"], w),
                    step_bound(hp["peak_value"], hp["end_value"], d - w, decay_slope),
                ),
            )
        )
    if d - w >= 1 and decay_slope is not None:
        out.append((d, step_bound(hp["peak_value"], hp["end_value"], d - w, decay_slope)))
    return out


def _optax_wcd_ok(hp):
    # Optax ignores end_value when peak_value == 0 (alpha = 0); ours decays to end_value. Optax also computes
    # alpha = end_value / peak_value, which overflows float32 for a tiny peak and a huge end.
    if hp["peak_value"] == 0:
        return hp["end_value"] == 0
    return abs(hp["end_value"] / hp["peak_value"]) < 1e20


CASES: list[Case] = []


def add(case: Case) -> None:
    CASES.append(case)


add(
    Case(
        "constant_schedule",
        build=lambda hp: ow.constant_schedule(hp["value"]),
        hparams=_fixed(value=VALUES),
        value_range=lambda hp: _rng(hp["value"]),
        exact=lambda hp: [(0, hp["value"]), (10**6, hp["value"])],
        optax=lambda hp: optax.constant_schedule(hp["value"]),
    )
)

add(
    Case(
        "polynomial_schedule",
        build=lambda hp: ow.polynomial_schedule(
            hp["init_value"], hp["end_value"], hp["power"], hp["transition_steps"], hp["transition_begin"]
        ),
        hparams=_merge(
            _lvl(["init_value", "end_value"]),
            _fixed(power=EXPONENTS, transition_steps=STEPS, transition_begin=STEPS),
        ),
        value_range=lambda hp: _rng(hp["init_value"], hp["end_value"]),
        boundaries=lambda hp: (
            [(hp["transition_begin"], step_bound(hp["init_value"], hp["end_value"], hp["transition_steps"], s))]
            if (s := power_slope(hp["power"])) is not None and hp["transition_steps"] >= 1
            else []
        ),
        exact=lambda hp: (
            [(hp["transition_begin"], hp["init_value"])] * (hp["transition_steps"] > 0)
            + [
                (
                    hp["transition_begin"] + hp["transition_steps"],
                    hp["end_value"] if hp["power"] > 0 or hp["transition_steps"] == 0 else hp["init_value"],
                )
            ]
        ),
        optax=lambda hp: optax.polynomial_schedule(
            hp["init_value"], hp["end_value"], hp["power"], hp["transition_steps"], hp["transition_begin"]
        ),
        # transition_steps == 0 is a documented difference.
        optax_ok=lambda hp: hp["transition_steps"] > 0,
    )
)

add(
    Case(
        "linear_schedule",
        build=lambda hp: ow.linear_schedule(
            hp["init_value"], hp["end_value"], hp["transition_steps"], hp["transition_begin"]
        ),
        hparams=_merge(_lvl(["init_value", "end_value"]), _fixed(transition_steps=STEPS, transition_begin=STEPS)),
        value_range=lambda hp: _rng(hp["init_value"], hp["end_value"]),
        boundaries=lambda hp: (
            [
                (hp["transition_begin"], step_bound(hp["init_value"], hp["end_value"], hp["transition_steps"])),
                (
                    hp["transition_begin"] + hp["transition_steps"],
                    step_bound(hp["init_value"], hp["end_value"], hp["transition_steps"]),
                ),
            ]
            if hp["transition_steps"] >= 1
            else []
        ),
        exact=lambda hp: [
            (hp["transition_begin"], hp["init_value"] if hp["transition_steps"] > 0 else hp["end_value"]),
            (hp["transition_begin"] + hp["transition_steps"], hp["end_value"]),
        ],
        optax=lambda hp: optax.linear_schedule(
            hp["init_value"], hp["end_value"], hp["transition_steps"], hp["transition_begin"]
        ),
        optax_ok=lambda hp: hp["transition_steps"] > 0,
    )
)

add(
    Case(
        "cosine_decay_schedule",
        build=lambda hp: ow.cosine_decay_schedule(hp["init_value"], hp["decay_steps"], hp["alpha"], hp["exponent"]),
        hparams=_fixed(
            init_value=VALUES,
            decay_steps=POS_STEPS,
            alpha=st.one_of(st.sampled_from([0.0, 1.0, 0.1]), st.floats(-2.0, 2.0)).map(f32),
            exponent=EXPONENTS,
        ),
        value_range=lambda hp: _rng(hp["init_value"], hp["alpha"] * hp["init_value"]),
        boundaries=lambda hp: (
            [(hp["decay_steps"], step_bound(hp["init_value"], hp["alpha"] * hp["init_value"], hp["decay_steps"], s))]
            if (s := cosine_slope(hp["exponent"])) is not None
            else []
        ),
        # Exponent 0: the factor is 0**0 = 1 at the end too, so the value stays at init_value (as in Optax).
        exact=lambda hp: [
            (0, hp["init_value"]),
            (hp["decay_steps"], hp["alpha"] * hp["init_value"] if hp["exponent"] > 0 else hp["init_value"]),
        ],
        optax=lambda hp: optax.cosine_decay_schedule(hp["init_value"], hp["decay_steps"], hp["alpha"], hp["exponent"]),
        # Ours clamps the end value alpha * init_value to +-1e30 before interpolating; Optax does not clamp.
        optax_ok=lambda hp: abs(hp["alpha"] * hp["init_value"]) <= HUGE,
    )
)

for _staircase in (False, True):
    for _with_end in (False, True):
        add(
            Case(
                f"exponential_decay[staircase={_staircase},end={_with_end}]",
                build=(
                    lambda hp, sc=_staircase, we=_with_end: ow.exponential_decay(
                        hp["init_value"],
                        **_exp_decay_kwargs(hp),
                        staircase=sc,
                        end_value=hp["end_value"] if we else None,
                    )
                ),
                hparams=_fixed(
                    init_value=VALUES,
                    transition_steps=POS_STEPS,
                    decay_rate=RATES,
                    transition_begin=STEPS,
                    end_value=VALUES,
                ),
                value_range=lambda hp, we=_with_end: _exp_range(
                    hp["init_value"],
                    hp["decay_rate"],
                    hp["end_value"] if we else None,
                    hp["transition_begin"],
                    hp["transition_steps"],
                ),
                # Continuous unless staircase (documented jumps); one step changes the value by at most
                # |I| |r**(1/T) - 1| times the largest value, so check only that v(B) = I.
                exact=lambda hp, we=_with_end: [(hp["transition_begin"], hp["init_value"])] * (not we),
                optax=lambda hp, sc=_staircase, we=_with_end: optax.exponential_decay(
                    hp["init_value"], **_exp_decay_kwargs(hp), staircase=sc, end_value=hp["end_value"] if we else None
                ),
            )
        )

add(
    Case(
        "piecewise_constant_schedule",
        build=lambda hp: ow.piecewise_constant_schedule(
            hp["init_value"], boundaries=hp["boundaries"], scales=hp["scales"]
        ),
        hparams=_merge(_fixed(init_value=VALUES), _boundaries_and_scales(3)),
        value_range=lambda hp: _rng(*_prefix_products(hp["init_value"], hp["scales"])),
        exact=lambda hp: list(
            zip([0, *hp["boundaries"]], _prefix_products(hp["init_value"], hp["scales"]), strict=True)
        ),
        optax=lambda hp: optax.piecewise_constant_schedule(hp["init_value"], _pw_dict(hp)),
    )
)

for _kind in ("linear", "cosine"):
    add(
        Case(
            f"piecewise_interpolate_schedule[{_kind}]",
            build=lambda hp, k=_kind: ow.piecewise_interpolate_schedule(
                k, hp["init_value"], boundaries=hp["boundaries"], scales=hp["scales"]
            ),
            hparams=_merge(_fixed(init_value=VALUES), _boundaries_and_scales(3)),
            value_range=lambda hp: _rng(*_prefix_products(hp["init_value"], hp["scales"])),
            boundaries=lambda hp, k=_kind: _chain_boundaries(
                [0, *hp["boundaries"]],
                _prefix_products(hp["init_value"], hp["scales"]),
                1.0 if k == "linear" else math.pi / 2,
            ),
            exact=lambda hp: list(
                zip([0, *hp["boundaries"]], _prefix_products(hp["init_value"], hp["scales"]), strict=True)
            ),
            optax=lambda hp, k=_kind: optax.piecewise_interpolate_schedule(k, hp["init_value"], _pw_dict(hp)),
            # Ours clamps each breakpoint value to +-1e30 before interpolating; Optax does not clamp.
            optax_ok=lambda hp: all(abs(v) < HUGE for v in _prefix_products(hp["init_value"], hp["scales"])),
        )
    )

add(
    Case(
        "linear_onecycle_schedule",
        build=lambda hp: ow.linear_onecycle_schedule(
            hp["transition_steps"],
            hp["peak_value"],
            hp["pct_start"],
            hp["pct_final"],
            hp["div_factor"],
            hp["final_div_factor"],
        ),
        hparams=st.fixed_dictionaries({**ONECYCLE, "pct_start": FRACTIONS, "pct_final": FRACTIONS})
        .map(
            lambda hp: {
                **hp,
                "pct_start": min(hp["pct_start"], hp["pct_final"]),
                "pct_final": max(hp["pct_start"], hp["pct_final"]),
            }
        )
        .filter(lambda hp: _pcts_unambiguous(hp, ["pct_start", "pct_final"])),
        value_range=_onecycle_range,
        warmup=lambda hp: _onecycle_warmup(hp, [hp["pct_start"], hp["pct_final"]], hp["peak_value"] / hp["div_factor"]),
        boundaries=lambda hp: _chain_boundaries(*_linear_onecycle_phases(hp), 1.0),
        exact=lambda hp: _chain_exact(*_linear_onecycle_phases(hp)),
        optax=lambda hp: optax.linear_onecycle_schedule(
            hp["transition_steps"],
            hp["peak_value"],
            hp["pct_start"],
            hp["pct_final"],
            hp["div_factor"],
            hp["final_div_factor"],
        ),
        optax_ok=lambda hp: _onecycle_ok(hp, [hp["pct_start"], hp["pct_final"]]),
    )
)

add(
    Case(
        "cosine_onecycle_schedule",
        build=lambda hp: ow.cosine_onecycle_schedule(
            hp["transition_steps"], hp["peak_value"], hp["pct_start"], hp["div_factor"], hp["final_div_factor"]
        ),
        hparams=st.fixed_dictionaries({**ONECYCLE, "pct_start": FRACTIONS}).filter(
            lambda hp: _pcts_unambiguous(hp, ["pct_start"])
        ),
        value_range=_onecycle_range,
        warmup=lambda hp: _onecycle_warmup(hp, [hp["pct_start"]], hp["peak_value"] / hp["div_factor"]),
        boundaries=lambda hp: _chain_boundaries(*_cosine_onecycle_phases(hp), math.pi / 2),
        exact=lambda hp: _chain_exact(*_cosine_onecycle_phases(hp)),
        optax=lambda hp: optax.cosine_onecycle_schedule(
            hp["transition_steps"], hp["peak_value"], hp["pct_start"], hp["div_factor"], hp["final_div_factor"]
        ),
        optax_ok=lambda hp: _onecycle_ok(hp, [hp["pct_start"]]),
    )
)

# --- warmup schedules ---------------------------------------------------------------------------------------------

WARMUP_HP = _merge(_lvl(["init_value", "peak_value"]), _fixed(warmup_steps=STEPS, warmup_exponent=EXPONENTS))


def _positive_if_geometric(shape, strategy):
    if shape != "geometric":
        return strategy
    return strategy.filter(lambda hp: all(hp[k] > 0 for k in ("init_value", "peak_value") if k in hp))


def _warmup_exact(hp, shape, target=None):
    """The ramp reaches the peak exactly at count W (all shapes but "exponential")."""
    target = hp["peak_value"] if target is None else target
    out = (
        [(0, hp["init_value"])]
        if hp["warmup_steps"] > 0 and (shape != "polynomial" or hp["warmup_exponent"] > 0)
        else []
    )
    if shape != "exponential":
        out.append((hp["warmup_steps"], target))
    return out


def _warmup_boundary(hp, shape, next_step=0.0):
    s = warmup_slope(shape, hp["warmup_exponent"])
    if s is None or hp["warmup_steps"] < 1:
        return []
    return [(hp["warmup_steps"], max(step_bound(hp["init_value"], hp["peak_value"], hp["warmup_steps"], s), next_step))]


for _shape in ow.WARMUP_SHAPES:
    add(
        Case(
            f"warmup_schedule[{_shape}]",
            build=lambda hp, sh=_shape: ow.warmup_schedule(
                hp["init_value"], hp["peak_value"], hp["warmup_steps"], warmup_shape=sh,
                warmup_exponent=hp["warmup_exponent"],
            ),
            hparams=_positive_if_geometric(_shape, WARMUP_HP),
            value_range=lambda hp: _rng(hp["init_value"], hp["peak_value"]),
            warmup=_warm,
            boundaries=lambda hp, sh=_shape: _warmup_boundary(hp, sh),
            exact=lambda hp, sh=_shape: _warmup_exact(hp, sh),
        )
    )
    add(
        Case(
            f"warmup_factor[{_shape}]",
            build=lambda hp, sh=_shape: ow.warmup_factor(
                hp["warmup_steps"], hp["init_value"], warmup_shape=sh, warmup_exponent=hp["warmup_exponent"]
            ),
            hparams=_positive_if_geometric(
                _shape,
                _fixed(
                    init_value=st.one_of(st.sampled_from([0.0, 1e-8, 1.0]), st.floats(0.0, 1.0)).map(f32),
                    peak_value=st.just(1.0),
                    warmup_steps=STEPS,
                    warmup_exponent=EXPONENTS,
                ),
            ),
            value_range=lambda hp: _rng(hp["init_value"], 1.0),
            warmup=_warm,
            boundaries=lambda hp, sh=_shape: _warmup_boundary(hp, sh),
            exact=lambda hp, sh=_shape: _warmup_exact(hp, sh),
        )
    )

add(
    Case(
        "warmup_constant_schedule",
        build=lambda hp: ow.warmup_constant_schedule(hp["init_value"], hp["peak_value"], hp["warmup_steps"]),
        hparams=_merge(_lvl(["init_value", "peak_value"]), _fixed(warmup_steps=STEPS, warmup_exponent=st.just(1.0))),
        value_range=lambda hp: _rng(hp["init_value"], hp["peak_value"]),
        warmup=_warm,
        boundaries=lambda hp: _warmup_boundary(hp, "linear"),
        exact=lambda hp: _warmup_exact(hp, "linear"),
        optax=lambda hp: optax.warmup_constant_schedule(hp["init_value"], hp["peak_value"], hp["warmup_steps"]),
        # warmup_steps == 0 is a documented difference (Optax: init_value forever).
        optax_ok=lambda hp: hp["warmup_steps"] > 0,
    )
)

for _shape in ow.WARMUP_SHAPES:
    add(
        Case(
            f"warmup_cosine_decay_schedule[{_shape}]",
            build=lambda hp, sh=_shape: ow.warmup_cosine_decay_schedule(
                hp["init_value"],
                hp["peak_value"],
                hp["warmup_steps"],
                hp["decay_steps"],
                hp["end_value"],
                hp["exponent"],
                warmup_shape=sh,
                warmup_exponent=hp["warmup_exponent"],
            ),
            hparams=_positive_if_geometric(
                _shape, _merge(_warmup_decay_hp(exponent_name="exponent"), _fixed(warmup_exponent=EXPONENTS))
            ),
            value_range=lambda hp: _rng(hp["init_value"], hp["peak_value"], hp["end_value"]),
            warmup=_warm,
            boundaries=lambda hp, sh=_shape: (
                _warmup_decay_boundaries(hp, cosine_slope(hp["exponent"]))
                if warmup_slope(sh, hp["warmup_exponent"]) is not None and sh == "linear"
                else []
            ),
            exact=lambda hp, sh=_shape: (
                _warmup_exact(hp, sh)
                + [(hp["decay_steps"], hp["end_value"] if hp["exponent"] > 0 else hp["peak_value"])]
                * (sh != "exponential")
            ),
            optax=(
                (
                    lambda hp: optax.warmup_cosine_decay_schedule(
                        hp["init_value"],
                        hp["peak_value"],
                        hp["warmup_steps"],
                        hp["decay_steps"],
                        hp["end_value"],
                        hp["exponent"],
                    )
                )
                if _shape == "linear"
                else None
            ),
            optax_ok=_optax_wcd_ok,
        )
    )

add(
    Case(
        "warmup_linear_decay_schedule",
        build=lambda hp: ow.warmup_linear_decay_schedule(
            hp["init_value"], hp["peak_value"], hp["warmup_steps"], hp["decay_steps"], hp["end_value"]
        ),
        hparams=_warmup_decay_hp(),
        value_range=lambda hp: _rng(hp["init_value"], hp["peak_value"], hp["end_value"]),
        warmup=_warm,
        boundaries=lambda hp: _warmup_decay_boundaries(hp, 1.0),
        exact=lambda hp: [(hp["warmup_steps"], hp["peak_value"]), (hp["decay_steps"], hp["end_value"])],
    )
)

add(
    Case(
        "warmup_polynomial_decay_schedule",
        build=lambda hp: ow.warmup_polynomial_decay_schedule(
            hp["init_value"], hp["peak_value"], hp["warmup_steps"], hp["decay_steps"], hp["end_value"], hp["power"]
        ),
        hparams=_warmup_decay_hp(exponent_name="power"),
        value_range=lambda hp: _rng(hp["init_value"], hp["peak_value"], hp["end_value"]),
        warmup=_warm,
        boundaries=lambda hp: _warmup_decay_boundaries(hp, power_slope(hp["power"])),
        exact=lambda hp: [
            (hp["warmup_steps"], hp["peak_value"]),
            (hp["decay_steps"], hp["end_value"] if hp["power"] > 0 else hp["peak_value"]),
        ],
    )
)


@st.composite
def _warmup_exp_hp(draw):
    init, peak, end = draw(levels(3))
    return {
        "init_value": init,
        "peak_value": peak,
        "end_value": end,
        "warmup_steps": draw(STEPS),
        "transition_steps": draw(POS_STEPS),
        "decay_rate": draw(RATES),
        "transition_begin": draw(STEPS),
    }


for _with_end in (False, True):
    add(
        Case(
            f"warmup_exponential_decay_schedule[end={_with_end}]",
            build=lambda hp, we=_with_end: ow.warmup_exponential_decay_schedule(
                hp["init_value"],
                hp["peak_value"],
                hp["warmup_steps"],
                **_exp_decay_kwargs(hp),
                end_value=hp["end_value"] if we else None,
            ),
            hparams=_warmup_exp_hp(),
            value_range=lambda hp, we=_with_end: _rng(
                hp["init_value"],
                hp["peak_value"],
                *_exp_range(
                    hp["peak_value"],
                    hp["decay_rate"],
                    hp["end_value"] if we else None,
                    hp["transition_begin"],
                    hp["transition_steps"],
                ),
            ),
            # At W the tail starts at clip(P, end_value), a documented jump when end_value clips the peak.
            warmup=lambda hp, we=_with_end: (
                max(hp["warmup_steps"] - 0.5, 0.0) if we else hp["warmup_steps"],
                hp["init_value"],
                hp["peak_value"],
            ),
            exact=lambda hp, we=_with_end: [(hp["warmup_steps"], hp["peak_value"])] * (not we),
            optax=lambda hp, we=_with_end: optax.warmup_exponential_decay_schedule(
                hp["init_value"],
                hp["peak_value"],
                hp["warmup_steps"],
                **_exp_decay_kwargs(hp),
                end_value=hp["end_value"] if we else None,
            ),
            optax_ok=lambda hp: hp["warmup_steps"] + hp["transition_begin"] < 2**31 - 1,
        )
    )

for _with_timescale in (False, True):
    add(
        Case(
            f"warmup_rsqrt_schedule[timescale={_with_timescale}]",
            build=lambda hp, wt=_with_timescale: ow.warmup_rsqrt_schedule(
                hp["init_value"], hp["peak_value"], hp["warmup_steps"], hp["timescale"] if wt else None
            ),
            hparams=_merge(_lvl(["init_value", "peak_value"]), _fixed(warmup_steps=STEPS, timescale=POS_STEPS)),
            value_range=lambda hp: _rng(hp["init_value"], hp["peak_value"], 0.0),
            warmup=_warm,
            exact=lambda hp, wt=_with_timescale: (
                [(hp["warmup_steps"], hp["peak_value"])]
                + [
                    (
                        hp["warmup_steps"] + 3 * (hp["timescale"] if wt else max(hp["warmup_steps"], 1)),
                        hp["peak_value"] / 2,
                    )
                ]
            ),
        )
    )


def _noam_peak(hp):
    base = hp["scale"] / math.sqrt(hp["d_model"])
    return base * (min(1.0, hp["warmup_steps"] ** -0.5) if hp["warmup_steps"] > 0 else 1.0)


add(
    Case(
        "noam_schedule",
        build=lambda hp: ow.noam_schedule(hp["d_model"], hp["warmup_steps"], hp["scale"]),
        hparams=_fixed(
            d_model=st.one_of(st.sampled_from([1.0, 512.0, 1e-6]), st.floats(1e-3, 1e5)).map(f32),
            warmup_steps=STEPS,
            scale=st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1e3)).map(f32),
        ),
        value_range=lambda hp: (0.0, _noam_peak(hp)),
        # Increasing while n = count + 1 <= W.
        warmup=lambda hp: (max(hp["warmup_steps"] - 1, 0), 0.0, 1.0),
        exact=lambda hp: [(max(hp["warmup_steps"], 1) - 1, _noam_peak(hp))] if hp["warmup_steps"] >= 1 else [],
    )
)

for _decay_shape in ow.WSD_DECAY_SHAPES:
    _positive = _decay_shape == "exponential"
    add(
        Case(
            f"warmup_stable_decay_schedule[{_decay_shape}]",
            build=lambda hp, ds=_decay_shape: ow.warmup_stable_decay_schedule(
                hp["init_value"],
                hp["peak_value"],
                hp["warmup_steps"],
                hp["stable_steps"],
                hp["decay_steps"],
                hp["end_value"],
                ds,
            ),
            hparams=_merge(
                _lvl(["init_value", "peak_value", "end_value"], POS_VALUES if _positive else VALUES),
                _fixed(warmup_steps=STEPS, stable_steps=STEPS, decay_steps=STEPS),
            ),
            value_range=lambda hp: _rng(hp["init_value"], hp["peak_value"], hp["end_value"]),
            # With no stable and no decay phase the value at W is already end_value.
            warmup=lambda hp: (
                hp["warmup_steps"] if hp["stable_steps"] + hp["decay_steps"] > 0 else max(hp["warmup_steps"] - 0.5, 0),
                hp["init_value"],
                hp["peak_value"],
            ),
            boundaries=lambda hp, ds=_decay_shape: (
                (
                    [
                        (
                            hp["warmup_steps"] + hp["stable_steps"] + hp["decay_steps"],
                            step_bound(
                                hp["peak_value"],
                                hp["end_value"],
                                hp["decay_steps"],
                                {"linear": 1.0, "cosine": math.pi / 2, "square": 2.0}[ds],
                            ),
                        )
                    ]
                    if ds in ("linear", "cosine", "square") and hp["decay_steps"] >= 1
                    else []
                )
                + (
                    _warmup_boundary(hp | {"warmup_exponent": 1.0}, "linear")
                    if hp["stable_steps"] >= 2 or (hp["stable_steps"] >= 1 and hp["decay_steps"] > 0)
                    else []
                )
            ),
            exact=lambda hp: (
                [(hp["warmup_steps"], hp["peak_value"])] * (hp["stable_steps"] + hp["decay_steps"] > 0)
                + [(hp["warmup_steps"] + hp["stable_steps"], hp["peak_value"])] * (hp["decay_steps"] > 0)
                + [(hp["warmup_steps"] + hp["stable_steps"] + hp["decay_steps"], hp["end_value"])]
            ),
        )
    )


@st.composite
def _restarts_hp(draw):
    init, peak, end = draw(levels(3))
    return {
        "init_value": init,
        "peak_value": peak,
        "end_value": end,
        "warmup_steps": draw(STEPS),
        "cycle_steps": draw(POS_STEPS),
        "cycle_mult": draw(st.one_of(st.sampled_from([1.0, 2.0]), st.floats(1.0, 4.0)).map(f32)),
        "peak_decay": draw(st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.floats(0.0, 3.0)).map(f32)),
        "num_cycles": draw(st.integers(1, 5)),
    }


def _restarts_range(hp, limited):
    pd = hp["peak_decay"]
    peaks = [hp["peak_value"]]
    if pd > 1:
        # Unlimited growth (documented formula P pd**i) is clamped at 1e30.
        peaks.append(math.copysign(HUGE, hp["peak_value"]) if hp["peak_value"] and not limited else 0.0)
        if limited:
            peaks.append(hp["peak_value"] * pd ** (hp["num_cycles"] - 1))
    else:
        peaks.append(hp["peak_value"] * pd ** (hp["num_cycles"] - 1) if limited and pd > 0 else 0.0)
    return _rng(hp["init_value"], hp["end_value"], *peaks)


for _limited in (False, True):
    add(
        Case(
            f"warmup_cosine_restarts_schedule[num_cycles={_limited}]",
            build=lambda hp, lim=_limited: ow.warmup_cosine_restarts_schedule(
                hp["init_value"],
                hp["peak_value"],
                hp["warmup_steps"],
                hp["cycle_steps"],
                hp["cycle_mult"],
                hp["peak_decay"],
                hp["end_value"],
                hp["num_cycles"] if lim else None,
            ),
            hparams=_restarts_hp(),
            value_range=lambda hp, lim=_limited: _restarts_range(hp, lim),
            warmup=lambda hp: (
                hp["warmup_steps"] if hp["warmup_steps"] < hp["cycle_steps"] else hp["cycle_steps"] - 0.5,
                hp["init_value"],
                hp["peak_value"],
            ),
            exact=lambda hp: (
                [(min(hp["warmup_steps"], hp["cycle_steps"]), hp["peak_value"])]
                * (hp["warmup_steps"] < hp["cycle_steps"])
            ),
        )
    )

add(
    Case(
        "sgdr_schedule",
        build=lambda hp: ow.sgdr_schedule(_sgdr_kwargs(hp)),
        hparams=_sgdr_hp(),
        value_range=lambda hp: _rng(*[hp[f"{k}{i}"] for k in ("init", "peak", "end") for i in range(2)]),
        warmup=lambda hp: (hp["warmup0"], hp["init0"], hp["peak0"]),
        exact=lambda hp: [
            (hp["warmup0"], hp["peak0"]),
            (hp["decay0"], hp["init1"] if hp["warmup1"] > 0 else hp["peak1"]),
            (hp["decay0"] + hp["decay1"], hp["end1"]),
        ],
        optax=lambda hp: optax.sgdr_schedule(_sgdr_kwargs(hp)),
        optax_ok=lambda hp: (
            all(_optax_wcd_ok({"peak_value": hp[f"peak{i}"], "end_value": hp[f"end{i}"]}) for i in range(2))
            and hp["decay0"] + hp["decay1"] < 2**31 - 1
        ),
    )
)


def _join_pieces(hp, lib):
    if lib:
        return [
            ow.linear_schedule(hp["init_value"], hp["peak_value"], hp["warmup_steps"]),
            ow.cosine_decay_schedule(hp["peak_value"], hp["decay_steps"], hp["alpha"]),
        ]
    return [
        optax.linear_schedule(hp["init_value"], hp["peak_value"], hp["warmup_steps"]),
        optax.cosine_decay_schedule(hp["peak_value"], hp["decay_steps"], hp["alpha"]),
    ]


JOIN_HP = _merge(
    _lvl(["init_value", "peak_value"]),
    _fixed(
        warmup_steps=POS_STEPS.filter(lambda w: w < 10**9),
        decay_steps=POS_STEPS.filter(lambda w: w < 10**9),
        alpha=st.sampled_from([0.0, 0.1, 1.0]),
    ),
)


def _join_range(hp):
    return _rng(hp["init_value"], hp["peak_value"], hp["alpha"] * hp["peak_value"])


def _join_boundaries(hp):
    return [
        (
            hp["warmup_steps"],
            max(
                step_bound(hp["init_value"], hp["peak_value"], hp["warmup_steps"]),
                step_bound(hp["peak_value"], hp["alpha"] * hp["peak_value"], hp["decay_steps"], math.pi / 2),
            ),
        )
    ]


add(
    Case(
        "join_schedules",
        # Our pieces, boundary traced: the merged phase list.
        build=lambda hp: ow.join_schedules(_join_pieces(hp, True), [hp["warmup_steps"]]),
        hparams=JOIN_HP,
        value_range=_join_range,
        warmup=_warm,
        boundaries=_join_boundaries,
        exact=lambda hp: [(hp["warmup_steps"], hp["peak_value"])],
        optax=lambda hp: optax.join_schedules(_join_pieces(hp, False), [hp["warmup_steps"]]),
        optax_ok=lambda hp: hp["warmup_steps"] + hp["decay_steps"] < 2**31 - 1,
    )
)

add(
    Case(
        "join_schedules[optax pieces]",
        # Pieces that are not ours (plain callables): the where-chain path.
        build=lambda hp: ow.join_schedules(
            [
                lambda c: optax.linear_schedule(hp["init_value"], hp["peak_value"], 10)(c),
                lambda c: hp["peak_value"] * (1.0 - c / (c + 1.0)),
            ],
            [hp["warmup_steps"]],
        ),
        hparams=_merge(_lvl(["init_value", "peak_value"]), _fixed(warmup_steps=STEPS)),
        value_range=lambda hp: _rng(hp["init_value"], hp["peak_value"], 0.0),
        exact=lambda hp: [(hp["warmup_steps"], hp["peak_value"])],
    )
)

PHASE_SHAPES = tuple(ow.SHAPES)


@st.composite
def _phases_hp(draw):
    hp = {}
    for i, shape in enumerate(PHASE_SHAPES):
        hp[f"length{i}"] = draw(STEPS)
        vals = POS_VALUES if shape == "geometric" else VALUES
        hp[f"start{i}"], hp[f"end{i}"] = draw(levels(2, vals))
        hp[f"param{i}"] = draw(EXPONENTS)
    return hp


def _phases(hp):
    return [
        ow.Phase(hp[f"length{i}"], hp[f"start{i}"], hp[f"end{i}"], shape, hp[f"param{i}"])
        for i, shape in enumerate(PHASE_SHAPES)
    ]


def _phases_exact(hp):
    """Each phase starts exactly at its start value; the last end is held."""
    out, begin = [], 0.0
    for i, shape in enumerate(PHASE_SHAPES):
        length = hp[f"length{i}"]
        if length > 0 and (shape not in ("polynomial",) or hp[f"param{i}"] > 0) and begin + length < 2**24:
            if shape == "polynomial_decay" or shape == "cosine":
                if hp[f"param{i}"] == 0:
                    begin += length
                    continue
            out.append((begin, hp[f"start{i}"]))
        begin += length
    if begin < 2**31:
        out.append((begin, hp[f"end{len(PHASE_SHAPES) - 1}"]))
    return out


add(
    Case(
        "phase_schedule",
        build=lambda hp: ow.phase_schedule(_phases(hp)),
        hparams=_phases_hp(),
        value_range=lambda hp: _rng(*[hp[f"{k}{i}"] for k in ("start", "end") for i in range(len(PHASE_SHAPES))]),
        exact=_phases_exact,
    )
)


def _with_warmup_hp(ours):
    # Optax's cosine_decay_schedule needs a concrete decay_steps.
    return _merge(
        _lvl(["init_value", "peak_value"]),
        _fixed(warmup_steps=STEPS, warmup_exponent=EXPONENTS, decay_steps=POS_STEPS if ours else st.just(100)),
    )


for _shape in ow.WARMUP_SHAPES:
    for _ours in (True, False):
        add(
            Case(
                f"with_warmup[{_shape},{'ours' if _ours else 'optax'}]",
                build=lambda hp, sh=_shape, ours=_ours: ow.with_warmup(
                    ow.cosine_decay_schedule(hp["peak_value"], hp["decay_steps"])
                    if ours
                    else optax.cosine_decay_schedule(hp["peak_value"], 100),
                    hp["warmup_steps"],
                    hp["init_value"],
                    warmup_shape=sh,
                    warmup_exponent=hp["warmup_exponent"],
                ),
                hparams=_positive_if_geometric(_shape, _with_warmup_hp(_ours)),
                value_range=lambda hp: _rng(hp["init_value"], hp["peak_value"], 0.0),
                warmup=_warm,
                boundaries=lambda hp, sh=_shape: (
                    _warmup_boundary(hp, sh, step_bound(hp["peak_value"], 0.0, hp["decay_steps"], math.pi / 2))
                    if hp["warmup_steps"] < 2**24
                    else []
                ),
                exact=lambda hp, sh=_shape: (
                    _warmup_exact(hp, sh) + [(hp["warmup_steps"] + hp["decay_steps"], 0.0)] * (sh != "exponential")
                ),
            )
        )
    add(
        Case(
            f"warmup_overlay[{_shape}]",
            build=lambda hp, sh=_shape: ow.warmup_overlay(
                ow.linear_schedule(hp["peak_value"], 0.0, hp["decay_steps"]),
                hp["warmup_steps"],
                hp["init_value"],
                warmup_shape=sh,
                warmup_exponent=hp["warmup_exponent"],
            ),
            hparams=_positive_if_geometric(
                _shape,
                _fixed(
                    init_value=st.one_of(st.sampled_from([0.0, 1e-8, 1.0]), st.floats(0.0, 1.0)).map(f32),
                    peak_value=VALUES,
                    warmup_steps=STEPS,
                    warmup_exponent=EXPONENTS,
                    decay_steps=POS_STEPS,
                ),
            ),
            value_range=lambda hp: _rng(0.0, hp["peak_value"]),
            exact=lambda hp, sh=_shape: (
                [(0, hp["init_value"] * hp["peak_value"])]
                * (hp["warmup_steps"] > 0 and (sh != "polynomial" or hp["warmup_exponent"] > 0))
                + [(hp["decay_steps"], 0.0)]
                + (
                    [(hp["warmup_steps"], hp["peak_value"] * max(0.0, 1.0 - hp["warmup_steps"] / hp["decay_steps"]))]
                    if sh != "exponential"
                    else []
                )
            ),
        )
    )

B2 = st.one_of(st.sampled_from([0.0, 0.5, 0.9, 0.99, 0.999, 0.9999]), st.floats(0.0, 0.9999)).map(f32)


def _untuned_length(b2):
    """Steps t = count + 1 of the linear untuned warmup: 2 / (1 - b2)."""
    return 2.0 / (1.0 - b2)


for _shape in ("linear", "exponential"):
    add(
        Case(
            f"untuned_warmup[{_shape}]",
            build=lambda hp, sh=_shape: ow.untuned_warmup(hp["b2"], warmup_shape=sh),
            hparams=_fixed(b2=B2),
            value_range=lambda hp: (0.0, 1.0),
            warmup=lambda hp: (min(3 * _untuned_length(hp["b2"]), 2**22), 0.0, 1.0),
            exact=lambda hp, sh=_shape: (
                [(0, min(1.0, 1.0 / _untuned_length(hp["b2"])))] * (sh == "linear")
                + [(math.ceil(_untuned_length(hp["b2"])), 1.0)] * (sh == "linear")
            ),
        )
    )


@st.composite
def _radam_hp(draw):
    b2 = draw(st.one_of(st.sampled_from([0.8, 0.9, 0.99, 0.999, 0.9999]), st.floats(0.7, 0.9999)).map(f32))
    rho_inf = 2.0 / (1.0 - b2) - 1.0
    threshold = draw(st.one_of(st.just(5.0), st.floats(4.0, min(rho_inf - 0.5, 50.0))).map(f32))
    return {"b2": b2, "threshold": threshold}


add(
    Case(
        "radam_warmup",
        build=lambda hp: ow.radam_warmup(hp["b2"], hp["threshold"]),
        hparams=_radam_hp(),
        value_range=lambda hp: (0.0, 1.0),
        warmup=lambda hp: (min(10 * _untuned_length(hp["b2"]), 2**22), 0.0, 1.0),
        exact=lambda hp: [(0, 0.0)],  # rho_1 = 1 < threshold: no update at the first step
    )
)

# --- the power scheduler (Shen et al. 2024) ------------------------------------------------------------------------

POWER_STEPS = st.one_of(st.sampled_from([0, 1, 2, 10, 100]), st.integers(0, 3000), st.just(10**6))


@st.composite
def _power_hp(draw):
    init, end = draw(levels(2))
    w, d, extra = draw(POWER_STEPS), draw(POWER_STEPS), draw(POWER_STEPS)
    return {
        "init_value": init,
        "end_value": end,
        "peak_value": draw(POS_VALUES),
        "warmup_steps": w,
        "decay_steps": d,
        "total_steps": w + d + extra + 1,
        "batch_size": draw(st.one_of(st.sampled_from([1, 32, 1024]), st.integers(1, 4096))),
        "seq_len": draw(st.one_of(st.sampled_from([1, 128, 4096]), st.integers(1, 8192))),
        "a": draw(st.one_of(st.sampled_from([4.6, 4.0, 1e-3]), st.floats(0.1, 10.0)).map(f32)),
        "b": draw(st.one_of(st.sampled_from([-0.51, -0.5, -1.0]), st.floats(-2.0, -0.01)).map(f32)),
    }


def power_eta(hp, steps):
    """The paper's capped power law min(lr_max, batch * a * T**b) at ``steps`` steps, in float64 (cap at 0)."""
    if steps <= 0:
        return hp["peak_value"]
    tokens = float(steps) * hp["batch_size"] * hp["seq_len"]
    return min(hp["peak_value"], hp["batch_size"] * hp["a"] * tokens ** hp["b"])


def _power_exact(hp):
    w, n, d = hp["warmup_steps"], hp["total_steps"], hp["decay_steps"]
    out = [(w, power_eta(hp, w)), (n, hp["end_value"])]
    if w < n - d and d > 0:  # the decay starts at the power law's value there
        out.append((n - d, power_eta(hp, n - d)))
    return out


for _decay_shape in ("exponential", "linear"):
    add(
        Case(
            f"power_schedule[{_decay_shape}]",
            build=lambda hp, ds=_decay_shape: ow.power_schedule(
                hp["peak_value"],
                hp["warmup_steps"],
                hp["total_steps"],
                hp["decay_steps"],
                batch_size=hp["batch_size"],
                seq_len=hp["seq_len"],
                a=hp["a"],
                b=hp["b"],
                init_value=hp["init_value"],
                end_value=hp["end_value"],
                decay_shape=ds,
            ),
            hparams=_power_hp(),
            value_range=lambda hp: _rng(hp["init_value"], hp["end_value"], hp["peak_value"], 0.0),
            warmup=lambda hp: (hp["warmup_steps"], hp["init_value"], power_eta(hp, hp["warmup_steps"])),
            exact=_power_exact,
        )
    )

# --- warmup-stable-decay cycles (WSD-S) -------------------------------------------------------------------------

_DECAY_G = {
    "linear": lambda p: 1 - p,
    "cosine": lambda p: (1 + math.cos(math.pi * p)) / 2,
    "1-sqrt": lambda p: 1 - math.sqrt(p),
    "square": lambda p: 1 - p * p,
}
_RAMP_F = {
    "linear": lambda p, k: p,
    "cosine": lambda p, k: (1 - math.cos(math.pi * p)) / 2,
    "polynomial": lambda p, k: p**k,
}


def wsd_cycles_reference(t, init, peak, end, warmup, lengths, fraction, shape, rewarmup=0, rewarm_value=None,
                         warmup_shape="linear", k=2.0):
    """``warmup_stable_decay_cycles_schedule`` from its documented formula, in float64 and plain Python."""
    start, begin = init, 0
    for i, length in enumerate(lengths):
        w = min(warmup if i == 0 else rewarmup, length)
        d = min(math.ceil(round(fraction * length, 9)), length - w)
        s = length - w - d
        if i > 0 and rewarm_value is not None:
            start = rewarm_value
        if t < begin + length:
            u = t - begin
            if u < w:
                return start + (peak - start) * _RAMP_F[warmup_shape](u / w, k)
            if u < w + s:
                return peak
            return end + (peak - end) * _DECAY_G[shape]((u - w - s) / d)
        start, begin = (end if d > 0 else peak), begin + length
    return start


def _fraction_unambiguous(fraction, lengths):
    """``ceil(f L)`` in float32 (traced) and in float64 rounded to 9 decimals (concrete) agree."""
    return all(
        float(np.ceil(np.float32(fraction) * np.float32(n))) == math.ceil(round(fraction * n, 9)) for n in lengths
    )


CYCLE_STEPS = st.one_of(st.sampled_from([1, 2, 3, 10, 100]), st.integers(1, 3000), st.just(10**6))


@st.composite
def _cycles_hp(draw, with_value):
    hp = draw(_lvl(["init_value", "peak_value", "end_value"] + ["rewarmup_value"] * with_value))
    hp |= dict(warmup_steps=draw(STEPS), rewarmup_steps=draw(STEPS), lengths=[draw(CYCLE_STEPS) for _ in range(3)])
    hp["decay_fraction"] = draw(FRACTIONS.filter(lambda f: _fraction_unambiguous(f, hp["lengths"])))
    return hp


def _cycles_args(hp, shape):
    ref = dict(init=hp["init_value"], peak=hp["peak_value"], end=hp["end_value"], warmup=hp["warmup_steps"],
               lengths=hp["lengths"], fraction=hp["decay_fraction"], shape=shape, rewarmup=hp["rewarmup_steps"],
               rewarm_value=hp.get("rewarmup_value"))
    return {k: float(np.clip(v, -HUGE, HUGE)) if isinstance(v, float) else v for k, v in ref.items()}


def _cycles_exact(hp, shape):
    ref = _cycles_args(hp, shape)
    l0, l1, l2 = hp["lengths"]
    counts = [0, 1, l0 // 2, l0 - 1, l0, l0 + 1, l0 + l1 // 2, l0 + l1, l0 + l1 + l2 - 1, l0 + l1 + l2 + 5]
    return [(c, wsd_cycles_reference(c, **ref)) for c in counts]


for _shape, _with_value in (("1-sqrt", False), ("linear", True)):
    add(
        Case(
            f"warmup_stable_decay_cycles_schedule[{_shape}{',rewarmup_value' * _with_value}]",
            build=lambda hp, sh=_shape, wv=_with_value: ow.warmup_stable_decay_cycles_schedule(
                hp["init_value"],
                hp["peak_value"],
                hp["warmup_steps"],
                list(hp["lengths"]),
                hp["end_value"],
                hp["decay_fraction"],
                sh,
                rewarmup_steps=hp["rewarmup_steps"],
                rewarmup_value=hp["rewarmup_value"] if wv else None,
            ),
            hparams=_cycles_hp(_with_value),
            value_range=lambda hp: _rng(
                hp["init_value"], hp["peak_value"], hp["end_value"], hp.get("rewarmup_value", hp["end_value"])
            ),
            # A warmup that fills the first cycle is over at its end, where the next cycle starts.
            warmup=lambda hp: (
                hp["warmup_steps"] if hp["warmup_steps"] < hp["lengths"][0] else max(hp["lengths"][0] - 0.5, 0),
                hp["init_value"],
                hp["peak_value"],
            ),
            exact=lambda hp, sh=_shape: _cycles_exact(hp, sh),
        )
    )


# --- schedules written in tokens -------------------------------------------------------------------------------


def _tokens_linear(hp):
    return ow.linear_schedule(hp["init_value"], hp["end_value"], hp["tokens"])


def _tokens_exact(hp, per_step):
    out = [(0, hp["init_value"])]
    steps = math.ceil(hp["tokens"] / per_step)
    if 1 <= steps < 2**22:
        out.append((steps, hp["end_value"]))
    return out


add(
    Case(
        "schedule_in_tokens[number]",
        build=lambda hp: ow.schedule_in_tokens(_tokens_linear(hp), hp["tokens_per_step"]),
        hparams=_merge(
            _lvl(["init_value", "end_value"]),
            _fixed(tokens=POS_STEPS.map(f32), tokens_per_step=st.sampled_from([1.0, 512.0, 2048.0 * 256, 3.0])),
        ),
        value_range=lambda hp: _rng(hp["init_value"], hp["end_value"]),
        exact=lambda hp: _tokens_exact(hp, hp["tokens_per_step"]),
    )
)


@st.composite
def _ramp_hp(draw):
    hp = draw(_lvl(["init_value", "end_value"]))
    hp |= dict(
        tokens=draw(POS_STEPS.map(f32)),
        batch0=draw(st.sampled_from([1.0, 8.0, 32.0])),
        batch1=draw(st.sampled_from([2.0, 64.0, 256.0])),
        seq_len=draw(st.sampled_from([1.0, 7.0, 128.0, 2048.0])),
    )
    # A threshold on a multiple of the first stage's tokens per update, or just below one: its number of updates
    # rounds up to the same whole number in float32 (the traced path) as in float64 (the eager one).
    updates, below = draw(st.integers(1, 2**20)), draw(st.sampled_from([0.0, 1.0]))
    hp["threshold"] = max(updates * hp["batch0"] * hp["seq_len"] - below, 1.0)
    return hp


add(
    Case(
        "schedule_in_tokens[ramp]",
        build=lambda hp: ow.schedule_in_tokens(
            _tokens_linear(hp),
            ow.batch_size_ramp(
                [(0, hp["batch0"]), (hp["threshold"], hp["batch1"])], seq_len=hp["seq_len"]
            ),
        ),
        hparams=_ramp_hp(),
        value_range=lambda hp: _rng(hp["init_value"], hp["end_value"]),
        exact=lambda hp: _tokens_exact(hp, hp["batch0"] * hp["seq_len"])[:1]
        + [(math.ceil(hp["threshold"] / (hp["batch0"] * hp["seq_len"])), float(np.clip(
            hp["init_value"] + (hp["end_value"] - hp["init_value"])
            * min(1.0, math.ceil(hp["threshold"] / (hp["batch0"] * hp["seq_len"])) * hp["batch0"] * hp["seq_len"]
                  / hp["tokens"]), -HUGE, HUGE)))],
    )
)

CASE_IDS = [c.name for c in CASES]
DROP_INS = [c for c in CASES if c.optax is not None]


def public_schedule_factories() -> set[str]:
    """Every public callable of the package that builds a schedule (what the registry must cover)."""
    skip = {"Phase", "PhaseSchedule", "SHAPES", "WARMUP_SHAPES", "WSD_DECAY_SHAPES", *TRANSFORMATIONS, *NOT_SCHEDULES}
    return {n for n in ow.__all__ if n not in skip}


def covered_factories() -> set[str]:
    return {c.name.split("[")[0] for c in CASES}
