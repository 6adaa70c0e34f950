"""The power scheduler of Shen et al. (2024): a learning rate that follows the number of tokens seen, not the
length of the run."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from optax_warmup import _phases, _warmup
from optax_warmup import _validate as V
from optax_warmup._phases import POWER, PhaseSchedule, Segment

ArrayLike = jax.typing.ArrayLike

# Decay shapes of the last phase, mapped to phase shapes. "exponential" decays to the end value exactly.
POWER_DECAY_SHAPES: dict[str, str] = {
    "exponential": "exponential_to_end",
    "linear": "linear",
    "cosine": "cosine",
    "1-sqrt": "1-sqrt",
    "square": "square",
}


def _check_tokens(batch_size: Any, seq_len: Any, tokens_per_step: Any) -> None:
    V.check_positive("batch_size", batch_size)
    if seq_len is not None:
        V.check_positive("seq_len", seq_len)
    if tokens_per_step is not None:
        V.check_positive("tokens_per_step", tokens_per_step)
    if seq_len is None and tokens_per_step is None:
        raise ValueError("give seq_len (tokens per step = batch_size * seq_len) or tokens_per_step, got neither")
    if seq_len is not None and tokens_per_step is not None:
        b, s = V.concrete("batch_size", batch_size), V.concrete("seq_len", seq_len)
        t = V.concrete("tokens_per_step", tokens_per_step)
        if b is not None and s is not None and t is not None and not np.isclose(b * s, t, rtol=1e-6):
            raise ValueError(
                f"tokens_per_step ({tokens_per_step!r}) must equal batch_size * seq_len ({batch_size!r} * "
                f"{seq_len!r}) when both are given"
            )


def power_schedule(
    peak_value: ArrayLike,
    warmup_steps: ArrayLike,
    total_steps: ArrayLike | None = None,
    decay_steps: ArrayLike = 0,
    *,
    batch_size: ArrayLike,
    seq_len: ArrayLike | None = None,
    tokens_per_step: ArrayLike | None = None,
    a: ArrayLike = 4.6,
    b: ArrayLike = -0.51,
    init_value: ArrayLike = 0.0,
    end_value: ArrayLike = 0.0,
    decay_shape: str = "exponential",
    warmup_shape: str = "linear",
    warmup_exponent: ArrayLike = 2.0,
) -> PhaseSchedule:
    r"""The power scheduler (Shen et al., 2024): ``lr = min(lr_max, batch * a * T**b)``, ``T`` the tokens seen.

    .. math::
      \eta(T) = \min(\eta_{\max},\ \beta\, a\, T^{b}), \qquad T = c \cdot \tau

      v(c) = \begin{cases}
        \mathrm{warmup}(I \to \eta(W \tau))(c) & c < W \\
        \eta(c \tau) & W \le c < N - D \\
        E + (\eta((N - D) \tau) - E)\, g\big((c - N + D) / D\big) & N - D \le c < N \\
        E & c \ge N
      \end{cases}

    with ``c`` the count, ``tau`` the tokens per step (``batch_size * seq_len``, or ``tokens_per_step``),
    ``beta`` the batch size, ``eta_max = peak_value``, ``W`` the warmup, ``N`` the total and ``D`` the decay
    steps. The power law does not depend on the length of the run, so a run can be extended (or stopped and
    decayed) without re-tuning; the paper pairs it with muP, which makes ``a`` and ``b`` transfer across model
    sizes. ``a = 4.6`` and ``b = -0.51`` are the paper's fit (Eq. 5; it then trains with ``a = 4``), also
    Levanter's defaults. The warmup ends at the power law's value, so the curve is continuous; the last ``D``
    steps decay to ``end_value`` along ``g``: ``"exponential"`` (the paper's "exponentially decay the learning
    rate to 0", as the authors' training code computes it: ``g(p) = expm1(1 - p) / expm1(1)``), ``"linear"``,
    ``"cosine"``, ``"1-sqrt"`` or ``"square"``.

    A concrete bad argument raises ``ValueError``; a traced one is clamped (:ref:`how <clamping>`).

    Args:
      peak_value: ``eta_max``, the cap of the learning rate (the paper uses 0.02).
      warmup_steps: ``W``; the ramp ends at ``eta(W tau)``.
      total_steps: ``N``, the end of the final decay; ``None``: no decay, the power law runs for ever.
      decay_steps: ``D``, the length of the final decay (``<= N - W``; the paper decays over the last 10%).
      batch_size: ``beta``, sequences per step (it multiplies the rate, and the tokens when ``seq_len`` is given).
      seq_len: tokens per sequence (tokens per step = ``batch_size * seq_len``).
      tokens_per_step: the tokens per step directly (instead of ``seq_len``, or equal to the product).
      a: the amplitude ``a`` (> 0).
      b: the exponent ``b`` (< 0).
      init_value: value at count 0.
      end_value: value the decay ends at (and holds).
      decay_shape: ``g`` (see above).
      warmup_shape: a warmup shape (``optax_warmup.WARMUP_SHAPES``).
      warmup_exponent: the power of the ``"polynomial"`` warmup.

    Returns:
      A ``PhaseSchedule``; every numeric argument may be traced.

    Example:
      >>> import optax_warmup as ow
      >>> s = ow.power_schedule(0.02, 1000, 100_000, 10_000, batch_size=32, seq_len=512)
      >>> [round(float(s(c)), 6) for c in (500, 1000, 10_000, 90_000, 95_000, 100_000)]
      [0.01, 0.02, 0.009518, 0.003104, 0.001172, 0.0]

    References:
      Shen et al., `Power Scheduler: A Batch Size and Token Number Agnostic Learning Rate Scheduler
      <https://arxiv.org/abs/2408.13359>`_, 2024.
    """
    V.check_positive("peak_value", peak_value)
    _warmup.check_warmup_args(init_value, peak_value, warmup_steps, warmup_shape, warmup_exponent)
    if total_steps is not None:
        V.check_positive("total_steps", total_steps)
    V.check_nonnegative("decay_steps", decay_steps)
    if total_steps is None:
        if V.concrete("decay_steps", decay_steps) not in (None, 0.0):
            raise ValueError(f"decay_steps ({decay_steps!r}) needs total_steps, the count where the decay ends")
    else:
        w, d = V.concrete("warmup_steps", warmup_steps), V.concrete("decay_steps", decay_steps)
        n = V.concrete("total_steps", total_steps)
        if w is not None and d is not None and n is not None and w + d > n:
            raise ValueError(
                f"total_steps ({total_steps!r}) must be >= warmup_steps + decay_steps ({warmup_steps!r} + "
                f"{decay_steps!r})"
            )
    _check_tokens(batch_size, seq_len, tokens_per_step)
    V.check_positive("a", a)
    bv = V.concrete("b", b)
    if bv is not None and not (np.isfinite(bv) and bv < 0):
        raise ValueError(f"b must be a finite number < 0, got {b!r}")
    V.check_finite("end_value", end_value)
    V.check_choice("decay_shape", decay_shape, tuple(POWER_DECAY_SHAPES))

    cap, init, end = V.clamp_value(peak_value), V.clamp_value(init_value), V.clamp_value(end_value)
    w, k = V.clamp_length(warmup_steps), V.clamp_exponent(-V.clamp_value(b))
    beta = V.clamp_length(batch_size)
    if tokens_per_step is not None:
        tau = V.clamp_length(tokens_per_step)
    else:
        tau = V.clamp_length(beta * V.clamp_length(seq_len))
    xp = V.xp_for(cap, w, k, beta, tau, a, decay_steps, total_steps)
    wide = np.float64 if xp is np else (lambda x: x)  # concrete: the constants in float64 before rounding
    # eta(c tau) = min(cap, scale * c**-k), scale = beta a tau**-k (the power law per step, c = 1).
    log_tau = xp.log(xp.maximum(wide(tau), 1e-30))
    scale = V.sanitize_value(xp, wide(beta) * wide(V.clamp_length(a)) * xp.exp(-wide(k) * log_tau))

    def eta(steps: Any) -> Any:
        """The capped power law at a count (the cap at count 0)."""
        positive = steps > 0
        law = wide(scale) * xp.exp(-wide(k) * xp.log(xp.where(positive, wide(steps), 1.0)))
        return V.sanitize_value(xp, xp.where(positive, xp.minimum(law, wide(cap)), cap))

    ramp_shape = "linear" if warmup_shape == "exponential" else warmup_shape
    ramp_end = eta(w) if warmup_shape != "exponential" else None
    segments = [
        # The ramp (for the "exponential" warmup: the power law's value held, under the exponential layer).
        Segment(0.0, 0.0, w, init if ramp_end is not None else eta(w), eta(w), ramp_shape,
                _warmup.ramp_param(warmup_shape, V.clamp_exponent(warmup_exponent))),
        # eta(c tau) = min(cap, scale (1 + (c - 1) / 1)**-k): the power law per step, from the end of the warmup.
        Segment(w, 1.0, 1.0, scale, cap, POWER, k),
    ]
    if total_steps is not None:
        d = V.clamp_length(decay_steps)
        decay_begin = V.clamp_length(V.clamp_length(total_steps) - d)
        begin = xp.maximum(decay_begin, w)
        segments.append(Segment(begin, decay_begin, d, eta(decay_begin), end, POWER_DECAY_SHAPES[decay_shape]))
    schedule = _phases.from_segments(segments)
    return _warmup.exponential_overlay(schedule, init, w) if warmup_shape == "exponential" else schedule
