"""The engine: a schedule as a list of phases, evaluated with traced lengths in a program of constant size.

A phase has a length (in steps), a start value, an end value and a shape (see ``_shapes.py``). The engine keeps
each phase as a *segment*: the count where it takes over (``begin``), the count where its progress is 0
(``origin``, equal to ``begin`` except for a piece cut short by ``join_schedules``), its length, values, shape and
shape parameter. At count ``c`` it picks the last segment whose ``begin <= c`` (one vector comparison, no loop
over phases), computes the progress ``p = clip((c - origin) / length, 0, 1)`` once, evaluates each *distinct*
shape once and selects. So a 32-phase schedule compiles to about the same program as a 2-phase one, every length
and value may be a traced array, and a zero-length phase is simply never selected.

After the last phase the schedule holds the last end value; negative counts give the value at count 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optax_warmup import _shapes
from optax_warmup import _validate as V


class Phase(NamedTuple):
    """One phase of a schedule: ``length`` steps from ``start`` to ``end`` along ``shape``.

    Attributes:
      length: number of steps (may be traced; negative or NaN is clamped to 0).
      start: value at the first step of the phase.
      end: value reached when the phase is over (held if this is the last phase).
      shape: a name from ``optax_warmup.SHAPES``.
      param: the shape's parameter (the exponent of ``"polynomial"``, ``"polynomial_decay"`` and ``"cosine"``).
    """

    length: Any
    start: Any
    end: Any
    shape: str = "linear"
    param: Any = 1.0


_SELECT_MAX = 4


def _item(a):
    """Element 0 of a field: a Python number when the field is a NumPy array (so it folds), else a tracer."""
    return a[0].item() if isinstance(a, np.ndarray) else a[0]


def _stack(xp, xs):
    dtype = V.float_dtype()
    if xp is np:
        return np.asarray([np.asarray(x, dtype=np.float64) for x in xs], dtype=dtype)
    return jnp.stack([jnp.asarray(x, dtype=dtype) for x in xs])


def _exclusive_cumsum(xp, lengths):
    return xp.concatenate([xp.zeros((1,), lengths.dtype), xp.cumsum(lengths)[:-1]])


class PhaseSchedule:
    """A schedule ``count -> value`` made of segments (see the module docstring). Build it with ``phase_schedule``.

    The segment arrays are NumPy arrays when every hyperparameter was concrete (they become constants of the
    compiled program) and JAX arrays (tracers) when some were traced.
    """

    def __init__(self, begins, origins, lengths, starts, ends, params, shapes: Sequence[str]):
        self.begins, self.origins, self.lengths = begins, origins, lengths
        self.starts, self.ends, self.params = starts, ends, params
        self.shapes = tuple(shapes)
        self._distinct = tuple(sorted(set(self.shapes)))
        self._shape_ids = np.asarray([self._distinct.index(s) for s in self.shapes], dtype=np.int32)

    def __len__(self) -> int:
        return len(self.shapes)

    def __call__(self, count) -> jax.Array:
        dtype = V.float_dtype()
        if len(self.shapes) == 1 and isinstance(self.lengths, np.ndarray) and self.lengths[0] == 0:
            # A constant: no arithmetic on the count at all.
            return jnp.broadcast_to(jnp.asarray(_item(self.ends), dtype), jnp.shape(count))
        few = len(self.shapes) <= _SELECT_MAX
        # Negative counts need no clamp when the first segment has a concrete positive length: its progress is
        # clipped at 0, which is the count-0 value.
        first = self._plan()[0][0][0] if few else 0
        clamp = not (isinstance(self.lengths, np.ndarray) and self.lengths[first] > 0)
        c = V.as_count(count, clamp=clamp)
        value = self._few(c) if few else self._many(c)
        return jnp.broadcast_to(jnp.asarray(value, dtype), jnp.shape(c))

    def _progress_and_shapes(self, c, fields, segments, names):
        """Evaluates each distinct shape in ``names`` once, on the selected segment's fields."""
        origin, length, start, end, param = fields
        t = _shapes._sub(c, origin)
        lengths = self.lengths
        if isinstance(lengths, np.ndarray) and bool(np.all(lengths[segments] > 0)):
            p = jnp.minimum(jnp.maximum(t / length, 0.0), 1.0)
        else:
            has_length = length > 0
            p = jnp.where(has_length, jnp.minimum(jnp.maximum(t / jnp.where(has_length, length, 1.0), 0.0), 1.0), 1.0)
        return {name: _shapes.SHAPES[name](p, start, end, param) for name in names}

    def _plan(self):
        """The segments ``_few`` must tell apart, as (segment, index of the begin where it takes over).

        A concrete flat segment (start == end) is dropped when a neighbour already gives its value: the segment
        before ends at it (its progress holds at 1) or the segment after starts at it (its progress holds at 0
        before its origin). A plain linear schedule with ``transition_begin`` so needs no select at all.
        """
        n = len(self.shapes)
        if not (isinstance(self.starts, np.ndarray) and isinstance(self.ends, np.ndarray)):
            return [(i, i) for i in range(n)], [False] * n
        flat = [bool(self.starts[i] == self.ends[i]) for i in range(n)]
        plan: list[tuple[int, int]] = []
        for i in range(n):
            if flat[i] and plan and self.ends[plan[-1][0]] == self.starts[i]:
                continue  # the previous segment already holds this value
            concrete_length = isinstance(self.lengths, np.ndarray) and self.lengths[i] > 0
            if (plan and flat[plan[-1][0]] and not flat[i] and concrete_length
                    and self.starts[i] == self.starts[plan[-1][0]]):
                plan[-1] = (i, plan[-1][1])  # this segment starts at the flat value before it: take over earlier
                continue
            plan.append((i, i))
        return plan, flat

    def _few(self, c):
        """Up to ``_SELECT_MAX`` segments: chains of selects on ``count >= begin``, Python constants folded.

        A concrete flat segment (start == end) is just its value; a field equal in every other segment stays a
        Python constant. A warmup-then-decay schedule so compiles to its two formulas and one select.
        """
        plan, flat = self._plan()
        conds: dict[int, jax.Array] = {}

        def after(b):  # count >= begin of segment b, emitted once and only if used
            if b not in conds:
                conds[b] = c >= _item(self.begins[b:])
            return conds[b]

        moving = [(i, b) for i, b in plan if not flat[i]]
        by_shape: dict[str, jax.Array] = {}
        if moving:
            idx = [i for i, _ in moving]
            fields = []
            for f in (self.origins, self.lengths, self.starts, self.ends, self.params):
                if isinstance(f, np.ndarray) and bool(np.all(f[idx] == f[idx[0]])):
                    fields.append(_item(f[idx[0]:]))
                    continue
                v = f[idx[0]]
                for i, b in moving[1:]:
                    v = jnp.where(after(b), f[i], v)
                fields.append(v)
            by_shape = self._progress_and_shapes(c, fields, idx, sorted({self.shapes[i] for i in idx}))

        def segment_value(i):
            return _item(self.starts[i:]) if flat[i] else by_shape[self.shapes[i]]

        value = segment_value(plan[0][0])
        for (prev, _), (i, b) in zip(plan, plan[1:], strict=False):
            same = (flat[i] and flat[prev] and self.starts[i] == self.starts[prev]) or (
                not flat[i] and not flat[prev] and self.shapes[i] == self.shapes[prev])
            if not same:
                value = jnp.where(after(b), segment_value(i), value)
        return value

    def _many(self, c):
        """More segments: the index from one vector comparison, the varying fields from one gather."""
        n = len(self.shapes)
        fields = [self.origins, self.lengths, self.starts, self.ends, self.params, self._shape_ids]
        uniform = [isinstance(f, np.ndarray) and bool(np.all(f == f[0])) for f in fields]
        idx = jnp.clip(jnp.sum(jnp.asarray(self.begins) <= c[..., None], axis=-1) - 1, 0, n - 1)
        varying = [j for j, same in enumerate(uniform) if not same]
        xp = V.xp_for(*(fields[j] for j in varying))
        table = xp.stack([xp.asarray(fields[j], dtype=V.float_dtype()) for j in varying], axis=-1)
        row = jnp.take(jnp.asarray(table), idx, axis=0, mode="clip")
        picked = [_item(f) for f in fields]
        for col, j in enumerate(varying):
            picked[j] = row[..., col]
        by_shape = self._progress_and_shapes(c, picked[:5], slice(None), self._distinct)
        value = None
        for i, name in enumerate(self._distinct):
            value = by_shape[name] if value is None else jnp.where(picked[5] == i, by_shape[name], value)
        return value

    @property
    def arrays(self):
        return (self.begins, self.origins, self.lengths, self.starts, self.ends, self.params)


def phase_schedule(phases: Sequence[Phase]) -> PhaseSchedule:
    """Builds a schedule from a list of phases, run one after the other from count 0.

    .. math::
      v(c) = \\mathrm{shape}_i\\big(\\tfrac{c - b_i}{L_i}\\big) \\text{ for } b_i \\le c < b_i + L_i,
      \\quad b_i = \\textstyle\\sum_{j<i} L_j

    Args:
      phases: ``Phase(length, start, end, shape="linear", param=1.0)`` tuples; every number may be traced.

    Returns:
      A schedule; after the last phase it holds the last ``end``.

    Example:
      >>> import optax_warmup as ow
      >>> s = ow.phase_schedule([ow.Phase(10, 0.0, 1.0), ow.Phase(90, 1.0, 0.1, "cosine")])
      >>> float(s(5)), float(s(10)), float(s(100))
      (0.5, 1.0, 0.1...)
    """
    phases = [Phase(*p) if not isinstance(p, Phase) else p for p in phases]
    if not phases:
        raise ValueError("phases must hold at least one Phase, got an empty list")
    numbers = []
    for i, ph in enumerate(phases):
        V.check_choice(f"phases[{i}].shape", ph.shape, tuple(_shapes.SHAPES))
        V.check_nonnegative(f"phases[{i}].length", ph.length)
        V.check_finite(f"phases[{i}].start", ph.start)
        V.check_finite(f"phases[{i}].end", ph.end)
        V.check_nonnegative(f"phases[{i}].param", ph.param)
        numbers += [ph.length, ph.start, ph.end, ph.param]
    xp = V.xp_for(*numbers)
    if xp is np:
        # A zero-length phase is never selected unless it is the last one (whose end value is then held):
        # dropping it at construction keeps the compiled program small.
        phases = [ph for ph in phases[:-1] if float(ph.length) > 0] + [phases[-1]]
    lengths = V.sanitize_length(xp, _stack(xp, [ph.length for ph in phases]))
    begins = _exclusive_cumsum(xp, lengths)
    return PhaseSchedule(
        begins,
        begins,
        lengths,
        V.sanitize_value(xp, _stack(xp, [ph.start for ph in phases])),
        V.sanitize_value(xp, _stack(xp, [ph.end for ph in phases])),
        V.sanitize_exponent(xp, _stack(xp, [ph.param for ph in phases])),
        [ph.shape for ph in phases],
    )


def merge_phase_schedules(pieces: Sequence[PhaseSchedule], boundaries) -> PhaseSchedule:
    """``join_schedules`` for phase schedules: one segment list, so the program does not grow per piece.

    Piece ``i`` applies on ``[b_{i-1}, b_i)`` and sees ``count - b_{i-1}``; its segments are shifted by
    ``b_{i-1}`` and their take-over counts clipped into its interval, so a piece cut short by the next boundary
    keeps its shape (its progress still runs over its own length) and a piece that ends early holds its end value.
    ``boundaries`` must already be sanitized (non-negative, non-decreasing).
    """
    arrays = [a for piece in pieces for a in piece.arrays]
    xp = V.xp_for(*arrays, *boundaries)
    cols: list[list] = [[] for _ in range(6)]
    for i, piece in enumerate(pieces):
        lo = boundaries[i - 1] if i > 0 else 0.0
        begins = piece.begins + lo
        begins = xp.maximum(begins, lo)
        if i < len(boundaries):
            begins = xp.minimum(begins, boundaries[i])
        for col, a in zip(cols, (begins, piece.origins + lo, *piece.arrays[2:]), strict=True):
            col.append(xp.asarray(a, dtype=V.float_dtype()))
    merged = [xp.concatenate(col) for col in cols]
    shapes = [s for piece in pieces for s in piece.shapes]
    return PhaseSchedule(*merged, shapes)
