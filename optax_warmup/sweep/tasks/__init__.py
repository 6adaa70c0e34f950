"""Built-in sweep tasks, and the way the command line finds a user's own (``--task package.module:factory``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from optax_warmup._extras import require
from optax_warmup.sweep.engine import Task


def _bytelm(**options: Any) -> Task:
    require("flax.linen", "sweep", "the bytelm task")
    from optax_warmup.sweep.tasks.bytelm import bytelm

    return bytelm(**options)


def _digits(**options: Any) -> Task:
    from optax_warmup.sweep.tasks.digits import digits

    return digits(**options)


BUILTIN: dict[str, Callable[..., Task]] = {"bytelm": _bytelm, "digits": _digits}


def resolve(spec: str, **options: Any) -> tuple[Task, Callable | None]:
    """``"bytelm"``, ``"digits"`` or ``"package.module:factory"`` -> ``(task, optimizer or None)``.

    A user's factory is called with ``options`` and returns a ``Task``, or a ``(Task, optimizer)`` pair whose
    optimizer then replaces the command line's default.
    """
    if spec in BUILTIN:
        return BUILTIN[spec](**options), None
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"--task: {spec!r} is neither a built-in task ({', '.join(BUILTIN)}) nor "
                         "package.module:factory")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"--task: cannot import {module_name!r} ({e})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError(f"--task: {module_name} has no function {attr!r}")
    made = factory(**options)
    task, optimizer = made if isinstance(made, tuple) else (made, None)
    if not isinstance(task, Task):
        raise ValueError(f"--task: {spec} returned {type(task).__name__}, not an optax_warmup.sweep.Task")
    if optimizer is not None and not callable(optimizer):
        raise ValueError(f"--task: {spec} returned an optimizer that is not a function hp -> GradientTransformation")
    return task, optimizer
