"""Write the intersphinx inventories the docs build reads offline: docs/_intersphinx/{optax,jax,flax,numpy,python}.inv.

    python tools/make_intersphinx.py [OPTAX_CHECKOUT]

The build machines cannot download the projects' ``objects.inv``, so the repository ships inventories of its own.
Optax's lists every name of Optax's API pages: given a checkout of https://github.com/google-deepmind/optax, it
reads ``docs/api/*.rst`` (one page per name since May 2026: ``api/generated/optax.adamw.html#optax.adamw``);
without one it keeps the committed file. JAX's, Flax's, NumPy's and Python's hold the names these docs mention
(``NAMES`` below), at the pages those sites give them. Add a name here when a page starts mentioning it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "_intersphinx")

# project -> (version, [(name, role, uri)]): uri relative to the project's base URL in docs/conf.py.
JAX = "_autosummary/{0}.html#{0}"
NAMES: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "jax": ("latest", [
        *[(n, "function", JAX.format(n)) for n in (
            "jax.jit", "jax.vmap", "jax.grad", "jax.value_and_grad", "jax.pmap", "jax.eval_shape",
            "jax.transfer_guard", "jax.device_put", "jax.devices", "jax.random.key", "jax.random.PRNGKey",
            "jax.random.split", "jax.random.fold_in", "jax.random.normal", "jax.lax.scan", "jax.lax.map",
            "jax.lax.cond", "jax.lax.select", "jax.tree.map", "jax.numpy.arange", "jax.numpy.ceil",
            "jax.numpy.linspace", "jax.numpy.searchsorted", "jax.numpy.where", "jax.numpy.asarray",
            "jax.numpy.array", "jax.numpy.zeros", "jax.numpy.ones")],
        ("jax.Array", "class", JAX.format("jax.Array")),
        ("jax.typing.ArrayLike", "data", "jax.typing.html#jax.typing.ArrayLike"),
        ("jax.numpy", "module", "jax.numpy.html"),
        ("jax.distributed", "module", "jax.distributed.html"),
    ]),
    "flax": ("latest", [
        ("flax.nnx.Optimizer", "class",
         "api_reference/flax.nnx/training/optimizer.html#flax.nnx.optimizer.Optimizer"),
        ("flax.nnx.Optimizer.update", "method",
         "api_reference/flax.nnx/training/optimizer.html#flax.nnx.optimizer.Optimizer.update"),
        ("flax.nnx.split", "function", "api_reference/flax.nnx/graph.html#flax.nnx.split"),
        ("flax.nnx.merge", "function", "api_reference/flax.nnx/graph.html#flax.nnx.merge"),
        ("flax.nnx.Module", "class", "api_reference/flax.nnx/module.html#flax.nnx.Module"),
        ("flax.training.train_state.TrainState", "class",
         "api_reference/flax.training.html#flax.training.train_state.TrainState"),
        ("flax.training.train_state.TrainState.apply_gradients", "method",
         "api_reference/flax.training.html#flax.training.train_state.TrainState.apply_gradients"),
    ]),
    "numpy": ("stable", [
        *[(f"numpy.{n}", "function", f"reference/generated/numpy.{n}.html#numpy.{n}") for n in (
            "asarray", "array", "arange", "linspace", "isfinite", "nan", "inf")],
        ("numpy.ndarray", "class", "reference/generated/numpy.ndarray.html#numpy.ndarray"),
        ("numpy.float32", "class", "reference/arrays.scalars.html#numpy.float32"),
        ("numpy.float64", "class", "reference/arrays.scalars.html#numpy.float64"),
    ]),
    "python": ("3", [
        *[(n, "class", f"library/functions.html#{n}") for n in (
            "float", "int", "bool", "str", "dict", "list", "tuple", "range", "slice")],
        *[(n, "exception", f"library/exceptions.html#{n}") for n in (
            "ValueError", "TypeError", "KeyError", "RuntimeError", "DeprecationWarning", "UserWarning",
            "KeyboardInterrupt")],
        ("None", "data", "library/constants.html#None"),
        ("typing.Callable", "data", "library/typing.html#typing.Callable"),
        ("typing.Any", "data", "library/typing.html#typing.Any"),
        ("typing.NamedTuple", "class", "library/typing.html#typing.NamedTuple"),
        ("collections.abc.Callable", "class", "library/collections.abc.html#collections.abc.Callable"),
        ("collections.abc.Mapping", "class", "library/collections.abc.html#collections.abc.Mapping"),
        ("collections.abc.Sequence", "class", "library/collections.abc.html#collections.abc.Sequence"),
        ("os.PathLike", "class", "library/os.html#os.PathLike"),
        ("dataclasses.dataclass", "function", "library/dataclasses.html#dataclasses.dataclass"),
        ("functools.partial", "function", "library/functools.html#functools.partial"),
        ("warnings.warn", "function", "library/warnings.html#warnings.warn"),
    ]),
}
ROLES = {"class": "py:class", "function": "py:function", "method": "py:method", "data": "py:data",
         "module": "py:module", "exception": "py:exception", "attribute": "py:attribute"}


def optax_names(checkout: str) -> list[tuple[str, str, str]]:
    """Every name of Optax's docs/api/*.rst, at its generated page; ``optax.X`` too for the names that
    ``optax.schedules`` documents (Optax re-exports them)."""
    def show(path: str) -> str:
        return subprocess.run(["git", "-C", checkout, "show", f"HEAD:{path}"], capture_output=True, text=True,
                              check=True).stdout

    pages = subprocess.run(["git", "-C", checkout, "ls-tree", "--name-only", "HEAD", "docs/api/"],
                           capture_output=True, text=True, check=True).stdout.split()
    names: list[tuple[str, str, str]] = []
    for page in sorted(p for p in pages if p.endswith(".rst")):
        module, in_summary = "optax", False
        for line in show(page).splitlines():
            if m := re.match(r"\.\. currentmodule:: (\S+)", line):
                module, in_summary = m.group(1), False
            elif line.startswith(".. autosummary::"):
                in_summary = True
            elif in_summary and (m := re.fullmatch(r"\s+([A-Za-z_][A-Za-z0-9_.]*)", line)):
                full = f"{module}.{m.group(1)}"
                role = "class" if m.group(1)[0].isupper() else "function"
                uri = f"api/generated/{full}.html#{full}"
                names.append((full, role, uri))
                if module == "optax.schedules":
                    names.append((f"optax.{m.group(1)}", role, uri))
            elif in_summary and line and not line[0].isspace():
                in_summary = False
    return names


def write(project: str, version: str, names: list[tuple[str, str, str]]) -> str:
    body = "".join(f"{name} {ROLES[role]} 1 {uri} -\n" for name, role, uri in sorted(set(names)))
    header = (f"# Sphinx inventory version 2\n# Project: {project}\n# Version: {version}\n"
              "# The remainder of this file is compressed using zlib.\n")
    path = os.path.join(OUT, f"{project}.inv")
    with open(path, "wb") as f:
        f.write(header.encode() + zlib.compress(body.encode()))
    return path


def main(argv: list[str]) -> int:
    os.makedirs(OUT, exist_ok=True)
    if argv:
        print(write("optax", "latest", optax_names(argv[0])))
    for project, (version, names) in NAMES.items():
        print(write(project, version, names))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
