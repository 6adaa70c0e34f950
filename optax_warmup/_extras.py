"""Optional dependencies: a missing one says which extra to install, in one line.

The schedules and transformations need only the core dependencies (jax, optax, numpy). The plot command needs
the ``plot`` extra (matplotlib), the sweep command the ``sweep`` extra (flax, matplotlib, tqdm, orbax). A feature
that needs an extra calls :func:`require` before it does anything else; the command line checks each command's
modules first (``cli.EXTRAS``) and turns :class:`MissingExtra` into one line on stderr and exit status 2.
"""

from __future__ import annotations

import importlib
from types import ModuleType

DISTRIBUTION = "optax_warmup"


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""

    def __init__(self, module: str, extra: str, feature: str | None = None):
        self.module, self.extra = module, extra
        missing = f"{feature} needs {module}, which is not installed" if feature else f"{module} is not installed"
        super().__init__(f"{missing}: pip install '{DISTRIBUTION}[{extra}]'", name=module)


def require(module: str, extra: str, feature: str | None = None) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtra` naming ``extra`` when it is not installed.

    Only a missing ``module`` (or a missing parent package of it) becomes :class:`MissingExtra`; an installed
    package that fails to import for another reason keeps its own error, since installing the extra again would
    not help.

    Args:
      module: the module to import, e.g. ``"flax.linen"``.
      extra: the extra of ``optax_warmup`` that installs it, e.g. ``"sweep"``.
      feature: what needs it, for the message (e.g. ``"optax-warmup sweep"``).

    Returns:
      The imported module.

    Examples:
      >>> from optax_warmup._extras import require
      >>> require("json", "plot").__name__
      'json'
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        parts = module.split(".")
        if e.name not in {".".join(parts[:i]) for i in range(1, len(parts) + 1)}:
            raise
        raise MissingExtra(module, extra, feature) from None
