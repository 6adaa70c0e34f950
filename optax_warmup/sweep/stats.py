"""How sure an answer is: means with Student-t intervals, paired comparisons over seeds, Holm's correction.

Conventions, for every function below:

* values are per seed (one run each); NaN values are refused, not dropped (a diverged run is a result, not a gap);
* below ``MIN_SEEDS`` (3) values the spread is **unknown**: the interval and p-value are NaN and ``known`` is
  False. Two numbers give a standard deviation but its t-interval (1 degree of freedom, t = 12.7) says nothing
  a reader can use, and the min-max of three numbers is not a spread either;
* intervals are two-sided Student-t intervals at ``confidence`` (default 95%): ``mean +- t * sd / sqrt(n)``.

SciPy (the ``sweep`` extra) is imported only when a t quantile or p-value is computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

MIN_SEEDS = 3
CONFIDENCE = 0.95


def _t():
    from optax_warmup._extras import require

    return require("scipy.stats", "sweep", "intervals and p-values").t


def _values(name: str, values: ArrayLike) -> np.ndarray:
    x = np.asarray(values, np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError(f"{name}: give at least one value")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: values must be finite (a diverged run is reported, not averaged), got {x}")
    return x


def _confidence(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    return float(confidence)


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` seeds and its t-interval ``[low, high]`` (NaN when the spread is unknown)."""

    mean: float
    n: int
    sd: float  # sample standard deviation (ddof 1); NaN for one value
    low: float
    high: float
    confidence: float

    @property
    def known(self) -> bool:
        return self.n >= MIN_SEEDS

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def format(self, digits: int = 3) -> str:
        """``"0.412 +- 0.013 (95% t-interval, 5 seeds)"`` or ``"0.412 (2 seeds: spread unknown)"``."""
        if not self.known:
            return f"{self.mean:.{digits}f} ({self.n} seed{'s' * (self.n != 1)}: spread unknown)"
        return (f"{self.mean:.{digits}f} +- {self.half_width:.{digits}f} ({self.confidence:.0%} t-interval, "
                f"{self.n} seeds)")

    def to_dict(self) -> dict:
        return dict(mean=self.mean, n=self.n, sd=self.sd, low=self.low, high=self.high,
                    confidence=self.confidence, known=self.known)


def interval(values: ArrayLike, confidence: float = CONFIDENCE) -> Interval:
    """The mean of ``values`` with its Student-t interval.

    Examples:
      >>> from optax_warmup.sweep import stats
      >>> stats.interval([1.0, 2.0, 3.0]).format()  # t(0.975, 2) = 4.303, sd = 1, n = 3
      '2.000 +- 2.484 (95% t-interval, 3 seeds)'
      >>> stats.interval([1.0, 2.0]).format()
      '1.500 (2 seeds: spread unknown)'
    """
    x = _values("interval", values)
    confidence = _confidence(confidence)
    n, mean = x.size, float(np.mean(x))
    sd = float(np.std(x, ddof=1)) if n > 1 else math.nan
    if n < MIN_SEEDS:
        return Interval(mean, n, sd, math.nan, math.nan, confidence)
    half = float(_t().ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, n, sd, mean - half, mean + half, confidence)


@dataclass(frozen=True)
class Paired:
    """``a - b`` over the same seeds: mean difference, its t-interval, a two-sided p-value and Cohen's ``d_z``."""

    difference: float  # mean of a - b: negative means a is lower (better, for a loss)
    n: int
    low: float
    high: float
    p: float
    d_z: float  # mean difference / sd of the differences
    confidence: float

    @property
    def known(self) -> bool:
        return self.n >= MIN_SEEDS

    def distinguishable(self, alpha: float | None = None) -> bool:
        """The interval excludes 0 (or, with ``alpha``, ``p < alpha``); False when the spread is unknown."""
        if not self.known:
            return False
        if alpha is not None:
            return self.p < alpha
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict:
        return dict(difference=self.difference, n=self.n, low=self.low, high=self.high, p=self.p, d_z=self.d_z,
                    confidence=self.confidence, known=self.known, distinguishable=self.distinguishable())


def paired(a: ArrayLike, b: ArrayLike, confidence: float = CONFIDENCE) -> Paired:
    """The paired comparison of ``a`` and ``b``, seed by seed (``a[i]`` and ``b[i]`` share seed ``i``).

    A paired t-test on the differences ``a - b``. When every difference is the same (sd 0) the interval is that
    difference and p is 0 (or 1 when it is 0).

    Examples:
      >>> from optax_warmup.sweep import stats
      >>> c = stats.paired([1.0, 2.0, 3.0], [1.5, 2.25, 4.0])  # differences -0.5, -0.25, -1
      >>> round(c.difference, 4), round(c.p, 4), round(c.d_z, 4)
      (-0.5833, 0.1181, -1.5275)
    """
    x, y = _values("paired: a", a), _values("paired: b", b)
    if x.shape != y.shape:
        raise ValueError(f"paired: a and b must have one value per seed each, got {x.size} and {y.size}")
    confidence = _confidence(confidence)
    d = x - y
    n, mean = d.size, float(np.mean(d))
    sd = float(np.std(d, ddof=1)) if n > 1 else math.nan
    if n < MIN_SEEDS:
        return Paired(mean, n, math.nan, math.nan, math.nan, math.nan, confidence)
    if sd == 0:
        return Paired(mean, n, mean, mean, 1.0 if mean == 0 else 0.0,
                      0.0 if mean == 0 else math.copysign(math.inf, mean), confidence)
    t = _t()
    se = sd / math.sqrt(n)
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * se
    p = float(2 * t.sf(abs(mean) / se, n - 1))
    return Paired(mean, n, mean - half, mean + half, p, mean / sd, confidence)


def holm(p_values: ArrayLike) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error over the table): reject where ``adjusted < alpha``.

    The i-th smallest of ``m`` p-values is multiplied by ``m - i`` (i from 0), kept monotone and capped at 1.
    NaN p-values (unknown spread) stay NaN and do not count in ``m``.

    Examples:
      >>> from optax_warmup.sweep import stats
      >>> stats.holm([0.01, 0.04, 0.03])
      [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, np.float64).reshape(-1)
    out = np.full(p.shape, np.nan)
    known = np.flatnonzero(np.isfinite(p))
    if np.any((p[known] < 0) | (p[known] > 1)):
        raise ValueError(f"holm: p-values must be in [0, 1], got {p}")
    order = known[np.argsort(p[known], kind="stable")]
    m, running = len(order), 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[j]))
        out[j] = running
    return [round(float(v), 12) if np.isfinite(v) else math.nan for v in out]
