"""Sphinx configuration of the optax_warmup documentation site (``make docs``; ``make docs-check`` with -W).

The pages are MyST Markdown (myst-nb); the API reference is generated from the docstrings (autodoc + napoleon,
Google style); the gallery's figures are drawn at build time (``_ext/schedule_gallery.py``); the tutorial
notebook (``notebooks/tutorial.ipynb``, linked as ``tutorial.ipynb``) is executed during the build.
"""

from __future__ import annotations

import os
import sys

DOCS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(DOCS)
sys.path.insert(0, ROOT)  # the checkout's package, installed or not
sys.path.insert(0, os.path.join(DOCS, "_ext"))
# No MPLBACKEND here: the notebook's kernel inherits this environment, and on Agg its figures render nothing. The
# gallery draws on Agg itself (optax_warmup.plotting.pyplot); the kernel gets ipykernel's inline backend.
if os.environ.get("MPLBACKEND", "").lower() == "agg":
    del os.environ["MPLBACKEND"]
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from sphinx import addnodes  # noqa: E402
from sphinx.transforms.post_transforms import SphinxPostTransform  # noqa: E402

from optax_warmup._version import __version__  # noqa: E402

project = "optax_warmup"
author = "The optax_warmup authors"
copyright = "The optax_warmup authors"  # noqa: A001  (Sphinx's name)
version = release = __version__

extensions = [
    "myst_nb",  # MyST Markdown pages and executed notebooks (brings myst_parser)
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "schedule_gallery",
]

exclude_patterns = ["_build", "examples", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
# The notebook's outputs are made by the build, never committed: Sphinx reads it through the symlink
# docs/tutorial.ipynb -> ../notebooks/tutorial.ipynb.

# ------------------------------------------------------------------------------------------------------ MyST
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3  # `page.md#a-heading` links work here as they do on GitHub

# ---------------------------------------------------------------------------------------------------- myst-nb
nb_execution_mode = "auto"  # execute a notebook that has no outputs (ours is committed without)
nb_execution_timeout = 600
nb_execution_raise_on_error = True  # a failing cell fails the build
nb_execution_show_tb = True
nb_merge_streams = True

# ---------------------------------------------------------------------------------------------------- autodoc
autodoc_member_order = "bysource"
# Signatures without their annotations, as JAX's and Flax's references show them: evaluated, ``ArrayLike`` would
# spell out every type it admits in every argument. The Args sections say what each argument takes.
autodoc_typehints = "none"
autodoc_preserve_defaults = True
autosummary_generate = False  # the API pages list every name themselves (tests/test_docs.py checks it)
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True

# -------------------------------------------------------------------------------------------------------- HTML
html_theme = "sphinx_book_theme"
html_title = f"optax_warmup {version}"
html_static_path = ["_static"]
html_css_files = ["gallery.css"]
html_theme_options = {
    "repository_url": "https://github.com/optax-warmup/optax_warmup",
    "repository_branch": "main",
    "path_to_docs": "docs",
    "use_repository_button": True,
    "use_source_button": True,
    "show_toc_level": 2,
}


def _no_docstring_of_the_type(app, what, name, obj, options, lines):
    """A constant (``SHAPES``, ``HF_NAMES``: a dict or a tuple) has no docstring of its own, and autodoc would show
    its type's (``dict``'s, ``tuple``'s); the API pages describe it instead."""
    if what == "data" and lines and getattr(obj, "__doc__", None) == type(obj).__doc__:
        lines.clear()


class _TutorialLinks(SphinxPostTransform):
    """A Markdown link to the tutorial (``tutorial.ipynb`` here, ``../notebooks/tutorial.ipynb`` as GitHub shows it)
    goes to the tutorial page. Sphinx resolves links through symbolic links, so both name the notebook's real path,
    outside the source directory; the page itself is read through the link ``docs/tutorial.ipynb``."""

    default_priority = 5  # before MyST resolves its references (9)

    def run(self, **kwargs):
        real = os.path.join(ROOT, "notebooks", "tutorial")
        for node in self.document.findall(addnodes.pending_xref):
            if node.get("reftype") == "myst" and node.get("reftarget") == real:
                node["reftarget"] = "tutorial"


def setup(app):
    app.connect("autodoc-process-docstring", _no_docstring_of_the_type)
    app.add_post_transform(_TutorialLinks)
