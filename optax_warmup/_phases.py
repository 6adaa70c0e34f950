"""The engine: every schedule of the library is one ``PhaseSchedule``, a list of segments evaluated in one program.

A *segment* takes over at the count ``begin`` and computes its value from the count ``t = c - origin`` relative to
its own ``origin`` (equal to ``begin`` except for a piece cut short by ``join_schedules`` or a tail that counts
from elsewhere), a ``length``, a ``start``, an ``end`` and a parameter. Its *kind* says how:

* a phase shape of ``_shapes.SHAPES`` (``"linear"``, ``"cosine"``, ...): progress ``p = clip(t / length, 0, 1)``
  goes from ``start`` to ``end``, then holds ``end``;
* ``"power"``: the power-law tail ``min(end, start * (1 + t / length)**-param)`` (rsqrt, Noam, the power
  scheduler); ``end`` is a cap, ``length`` a time scale, and the tail never ends;
* ``"saturate"``: ``start + (end - start) (1 - exp(-t / length))``, approaching ``end`` (the exponential warmup);
* ``"exp"`` / ``"exp_stairs"``: ``start * exp(param * t / length)`` (``floor`` of the exponent for the stairs),
  bounded by ``end`` as Optax bounds its exponential decay (a floor for a decay, a ceiling for growth);
* ``"const"``: ``start``, whatever the count;
* ``"restarts:<warmup shape>"``: cosine cycles that warm up again, the cycle of a count found in closed form
  (``warmup_cosine_restarts_schedule``; the cycle length, growth and peak decay are extra parameter columns);
* ``"radam"``: RAdam's rectification factor at ``t = count - origin`` (``radam_warmup``);
* ``"fn"``: a function of ``t`` the engine cannot see into: a schedule from another library (an Optax closure),
  or one of this library's closed forms with a count transform of its own (the cosine restarts, RAdam's factor).

Over the segments lie *layers*, each giving every segment a factor ``h`` (a kind as above, on its own clock, or
``"one"``) and an anchor ``A``: the value becomes ``A + (v - A) h``. The exponential warmup is the layer
``h = 1 - exp(-2 t / W)`` with ``A`` the init value over a schedule that holds the peak during the warmup;
``warmup_overlay`` multiplies by a warmup factor (``A = 0``).

At count ``c`` the active segment is the last whose ``begin <= c``. Up to a few segments are told apart with
selects (each evaluated with its constants folded when every segment has its own kind, else the differing fields
are selected and each distinct kind is evaluated once); more segments are told apart by one vector comparison
and one gather of the fields, so a 32-piece join compiles to about the program of a 2-piece one. Functions are
evaluated only when active (``lax.switch``) when the count is a scalar. Every field may be a traced array.

Negative counts give the value at count 0. Arguments are checked and clamped by the public factories, once; the
builders here trust what they are given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optax_warmup import _numeric as N
from optax_warmup import _shapes
from optax_warmup import _validate as V

POWER, SATURATE, EXP, EXP_STAIRS, FN, ONE, CONST = "power", "saturate", "exp", "exp_stairs", "fn", "one", "const"
RESTARTS, RADAM = "restarts", "radam"  # "restarts:<warmup shape>" and "radam" read extra parameter columns
_TAILS = (POWER, SATURATE, EXP, EXP_STAIRS)  # closed forms that do not end at their length
_SELECT_MAX = 4
# A power-law factor is clipped here so that ``start * factor`` stays finite for |start| <= 1e30 (float32).
_LOG_MAX_FACTOR = float(np.log(1e8))


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


class Segment(NamedTuple):
    """A segment for the builders (already clamped): see the module docstring. ``fn`` only for kind ``"fn"``;
    ``extra`` holds the parameters of a kind that needs more than the five fields (``"restarts"``)."""

    begin: Any
    origin: Any
    length: Any
    start: Any
    end: Any
    kind: str
    param: Any = 1.0
    fn: Callable | None = None
    extra: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Table:
    """Per-segment fields of one formula: arrays of one entry per segment (NumPy when concrete, else JAX)."""

    origins: Any
    lengths: Any
    starts: Any
    ends: Any
    params: Any
    kinds: tuple[str, ...]
    extras: tuple[Any, ...] = ()  # more parameter columns, for the kinds that need them (zeros elsewhere)

    @property
    def fields(self) -> tuple[Any, ...]:
        return (self.origins, self.lengths, self.starts, self.ends, self.params)

    @staticmethod
    def of(fields: Sequence[Any], kinds: Sequence[str], extras: Sequence[Any] = ()) -> Table:
        """A table from its five field columns (origins, lengths, starts, ends, params), kinds and extras."""
        origins, lengths, starts, ends, params = fields
        return Table(origins, lengths, starts, ends, params, tuple(kinds), tuple(extras))

    def take(self, idx: Sequence[int]) -> Table:
        idx = list(idx)
        return Table.of([_take(f, idx) for f in self.fields], [self.kinds[i] for i in idx],
                        [_take(e, idx) for e in self.extras])

    def shifted(self, by: Any) -> Table:
        return Table.of([self.origins + by, *self.fields[1:]], self.kinds, self.extras)


@dataclass(frozen=True)
class Layer:
    """A factor over every segment: ``v -> anchor + (v - anchor) * h``, ``h`` from ``table`` (kind ``"one"``: 1)."""

    anchors: Any
    table: Table


def _take(a: Any, idx: list[int]) -> Any:
    return a[np.asarray(idx, dtype=np.int64)] if isinstance(a, np.ndarray) else a[jnp.asarray(idx, jnp.int32)]


def _concrete(*arrays: Any) -> bool:
    return all(isinstance(a, np.ndarray) for a in arrays)


def _xp(*arrays: Any) -> Any:
    return np if _concrete(*arrays) else jnp


def _stack(values: Sequence[Any]) -> Any:
    return N.stack(V.xp_for(*values), values)


def _const(a: Any, i: int) -> Any:
    """Field ``i`` as a Python number when concrete (it folds into the program), else the traced element."""
    return a[i].item() if isinstance(a, np.ndarray) else a[i]


def _uniform(a: Any) -> bool:
    return isinstance(a, np.ndarray) and bool(np.all(a == a[0]))


class PhaseSchedule:
    """A schedule ``count -> value``: the engine's object, returned by every schedule factory of the library.

    Build one with ``phase_schedule`` (or any factory); ``join_schedules``, ``with_warmup`` and
    ``warmup_overlay`` of phase schedules give phase schedules again, evaluated as one program.
    """

    def __init__(self, begins: Any, base: Table, fns: Sequence[Callable] = (), layers: Sequence[Layer] = ()):
        self.begins = begins
        self.base = base
        self.fns = tuple(fns)
        self.layers = tuple(layers)

    def __len__(self) -> int:
        return len(self.base.kinds)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kind of each segment (a phase shape name, ``"power"``, ``"fn:0"``, ...)."""
        return self.base.kinds

    # --- evaluation ----------------------------------------------------------------------------------------------

    def __call__(self, count: jax.typing.ArrayLike) -> jax.Array:
        """The schedule's value at ``count`` (a number or an array of counts, traced or not), as a float array
        shaped like ``count``."""
        dtype = N.float_dtype()
        if len(self) == 1 and not self.layers and self.base.kinds[0].startswith(FN):
            if _concrete(self.begins, self.base.origins) and self.base.origins[0] == 0:
                return jnp.asarray(self.fns[0](count), dtype)  # a wrapped schedule sees its count as it is
        value = self._constant()
        if value is not None:
            # A constant: no arithmetic on the count at all.
            return jnp.broadcast_to(jnp.asarray(value, dtype), jnp.shape(V.as_count(count, clamp=False)))
        plan = self._plan()
        moving = [self.base.kinds[i] for i, _ in plan if self._const_value(i) is None]
        by_segment = len(plan) <= _SELECT_MAX and len(set(moving)) == len(moving)
        clamp = self._needs_clamp(plan[0][0], by_segment)
        c = V.as_count(count, clamp=clamp)
        value = self._by_segment(c, plan, clamped=clamp) if by_segment else self._by_fields(c, plan)
        return jnp.broadcast_to(jnp.asarray(value, dtype), jnp.shape(c))

    def _needs_clamp(self, first: int, by_segment: bool) -> bool:
        """Whether negative counts must be clamped to 0. They select the first segment, which gives its value at
        count 0 by itself when it is a constant, or a phase that clips its progress at 0 from an origin >= 0."""
        if self.layers:
            return True
        kind, origin = self.base.kinds[first], _const(self.base.origins, first)
        if self._const_value(first) is not None:
            return False
        if by_segment:  # each segment's clips are chosen knowing this
            return kind.startswith(FN) or kind == POWER or not (N.is_const(origin) and origin >= 0)
        length = _const(self.base.lengths, first)
        return not (kind in _shapes.SHAPES and N.is_const(length) and length > 0 and N.is_const(origin) and origin == 0)

    def _constant(self) -> Any:
        if len(self) != 1 or self.layers:
            return None
        value = self._const_value(0)
        return value

    def _const_value(self, i: int) -> Any:
        """The value of segment ``i`` when it is a known constant (concrete flat or zero-length phase), else None."""
        t = self.base
        if t.kinds[i] == CONST:
            return t.starts[i].item() if isinstance(t.starts, np.ndarray) else None
        if t.kinds[i] not in _shapes.SHAPES or not _concrete(t.lengths, t.starts, t.ends):
            return None
        if t.lengths[i] == 0:
            return t.ends[i].item()
        if t.starts[i] == t.ends[i]:
            return t.starts[i].item()
        return None

    def _layers_uniform(self) -> bool:
        return all(_uniform(layer.anchors) and all(_uniform(f) for f in layer.table.fields)
                   and len(set(layer.table.kinds)) == 1 for layer in self.layers)

    def _plan(self) -> list[tuple[int, int]]:
        """The segments to tell apart, as (segment, index of the begin where it takes over).

        A concrete constant segment is dropped when the segment before it already holds its value (it ended at
        it, or is a constant equal to it); a moving segment that starts at the constant value before it takes over
        from there (its progress is 0 until its origin). A plain linear schedule with ``transition_begin`` so needs
        no select at all. Only done when the segments share their layers (else each keeps its own).
        """
        n = len(self)
        t = self.base
        alive = list(range(n))
        if isinstance(self.begins, np.ndarray):
            # A segment whose successor takes over at the same count is never active.
            alive = [i for i in range(n) if i + 1 == n or self.begins[i + 1] > self.begins[i]]
        if not (_concrete(self.begins, *t.fields) and self._layers_uniform()):
            return [(i, i) for i in alive]
        consts = [self._const_value(i) for i in range(n)]
        plan: list[tuple[int, int]] = []
        for i in alive:
            if plan:
                p, b = plan[-1]
                held = consts[p] if consts[p] is not None else None
                if held is None and t.kinds[p] in _shapes.SHAPES and t.origins[p] + t.lengths[p] <= self.begins[i]:
                    held = t.ends[p].item()  # p is over by the time i begins: it holds its end
                if consts[i] is not None and held is not None and held == consts[i]:
                    continue  # the segment before already holds this value
                if (consts[p] is not None and consts[i] is None and t.kinds[i] in _shapes.SHAPES
                        and t.lengths[i] > 0 and t.origins[i] >= self.begins[i] and t.starts[i] == consts[p]):
                    plan[-1] = (i, b)  # i starts at the constant before it: take over from there
                    continue
            plan.append((i, i))
        return plan

    # Each segment on its own, its constants folded: the cheapest program when every segment has its own kind.

    def _by_segment(self, c: jax.Array, plan: list[tuple[int, int]], *, clamped: bool) -> Any:
        takeover = [_const(self.begins, b) for _, b in plan]
        # From which count each segment is used: the first also for negative counts when they are not clamped.
        used_from = [takeover[0] if clamped else None, *takeover[1:]]
        values = [
            (lambda i=i, k=k: self._segment_value(c, i, used_from[k], takeover[k + 1] if k + 1 < len(plan) else None))
            for k, (i, _) in enumerate(plan)
        ]
        if any(self.base.kinds[i].startswith(FN) for i, _ in plan) and jnp.ndim(c) == 0 and len(plan) > 1:
            # Only the active segment is evaluated: a foreign schedule may be expensive.
            branches = [lambda f=f: jnp.asarray(f(), N.float_dtype()) for f in values]
            if len(plan) == 2:
                value = jax.lax.cond(c >= takeover[1], branches[1], branches[0])
            else:
                index = (c >= takeover[1]).astype(jnp.int32)
                for b in takeover[2:]:
                    index = index + (c >= b).astype(jnp.int32)
                value = jax.lax.switch(index, branches)
        else:
            value = values[0]()
            for k in range(1, len(plan)):
                value = jnp.where(c >= takeover[k], values[k](), value)
        if self._layers_uniform():
            for layer in self.layers:
                value = _apply_layer(c, value, layer, 0)
        return value

    def _segment_value(self, c: jax.Array, i: int, start_at: Any, until: Any) -> Any:
        """Segment ``i``'s value, knowing it is only used from ``start_at`` until ``until`` (None: for ever)."""
        value = self._const_value(i)
        if value is not None:
            value = N.float_dtype().type(value)  # typed, so that selects among constants stay float32
        else:
            t = self.base
            kind = t.kinds[i]
            f = [_const(a, i) for a in t.fields]
            extra = [_const(e, i) for e in t.extras]
            if kind.startswith(FN):
                # The count since the piece began; not negative while the piece is active (Optax's join also
                # passes negative counts to the pieces it evaluates but does not use).
                known = N.is_const(f[0]) and N.is_const(start_at) and f[0] <= max(start_at, 0.0)
                value = self.fns[int(kind[3:])](N.sub(c, f[0]) if known else jnp.maximum(N.sub(c, f[0]), 0.0))
            else:
                origin, length, start, end, param = f
                clip = _Clip.for_segment(origin, length, param, start_at, until)
                value = _kind_value(kind, c, origin, length, start, end, param, clip, extra)
        if not self._layers_uniform():
            for layer in self.layers:
                value = _apply_layer(c, value, layer, i)
        return value

    # The differing fields selected (few segments) or gathered (many), each distinct kind evaluated once.

    def _by_fields(self, c: jax.Array, plan: list[tuple[int, int]]) -> Any:
        idx = [i for i, _ in plan]
        consts = [self._const_value(i) for i in idx]
        base = self.base.take(idx)
        kinds = [CONST if v is not None else k for v, k in zip(consts, base.kinds, strict=True)]
        starts = base.starts
        if any(v is not None for v in consts):
            xp = _xp(starts)
            is_const = np.asarray([v is not None for v in consts])
            starts = xp.where(is_const, np.asarray([0.0 if v is None else v for v in consts], N.float_dtype()), starts)
        columns, kind_lists = [], []
        for table, anchors, kind_list in [(base, None, kinds)] + [
                (layer.table.take(idx), _take(layer.anchors, idx), [layer.table.kinds[i] for i in idx])
                for layer in self.layers]:
            distinct = sorted(set(kind_list))
            ids = np.asarray([distinct.index(k) for k in kind_list], np.float64).astype(N.float_dtype())
            fields = list(table.fields)
            if anchors is None:
                fields[2] = starts
            else:
                fields.append(anchors)
            columns += [*fields, ids]
            kind_lists.append(distinct)
        n_extra = len(base.extras)
        columns += list(base.extras)
        distinct = kind_lists[0]
        fn_kinds = [k for k in distinct if k.startswith(FN)]
        closed = [k for k in distinct if not k.startswith(FN)]
        switch = bool(fn_kinds) and jnp.ndim(c) == 0
        if switch:
            # The branch of each segment: 0 for the closed forms (if any), then one per function.
            branch = [fn_kinds.index(k) + bool(closed) if k in fn_kinds else 0 for k in kinds]
            columns.append(np.asarray(branch, np.float64).astype(N.float_dtype()))
        picked = _Selector(c, [b for _, b in plan], self.begins).pick(columns)
        origin, length, start, end, param, kind_id = picked[:6]
        n_layer_cols = 7 * len(self.layers)
        extra = picked[6 + n_layer_cols: 6 + n_layer_cols + n_extra]

        def closed_value() -> Any:
            clips = {k: _Clip.for_fields(base, kinds, k) for k in closed}
            by_kind = _kind_values(closed, c, origin, length, start, end, param, clips, extra)
            return _select_kind(by_kind, distinct, kind_id)

        # A function sees the count since its piece began, computed once for all of them; it is not negative
        # while the piece is active when every function piece begins at or after its origin.
        since = None
        if fn_kinds:
            fn_rows = [k for k, kind in enumerate(kinds) if kind.startswith(FN)]
            known = _concrete(base.origins, self.begins) and all(
                base.origins[k] <= self.begins[plan[k][1]] for k in fn_rows)
            since = N.sub(c, origin) if known else jnp.maximum(N.sub(c, origin), 0.0)

        def fn_value(k: str) -> Any:
            return self.fns[int(k[3:])](since)

        if switch:
            # Only the active piece is evaluated: one branch for the closed forms, one per function.
            groups = ([closed_value] if closed else []) + [lambda k=k: fn_value(k) for k in fn_kinds]
            branches = [lambda g=g: jnp.asarray(g(), N.float_dtype()) for g in groups]
            value = jax.lax.switch(jnp.asarray(picked[-1], jnp.int32), branches)
        elif not fn_kinds:
            value = closed_value()
        else:
            # The closed forms select among themselves; then one select per function.
            value = closed_value() if closed else fn_value(fn_kinds[0])
            for k in fn_kinds[0 if closed else 1:]:
                value = jnp.where(kind_id == distinct.index(k), fn_value(k), value)
        for j, layer in enumerate(self.layers):
            lo, ll, ls, le, lp, anchor, lid = picked[6 + 7 * j: 13 + 7 * j]
            d = kind_lists[1 + j]
            table, layer_kinds = layer.table.take(idx), [layer.table.kinds[i] for i in idx]
            moving = [k for k in d if k != ONE]
            clips = {k: _Clip.for_fields(table, layer_kinds, k) for k in moving}
            h = _select_kind({ONE: 1.0, **_kind_values(moving, c, lo, ll, ls, le, lp, clips)}, d, lid)
            value = _blend(value, anchor, h, layer)
        return value


class _Selector:
    """The active segment among a plan: a chain of selects (few segments) or an index and a gather (many)."""

    def __init__(self, c: jax.Array, begin_idx: list[int], begins: Any):
        self.c = c
        self.n = len(begin_idx)
        self.begin_idx = begin_idx
        self.begins = begins
        self._conds: dict[int, Any] = {}

    def _after(self, k: int) -> Any:
        if k not in self._conds:
            self._conds[k] = self.c >= _const(self.begins, self.begin_idx[k])
        return self._conds[k]

    def pick(self, columns: list[Any]) -> list[Any]:
        out: list[Any] = [None] * len(columns)
        varying = []
        for j, col in enumerate(columns):
            if _uniform(col) or self.n == 1:
                out[j] = _const(col, 0)
            else:
                varying.append(j)
        if not varying:
            return out
        if self.n <= _SELECT_MAX:
            for j in varying:
                col = columns[j]  # its elements stay typed (float32): a Python float would be weakly typed
                v = col[0]
                for k in range(1, self.n):
                    if not (isinstance(col, np.ndarray) and col[k] == col[k - 1]):
                        v = jnp.where(self._after(k), col[k], v)
                out[j] = v
            return out
        # The index of the last segment whose begin is <= c: how many of the later begins c has reached.
        begins = jnp.asarray(_take(self.begins, self.begin_idx[1:]))
        idx = jnp.sum(begins <= self.c[..., None], axis=-1, dtype=jnp.int32)
        xp = _xp(*(columns[j] for j in varying))
        table = xp.stack([xp.asarray(columns[j], dtype=N.float_dtype()) for j in varying], axis=-1)
        row = jnp.take(jnp.asarray(table), idx, axis=0, mode="clip")
        for col, j in enumerate(varying):
            out[j] = row[..., col]
        return out


def _select_kind(by_kind: dict[str, Any], distinct: list[str], kind_id: Any) -> Any:
    value = None
    for i, name in enumerate(distinct):
        if name not in by_kind:
            continue
        value = by_kind[name] if value is None else jnp.where(kind_id == i, by_kind[name], value)
    return value


class _Clip(NamedTuple):
    """What is known of a segment's use: which clips of the progress it needs, the smallest base of a power law
    it is used at, and whether its length is known positive and its parameter known non-zero (no guards)."""

    low: bool = True
    high: bool = True
    floor: Any = None
    positive_length: bool = False
    nonzero_param: bool = False

    @staticmethod
    def for_segment(origin: Any, length: Any, param: Any, start_at: Any, until: Any) -> _Clip:
        consts = N.is_const(origin) and N.is_const(start_at)
        positive = N.is_const(length) and length > 0
        # Used only from start_at on: no clip at 0 when the progress cannot be negative there (counts are >= 0).
        low = not (consts and origin <= max(start_at, 0.0))
        high = not (until is not None and positive and N.is_const(origin) and N.is_const(until)
                    and until <= origin + length)
        floor = 1.0 + (max(start_at, 0.0) - origin) / length if consts and positive else None
        return _Clip(low, high, floor, positive, N.is_const(param) and param != 0)

    @staticmethod
    def for_fields(table: Table, kinds: Sequence[str], kind: str) -> _Clip:
        """The guards a kind needs when its fields are selected among the segments of ``table`` with that kind."""
        idx = [i for i, k in enumerate(kinds) if k == kind]
        positive = isinstance(table.lengths, np.ndarray) and bool(np.all(table.lengths[idx] > 0))
        nonzero = isinstance(table.params, np.ndarray) and bool(np.all(table.params[idx] != 0))
        return _Clip(True, True, None, positive, nonzero)


def _kind_value(kind: str, c: Any, origin: Any, length: Any, start: Any, end: Any, param: Any, clip: _Clip,
                extra: Sequence[Any] = ()) -> Any:
    """The value of one closed-form kind at count ``c`` (see the module docstring)."""
    return _kind_values([kind], c, origin, length, start, end, param, {kind: clip}, extra)[kind]


def _kind_values(kinds: Sequence[str], c: Any, origin: Any, length: Any, start: Any, end: Any, param: Any,
                 clips: dict[str, _Clip], extra: Sequence[Any] = ()) -> dict[str, Any]:
    """The value of each kind on the same fields; the count and the progress are computed once for all."""
    out: dict[str, Any] = {}
    t: Any = N.sub(c, origin)  # unused (and not emitted) when every kind is a constant
    bounded = [k for k in kinds if k in _shapes.SHAPES]
    p = has_length = None
    if bounded == ["cosine"] and clips["cosine"].positive_length and N.is_const(length):
        # The half cosine alone: its angle pi * t / L in one product, clipped to [0, pi] (cos(pi) is exactly -1).
        clip = clips["cosine"]
        angle = t * (np.pi / length)
        if clip.low:
            angle = jnp.maximum(angle, 0.0)
        if clip.high:
            angle = jnp.minimum(angle, N.float_dtype().type(np.pi))
        out["cosine"] = _shapes.cosine_at(angle, start, end, param)
        bounded = []
    if bounded:
        positive = all(clips[k].positive_length for k in bounded)
        high = any(clips[k].high for k in bounded)
        if positive:
            p = t / length
            if any(clips[k].low for k in bounded):
                p = jnp.maximum(p, 0.0)
            if high:
                p = jnp.minimum(p, 1.0)
        else:
            has_length = length > 0
            p = jnp.where(has_length, jnp.minimum(jnp.maximum(t / jnp.where(has_length, length, 1.0), 0.0), 1.0), 1.0)
    for k in kinds:
        clip = clips[k]
        if k in out:
            continue
        if k == CONST:
            out[k] = start
        elif k == POWER:
            out[k] = _power(t, length, start, end, param, clip.floor)
        elif k == SATURATE:
            out[k] = _saturate(t, length, start, end, clip.positive_length)
        elif k in (EXP, EXP_STAIRS):
            # t < 0 only where the segment is not used; it is clamped for the gradients of traced fields there.
            concrete = all(N.is_const(x) for x in (length, start, param))
            out[k] = _exp(t if concrete and not clip.low else jnp.maximum(t, 0.0), length, start, end, param,
                          stairs=k == EXP_STAIRS)
        elif k.startswith(RESTARTS):
            out[k] = _restarts(t, length, start, end, param, extra, k.split(":")[1])
        elif k == RADAM:
            out[k] = _radam(t, start, end, param)
        else:
            value = _shapes.SHAPES[k](p, start, end, param)
            if has_length is not None and not clip.nonzero_param:
                # A zero-length phase is over, so it gives its end value: with exponent 0 the cosine and
                # polynomial_decay shapes hold their start even at p = 1 (0**0 = 1).
                value = jnp.where(has_length, value, end)
            out[k] = value
    return out


def _power(t: Any, scale: Any, start: Any, cap: Any, k: Any, floor: Any) -> Any:
    """``min(cap, start * (1 + t / scale)**-k)``; ``1 + t / scale`` at least ``floor`` (at the segment's begin)."""
    p = 1.0 + t / scale
    if N.is_const(floor) and floor >= 1.0 and N.is_const(k) and k == 0.5:
        factor = jax.lax.rsqrt(jnp.maximum(p, floor))  # rsqrt and Noam: one operation, exact at the begin
    else:
        tiny = float(np.finfo(N.float_dtype()).tiny)
        low = tiny if not N.is_const(floor) else max(floor, tiny)
        factor = jnp.exp(jnp.minimum(-k * jnp.log(jnp.maximum(p, low)), _LOG_MAX_FACTOR))
    value = N.mul(start, factor)
    if N.is_const(cap) and cap >= V._MAX_VALUE and N.is_const(floor) and floor > 0:
        return value  # no cap, and a base that stays positive (rsqrt, Noam)
    # At a base of 0 the law is infinite: the cap, exactly (the factor itself is clipped to stay finite).
    return jnp.where(p > 0, jnp.minimum(value, cap), cap)


def _saturate(t: Any, scale: Any, start: Any, end: Any, positive: bool) -> Any:
    """``start + (end - start) (1 - exp(-t / scale))``, from ``start`` at ``t <= 0`` towards ``end``."""
    if positive:
        g = -jnp.expm1(-jnp.maximum(t, 0.0) / scale)
    else:
        ok = scale > 0
        g = jnp.where(ok, -jnp.expm1(-jnp.maximum(t, 0.0) / jnp.where(ok, scale, 1.0)), 1.0)
    return _shapes.lerp(start, end, g)


def _exp(t: Any, scale: Any, start: Any, bound: Any, log_rate: Any, *, stairs: bool) -> Any:
    """``start * exp(log_rate * t / scale)`` for ``t >= 0``, bounded by ``bound`` (floor if decaying, else ceiling)."""
    p = t / scale
    if stairs:
        p = jnp.floor(p)
    value = N.mul(start, jnp.exp(p * log_rate))
    if not (N.is_const(log_rate) and log_rate <= 0):
        # Growth can overflow to inf (and 0 * inf to NaN): clamp before the bound, which would keep a NaN.
        value = V.sanitize_value(jnp, value)
    if N.is_const(log_rate):
        if (bound <= -V._MAX_VALUE if log_rate < 0 else bound >= V._MAX_VALUE) if N.is_const(bound) else False:
            return value  # no bound given: the value is within +-1e30 already
        return jnp.maximum(value, bound) if log_rate < 0 else jnp.minimum(value, bound)
    return jnp.where(log_rate < 0, jnp.maximum(value, bound), jnp.minimum(value, bound))


def _cycle_index(c: Any, first: Any, mult: Any) -> tuple[Any, Any, Any]:
    """Index, start and length of the cycle holding ``c >= 0``; cycle ``i`` lasts ``first * mult**i`` steps."""
    growing = mult > 1.0
    m = jnp.where(growing, mult, 2.0)
    i_geo = jnp.floor(jnp.log1p(c * (m - 1.0) / first) / jnp.log(m))
    i = jnp.where(growing, i_geo, jnp.floor(c / first))

    def start(j: Any) -> Any:
        return jnp.where(growing, first * jnp.expm1(j * jnp.log(m)) / (m - 1.0), first * j)

    # One correction step each way absorbs the rounding of the logarithms at cycle boundaries.
    i = jnp.where(c < start(i), i - 1.0, i)
    i = jnp.where(c >= start(i + 1.0), i + 1.0, i)
    i = jnp.maximum(i, 0.0)
    return i, start(i), start(i + 1.0) - start(i)


def _restarts(t: Any, first: Any, init: Any, end: Any, k: Any, extra: Sequence[Any], shape: str) -> Any:
    """Cosine cycles that warm up again: cycle ``i`` lasts ``first * mult**i``, peaks at ``peak * decay**i``,
    ramps from ``init`` over ``min(W, L_i)`` (``shape``, exponent ``k``) and then decays to ``end``; from cycle
    ``limit`` on, ``end``. ``extra = (peak, W, mult, decay, limit)``."""
    peak0, w0, mult, decay, limit = extra
    c = jnp.maximum(t, 0.0)
    i, begin, length = _cycle_index(c, first, mult)
    t = c - begin
    peak = V.sanitize_value(jnp, peak0 * jnp.power(decay, i))
    w = jnp.minimum(w0, length)
    decay_len = length - w
    p_decay = jnp.where(decay_len > 0, jnp.clip((t - w) / jnp.where(decay_len > 0, decay_len, 1.0), 0, 1), 1.0)
    cosine = _shapes.cosine(p_decay, peak, end, 1.0)
    if shape == "exponential":
        factor = jnp.where(w > 0, -jnp.expm1(-t / jnp.where(w > 0, w / 2.0, 1.0)), 1.0)
        value = init + (jnp.where(t < w, peak, cosine) - init) * factor
    else:
        p_ramp = jnp.clip(t / jnp.where(w > 0, w, 1.0), 0.0, 1.0)
        value = jnp.where(t < w, _shapes.SHAPES[shape](p_ramp, init, peak, k), cosine)
    if not (N.is_const(limit) and limit >= V._MAX_LENGTH):
        value = jnp.where(i >= limit, end, value)
    return value


def _rho(t: Any, log_b2: Any, rho_inf: Any) -> Any:
    """``rho_t`` without the cancellation of ``rho_inf - 2 t b2^t / (1 - b2^t)`` at small ``x = t L``.

    With ``L = -log(b2)`` and ``C(x) = x / expm1(x) - 1 + x / 2 = x^2/12 - x^4/720 + ...`` (even), the exact
    identity ``rho_t = t - (2 / L) (C(t L) - C(L))`` holds; its series is accurate for ``x < 1``, where the
    textbook form loses digits. For ``x >= 1`` the textbook form is accurate and the identity is not.
    """

    def series(x: Any) -> Any:
        x2 = x * x
        return x2 * (1 / 12 + x2 * (-1 / 720 + x2 * (1 / 30240 + x2 * (-1 / 1209600 + x2 / 47900160))))

    x = t * log_b2
    small = x < 1.0
    x_small = jnp.where(small, x, 0.0)
    x_large = jnp.where(small, 1.0, x)
    near = t - (2.0 / log_b2) * (series(x_small) - series(jnp.minimum(log_b2, 1.0)))
    far = rho_inf - 2.0 * t / jnp.expm1(x_large)
    return jnp.where(small, near, far)


def _radam(t: Any, rho_inf: Any, limit: Any, log_b2: Any) -> Any:
    """RAdam's rectification ``r_t`` at step ``t`` (``log_b2 = -log(b2)``; 0 while ``rho_t < limit``)."""
    t = jnp.maximum(t, 1.0)
    rho_t = _rho(t, log_b2, rho_inf)
    valid = (rho_t >= limit) & (rho_inf > limit)
    rho_safe = jnp.where(valid, rho_t, 5.0)
    inf_safe = jnp.where(valid, rho_inf, 5.0)
    ratio = (rho_safe - 4.0) * (rho_safe - 2.0) * inf_safe / ((inf_safe - 4.0) * (inf_safe - 2.0) * rho_safe)
    r = jnp.minimum(jnp.sqrt(jnp.maximum(ratio, 0.0)), 1.0)
    return jnp.where(valid, r, 0.0)


def _blend(value: Any, anchor: Any, h: Any, layer: Layer) -> Any:
    """``anchor + (value - anchor) h``, clamped when the factor may leave [0, 1] (a huge factor times a value)."""
    out = N.add(anchor, N.mul(N.sub(value, anchor), h))
    t = layer.table
    if _concrete(t.starts, t.ends, layer.anchors) and np.all((t.starts >= 0) & (t.starts <= 1) & (t.ends >= 0)
                                                             & (t.ends <= 1)):
        return out
    return V.sanitize_value(jnp, out)


def _apply_layer(c: Any, value: Any, layer: Layer, i: int) -> Any:
    t = layer.table
    kind = t.kinds[i]
    if kind == ONE:
        return value
    origin, length, start, end, param = (_const(a, i) for a in t.fields)
    h = _kind_value(kind, c, origin, length, start, end, param, _Clip.for_segment(origin, length, param, 0.0, None))
    return _blend(value, _const(layer.anchors, i), h, layer)


# --- builders (arguments already checked and clamped) ---------------------------------------------------------------


def from_segments(segments: Sequence[Segment]) -> PhaseSchedule:
    """A schedule from segments whose numbers are already clamped (``length > 0`` for the tails)."""
    fns: list[Callable] = []
    kinds = []
    for s in segments:
        if s.kind == FN:
            if s.fn is None:
                raise ValueError("a 'fn' segment needs its function")
            kinds.append(f"{FN}:{len(fns)}")
            fns.append(s.fn)
        else:
            kinds.append(s.kind)
    cols = [_stack([getattr(s, name) for s in segments])
            for name in ("begin", "origin", "length", "start", "end", "param")]
    n_extra = max(len(s.extra) for s in segments)
    extras = tuple(_stack([s.extra[j] if j < len(s.extra) else 0.0 for s in segments]) for j in range(n_extra))
    return PhaseSchedule(cols[0], Table.of(cols[1:], kinds, extras), fns)


def from_function(fn: Callable) -> PhaseSchedule:
    """Any ``count -> value`` function as a one-segment schedule (it sees the count unchanged)."""
    return from_segments([Segment(0.0, 0.0, 1.0, 0.0, 0.0, FN, 1.0, fn)])


def from_phases(phases: Sequence[Phase]) -> PhaseSchedule:
    """Phases (already clamped) run one after the other from count 0."""
    col = {f: _stack([getattr(ph, f) for ph in phases]) for f in ("length", "start", "end", "param")}
    return from_columns(col["length"], col["start"], col["end"], col["param"], [ph.shape for ph in phases])


def from_columns(lengths: Any, starts: Any, ends: Any, params: Any, shapes: Sequence[str]) -> PhaseSchedule:
    """Phases given as columns (arrays of one entry per phase, already clamped), run one after the other."""
    shapes = list(shapes)
    if _concrete(lengths, starts, ends, params):
        # A zero-length phase is never selected unless it is the last one (whose end value is then held):
        # dropping it at construction keeps the compiled program small.
        keep = [i for i in range(len(shapes) - 1) if lengths[i] > 0] + [len(shapes) - 1]
        lengths, starts, ends, params = (a[np.asarray(keep)] for a in (lengths, starts, ends, params))
        shapes = [shapes[i] for i in keep]
    xp = _xp(lengths, starts, ends, params)
    lengths, starts, ends, params = (xp.asarray(a, N.float_dtype()) for a in (lengths, starts, ends, params))
    begins = xp.concatenate([xp.zeros((1,), lengths.dtype), xp.cumsum(lengths)[:-1]])
    return PhaseSchedule(begins, Table.of([begins, lengths, starts, ends, params], shapes))


def overlay(schedule: PhaseSchedule, anchor: Any, kind: str, origin: Any, length: Any, start: Any, end: Any,
            param: Any = 1.0) -> PhaseSchedule:
    """``schedule`` under one more layer, the same factor for every segment: ``anchor + (v - anchor) h(c)``."""
    n = len(schedule)
    cols = [_stack([x] * n) for x in (anchor, origin, length, start, end, param)]
    layer = Layer(cols[0], Table.of(cols[1:], (kind,) * n))
    return PhaseSchedule(schedule.begins, schedule.base, schedule.fns, (*schedule.layers, layer))


def _concat(arrays: Sequence[Any]) -> Any:
    xp = _xp(*arrays)
    return xp.concatenate([xp.asarray(a, dtype=N.float_dtype()) for a in arrays])


def join(pieces: Sequence[PhaseSchedule], boundaries: Sequence[Any]) -> PhaseSchedule:
    """``join_schedules`` of phase schedules: one segment list, so the program does not grow per piece.

    Piece ``i`` applies on ``[b_{i-1}, b_i)`` and sees ``count - b_{i-1}``; its segments (and layers) are shifted
    by ``b_{i-1}`` and their take-over counts clipped into its interval, so a piece cut short by the next boundary
    keeps its shape and a piece that ends early holds its end value. ``boundaries`` must already be clamped
    (non-negative, non-decreasing).
    """
    depth = max(len(p.layers) for p in pieces)
    n_extra = max(len(p.base.extras) for p in pieces)
    begins: list[Any] = []
    fields: list[list[Any]] = [[] for _ in range(5 + n_extra)]
    kinds: list[str] = []
    fns: list[Callable] = []
    layer_cols: list[list[list[Any]]] = [[[] for _ in range(6)] for _ in range(depth)]
    layer_kinds: list[list[str]] = [[] for _ in range(depth)]
    for i, piece in enumerate(pieces):
        lo = boundaries[i - 1] if i > 0 else 0.0
        xp = V.xp_for(lo, *(boundaries[i:i + 1]))
        xp = jnp if xp is jnp or not _concrete(piece.begins) else np
        b = xp.maximum(xp.asarray(piece.begins) + lo, lo)
        if i < len(boundaries):
            b = xp.minimum(b, boundaries[i])
        begins.append(b)
        t = piece.base
        n = len(piece)
        extras = [t.extras[j] if j < len(t.extras) else np.zeros(n, N.float_dtype()) for j in range(n_extra)]
        for col, a in zip(fields, (t.origins + lo, t.lengths, t.starts, t.ends, t.params, *extras), strict=True):
            col.append(a)
        kinds += [f"{FN}:{int(k[3:]) + len(fns)}" if k.startswith(FN) else k for k in t.kinds]
        fns += piece.fns
        for d in range(depth):
            if d < len(piece.layers):
                layer = piece.layers[d]
                lt = layer.table
                parts: tuple[Any, ...] = (layer.anchors, lt.origins + lo, lt.lengths, lt.starts, lt.ends, lt.params)
                layer_kinds[d] += list(lt.kinds)
            else:
                parts = tuple(np.zeros(n, N.float_dtype()) for _ in range(6))
                layer_kinds[d] += [ONE] * n
            for col, a in zip(layer_cols[d], parts, strict=True):
                col.append(a)
    layers = [Layer(_concat(cols[0]), Table.of([_concat(c) for c in cols[1:]], layer_kinds[d]))
              for d, cols in enumerate(layer_cols)]
    base = Table.of([_concat(col) for col in fields[:5]], kinds, [_concat(col) for col in fields[5:]])
    return PhaseSchedule(_concat(begins), base, fns, layers)


def shift(schedule: PhaseSchedule, by: Any) -> PhaseSchedule:
    """``count -> schedule(count - by)``: every segment and layer moved ``by`` counts later (earlier if negative)."""
    t = schedule.base
    layers = [Layer(layer.anchors, layer.table.shifted(by)) for layer in schedule.layers]
    return PhaseSchedule(schedule.begins + by, t.shifted(by), schedule.fns, layers)


# --- the public builder -------------------------------------------------------------------------------------------


def phase_schedule(phases: Sequence[Phase]) -> PhaseSchedule:
    r"""Builds a schedule from a list of phases, run one after the other from count 0.

    .. math::
      v(c) = \mathrm{shape}_i\big(\tfrac{c - b_i}{L_i}\big) \text{ for } b_i \le c < b_i + L_i,
      \quad b_i = \textstyle\sum_{j<i} L_j

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      phases: ``Phase(length, start, end, shape="linear", param=1.0)`` tuples; every number may be traced.

    Returns:
      A ``PhaseSchedule``; after the last phase it holds the last ``end``.

    Example:
      >>> import optax_warmup as ow
      >>> s = ow.phase_schedule([ow.Phase(10, 0.0, 1.0), ow.Phase(90, 1.0, 0.1, "cosine")])
      >>> float(s(5)), float(s(10)), round(float(s(100)), 6)
      (0.5, 1.0, 0.1)
    """
    phases = [Phase(*p) if not isinstance(p, Phase) else p for p in phases]
    if not phases:
        raise ValueError("phases must hold at least one Phase, got an empty list")
    for i, ph in enumerate(phases):
        V.check_choice(f"phases[{i}].shape", ph.shape, tuple(_shapes.SHAPES))
        V.check_nonnegative(f"phases[{i}].length", ph.length)
        V.check_finite(f"phases[{i}].start", ph.start)
        V.check_finite(f"phases[{i}].end", ph.end)
        V.check_nonnegative(f"phases[{i}].param", ph.param)
    # Clamped as columns: one operation per field whatever the number of phases, when they are traced.
    xp = V.xp_for(*(x for ph in phases for x in (ph.length, ph.start, ph.end, ph.param)))
    column = {f: N.stack(xp, [getattr(ph, f) for ph in phases]) for f in ("length", "start", "end", "param")}
    return from_columns(V.sanitize_length(xp, column["length"]), V.sanitize_value(xp, column["start"]),
                        V.sanitize_value(xp, column["end"]), V.sanitize_exponent(xp, column["param"]),
                        [ph.shape for ph in phases])
