"""Sphinx extension: inline code that names a documented object links to its documentation.

A guide writes ``optax.adamw(learning_rate=...)``, ``ow.with_warmup`` or ``warmup_cosine_decay_schedule(...)``
as inline code; this transform makes each such literal a cross-reference (as ``{func}`` would), to our API
reference or, through intersphinx (docs/_intersphinx), to Optax's, JAX's, Flax's, NumPy's and Python's. A name
that resolves nowhere stays plain code, without a warning: only names with a library prefix, and the public
names of optax_warmup, are tried. Pages keep their plain Markdown, which reads the same on GitHub.
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms import SphinxTransform

NAME = re.compile(r"(?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?:\(.*\))?", re.S)
PREFIXES = {  # how the pages abbreviate, -> the documented module
    "ow": "optax_warmup", "jnp": "jax.numpy", "np": "numpy", "nnx": "flax.nnx", "compat": "optax_warmup.compat",
    "sweep": "optax_warmup.sweep",
}
LIBRARIES = ("optax", "optax_warmup", "jax", "flax", "numpy")


def _public_names() -> dict[str, str]:
    import optax_warmup as ow
    from optax_warmup import compat, sweep

    names = {n: f"optax_warmup.{n}" for n in ow.__all__}
    names |= {n: f"optax_warmup.compat.{n}" for n in compat.__all__}
    names |= {n: f"optax_warmup.sweep.{n}" for n in sweep.__all__ if n not in names}
    names["TrainState"] = "flax.training.train_state.TrainState"
    return names


def target(text: str, public: dict[str, str]) -> str | None:
    """The object an inline literal names, or None."""
    m = NAME.fullmatch(text.strip())
    if m is None:
        return None
    name = m.group("name")
    head, _, rest = name.partition(".")
    if head in PREFIXES and rest:
        return f"{PREFIXES[head]}.{rest}"
    if head in LIBRARIES and rest:
        return name
    return public.get(name)


class AutoLink(SphinxTransform):
    default_priority = 400  # after MyST has made its nodes, before references are resolved

    def apply(self, **kwargs) -> None:
        public = _public_names()
        for literal in list(self.document.findall(nodes.literal)):
            parent = literal.parent
            if isinstance(parent, (nodes.reference, addnodes.pending_xref, nodes.title, addnodes.desc_signature)):
                continue
            if any(isinstance(a, (addnodes.desc_signature, nodes.reference)) for a in _ancestors(literal)):
                continue
            reftarget = target(literal.astext(), public)
            if reftarget is None:
                continue
            xref = addnodes.pending_xref("", refdomain="py", reftype="obj", reftarget=reftarget,
                                         refexplicit=True, refwarn=False, refdoc=self.env.docname)
            parent.replace(literal, xref)
            xref += literal


def _ancestors(node: nodes.Node):
    node = node.parent
    while node is not None:
        yield node
        node = node.parent


def setup(app):
    app.add_transform(AutoLink)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
