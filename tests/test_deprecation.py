"""One name for one setting: ``warmup_shape=`` / ``warmup_exponent=``, keyword-only, everywhere; the 0.1 spelling
(``shape=`` / ``exponent=``, or the shape by position) still works for one release with a ``DeprecationWarning``."""

from __future__ import annotations

import inspect
import warnings

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow

COUNTS = jnp.arange(0, 40, 3)


def run(built):
    """What a built object gives: schedule values, an every_k sequence, or three updates of a transformation."""
    if isinstance(built, float):
        return np.asarray(built)
    if isinstance(built, optax.GradientTransformation):
        state = built.init(jnp.zeros(2))
        out = []
        for _ in range(3):
            u, state = built.update(jnp.ones(2), state, jnp.zeros(2))
            out.append(np.asarray(u))
        return np.concatenate(out)
    return np.asarray(built(COUNTS))


# (old call, the same call in the new spelling)
CALLS = {
    "warmup_schedule shape=": (
        lambda: ow.warmup_schedule(0.1, 1.0, 20, shape="polynomial", exponent=3.0),
        lambda: ow.warmup_schedule(0.1, 1.0, 20, warmup_shape="polynomial", warmup_exponent=3.0),
    ),
    "warmup_schedule by position": (lambda: ow.warmup_schedule(0.1, 1.0, 20, "cosine"),
                                    lambda: ow.warmup_schedule(0.1, 1.0, 20, warmup_shape="cosine")),
    "warmup_factor by position": (lambda: ow.warmup_factor(20, "polynomial", 0.2, 3.0),
                                  lambda: ow.warmup_factor(20, 0.2, warmup_shape="polynomial", warmup_exponent=3.0)),
    "warmup_factor shape=": (lambda: ow.warmup_factor(20, shape="cosine", init_factor=0.2),
                             lambda: ow.warmup_factor(20, 0.2, warmup_shape="cosine")),
    "scale_by_warmup": (lambda: ow.scale_by_warmup(4, 0.1, shape="cosine", exponent=3.0),
                        lambda: ow.scale_by_warmup(4, 0.1, warmup_shape="cosine", warmup_exponent=3.0)),
    "scale_by_warmup by position": (lambda: ow.scale_by_warmup(4, 0.1, "polynomial", 3.0),
                                    lambda: ow.scale_by_warmup(4, 0.1, warmup_shape="polynomial", warmup_exponent=3.0)),
    "batch_size_warmup": (lambda: ow.batch_size_warmup(1, 8, 30, shape="cosine"),
                          lambda: ow.batch_size_warmup(1, 8, 30, warmup_shape="cosine")),
    "adaptive_warmup": (lambda: ow.adaptive_warmup(None, 4, 0.1, "polynomial", 3.0),
                        lambda: ow.adaptive_warmup(None, 4, 0.1, warmup_shape="polynomial", warmup_exponent=3.0)),
    "untuned_warmup": (lambda: ow.untuned_warmup(0.9, "exponential"),
                       lambda: ow.untuned_warmup(0.9, warmup_shape="exponential")),
    "untuned_warmup_steps": (lambda: ow.untuned_warmup_steps(0.9, shape="exponential"),
                             lambda: ow.untuned_warmup_steps(0.9, warmup_shape="exponential")),
    "scale_by_untuned_warmup": (lambda: ow.scale_by_untuned_warmup(0.9, "exponential"),
                                lambda: ow.scale_by_untuned_warmup(0.9, warmup_shape="exponential")),
    "with_warmup by position": (lambda: ow.with_warmup(ow.constant_schedule(1.0), 10, 0.0, "cosine"),
                                lambda: ow.with_warmup(ow.constant_schedule(1.0), 10, 0.0, warmup_shape="cosine")),
    "warmup_overlay by position": (lambda: ow.warmup_overlay(ow.constant_schedule(1.0), 10, 0.5, "exponential"),
                                   lambda: ow.warmup_overlay(ow.constant_schedule(1.0), 10, 0.5,
                                                             warmup_shape="exponential")),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_the_old_spelling_still_works_and_warns(name):
    old, new = CALLS[name]
    with pytest.warns(DeprecationWarning, match="warmup_shape= / warmup_exponent="):
        built = old()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new spelling warns about nothing
        expected = new()
    np.testing.assert_array_equal(run(built), run(expected))


def test_giving_both_spellings_is_an_error():
    with pytest.raises(TypeError, match="both shape= .deprecated. and warmup_shape="):
        ow.warmup_schedule(0.0, 1.0, 10, shape="cosine", warmup_shape="linear")


SHAPED = ["warmup_schedule", "warmup_factor", "with_warmup", "warmup_overlay", "scale_by_warmup",
          "batch_size_warmup", "adaptive_warmup", "warmup_constant_schedule", "warmup_cosine_decay_schedule",
          "warmup_linear_decay_schedule", "warmup_polynomial_decay_schedule", "warmup_exponential_decay_schedule",
          "warmup_rsqrt_schedule", "warmup_stable_decay_schedule", "warmup_cosine_restarts_schedule",
          "power_schedule", "untuned_warmup", "untuned_warmup_steps", "scale_by_untuned_warmup",
          "warmup_stable_decay_cycles_schedule"]


@pytest.mark.parametrize("name", SHAPED)
def test_warmup_shape_is_keyword_only_and_last(name):
    params = inspect.signature(getattr(ow, name)).parameters
    keyword_only = [p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY]
    assert "shape" not in params  # ("exponent" remains the cosine decay's power, as in Optax)
    assert list(params)[-len(keyword_only):] == keyword_only  # nothing after the keyword-only arguments
    if name.startswith(("untuned", "scale_by_untuned")):  # only two shapes, no exponent
        assert keyword_only[-1:] == ["warmup_shape"]
    else:
        assert keyword_only[-2:] == ["warmup_shape", "warmup_exponent"], keyword_only
