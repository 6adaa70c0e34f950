"""Token-based schedules: a batch-size ramp by token thresholds (Megatron's ``"0:768 250B:1536"``), the tokens seen
under it, and any schedule expressed in tokens."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optax_warmup import _duration, _phases
from optax_warmup import _numeric as N
from optax_warmup import _validate as V
from optax_warmup._phases import PhaseSchedule

ArrayLike = jax.typing.ArrayLike

SUFFIXES = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
_INT32_MAX = 2.0**31 - 1


def _parse_number(entry: str, text: str) -> int:
    token = text.strip().upper()
    scale = SUFFIXES.get(token[-1:], 1.0)
    digits = token[:-1] if token[-1:] in SUFFIXES else token
    try:
        value = float(digits) * scale
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"schedule entry {entry!r}: {text!r} is not a number >= 0 (digits with an optional K, M, B or T suffix)"
        )
    return int(value)


def parse_batch_size_schedule(text: str) -> list[tuple[int, int]]:
    """Parses Megatron's ``--step-batch-size-schedule`` text into ``[(threshold, batch_size), ...]``.

    Entries ``THRESHOLD:BATCH_SIZE`` are separated by spaces or commas; both numbers take an optional ``K``
    (1e3), ``M`` (1e6), ``B`` (1e9) or ``T`` (1e12) suffix, in either case, and may have a decimal part
    (``1.5B``), truncated to a whole number after scaling, as in Megatron. The pairs come back sorted by
    threshold; ``batch_size_ramp`` checks them (first threshold 0, strictly increasing, batch sizes >= 1).

    Args:
      text: the schedule, e.g. ``"0:768 250B:1536"``.

    Example:
      >>> import optax_warmup as ow
      >>> ow.parse_batch_size_schedule("0:768 250B:1536, 500b:3k")
      [(0, 768), (250000000000, 1536), (500000000000, 3000)]

    References:
      Megatron-LM ``num_microbatches_calculator.StepBatchsizeNumMicroBatchesCalculator`` (PRs #3779, #4411).
    """
    if not isinstance(text, str):
        raise TypeError(f"schedule text must be a string like '0:768 250B:1536', got {type(text).__name__}")
    entries = text.replace(",", " ").split()
    if not entries:
        raise ValueError(f"schedule text holds no THRESHOLD:BATCH_SIZE entry, got {text!r}")
    pairs = []
    for entry in entries:
        if entry.count(":") != 1:
            raise ValueError(f"schedule entry {entry!r} is not THRESHOLD:BATCH_SIZE (as in '250B:1536')")
        threshold, batch = entry.split(":")
        pairs.append((_parse_number(entry, threshold), _parse_number(entry, batch)))
    return sorted(pairs, key=lambda pair: pair[0])


def _sanitize_batch(x):
    x = jnp.asarray(x, V.float_dtype())
    return jnp.clip(jnp.nan_to_num(x, nan=1.0, posinf=_INT32_MAX), 1.0, _INT32_MAX)


def _pairs(schedule: Any) -> list[tuple[Any, Any]]:
    if isinstance(schedule, str):
        return parse_batch_size_schedule(schedule)
    if isinstance(schedule, Mapping) or not isinstance(schedule, Sequence) or not schedule:
        raise ValueError(
            "schedule must be Megatron's text ('0:768 250B:1536') or a non-empty list of (threshold, batch_size) "
            f"pairs, got {schedule!r}"
        )
    pairs = []
    for i, pair in enumerate(schedule):
        if isinstance(pair, str | Mapping) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f"schedule[{i}] must be a (threshold, batch_size) pair, got {pair!r}")
        pairs.append(tuple(pair))
    return pairs


class BatchSizeRamp:
    """A step-wise batch-size ramp by thresholds (Megatron's): built by ``batch_size_ramp``.

    Called with MultiSteps' ``gradient_step`` it returns the micro-batches of that update (an
    ``every_k_schedule``); ``batch_size``, ``samples_seen``, ``tokens_seen`` and ``steps_for_tokens`` give the
    rest. Stage ``i`` holds ``begins[i]`` (the first update with batch ``batch_sizes[i]``), ``consumed[i]`` and
    ``samples[i]`` (the threshold unit, tokens or samples, and the samples consumed before it) and
    ``per_update[i]`` (the threshold unit consumed by one update).
    """

    def __init__(self, begins, consumed, samples, batch_sizes, per_update, seq_len, micro_batch_size):
        self.begins, self.consumed, self.samples = begins, consumed, samples
        self.batch_sizes, self.per_update = batch_sizes, per_update
        self.seq_len, self.micro_batch_size = seq_len, micro_batch_size

    def __len__(self) -> int:
        return len(self.batch_sizes)

    def _stage(self, count):
        """The stage of each count and the count itself (float, negative counts clamped to 0)."""
        c = V.as_count(count)
        begins = jnp.asarray(self.begins, V.float_dtype())
        idx = jnp.clip(jnp.sum(begins <= c[..., None], axis=-1) - 1, 0, len(self) - 1)
        return idx, c

    def _field(self, values, idx):
        return jnp.take(jnp.asarray(values, V.float_dtype()), idx, mode="clip")

    def batch_size(self, count) -> jax.Array:
        """Samples per update at update ``count`` (0-based)."""
        idx, _ = self._stage(count)
        return self._field(self.batch_sizes, idx)

    def _seen(self, count, at_begin, per_update) -> jax.Array:
        idx, c = self._stage(count)
        done = (c - self._field(self.begins, idx)) * self._field(per_update, idx)
        return V.sanitize_length(jnp, self._field(at_begin, idx) + done)

    def consumed_before(self, count) -> jax.Array:
        """What updates ``0 .. count - 1`` consumed, in the thresholds' unit (tokens with ``seq_len``)."""
        return self._seen(count, self.consumed, self.per_update)

    def samples_seen(self, count) -> jax.Array:
        """Samples consumed by updates ``0 .. count - 1``."""
        return self._seen(count, self.samples, self.batch_sizes)

    def tokens_seen(self, count) -> jax.Array:
        """Tokens consumed by updates ``0 .. count - 1`` (needs ``seq_len``)."""
        if self.seq_len is None:
            raise ValueError("tokens_seen needs the ramp's seq_len: build it with batch_size_ramp(..., seq_len=...)")
        return self.consumed_before(count)

    def steps_for_tokens(self, tokens: ArrayLike) -> Any:
        """The first update count at which at least ``tokens`` tokens (samples without ``seq_len``) are consumed.

        A duration in tokens turned into steps under the ramp: with one stage it is ``duration_steps({"tokens":
        n}, units={"batch_size": B, "seq_len": L})``, and each stage rounds up the same way.
        """
        v = V.concrete("tokens", tokens)
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise ValueError(f"tokens must be a finite number >= 0, got {tokens!r}")
        unit = "examples" if self.seq_len is None else "tokens"
        units = {"batch_size": None, "seq_len": self.seq_len}
        steps = []
        for i in range(len(self)):
            rest = tokens - self.consumed[i]
            rest = max(rest, 0.0) if not V.any_traced(rest) else jnp.maximum(rest, 0.0)
            units["batch_size"] = self.batch_sizes[i]
            steps.append(self.begins[i] + _duration.duration_steps({unit: rest}, name="tokens", units=units))
        xp = V.xp_for(tokens, *steps, *self.consumed)
        if xp is np:
            last = max([i for i in range(len(self)) if self.consumed[i] < v] or [0])
            return int(steps[last])
        value = steps[0]
        for i in range(1, len(self)):
            value = jnp.where(tokens > self.consumed[i], steps[i], value)
        return value

    def __call__(self, gradient_step) -> jax.Array:
        """Micro-batches of update ``gradient_step``: ``batch_size // micro_batch_size`` (int32, at least 1)."""
        k = jnp.floor(self.batch_size(gradient_step) / self.micro_batch_size + 1e-6)
        return jnp.clip(k, 1.0, _INT32_MAX).astype(jnp.int32)


def _int_arg(name: str, x: Any, minimum: int) -> int:
    if isinstance(x, bool) or V.is_traced(x):
        raise ValueError(f"{name} must be a whole number >= {minimum} (it sets the number of stages), got {x!r}")
    try:
        v = float(x)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and v == int(v) and v >= minimum):
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {x!r}")
    return int(v)


def megatron_rampup_pairs(rampup: Any, global_batch_size: Any) -> list[tuple[int, int]]:
    """Megatron's ``--rampup-batch-size <start> <increment> <ramp-up samples>`` as ``(samples, batch)`` pairs.

    Megatron sets the batch before each iteration from the samples consumed so far, ``c``: the global batch size
    once ``c > R``, else ``start + increment * int(c / (R / n))`` with ``n = (global - start) / increment``
    increments. Each pair is the first ``c`` at which a batch size starts, found with the same float division.
    """
    if isinstance(rampup, str):
        words = rampup.replace("--rampup-batch-size", " ").replace("=", " ").split()
    elif isinstance(rampup, Sequence):
        words = list(rampup)
    else:
        words = []
    if len(words) != 3:
        raise ValueError(
            "rampup must be Megatron's three numbers <start batch size> <batch size increment> <ramp-up samples>, "
            f"as a sequence or the command-line text ('32 32 1953125'), got {rampup!r}"
        )
    start = _int_arg("rampup start batch size", words[0], 1)
    increment = _int_arg("rampup batch size increment", words[1], 1)
    samples = _int_arg("rampup samples", words[2], 1)
    total = _int_arg("global_batch_size", global_batch_size, 1)
    if total <= start or (total - start) % increment:
        raise ValueError(
            f"global_batch_size ({total}) minus the start batch size ({start}) must be a positive multiple of the "
            f"increment ({increment}), as Megatron asserts (equal sizes make Megatron divide by zero)"
        )
    per_increment = samples / ((total - start) // increment)

    def batch_at(c: int) -> int:  # Megatron's update(consumed_samples)
        return total if c > samples else start + int(c / per_increment) * increment

    pairs = {0: batch_at(0)}
    for j in range(1, (total - start) // increment + 1):
        c = max(1, math.ceil(j * per_increment) - 1)
        while batch_at(c) < start + j * increment:
            c += 1
        while c > 1 and batch_at(c - 1) >= start + j * increment:
            c -= 1
        pairs[c] = max(pairs.get(c, 0), batch_at(c))
    return sorted(pairs.items())


def batch_size_ramp(
    schedule: str | Sequence[tuple[ArrayLike, ArrayLike]] | None = None,
    seq_len: ArrayLike | None = None,
    micro_batch_size: ArrayLike = 1,
    *,
    rampup: str | Sequence[int] | None = None,
    global_batch_size: int | None = None,
) -> BatchSizeRamp:
    r"""A step-wise batch-size ramp by consumed tokens (or samples), as Megatron's ``--step-batch-size-schedule``.

    ``schedule`` is Megatron's text (``"0:768 250B:1536 500B:3072"``, see ``parse_batch_size_schedule``) or a
    list of ``(threshold, batch_size)`` pairs: batch sizes in samples, thresholds in tokens when ``seq_len`` is
    given (else in samples). Update ``t`` (0-based) uses the batch of the last threshold not above what updates
    ``0 .. t-1`` consumed. So stage ``i`` starts at update ``g_i`` having consumed ``c_i``, and

    .. math::
      g_{i+1} = g_i + n_i,\quad c_{i+1} = c_i + n_i q_i,\quad
      n_i = \left\lceil \frac{\max(T_{i+1} - c_i,\ 0)}{q_i} \right\rceil,\qquad
      \mathrm{seen}(t) = c_i + (t - g_i)\, q_i \ \ (g_i \le t < g_{i+1})

    with ``q_i = B_i L`` consumed per update (``L = seq_len``, 1 for samples); ``n_i`` is the duration
    ``{"tokens": T_{i+1} - c_i}`` at batch ``B_i`` of ``optax_warmup._duration``, rounded up. A large batch can
    overshoot a threshold, so a stage may get no update at all (as in Megatron).

    The ramp is the ``every_k_schedule`` of ``optax.MultiSteps`` (micro-batches per update, ``B_i //
    micro_batch_size``), and its ``tokens_seen(count)`` turns any schedule written in tokens into one in updates
    (``schedule_in_tokens``). Inside ``MultiSteps`` the wrapped optimizer counts real updates, which is the count
    the ramp takes.

    **Megatron's classic ramp**, ``--rampup-batch-size <start> <increment> <ramp-up samples>`` with
    ``--global-batch-size G``: give ``rampup=(start, increment, samples)`` (or the command-line text
    ``"32 32 1953125"``) and ``global_batch_size=G`` instead of ``schedule``. The batch before each update is
    Megatron's, ``G`` once more than ``samples`` samples are consumed, else ``start + increment * int(c /
    (samples / n))`` with ``c`` the samples consumed and ``n = (G - start) / increment``; the thresholds are
    those ``c`` (in samples, times ``seq_len`` if given), so ``batch_size`` and ``samples_seen`` are Megatron's
    global batch size and consumed samples at every iteration.

    Differences from Megatron's step schedule: Megatron floors each token threshold to whole samples first
    (``threshold // seq_length``), so it can switch up to one sample earlier; here a stage starts once at least
    ``T_i`` tokens are consumed. Megatron's runtime divisibility check is a ``ValueError`` here, at construction.

    Args:
      schedule: the text or the pairs; the first threshold must be 0, thresholds strictly increasing, batch sizes
        ``>= 1``. Numbers in the pairs may be traced.
      seq_len: tokens per sample (``>= 1``), or ``None`` for thresholds in samples.
      micro_batch_size: samples per ``MultiSteps`` micro-step; must divide every batch size.
      rampup: Megatron's ``--rampup-batch-size`` numbers (whole numbers, ``start >= 1``, ``increment >= 1``,
        ``samples >= 1``), instead of ``schedule``.
      global_batch_size: Megatron's ``--global-batch-size``, the batch after the ramp; with ``rampup`` only.

    Returns:
      A ``BatchSizeRamp``.

    Example:
      >>> import optax, optax_warmup as ow
      >>> ramp = ow.batch_size_ramp("0:8 1K:16 3K:32", seq_len=64, micro_batch_size=8)
      >>> [int(ramp(t)) for t in (0, 1, 2, 3, 4)]
      [1, 1, 2, 2, 4]
      >>> [float(ramp.tokens_seen(t)) for t in (1, 2, 4)]
      [512.0, 1024.0, 3072.0]
      >>> ramp.steps_for_tokens(5000)
      5
      >>> tx = optax.MultiSteps(optax.adam(1e-3), every_k_schedule=ramp)
      >>> classic = ow.batch_size_ramp(rampup="16 16 100", global_batch_size=64)  # Megatron's
      >>> [int(classic.batch_size(t)) for t in range(7)], int(classic.samples_seen(7))
      ([16, 16, 16, 32, 48, 64, 64], 256)

    References:
      Megatron-LM PRs #3779 / #4411 (``StepBatchsizeNumMicroBatchesCalculator``); Brown et al., "Language Models
      are Few-Shot Learners" (2020), for batch-size ramps by tokens.
    """
    if rampup is not None or global_batch_size is not None:
        if schedule is not None:
            raise ValueError("give either schedule or rampup (with global_batch_size), not both")
        if rampup is None or global_batch_size is None:
            raise ValueError("Megatron's ramp needs both rampup=(start, increment, samples) and global_batch_size")
        sample_pairs = megatron_rampup_pairs(rampup, global_batch_size)
        v = V.concrete("seq_len", seq_len) if seq_len is not None else None
        if seq_len is not None and v is None:
            raise ValueError("with rampup, seq_len must be concrete (it scales the sample thresholds)")
        schedule = sample_pairs if seq_len is None else [(c * v, b) for c, b in sample_pairs]  # type: ignore[operator]
    if schedule is None:
        raise ValueError("batch_size_ramp needs schedule ('0:768 250B:1536' or pairs) or rampup + global_batch_size")
    pairs = _pairs(schedule)
    if seq_len is not None:
        v = V.concrete("seq_len", seq_len)
        if v is not None and not (math.isfinite(v) and v >= 1):
            raise ValueError(f"seq_len must be a number >= 1 (tokens per sample) or None, got {seq_len!r}")
    micro = V.concrete("micro_batch_size", micro_batch_size)
    if micro is not None and not (math.isfinite(micro) and micro >= 1):
        raise ValueError(f"micro_batch_size must be a number >= 1, got {micro_batch_size!r}")
    for i, (threshold, batch) in enumerate(pairs):
        V.check_nonnegative(f"schedule[{i}] threshold", threshold)
        b = V.concrete(f"schedule[{i}] batch size", batch)
        if b is not None and not (math.isfinite(b) and b >= 1):
            raise ValueError(f"schedule[{i}] batch size must be a number >= 1, got {batch!r}")
        if b is not None and micro is not None and b % micro != 0:
            raise ValueError(f"schedule[{i}] batch size {batch!r} is not a multiple of micro_batch_size {micro!r}")
        if i == 0:
            t = V.concrete("schedule[0] threshold", threshold)
            if t is not None and t != 0:
                raise ValueError(f"schedule[0] threshold must be 0 (the batch size to start with), got {threshold!r}")
        else:
            V.check_at_least(
                f"schedule[{i}] threshold", threshold, f"schedule[{i - 1}] threshold", pairs[i - 1][0], strict=True
            )

    numbers = [x for pair in pairs for x in pair] + [x for x in (seq_len, micro_batch_size) if x is not None]
    traced = V.any_traced(*numbers)
    length: Any
    thresholds: Any
    batches: Any
    if traced:
        length = 1.0 if seq_len is None else jnp.maximum(V.sanitize_length(jnp, seq_len), 1.0)
        micro_batch_size = _sanitize_batch(micro_batch_size)
        thresholds = jax.lax.cummax(V.sanitize_length(jnp, N.stack(jnp, [t for t, _ in pairs])))
        thresholds = [thresholds[i] * (i > 0) for i in range(len(pairs))]
        batches = [_sanitize_batch(b) for _, b in pairs]
    else:
        length = 1 if seq_len is None else seq_len
        thresholds = [t for t, _ in pairs]
        batches = [b for _, b in pairs]
    unit = "examples" if seq_len is None else "tokens"
    begins, consumed, samples, per_update = [0], [0], [0], []
    for i, batch in enumerate(batches):
        per_update.append(batch * length)
        if i + 1 == len(batches):
            break
        rest = thresholds[i + 1] - consumed[i]
        rest = jnp.maximum(rest, 0.0) if traced else max(rest, 0)
        n = _duration.duration_steps(
            {unit: rest}, name=f"schedule[{i + 1}] threshold", units={"batch_size": batch, "seq_len": length}
        )
        begins.append(begins[i] + n)
        consumed.append(consumed[i] + n * per_update[i])
        samples.append(samples[i] + n * batch)
    fields = (begins, consumed, samples, batches, per_update)
    if traced:
        fields = tuple(N.stack(jnp, xs) for xs in fields)
    return BatchSizeRamp(*fields, None if seq_len is None else length, micro_batch_size)


def schedule_in_tokens(
    schedule: Callable[[ArrayLike], ArrayLike],
    tokens_per_step: ArrayLike | BatchSizeRamp,
) -> PhaseSchedule:
    r"""A schedule written in tokens, evaluated at the tokens seen before each update: ``v(t) = S(\tau(t))``.

    ``\tau(t) = t \cdot k`` for a constant ``tokens_per_step = k`` (batch size times sequence length), or
    ``ramp.tokens_seen(t)`` under a ``BatchSizeRamp``. Write every length of ``S`` in tokens, as model cards do:
    GPT-3 warms up over 375M tokens and decays over 260B, Cerebras-GPT warms up over 375M tokens as well.

    .. math::
      v(t) = S(\tau(t)), \qquad \tau(t) = t \cdot k \ \text{(or the ramp's tokens seen)}

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      schedule: the schedule ``S``, every length of it in tokens.
      tokens_per_step: tokens per update ``k`` (batch size times sequence length), or a ``BatchSizeRamp``.

    Example:
      >>> import optax_warmup as ow
      >>> lr_in_tokens = ow.warmup_cosine_decay_schedule(
      ...     0.0, 6e-4, warmup_steps=375e6, decay_steps=260e9)
      >>> # 0.5M tokens per update; the warmup is done after 750 updates
      >>> lr = ow.schedule_in_tokens(lr_in_tokens, tokens_per_step=0.5e6)
      >>> [round(float(lr(t)) / 6e-4, 4) for t in (0, 375, 750)]
      [0.0, 0.5, 1.0]

    References:
      Brown et al., "Language Models are Few-Shot Learners" (2020), Table 2.1 and Appendix B; Dey et al.,
      "Cerebras-GPT" (2023), arXiv:2304.03208.
    """
    if not callable(schedule):
        raise TypeError(f"schedule must be callable (tokens -> value), got {type(schedule).__name__}")
    if isinstance(tokens_per_step, BatchSizeRamp):
        if tokens_per_step.seq_len is None:
            raise ValueError("tokens_per_step: the BatchSizeRamp has no seq_len, so it counts samples, not tokens")
        tokens_at = tokens_per_step.tokens_seen
    else:
        V.check_positive("tokens_per_step", tokens_per_step)

        def tokens_at(count):
            return V.sanitize_length(jnp, V.as_count(count) * V.sanitize_length(jnp, tokens_per_step))

    def in_steps(count):
        return jnp.asarray(schedule(tokens_at(count)), V.float_dtype())

    # A count transform the phase list does not express: one function segment of the engine.
    return _phases.from_function(in_steps)
