"""Schedules from plain data (JSON / YAML friendly), and back.

``from_config(config)`` builds a schedule from a dict; the result is a ``ConfiguredSchedule``: a callable
``count -> value`` like every schedule of the library, whose ``.config`` attribute is the normalized dict it
was built from (defaults filled in, durations kept in the units they were given in). ``to_config(schedule)``
returns a copy of it, and ``from_config(to_config(s))`` rebuilds the same schedule.

A library schedule::

    {
      "peak": 3e-4,                          # peak learning rate (required)
      "total": {"tokens": 2e9},              # total length, warmup included (see durations)
      "batch_size": 256, "seq_len": 2048,    # units for examples / tokens
      "steps_per_epoch": 1000,               # unit for epochs
      "warmup": {"length": "2%", "shape": "linear", "init": 0.0, "exponent": 2.0},
      "stable": 0,                           # optional plateau at the peak (WSD)
      "decay": {"shape": "cosine", "end": 0.0, "exponent": 1.0},
    }

``warmup`` may also be just a duration (``"warmup": 500``), ``decay`` just a shape (``"decay": "linear"``).
Warmup shapes: ``linear``, ``cosine``, ``polynomial``, ``geometric``, ``exponential`` (see
``optax_warmup.warmup_schedule``). Decay shapes: ``constant``, ``linear``, ``cosine`` (``exponent`` k:
``((1 + cos(pi p)) / 2)**k``), ``polynomial`` (``(1 - p)**exponent``), ``1-sqrt``, ``square``, ``exponential``
(geometric, needs ``end > 0``) and ``rsqrt`` (``peak * sqrt(tau / (t + tau))`` after the warmup, ``timescale``
``tau`` defaulting to the warmup length; no ``total`` needed). The decay ends at ``end`` (absolute) or
``end_factor`` (times the peak) and runs over ``decay.length`` if given, else over what the total leaves
after warmup and stable.

A duration follows the library's one rule (``optax_warmup._duration``): a whole number is steps (``500``, or
``1e4``); a number in ``(0, 1)`` or a string ``"5%"`` is a fraction of ``total``; ``{"steps": n}``,
``{"fraction": f}``, ``{"epochs": e}`` (times ``steps_per_epoch``), ``{"examples": n}`` (divided by
``batch_size``) or ``{"tokens": n}`` (divided by ``batch_size * seq_len``). Anything that is not whole steps rounds
up (HF's ``warmup_ratio``): 10% of 25 steps is 3 steps.

A peer schedule names its peer and passes the peer's own arguments::

    {"hf": "cosine", "learning_rate": 3e-4,
     "num_warmup_steps": 500, "num_training_steps": 10000}
    {"torch": "OneCycleLR", "max_lr": 0.1, "total_steps": 1000}
    {"timm": "cosine", ...}, {"keras": "CosineDecay", ...},
    {"pytorch_warmup": "LinearWarmup", ...}

and ``{"schedule": "<name>", ...}`` calls a schedule factory of ``optax_warmup`` by name (those built from plain
values: ``optax_warmup._registry.SCHEDULES``) with the other keys as keyword arguments.

A number may also be written as a string (``"3e-4"``, ``"500"``): YAML 1.1, which PyYAML reads, takes ``3e-4``
and ``1e4`` (no decimal point) for strings, so every string value that is a plain decimal number is read as that
number (``"5%"`` stays a percentage; ``"nan"`` and ``"inf"`` are not numbers here).

Every error is a ``ValueError`` whose message starts with the path of the bad key, e.g.
``config['warmup']['shape']``.
"""

from __future__ import annotations

import copy
import math
import numbers
import re
from collections.abc import Callable, Mapping
from typing import Any

import jax

from optax_warmup import _registry, _shapes, _warmup, compat
from optax_warmup import _validate as V
from optax_warmup._composite import warmup_rsqrt_schedule
from optax_warmup._duration import UNITS as _UNITS
from optax_warmup._duration import duration_steps, unit_of
from optax_warmup._phases import Phase, PhaseSchedule

__all__ = ["ConfiguredSchedule", "from_config", "to_config"]

_PEERS: dict[str, Callable] = {
    "hf": compat.hf_schedule,
    "torch": compat.torch_schedule,
    "timm": compat.timm_schedule,
    "keras": compat.keras_schedule,
    "pytorch_warmup": compat.pytorch_warmup_schedule,
}
_TOP_KEYS = ("peak", "total", "warmup", "stable", "decay", "steps_per_epoch", "batch_size", "seq_len")
_WARMUP_KEYS = ("length", "shape", "init", "exponent")
_DECAY_KEYS = ("shape", "end", "end_factor", "exponent", "length", "timescale")
# Decay shape -> (phase shape of the engine, default exponent).
_DECAY_SHAPES: dict[str, tuple[str, float] | None] = {
    "constant": None,
    "linear": ("linear", 1.0),
    "cosine": ("cosine", 1.0),
    "polynomial": ("polynomial_decay", 1.0),
    "1-sqrt": ("1-sqrt", 1.0),
    "square": ("square", 1.0),
    "exponential": ("geometric", 1.0),
    "rsqrt": None,
}


class ConfiguredSchedule(PhaseSchedule):
    """A schedule built by ``from_config``: a ``PhaseSchedule`` whose ``.config`` is the dict it came from."""

    def __init__(self, schedule: PhaseSchedule, config: dict):
        super().__init__(schedule.begins, schedule.base, schedule.fns, schedule.layers)
        self.config = config

    def __repr__(self) -> str:
        return f"ConfiguredSchedule({self.config!r})"


def _err(path: str, message: str) -> ValueError:
    return ValueError(f"{path}: {message}")


# A plain decimal number written as a string: what YAML 1.1 makes of 3e-4 or 1e4.
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _from_string(value: Any) -> Any:
    """``"3e-4"`` -> ``0.0003``, ``"500"`` -> ``500``; any other value unchanged."""
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value.strip()):
        return value
    text = value.strip()
    return int(text) if text.lstrip("+-").isdigit() else float(text)


def _numbers_from_strings(value: Any) -> Any:
    """The config with every numeric string value read as its number (dict keys are left alone)."""
    if isinstance(value, Mapping):
        return {k: _numbers_from_strings(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_numbers_from_strings(v) for v in value)
    return _from_string(value)


def _number(path: str, value: Any, *, minimum: float | None = None, positive: bool = False):
    value = _from_string(value)
    if isinstance(value, bool) or not (isinstance(value, numbers.Real) or isinstance(value, jax.Array)):
        raise _err(path, f"must be a number, got {value!r}")
    v = None if V.is_traced(value) else float(value)
    if v is not None and not math.isfinite(v):
        raise _err(path, f"must be finite, got {value!r}")
    if v is not None and positive and v <= 0:
        raise _err(path, f"must be > 0, got {value!r}")
    if v is not None and minimum is not None and v < minimum:
        raise _err(path, f"must be >= {minimum:g}, got {value!r}")
    return value


def _check_keys(path: str, mapping: Mapping, allowed) -> None:
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise _err(path, f"unknown key(s) {unknown}; expected some of {list(allowed)}")


def _steps(path: str, spec: Any, cfg: Mapping, total=None):
    """A duration in steps, by the library's one rule (``optax_warmup._duration``)."""
    return duration_steps(spec, total, name=path, units=cfg, units_name="config")


def _library_schedule(cfg: Mapping) -> tuple[PhaseSchedule, dict]:
    _check_keys("config", cfg, _TOP_KEYS)
    if "peak" not in cfg:
        raise _err("config['peak']", "is required (the peak learning rate)")
    peak = _number("config['peak']", cfg["peak"])
    for key in ("steps_per_epoch", "batch_size", "seq_len"):
        if key in cfg:
            _number(f"config['{key}']", cfg[key], positive=True)

    warmup = cfg.get("warmup", 0)
    if not isinstance(warmup, Mapping) or (set(warmup) & set(_UNITS) and "length" not in warmup):
        warmup = {"length": warmup}  # just a duration
    _check_keys("config['warmup']", warmup, _WARMUP_KEYS)
    warmup = {"length": 0, "shape": "linear", "init": 0.0, "exponent": 2.0, **warmup}
    if warmup["shape"] not in _shapes.WARMUP_SHAPES:
        shapes = list(_shapes.WARMUP_SHAPES)
        raise _err("config['warmup']['shape']", f"must be one of {shapes}, got {warmup['shape']!r}")
    _number("config['warmup']['init']", warmup["init"])
    _number("config['warmup']['exponent']", warmup["exponent"], minimum=0.0)

    decay = cfg.get("decay", "cosine")
    if not isinstance(decay, Mapping):
        decay = {"shape": decay}
    _check_keys("config['decay']", decay, _DECAY_KEYS)
    decay = dict(decay)
    shape = decay.setdefault("shape", "cosine")
    if shape not in _DECAY_SHAPES:
        raise _err("config['decay']['shape']", f"must be one of {list(_DECAY_SHAPES)}, got {shape!r}")
    if "end" in decay and "end_factor" in decay:
        raise _err("config['decay']", "give 'end' or 'end_factor', not both")
    if shape in ("constant", "rsqrt"):
        for key in ("end", "end_factor", "length"):
            if key in decay:
                raise _err(f"config['decay']['{key}']", f"does not apply to the {shape!r} decay")
    if "timescale" in decay and shape != "rsqrt":
        raise _err("config['decay']['timescale']", "only applies to the 'rsqrt' decay")
    if shape not in ("constant", "rsqrt") and "end" not in decay and "end_factor" not in decay:
        decay["end"] = 0.0
    if "exponent" in decay and shape not in ("cosine", "polynomial"):
        raise _err("config['decay']['exponent']", "only applies to the 'cosine' and 'polynomial' decays")
    if shape in ("cosine", "polynomial"):
        decay.setdefault("exponent", 1.0)
        _number("config['decay']['exponent']", decay["exponent"], minimum=0.0)
    end = None
    if "end" in decay:
        end = _number("config['decay']['end']", decay["end"])
    elif "end_factor" in decay:
        end = _number("config['decay']['end_factor']", decay["end_factor"]) * peak
    if shape == "exponential" and end is not None and not V.is_traced(end) and float(end) <= 0:
        raise _err("config['decay']['end']", f"the 'exponential' decay needs an end > 0, got {end!r}")

    needs_total = shape not in ("constant", "rsqrt") and "length" not in decay
    fraction_used = any(
        unit_of(x) == "fraction" for x in (warmup["length"], cfg.get("stable", 0), decay.get("length", 0))
    )
    total = None
    if "total" in cfg:
        total = _steps("config['total']", cfg["total"], cfg)
    elif needs_total or fraction_used:
        raise _err("config['total']", "is required (the total length, warmup included)")
    w = _steps("config['warmup']['length']", warmup["length"], cfg, total)
    s = _steps("config['stable']", cfg.get("stable", 0), cfg, total)
    if shape == "rsqrt":
        if s:
            raise _err("config['stable']", "does not apply to the 'rsqrt' decay")
        timescale = decay.get("timescale")
        if timescale is not None:
            timescale = _steps("config['decay']['timescale']", timescale, cfg, total)
        schedule = warmup_rsqrt_schedule(
            warmup["init"],
            peak,
            w,
            timescale,
            warmup_shape=warmup["shape"],
            warmup_exponent=warmup["exponent"],
        )
    else:
        _warmup.check_warmup_args(warmup["init"], peak, w, warmup["shape"], warmup["exponent"],
                                  names=("config['warmup']['init']", "config['peak']", "config['warmup']['length']",
                                         "config['warmup']['shape']", "config['warmup']['exponent']"))
        top = V.clamp_value(peak)
        rest = [Phase(V.clamp_length(s), top, top)]
        if shape != "constant":
            d = (
                _steps("config['decay']['length']", decay["length"], cfg, total)
                if "length" in decay
                else total - w - s
            )
            if not V.is_traced(d) and d < 0:
                raise _err("config['total']", f"is shorter than warmup ({w}) + stable ({s}) steps")
            mapped = _DECAY_SHAPES[shape]
            assert mapped is not None  # "constant" and "rsqrt", which have no decay phase, were handled above
            phase_shape = mapped[0]
            rest.append(Phase(V.clamp_length(d), top, V.clamp_value(end), phase_shape,
                              V.clamp_exponent(decay.get("exponent", 1.0))))
        schedule = _warmup.ramp_then(V.clamp_value(warmup["init"]), top, V.clamp_length(w), warmup["shape"],
                                     V.clamp_exponent(warmup["exponent"]), rest)
    normalized = {k: copy.deepcopy(cfg[k]) for k in _TOP_KEYS if k in cfg}
    normalized.update(warmup=warmup, decay=decay, stable=cfg.get("stable", 0))
    return schedule, normalized


def from_config(config: Mapping[str, Any]) -> ConfiguredSchedule:
    """Builds a schedule from plain data; see the module docstring for the format.

    Args:
      config: a dict (from JSON, YAML, a CLI...). Numbers may be traced arrays where the schedule allows it, or
        strings of decimal numbers (``"3e-4"``, which YAML 1.1 leaves a string).

    Returns:
      A ``ConfiguredSchedule``: call it with a count; ``.config`` holds the normalized config.

    Raises:
      ValueError: naming the bad key, e.g. ``config['decay']['shape']: must be one of [...], got 'cosin'``.

    Example:
      >>> from optax_warmup.config import from_config
      >>> s = from_config({"peak": 1.0, "total": 100, "warmup": "10%", "decay": "linear"})
      >>> [float(s(k)) for k in (0, 5, 10, 55, 100)]
      [0.0, 0.5, 1.0, 0.5, 0.0]
      >>> s.config["warmup"]
      {'length': '10%', 'shape': 'linear', 'init': 0.0, 'exponent': 2.0}
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"config: must be a dict, got {type(config).__name__}")
    config = dict(_numbers_from_strings(config))
    peers = [key for key in (*_PEERS, "schedule") if key in config]
    if len(peers) > 1:
        raise _err("config", f"names more than one schedule family: {peers}")
    if peers:
        key = peers[0]
        name = config.pop(key)
        if not isinstance(name, str):
            raise _err(f"config['{key}']", f"must be a schedule name (a string), got {name!r}")
        try:
            if key == "schedule":
                schedule = _named_library_schedule(name)(**config)
            else:
                schedule = _PEERS[key](name, **config)
        except TypeError as e:  # unknown keyword: report it as a config error
            raise _err("config", f"{key} schedule {name!r}: {e}") from e
        return ConfiguredSchedule(schedule, {key: name, **copy.deepcopy(config)})
    schedule, normalized = _library_schedule(config)
    return ConfiguredSchedule(schedule, normalized)


def _named_library_schedule(name: str) -> Callable[..., PhaseSchedule]:
    fn = _registry.SCHEDULES.get(name)
    if fn is None:
        options = sorted(_registry.SCHEDULES)
        raise _err("config['schedule']", f"must name a schedule of optax_warmup ({options}), got {name!r}")
    return fn


def to_config(schedule: Any) -> dict:
    """The config a schedule was built from (a deep copy), for logging, saving or rebuilding.

    Args:
      schedule: a schedule returned by ``from_config``.

    Raises:
      ValueError: if ``schedule`` was not built by ``from_config``.

    Example:
      >>> from optax_warmup.config import from_config, to_config
      >>> s = from_config({"hf": "linear", "learning_rate": 1.0, "num_warmup_steps": 2,
      ...                  "num_training_steps": 4})
      >>> to_config(s)
      {'hf': 'linear', 'learning_rate': 1.0, 'num_warmup_steps': 2, 'num_training_steps': 4}
      >>> float(from_config(to_config(s))(3))
      0.5
    """
    config = getattr(schedule, "config", None)
    if not isinstance(schedule, ConfiguredSchedule) or not isinstance(config, dict):
        kind = type(schedule).__name__
        raise ValueError(f"schedule: was not built by from_config, so it has no config (got a {kind})")
    return copy.deepcopy(config)
