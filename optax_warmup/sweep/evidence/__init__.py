"""Evidence: warmup methods head to head, a metric-adapted warmup, and warmup when fine-tuning, measured with the
sweep engine on real models (``optax-warmup evidence methods|adaptive|transfer``; ``docs/evidence.md``).

Each experiment is a module with ``SIZES`` (``full``: the documented run, about ten minutes on two idle CPU cores;
``quick``: a few minutes; ``tiny``: seconds, for the tests) and ``run(size, out, figures, progress) -> summary``,
which writes ``summary.json``, ``report.md`` (the tables), each sweep's ``results.json`` and the figures.
"""

EXPERIMENTS = ("methods", "adaptive", "transfer")
