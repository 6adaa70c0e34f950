"""A sweep's grid: axes -> configs, which axes are traced and which are static, all checked before any compile.

Axes and what the optimizer factory receives for them:

* a **numeric** axis (Python or NumPy numbers) arrives as a traced scalar: float32, or int32 when every value is
  an integer. All its values share one compiled program.
* a **duration** axis (a name ending in ``_steps``, or named in ``durations=``) takes the library's durations
  (``optax_warmup._duration``): ``20`` steps, ``0.1`` or ``"10%"`` of the run; it arrives as int32 steps.
* a **static** axis (strings, bools, ``None``, or a name in ``static=``) arrives as the Python value. Configs are
  grouped by their static values; each group builds its own optimizer inside the one compiled program.
* a **plain** axis (named in ``plain=``) is numeric and skips the two name rules below.
* an axis whose name contains ``warmup`` and that is not a duration is refused when it holds a fraction below 1
  (``warmup=[0, 0.25]``: a quarter of the run, or a quarter of a step?): name it ``*_steps`` or list it in
  ``durations=`` for a fraction of the run, or in ``plain=``.
* a learning-rate axis (``peak_value``, ``learning_rate``, ``lr``, ``init_value``, ``end_value``, ``*_lr``, ...)
  refuses negative values; every numeric axis refuses NaN and infinities.
* ``seed`` (whole numbers >= 0) selects the random stream of ``init`` and ``data``: configs with the same seed
  start from the same parameters and see the same batches. The factory may read it (int32) but need not.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optax_warmup._duration import duration_steps

SEED = "seed"


@dataclass(frozen=True)
class Group:
    """Configs that share their static values, so they share one optimizer structure."""

    static: tuple[tuple[str, Any], ...]  # (axis, value) pairs of the static axes
    index: np.ndarray  # positions of its configs in the grid


@dataclass(frozen=True)
class Grid:
    """An expanded, checked grid."""

    configs: list[dict]  # what the factory receives, per config (durations in steps), grid order
    given: list[dict]  # the values as given (a duration may read "10%"), per config
    axes: dict[str, list]  # axis -> its distinct given values, in order of appearance
    numeric: tuple[str, ...]  # traced axes (durations included)
    static: tuple[str, ...]
    durations: tuple[str, ...]
    seeds: np.ndarray  # int per config
    groups: list[Group] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.configs)

    @property
    def settings(self) -> list[str]:
        """The axes that define a setting (every axis but the seed)."""
        return [a for a in self.axes if a != SEED]

    def dtype(self, axis: str) -> np.dtype:
        values = [c[axis] for c in self.configs]
        return np.dtype(np.int32) if all(_is_integral(v) for v in values) else np.dtype(np.float32)

    def label(self, axis: str, given: Any) -> str:
        """``"10% (20)"`` for a duration given as a fraction, else the value."""
        if axis in self.durations:
            steps = next(c[axis] for c, g in zip(self.configs, self.given, strict=True) if g[axis] == given)
            return str(given) if _same_number(given, steps) else f"{_fmt(given)} ({steps})"
        return _fmt(given)


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)


def _is_integral(v: Any) -> bool:
    return _is_number(v) and math.isfinite(float(v)) and float(v) == int(v)


def _same_number(a: Any, b: Any) -> bool:
    return _is_number(a) and _is_number(b) and float(a) == float(b)


def _as_python(v: Any) -> Any:
    """NumPy scalars -> Python scalars (they print, compare and serialize like the user's literals)."""
    return v.item() if isinstance(v, np.generic) else v


def expand(grid: Mapping[str, Iterable] | Sequence[Mapping[str, Any]]) -> list[dict]:
    """A dict of axes -> the full product (last axis fastest); a list of dicts -> those configs, checked."""
    if isinstance(grid, Mapping):
        if not grid:
            raise ValueError("grid: give at least one axis, e.g. {'peak_value': [1e-3, 1e-2]}")
        axes: dict[str, list] = {}
        for name, values in grid.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"grid: axis names must be non-empty strings, got {name!r}")
            if isinstance(values, str | bytes) or not isinstance(values, Iterable):
                raise ValueError(f"axis {name!r}: give a list of values, got {values!r}")
            values = [_as_python(v) for v in values]
            if not values:
                raise ValueError(f"axis {name!r} is empty: give at least one value")
            axes[name] = values
        return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
    configs = [dict(c) for c in grid] if isinstance(grid, Sequence) else None
    if not configs:
        raise ValueError("grid: give a dict of axes or a non-empty list of config dicts")
    keys = list(configs[0])
    for i, c in enumerate(configs):
        if list(c) != keys and set(c) != set(keys):
            raise ValueError(f"grid[{i}] has the axes {sorted(c)}, grid[0] has {sorted(keys)}: every config needs "
                             "the same axes")
    return [{k: _as_python(c[k]) for k in keys} for c in configs]


def build(grid: Mapping[str, Iterable] | Sequence[Mapping[str, Any]], steps: int, *,
          static: Iterable[str] = (), durations: Iterable[str] = (), plain: Iterable[str] = ()) -> Grid:
    """Expands and checks a grid (see the module docstring). Raises ``ValueError`` naming the axis."""
    given = expand(grid)
    names = list(given[0])
    static_names, duration_names, plain_names = set(static), set(durations), set(plain)
    for n in (static_names | duration_names | plain_names) - set(names):
        raise ValueError(f"axis {n!r} is named in static=, durations= or plain= but is not in the grid "
                         f"(axes: {names})")
    for n in sorted((static_names & duration_names) | (static_names & plain_names) | (duration_names & plain_names)):
        raise ValueError(f"axis {n!r} is named in more than one of static=, durations= and plain=")
    axes = {n: list(dict.fromkeys(_hashable(n, c[n]) for c in given)) for n in names}
    numeric, kinds = [], {}
    for n in names:
        values = [c[n] for c in given]
        if n == SEED:
            bad = [v for v in values if not (_is_integral(v) and v >= 0)]
            if bad:
                raise ValueError(f"axis 'seed': seeds are whole numbers >= 0, got {bad[0]!r}")
            kinds[n] = "seed"
        elif n in static_names:
            kinds[n] = "static"
        elif n in duration_names or (n.endswith("_steps") and n not in plain_names):
            kinds[n] = "duration"
        elif all(_is_number(v) for v in values):
            kinds[n] = "numeric"
        elif any(_is_number(v) for v in values):
            other = next(v for v in values if not _is_number(v))
            raise ValueError(f"axis {n!r} mixes numbers and other values ({other!r}): a numeric axis takes numbers "
                             f"only (name it in static= to pass every value as a Python object)")
        else:
            kinds[n] = "static"
        if kinds[n] in ("numeric", "duration"):
            numeric.append(n)
        if kinds[n] == "numeric" and n not in plain_names:
            _check_ambiguous_warmup(n, values)
            _check_learning_rate(n, values)
    configs = []
    for c in given:
        resolved = {}
        for n in names:
            v = c[n]
            if kinds[n] == "duration":
                v = duration_steps(v, steps, name=f"axis {n!r}")
                if "warmup" in n and v > steps:
                    raise ValueError(f"axis {n!r}: a warmup of {c[n]!r} ({v} steps) is longer than the run "
                                     f"({steps} steps)")
            elif kinds[n] == "numeric" and not math.isfinite(float(v)):
                raise ValueError(f"axis {n!r}: values must be finite, got {v!r}")
            elif kinds[n] == "seed":
                v = int(v)
            resolved[n] = v
        configs.append(resolved)
    static_axes = tuple(n for n in names if kinds[n] == "static")
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(tuple((n, _hashable(n, c[n])) for n in static_axes), []).append(i)
    return Grid(configs=configs, given=given, axes=axes, numeric=tuple(numeric), static=static_axes,
                durations=tuple(n for n in names if kinds[n] == "duration"),
                seeds=np.asarray([c.get(SEED, 0) for c in configs], np.int64),
                groups=[Group(k, np.asarray(v)) for k, v in groups.items()])


LEARNING_RATE_NAMES = ("peak_value", "learning_rate", "lr", "init_value", "end_value", "peak_lr", "max_lr",
                       "base_lr", "min_lr")


def _check_ambiguous_warmup(name: str, values: list) -> None:
    """An axis named like a warmup, not a duration (``*_steps``), with fractions below 1: steps or a fraction?"""
    if "warmup" not in name.lower():
        return
    fractions = [v for v in values if 0 < float(v) < 1]
    if fractions:
        raise ValueError(f"axis {name!r} holds {fractions[0]!r}: a fraction of the run or {fractions[0]!r} steps? "
                         f"Name it {name}_steps or list it in durations= to read fractions of steps, or list it "
                         f"in plain= to pass the numbers as they are")


def _check_learning_rate(name: str, values: list) -> None:
    """A learning-rate axis (by its name) takes no negative value: a negative rate climbs the loss."""
    lowered = name.lower()
    if lowered in LEARNING_RATE_NAMES or lowered.endswith(("_lr", "learning_rate")):
        bad = [v for v in values if float(v) < 0]
        if bad:
            raise ValueError(f"axis {name!r}: a learning rate must be >= 0, got {bad[0]!r} (list the axis in plain= "
                             f"if it is not a learning rate)")


def _hashable(name: str, v: Any) -> Any:
    try:
        hash(v)
    except TypeError:
        raise ValueError(f"axis {name!r}: values must be numbers, strings or hashable objects, got {v!r}") from None
    return v


class _Reads(dict):
    """The hyperparameters of one config, remembering which ones the factory read."""

    def __init__(self, values: Mapping[str, Any]):
        super().__init__(values)
        self.read: set[str] = set()

    def __getitem__(self, key):
        if key not in self:
            raise KeyError(key)
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key in self:
            self.read.add(key)
        return super().get(key, default)


def check_factory(grid: Grid, factory: Callable[[Mapping[str, Any]], Any], name: str = "optimizer") -> None:
    """Calls ``factory`` once per distinct setting with its concrete (Python) values, before anything compiles.

    The library's own checks then raise for a bad value (a negative peak, an unknown warmup shape), named here
    with the config; an axis the factory never reads and a key it reads that is no axis are errors too.
    """
    seen: set[tuple] = set()
    read: set[str] = set()
    for i, c in enumerate(grid.configs):
        key = tuple((k, v) for k, v in c.items() if k != SEED)
        if key in seen:
            continue
        seen.add(key)
        hp = _Reads(c)
        try:
            tx = factory(hp)
        except KeyError as e:
            raise ValueError(f"{name}(hp) reads hp[{e.args[0]!r}], which is no axis of the grid "
                             f"(axes: {list(grid.axes)})") from None
        except (ValueError, TypeError) as e:
            setting = ", ".join(f"{k}={grid.given[i][k]!r}" for k in grid.settings)
            raise ValueError(f"{name}(hp) fails for config {i} ({setting}): {e}") from None
        _check_transformation(name, tx)
        read |= hp.read
    unread = [a for a in grid.axes if a != SEED and a not in read]
    if unread:
        raise ValueError(f"axis {unread[0]!r} is never read by {name}(hp): every axis but 'seed' must change the "
                         f"optimizer (check its spelling; axes read: {sorted(read)})")


def _check_transformation(name: str, tx: Any) -> None:
    """The factory must return an optimizer (an ``optax.GradientTransformation``): ``init`` and ``update``."""
    if callable(getattr(tx, "init", None)) and callable(getattr(tx, "update", None)):
        return
    what = type(tx).__name__
    if callable(tx):
        hint = (f" ({what} is callable: if it is a schedule, pass it as the learning rate, e.g. "
                "optax.adamw(learning_rate=schedule))")
    else:
        hint = ""
    raise ValueError(f"{name}(hp) must return an optax.GradientTransformation (with init and update), got "
                     f"{what}{hint}")
