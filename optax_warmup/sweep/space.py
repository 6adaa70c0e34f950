"""A search space: axis -> a distribution to sample from, checked before anything compiles.

``sweep.search`` takes ``{axis: distribution}``; the axes mean what they mean in a grid (``optax_warmup.sweep.grid``):

* ``Uniform(low, high)``, ``LogUniform(low, high)`` (``low > 0``) and ``IntUniform(low, high)`` (both ends included)
  are **traced** axes: every value shares one compiled program;
* ``Choice([...])`` of numbers is traced too; of strings (or bools) it is **static**: configs are grouped by it and
  each group has its own program, as in ``run()``;
* an axis named ``*_steps`` (or in ``durations=``) is a **duration**, by the library's one rule
  (``optax_warmup._duration``): a range within ``[0, 1]`` samples a fraction of the run (``Uniform(0.0, 0.5)`` on
  ``warmup_steps`` is up to half of ``steps``, rounded up to whole steps); any other range samples steps, rounded
  to the nearest whole step.

Every distribution maps a point ``u`` of the unit interval to a value (quasi-random search draws ``u`` from a Sobol
sequence) and asks an Optuna trial for one (``suggest``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optax_warmup._duration import duration_steps


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)


def _finite(what: str, v: Any) -> float:
    if not _is_number(v) or not math.isfinite(float(v)):
        raise ValueError(f"{what} must be a finite number, got {v!r}")
    return float(v)


class Distribution:
    """What one axis of a search space samples from."""

    traced = True

    def check(self, name: str) -> None:
        raise NotImplementedError

    def from_unit(self, u: float) -> Any:
        """The value at ``u`` in ``[0, 1)``."""
        raise NotImplementedError

    def suggest(self, trial: Any, name: str) -> Any:
        """The value an Optuna trial proposes."""
        raise NotImplementedError

    def optuna(self) -> Any:
        """The Optuna distribution (for ``study.ask``)."""
        raise NotImplementedError

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    def corners(self) -> list:
        """Values to call the optimizer factory with before anything compiles."""
        return [self.from_unit(0.0), self.from_unit(1.0)]


@dataclass(frozen=True)
class Uniform(Distribution):
    """A number uniform on ``[low, high]``."""

    low: float
    high: float

    def check(self, name: str) -> None:
        low, high = _finite(f"space[{name!r}]: Uniform low", self.low), _finite(f"space[{name!r}]: Uniform high",
                                                                              self.high)
        if low >= high:
            raise ValueError(f"space[{name!r}]: Uniform needs low < high, got low={self.low!r}, high={self.high!r}")

    def from_unit(self, u: float) -> float:
        return float(self.low + (self.high - self.low) * u)

    def optuna(self) -> Any:
        import optuna

        return optuna.distributions.FloatDistribution(float(self.low), float(self.high))


@dataclass(frozen=True)
class LogUniform(Distribution):
    """A positive number whose logarithm is uniform: ``LogUniform(1e-4, 1e-1)`` for learning rates."""

    low: float
    high: float

    def check(self, name: str) -> None:
        low, high = (_finite(f"space[{name!r}]: LogUniform low", self.low),
                     _finite(f"space[{name!r}]: LogUniform high", self.high))
        if low <= 0 or high <= 0:
            raise ValueError(f"space[{name!r}]: LogUniform needs positive bounds (a logarithm), got low="
                             f"{self.low!r}, high={self.high!r}")
        if low >= high:
            raise ValueError(f"space[{name!r}]: LogUniform needs low < high, got low={self.low!r}, "
                             f"high={self.high!r}")

    def from_unit(self, u: float) -> float:
        lo, hi = math.log(self.low), math.log(self.high)
        return float(min(self.high, max(self.low, math.exp(lo + (hi - lo) * u))))

    def optuna(self) -> Any:
        import optuna

        return optuna.distributions.FloatDistribution(float(self.low), float(self.high), log=True)


@dataclass(frozen=True)
class IntUniform(Distribution):
    """A whole number uniform on ``low, low + 1, ..., high`` (both included)."""

    low: int
    high: int

    def check(self, name: str) -> None:
        for what, v in (("low", self.low), ("high", self.high)):
            if not _is_number(v) or float(v) != int(v):
                raise ValueError(f"space[{name!r}]: IntUniform {what} must be a whole number, got {v!r}")
        if self.low >= self.high:
            raise ValueError(f"space[{name!r}]: IntUniform needs low < high, got low={self.low!r}, "
                             f"high={self.high!r}")

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.int32)

    def from_unit(self, u: float) -> int:
        n = int(self.high) - int(self.low) + 1
        return int(self.low) + min(n - 1, int(u * n))

    def optuna(self) -> Any:
        import optuna

        return optuna.distributions.IntDistribution(int(self.low), int(self.high))


@dataclass(frozen=True)
class Choice(Distribution):
    """One of ``values``, each as likely: numbers are traced; strings and bools are static (grouped)."""

    values: Sequence[Any]

    def __init__(self, values: Iterable[Any]):
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            raise ValueError(f"Choice takes a list of values, got {values!r}")
        object.__setattr__(self, "values", tuple(v.item() if isinstance(v, np.generic) else v for v in values))

    def check(self, name: str) -> None:
        if not self.values:
            raise ValueError(f"space[{name!r}]: Choice([]) is empty: give at least one value")
        numbers_ = [_is_number(v) for v in self.values]
        if any(numbers_) and not all(numbers_):
            other = next(v for v, n in zip(self.values, numbers_, strict=True) if not n)
            raise ValueError(f"space[{name!r}]: Choice mixes numbers and other values ({other!r}): give numbers only "
                             "(traced) or strings only (static)")
        for v in self.values:
            try:
                hash(v)
            except TypeError:
                raise ValueError(f"space[{name!r}]: Choice values must be numbers or strings, got {v!r}") from None
            if _is_number(v) and not math.isfinite(float(v)):
                raise ValueError(f"space[{name!r}]: Choice values must be finite, got {v!r}")
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"space[{name!r}]: Choice has a repeated value: {list(self.values)}")

    @property
    def traced(self) -> bool:  # type: ignore[override]
        return all(_is_number(v) for v in self.values)

    @property
    def dtype(self) -> np.dtype:
        ints = all(float(v) == int(v) for v in self.values)
        return np.dtype(np.int32) if ints else np.dtype(np.float32)

    def from_unit(self, u: float) -> Any:
        return self.values[min(len(self.values) - 1, int(u * len(self.values)))]

    def corners(self) -> list:
        return list(self.values)

    def optuna(self) -> Any:
        import optuna

        return optuna.distributions.CategoricalDistribution(list(self.values))


@dataclass(frozen=True)
class Space:
    """A checked space: its axes in order, which are traced, static and durations."""

    axes: dict[str, Distribution]
    durations: tuple[str, ...]
    steps: int

    @property
    def static(self) -> tuple[str, ...]:
        return tuple(a for a, d in self.axes.items() if not d.traced)

    @property
    def traced(self) -> tuple[str, ...]:
        return tuple(a for a, d in self.axes.items() if d.traced)

    def dtype(self, axis: str) -> np.dtype:
        return np.dtype(np.int32) if axis in self.durations else self.axes[axis].dtype

    def resolve(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Sampled values -> what the optimizer factory receives (durations in steps)."""
        out = {}
        for a, v in given.items():
            if a in self.durations:
                d = self.axes[a]
                if isinstance(d, Choice):  # the values as a grid would take them: 20 steps, 0.1 or "10%"
                    spec = v
                elif isinstance(d, Uniform | LogUniform) and d.high <= 1:
                    spec = {"fraction": min(1.0, max(0.0, float(v)))}
                else:
                    spec = int(round(float(v)))
                v = duration_steps(spec, self.steps, name=f"space[{a!r}]")
            out[a] = v
        return out

    def from_unit(self, u: Sequence[float]) -> dict[str, Any]:
        return {a: d.from_unit(float(x)) for (a, d), x in zip(self.axes.items(), u, strict=True)}

    def group_of(self, config: Mapping[str, Any]) -> tuple:
        return tuple((a, config[a]) for a in self.static)

    def groups(self) -> list[tuple]:
        """Every combination of the static axes' values, in order."""
        import itertools

        choices = [[(a, v) for v in self.axes[a].values] for a in self.static]  # type: ignore[attr-defined]
        return [tuple(c) for c in itertools.product(*choices)]

    def corner_configs(self) -> list[dict]:
        """A few configs per static group that reach every traced axis's ends: for checking the factory."""
        out = []
        for group in self.groups():
            for end in (0, 1):
                given = {a: (d.corners()[-1] if end else d.corners()[0]) for a, d in self.axes.items() if d.traced}
                given.update(dict(group))
                out.append({a: given[a] for a in self.axes})
        return out


def check(space: Any, steps: int, durations: Iterable[str] = ()) -> Space:
    """A space dict -> a checked ``Space``. Raises ``ValueError`` in one line naming the axis."""
    if not isinstance(space, Mapping) or not space:
        raise ValueError("space: give a dict {axis: distribution}, e.g. {'peak_value': sweep.LogUniform(1e-4, 1e-1)}")
    axes: dict[str, Distribution] = {}
    for name, d in space.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"space: axis names must be non-empty strings, got {name!r}")
        if name == "seed":
            raise ValueError("space: 'seed' is not searched: the search trains every config on its own seed and "
                             "confirms the best on fresh ones (seed=, confirm_seeds=)")
        if not isinstance(d, Distribution):
            raise ValueError(f"space[{name!r}]: give a distribution (sweep.Uniform, LogUniform, IntUniform or "
                             f"Choice), got {d!r}; a fixed value is Choice([{d!r}])")
        d.check(name)
        axes[name] = d
    duration_names = set(durations)
    for n in duration_names - set(axes):
        raise ValueError(f"axis {n!r} is named in durations= but is not in the space (axes: {list(axes)})")
    durs = tuple(a for a in axes if (a in duration_names or a.endswith("_steps")))
    for a in durs:
        d = axes[a]
        if not d.traced:
            raise ValueError(f"space[{a!r}]: a duration takes numbers, got {d!r}")
        if isinstance(d, Uniform | LogUniform | IntUniform) and d.low < 0:
            raise ValueError(f"space[{a!r}]: a duration cannot be negative, got low={d.low!r}")
    out = Space(axes=axes, durations=durs, steps=steps)
    for c in out.corner_configs():
        for a, v in out.resolve(c).items():
            if a in durs and "warmup" in a and v > steps:
                raise ValueError(f"space[{a!r}]: a warmup of {c[a]!r} ({v} steps) is longer than the run "
                                 f"({steps} steps)")
    return out
