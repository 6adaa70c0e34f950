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
    "sphinx-mathjax-offline",  # MathJax 3 from the package into _static/mathjax: formulas render offline
    "sphinx.ext.viewcode",  # a [source] link per API entry, to the code as this checkout has it
    "sphinx.ext.intersphinx",
    "sphinx_copybutton",
    "schedule_gallery",
    "autolink",  # inline code that names an object links to it (ours, Optax's, JAX's, ...)
    "captions",  # a Markdown image alone in its paragraph is a figure with its alt text as caption
]

# ------------------------------------------------------------------------------------------- math, copying
mathjax_path = "mathjax/tex-chtml.js"  # under _static, copied there by sphinx-mathjax-offline; never a CDN
copybutton_prompt_text = r">>> |\.\.\. |\$ "  # the copy button copies the code, not the prompts
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True  # a doctest's output lines are left out, a plain block is copied whole

# ---------------------------------------------------------------------------------------------- intersphinx
# The inventories are in the repository (docs/_intersphinx, written by tools/make_intersphinx.py): the build
# reads no network, and names of Optax, JAX, Flax, NumPy and Python link to those projects' pages.
intersphinx_mapping = {
    "optax": ("https://optax.readthedocs.io/en/latest/", "_intersphinx/optax.inv"),
    "jax": ("https://docs.jax.dev/en/latest/", "_intersphinx/jax.inv"),
    "flax": ("https://flax.readthedocs.io/en/latest/", "_intersphinx/flax.inv"),
    "numpy": ("https://numpy.org/doc/stable/", "_intersphinx/numpy.inv"),
    "python": ("https://docs.python.org/3/", "_intersphinx/python.inv"),
}

exclude_patterns = ["_build", "_intersphinx", "examples", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
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
html_js_files = ["zoom.js"]  # click a figure of the gallery or of an API entry to enlarge it
# No repository button or "edit this page" link: the repository has no public address yet. The API entries link
# to their code through viewcode instead, and the pages offer their source (.md / .ipynb) for download.
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "navbar_persistent": [],  # one search box (the sidebar's), not two
    # The gallery uses the whole width for its cards (two per row at 1280 px), without the page's contents.
    "secondary_sidebar_items": {"**": ["page-toc"], "gallery": []},
}


def _public_type_names(app, what, name, obj, options, lines):
    """``jax.Array`` as users write it: annotations stringify to the class's private home
    (``jax.jaxlib._jax.Array``), in the types napoleon reads from a NamedTuple's or a dataclass's fields."""
    lines[:] = [line.replace("jax.jaxlib._jax.Array", "jax.Array").replace("jaxlib._jax.Array", "jax.Array")
                for line in lines]


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
    app.connect("autodoc-process-docstring", _public_type_names, priority=900)  # after napoleon's fields
    app.add_post_transform(_TutorialLinks)
