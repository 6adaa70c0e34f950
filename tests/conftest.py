"""Hypothesis profiles: ``ci`` (default, keeps the property tests under a minute and a half on 2 busy cores) and
``thorough`` (thousands of examples in all), selected with ``HYPOTHESIS_PROFILE=thorough``.

``ci`` is derandomized: every run draws the same examples (seeded from each test's name), so a commit that passes
once passes in CI too, and a failure is reproduced by running the suite again. New examples come from
``thorough`` (``make thorough``), which draws fresh ones on every run; a case it finds becomes a plain test."""

import os

import pytest
from hypothesis import HealthCheck, Phase, settings

_COMMON = dict(
    deadline=None,  # the first example of each schedule pays for its compile
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.register_profile("ci", max_examples=12, derandomize=True, **_COMMON)
settings.register_profile("thorough", max_examples=400, **_COMMON)
# While developing: the ci examples without shrinking, so a failing run reports sooner.
settings.register_profile("fast", max_examples=12, phases=[p for p in Phase if p is not Phase.shrink], **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _no_compilation_cache_after_the_test():
    """A test that turns on JAX's persistent compilation cache (the sweep command does by default) turns it off
    again, so later tests in the same worker compile (and count their compiles) as usual."""
    yield
    import jax

    if jax.config.jax_compilation_cache_dir is not None:
        from jax.experimental.compilation_cache import compilation_cache

        jax.config.update("jax_compilation_cache_dir", None)
        compilation_cache.reset_cache()
