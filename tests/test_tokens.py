"""Token-based schedules: Megatron's batch-size schedule text, the ramp's closed form against a step-by-step
simulation of Megatron's rule, tokens -> steps, MultiSteps, and schedules written in tokens."""

from __future__ import annotations

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow
from optax_warmup import _tokens
from optax_warmup._duration import duration_steps


def test_parser_follows_megatrons_grammar():
    assert ow.parse_batch_size_schedule("0:768 250B:1536 500B:3072 750B:6144") == [
        (0, 768), (250 * 10**9, 1536), (500 * 10**9, 3072), (750 * 10**9, 6144)]
    # Commas, lower case, decimals (truncated after scaling), every suffix, unsorted input.
    assert ow.parse_batch_size_schedule(" 1.5t:8,0:1  2k:2, 3M:4 0.5b:6 ") == [
        (0, 1), (2000, 2), (3 * 10**6, 4), (5 * 10**8, 6), (15 * 10**11, 8)]
    assert ow.parse_batch_size_schedule("0:768 61035156250:1536") == [(0, 768), (61035156250, 1536)]


@pytest.mark.parametrize("text", ["", "0-768", "0:768:2", "0:abc", "x:768", "0:768 10Q:2", "0:-4", "0:nan", "0:1e999"])
def test_parser_rejects_malformed_text(text):
    with pytest.raises(ValueError, match="schedule"):
        ow.parse_batch_size_schedule(text)


def test_parser_needs_a_string():
    with pytest.raises(TypeError, match="string"):
        ow.parse_batch_size_schedule([(0, 768)])


def _simulate(pairs, seq_len, updates, megatron_floor=False):
    """Megatron's rule step by step: before each update, the batch of the last threshold <= what was consumed.
    Thresholds in tokens are compared in tokens (ours), or first floored to samples (Megatron's)."""
    consumed_samples, out = 0, []
    for _ in range(updates):
        if seq_len is None:
            batch = [b for t, b in pairs if consumed_samples >= t][-1]
        elif megatron_floor:
            batch = [b for t, b in pairs if consumed_samples >= t // seq_len][-1]
        else:
            batch = [b for t, b in pairs if consumed_samples * seq_len >= t][-1]
        out.append((batch, consumed_samples))
        consumed_samples += batch
    return out


RAMPS = {
    "tokens": ("0:8 10K:16 30K:32 100K:64", 256),
    "tokens-overshoot": ([(0, 4), (1000, 64), (1500, 8), (5000, 16)], 100),  # 64 x 100 jumps over 1500 and 5000
    "samples": ("0:3 10:5 11:7 100:2", None),
    "tokens-not-multiples": ([(0, 1), (333, 6), (2000, 10)], 7),
}


@pytest.mark.parametrize("name", list(RAMPS))
def test_closed_form_matches_the_step_by_step_rule(name):
    schedule, seq_len = RAMPS[name]
    ramp = ow.batch_size_ramp(schedule, seq_len=seq_len)
    pairs = ow.parse_batch_size_schedule(schedule) if isinstance(schedule, str) else schedule
    sim = _simulate(pairs, seq_len, 300)
    counts = np.arange(300)
    np.testing.assert_array_equal(np.asarray(ramp.batch_size(counts)), [b for b, _ in sim])
    np.testing.assert_array_equal(np.asarray(ramp.samples_seen(counts)), [c for _, c in sim])
    if seq_len is not None:
        np.testing.assert_array_equal(np.asarray(ramp.tokens_seen(counts)), [c * seq_len for _, c in sim])


def test_a_big_batch_can_skip_a_stage_as_in_megatron():
    ramp = ow.batch_size_ramp(*RAMPS["tokens-overshoot"])
    # 3 updates of 4 x 100 tokens reach 1200 >= 1000; one of 64 x 100 reaches 7600 >= 5000: batch 8 never runs.
    np.testing.assert_array_equal(np.asarray(ramp.batch_size(np.arange(6))), [4, 4, 4, 64, 16, 16])
    assert ramp.begins == [0, 3, 4, 4]


def test_megatron_floors_token_thresholds_to_samples_first():
    """The one documented difference: 333 tokens at 7 per sample is 47.57 samples; Megatron switches after 47
    samples (329 tokens), we after 48 (336 tokens >= 333), with a batch of 1 that meets both counts."""
    pairs, seq_len = RAMPS["tokens-not-multiples"]
    ours = [b for b, _ in _simulate(pairs, seq_len, 60)]
    theirs = [b for b, _ in _simulate(pairs, seq_len, 60, megatron_floor=True)]
    assert ours[47] == 1 and theirs[47] == 6
    np.testing.assert_array_equal(np.asarray(ow.batch_size_ramp(pairs, seq_len).batch_size(np.arange(60))), ours)
    # Thresholds that are multiples of seq_len (the usual case): the two agree.
    ramp_pairs = [(0, 8), (2560, 16), (7680, 32)]
    assert _simulate(ramp_pairs, 256, 60) == _simulate(ramp_pairs, 256, 60, megatron_floor=True)


@pytest.mark.parametrize("name", list(RAMPS))
def test_steps_for_tokens_is_the_first_count_that_has_seen_them(name):
    schedule, seq_len = RAMPS[name]
    ramp = ow.batch_size_ramp(schedule, seq_len=seq_len)
    seen = np.asarray(ramp.consumed_before(np.arange(2000)), np.float64)
    for n in [n for n in [0, 1, 7, 999, 1000, 1001, 2500, 1e4, 3e4, 123456, 5e5] if n <= seen[-1]]:
        want = int(np.argmax(seen >= n))
        assert ramp.steps_for_tokens(n) == want, n
        assert int(jax.jit(ramp.steps_for_tokens)(jnp.float32(n))) == want, n


def test_one_stage_is_the_duration_rule():
    ramp = ow.batch_size_ramp([(0, 32)], seq_len=2048)
    units = {"batch_size": 32, "seq_len": 2048}
    for n in [0, 1, 65536, 65537, 375e6, 300e9]:
        assert ramp.steps_for_tokens(n) == duration_steps({"tokens": n}, units=units)


def test_every_k_for_multisteps_accumulates_the_right_number_of_micro_batches():
    """Micro-batches of 4 samples; the batch goes 4 -> 8 once 64 samples are consumed, 8 -> 16 at 192."""
    ramp = ow.batch_size_ramp("0:4 64:8 192:16", micro_batch_size=4)
    tx = optax.MultiSteps(optax.sgd(1.0), every_k_schedule=ramp)
    params = jnp.zeros(1)
    state = tx.init(params)
    step = jax.jit(tx.update)
    micro_per_update, pending = [], []
    for i in range(1, 121):
        u, state = step(jnp.asarray([float(i)]), state, params)
        pending.append(i)
        if int(state.gradient_step) > len(micro_per_update):  # a real update was made
            assert float(u[0]) == pytest.approx(-np.mean(pending))  # minus the mean micro-gradient
            micro_per_update.append(len(pending))
            pending = []
    assert micro_per_update == [int(ramp(g)) for g in range(len(micro_per_update))]
    assert micro_per_update == [1] * 16 + [2] * 16 + [4] * 18
    assert float(ramp.samples_seen(16)) == 64 and float(ramp.samples_seen(32)) == 192


def test_traced_thresholds_batches_and_seq_len_match_eager():
    counts = jnp.arange(400)

    def run(t1, b1, t2, b2, seq_len):
        ramp = ow.batch_size_ramp([(0, 8.0), (t1, b1), (t2, b2)], seq_len=seq_len, micro_batch_size=8)
        return ramp.tokens_seen(counts), ramp(counts), ramp.steps_for_tokens(50_000.0)

    args = (10_000.0, 16.0, 30_000.0, 64.0, 128.0)
    traced = jax.jit(run)(*[jnp.float32(a) for a in args])
    eager = run(*args)
    for a, b in zip(traced, eager, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    rows = jax.jit(jax.vmap(run))(*[jnp.asarray([a, 2 * a], jnp.float32) for a in args])
    np.testing.assert_array_equal(np.asarray(rows[0][0]), np.asarray(eager[0]))
    doubled = run(*[2 * a for a in args])
    np.testing.assert_array_equal(np.asarray(rows[1][1]), np.asarray(doubled[1]))


def test_traced_hostile_numbers_stay_finite():
    def run(t1, b1, seq_len):
        ramp = ow.batch_size_ramp([(0, 8.0), (t1, b1)], seq_len=seq_len)
        return ramp.tokens_seen(jnp.asarray([0, 5, 2**31 - 1])), ramp(jnp.asarray([0, 5, 2**31 - 1]))

    hostile = jnp.asarray([jnp.nan, jnp.inf, -jnp.inf, -1.0, 0.0, 1e-45, 3e38])
    for out in jax.jit(jax.vmap(run, in_axes=(0, None, None)))(hostile, 16.0, 128.0) + jax.jit(
        jax.vmap(run, in_axes=(None, 0, None))
    )(1e4, hostile, 128.0) + jax.jit(jax.vmap(run, in_axes=(None, None, 0)))(1e4, 16.0, hostile):
        assert np.isfinite(np.asarray(out, np.float64)).all()


def test_schedule_in_tokens_with_a_constant_batch():
    """A GPT-3-style card: warm up over 375M tokens, cosine over 260B, at 0.5M tokens per update."""
    in_tokens = ow.warmup_cosine_decay_schedule(0.0, 6e-4, 375e6, 260e9, end_value=6e-5)
    lr = ow.schedule_in_tokens(in_tokens, tokens_per_step=0.5e6)
    for t in [0, 1, 100, 750, 751, 10_000, 520_000, 10**6]:
        assert float(lr(t)) == pytest.approx(float(in_tokens(min(t * 0.5e6, 1e12))), rel=1e-6, abs=1e-12)
    assert float(lr(750)) == pytest.approx(6e-4)  # 375M / 0.5M = 750 updates of warmup
    # The same warmup given as a duration in tokens, turned into steps by the one duration rule.
    steps = duration_steps({"tokens": 375e6}, units={"batch_size": 500, "seq_len": 1000})
    assert steps == 750


def test_schedule_in_tokens_under_a_ramp_follows_the_tokens_seen():
    ramp = ow.batch_size_ramp("0:32 1M:64 4M:128", seq_len=1024)
    in_tokens = ow.linear_schedule(0.0, 1.0, 5e6)
    lr = ow.schedule_in_tokens(in_tokens, ramp)
    counts = np.arange(0, 100)
    np.testing.assert_allclose(
        np.asarray(lr(counts)), np.minimum(np.asarray(ramp.tokens_seen(counts), np.float64) / 5e6, 1.0), rtol=1e-6
    )
    end = ramp.steps_for_tokens(5e6)
    assert float(lr(end)) == 1.0 and float(lr(end - 1)) < 1.0


def test_schedule_in_tokens_traced_tokens_per_step():
    def value(k):
        return ow.schedule_in_tokens(ow.linear_schedule(0.0, 1.0, 1000.0), k)(jnp.asarray([0, 5, 10]))

    out = jax.jit(jax.vmap(value))(jnp.asarray([100.0, 50.0, jnp.nan, jnp.inf]))
    np.testing.assert_allclose(np.asarray(out[:2]), [[0, 0.5, 1.0], [0, 0.25, 0.5]], rtol=1e-6)
    assert np.isfinite(np.asarray(out)).all()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(schedule="10:8 20:16"), r"schedule\[0\] threshold must be 0"),
        (dict(schedule=[(0, 8), (100, 16), (100, 32)]), r"schedule\[2\] threshold"),
        (dict(schedule=[(0, 8), (50, 0)]), r"schedule\[1\] batch size"),
        (dict(schedule=[(0, 12)], micro_batch_size=8), "multiple of micro_batch_size"),
        (dict(schedule=[(0, 8)], seq_len=0.5), "seq_len"),
        (dict(schedule=[(0, 8), (50,)]), r"schedule\[1\]"),
        (dict(schedule=[]), "schedule"),
        (dict(schedule={0: 8}), "schedule"),
        (dict(schedule=[(0, 8), (-5, 16)]), r"schedule\[1\] threshold"),
    ],
)
def test_bad_ramps_raise_naming_the_entry(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ow.batch_size_ramp(**kwargs)


def test_tokens_need_seq_len():
    ramp = ow.batch_size_ramp("0:8 100:16")
    with pytest.raises(ValueError, match="seq_len"):
        ramp.tokens_seen(3)
    with pytest.raises(ValueError, match="seq_len"):
        ow.schedule_in_tokens(ow.constant_schedule(1.0), ramp)
    with pytest.raises(ValueError, match="tokens"):
        ramp.steps_for_tokens(-1.0)


def test_docstring_examples():
    assert doctest.testmod(_tokens, optionflags=doctest.ELLIPSIS).failed == 0
