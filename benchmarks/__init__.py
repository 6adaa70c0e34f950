"""Benchmarks of optax_warmup against Optax: step overhead, compiled size, sweeps, curve evaluation.

Run ``python -m benchmarks`` (or ``make bench``) from the repository root; ``--quick`` for a smoke run. Each
measurement is a module with a ``run(quick: bool) -> dict``; ``__main__`` runs them in one process and
``report`` turns the results into ``RESULTS.md``. See ``benchmarks/README.md`` for what every number means.
"""
