"""The power scheduler (Shen et al. 2024, arXiv 2408.13359, Eq. 7 and 8) against its formula in float64."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optax_warmup as ow

# A 1.2B-parameter run of the paper's section 5 scaled down: eta_max = 0.02, batch 1024 x 4096 tokens.
PAPER = dict(peak_value=0.02, batch_size=1024, seq_len=4096)


def reference(c, *, peak_value, batch_size, seq_len, warmup_steps, total_steps=None, decay_steps=0, a=4.6,
              b=-0.51, init_value=0.0, end_value=0.0, decay="exponential"):
    """Eq. 8 of the paper with Eq. 7 inside, n = c * batch_size * seq_len tokens, in float64."""
    c = np.asarray(c, np.float64)
    tokens_per_step = float(batch_size) * seq_len

    def eta(steps):
        steps = np.asarray(steps, np.float64)
        with np.errstate(divide="ignore"):
            law = batch_size * a * (steps * tokens_per_step) ** b
        return np.where(steps > 0, np.minimum(peak_value, law), peak_value)

    w = warmup_steps
    value = np.where(c < w, init_value + (eta(w) - init_value) * c / max(w, 1), eta(c))
    if total_steps is not None:
        start = total_steps - decay_steps
        p = np.clip((c - start) / max(decay_steps, 1), 0.0, 1.0)
        remaining = {"exponential": np.expm1(1 - p) / np.expm1(1.0), "linear": 1 - p,
                     "1-sqrt": 1 - np.sqrt(p)}[decay]
        value = np.where(c >= start, end_value + (eta(start) - end_value) * remaining, value)
        value = np.where(c >= total_steps, end_value, value)
    return value


COUNTS = np.unique(np.concatenate([np.arange(0, 2000, 7), np.geomspace(1, 2e6, 300).astype(int), [2**31 - 1]]))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(**PAPER, warmup_steps=2000),  # no decay: the power law for ever
        dict(**PAPER, warmup_steps=2000, total_steps=1_000_000, decay_steps=100_000),
        dict(peak_value=0.02, batch_size=32, seq_len=512, warmup_steps=500, total_steps=50_000, decay_steps=5000,
             decay="linear", init_value=1e-4, end_value=1e-5),
        dict(peak_value=0.01, batch_size=256, seq_len=2048, warmup_steps=0, total_steps=2_000_000,
             decay_steps=200_000, a=4.0, b=-0.5, decay="1-sqrt"),
    ],
    ids=["paper-no-decay", "paper-10%-decay", "small-linear", "a4-b0.5-1-sqrt"],
)
def test_values_follow_the_papers_formula(kwargs):
    args = dict(kwargs)
    decay = args.pop("decay", "exponential")
    s = ow.power_schedule(**args, decay_shape=decay)
    want = reference(COUNTS, **kwargs)
    np.testing.assert_allclose(np.asarray(s(jnp.asarray(COUNTS)), np.float64), want, rtol=5e-6, atol=1e-12)
    # traced hyperparameters: the same values
    numbers = {k: v for k, v in args.items() if v is not None}
    traced = jax.jit(lambda hp: ow.power_schedule(**hp, decay_shape=decay)(jnp.asarray(COUNTS)))(
        {k: jnp.float32(v) for k, v in numbers.items()})
    np.testing.assert_allclose(np.asarray(traced, np.float64), want, rtol=2e-5, atol=1e-12)


def test_the_cap_holds_until_the_power_law_falls_below_it():
    # batch * a * T**b = eta_max at T* = (eta_max / (batch a))**(1 / b) tokens.
    s = ow.power_schedule(**PAPER, warmup_steps=100)
    crossing = (0.02 / (1024 * 4.6)) ** (1 / -0.51) / (1024 * 4096)
    assert 8000 < crossing < 8200  # about 8,100 steps, 34 billion tokens
    assert float(s(int(crossing) - 10)) == pytest.approx(0.02)
    assert float(s(int(crossing) + 1000)) < 0.02


def test_tokens_per_step_is_the_same_as_batch_times_seq_len():
    a = ow.power_schedule(0.02, 100, 10_000, 1000, batch_size=64, seq_len=1024)
    b = ow.power_schedule(0.02, 100, 10_000, 1000, batch_size=64, tokens_per_step=65536)
    c = ow.power_schedule(0.02, 100, 10_000, 1000, batch_size=64, seq_len=1024, tokens_per_step=65536)
    counts = jnp.arange(0, 12_000, 97)
    np.testing.assert_array_equal(a(counts), b(counts))
    np.testing.assert_array_equal(a(counts), c(counts))


@pytest.mark.parametrize("shape", ow.WARMUP_SHAPES)
def test_every_warmup_shape_ends_at_the_power_law(shape):
    s = ow.power_schedule(0.02, 1000, batch_size=8, seq_len=256, init_value=1e-5, warmup_shape=shape)
    at_end = reference(1000, peak_value=0.02, batch_size=8, seq_len=256, warmup_steps=1000)
    if shape == "exponential":  # 1 - e**-2 of the way at W, as every exponential warmup
        want = 1e-5 + (at_end - 1e-5) * (1 - np.exp(-2.0))
        assert float(s(1000)) == pytest.approx(want, rel=1e-5)
    else:
        assert float(s(1000)) == pytest.approx(float(at_end), rel=1e-6)
        assert float(s(0)) == pytest.approx(1e-5)


def test_the_decay_lands_on_the_end_value_and_holds_it():
    s = ow.power_schedule(0.02, 10, 1000, 100, batch_size=8, seq_len=256, end_value=1e-4)
    assert float(s(1000)) == pytest.approx(1e-4) and float(s(10**6)) == pytest.approx(1e-4)
    decay = np.asarray(s(jnp.arange(900, 1001)))
    assert np.all(np.diff(decay) <= 0)


def test_joins_and_warmups_merge_it_into_one_phase_list():
    s = ow.join_schedules([ow.power_schedule(0.02, 10, batch_size=8, seq_len=256), ow.constant_schedule(1e-4)], [500])
    assert isinstance(s, ow.PhaseSchedule)
    assert float(s(499)) == pytest.approx(float(reference(499, peak_value=0.02, batch_size=8, seq_len=256,
                                                          warmup_steps=10)), rel=1e-5)
    assert float(s(500)) == pytest.approx(1e-4)
