"""Sweeps: a grid of configs of any model and optimizer, trained together in one compiled program.

In one call::

    from optax_warmup import sweep
    task = sweep.Task(init=init, loss=loss, data=data)
    grid = {"peak_value": [1e-3, 1e-2], "warmup_steps": [0, "10%"], "seed": [0, 1]}
    result = sweep.run(task, optimizer, steps=200, grid=grid)
    print(result.table())
    result.write("runs/my_sweep")

grid (axes -> configs, checked before anything compiles) -> engine (``Task``, ``run``: sharded over devices,
vmap / map / chunks per device, several steps per device call, checkpoints) -> result (``SweepResult``: summaries,
LR sensitivity, recommendation, JSON) -> plots. Built-in tasks live in ``optax_warmup.sweep.tasks``. Needs the
``sweep`` extra (flax, matplotlib, tqdm, orbax, scipy).

To search instead of gridding: ``sweep.search(task, optimizer, steps, space={"peak_value": sweep.LogUniform(1e-4,
1e-1)}, budget=...)`` (``search``: slots that start new configs inside one compiled program, ASHA / Hyperband,
Optuna samplers with the ``search`` extra; the winner confirmed on fresh seeds, ``stats``).
"""

from optax_warmup.sweep.engine import Task, run
from optax_warmup.sweep.result import SweepResult, load
from optax_warmup.sweep.search import SearchResult, search
from optax_warmup.sweep.space import Choice, IntUniform, LogUniform, Uniform

__all__ = ["Choice", "IntUniform", "LogUniform", "SearchResult", "SweepResult", "Task", "Uniform", "load", "run",
           "search"]
