"""Sphinx extension: the ``schedule-gallery`` directive draws a group of ``gallery_cases.GROUPS`` at build time.

    ```{schedule-gallery} warmup-shapes
    ```

Each case's expression is evaluated (``ow`` = ``optax_warmup``, ``optax`` = Optax), the schedule is evaluated at
every count in one jitted call, and the curve is written to ``docs/_generated/gallery/<slug>.png`` (git-ignored:
the figures are made by the build, never committed). Under each figure: the name, linked to its API entry, and the
expression that made it, laid out to fit its card. A case that fails to build or draw fails the build.

The API reference shows the same figure: every documented function that a case draws gets the figure of its first
case appended to its docstring (``autodoc-process-docstring``), so an entry and its figure cannot drift apart.
"""

from __future__ import annotations

import os
import re

from docutils import nodes
from docutils.parsers.rst import directives
from gallery_layout import CODE_WIDTH, layout
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective

OUT = "_generated/gallery"  # under the source directory, so Sphinx copies the images like any other
_drawn: set[str] = set()  # the figures this process has drawn (a build draws each once)


def _slug(group: str, title: str) -> str:
    return group + "-" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def draw(case, path: str) -> None:
    """Evaluate ``case.code`` and draw it over ``case.steps`` counts to ``path``."""
    import numpy as np
    import optax

    import optax_warmup as ow
    from optax_warmup.plotting import pyplot, save, schedule_values

    schedule = eval(case.code, {"ow": ow, "optax": optax})  # noqa: S307  (our own table of expressions)
    values = schedule_values(schedule, case.steps)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"gallery case {case.title!r}: non-finite values")
    plt = pyplot()
    # Drawn at 720 x 420 px and shown about half as wide: 10-point labels read at ~11 px, at 100% zoom.
    fig, ax = plt.subplots(figsize=(4.8, 2.8), dpi=150)
    ax.plot(np.arange(case.steps), values, lw=2.0, color="#1f77b4")
    ax.set_xlabel("count", fontsize=10)
    ax.set_ylabel("value", fontsize=10)
    ax.tick_params(labelsize=10)
    if case.log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    save(fig, path)


class ScheduleGallery(SphinxDirective):
    required_arguments = 1  # the group of gallery_cases.GROUPS
    option_spec = {"columns": directives.positive_int}

    def run(self) -> list[nodes.Node]:
        from gallery_cases import GROUPS

        group = self.arguments[0]
        if group not in GROUPS:
            raise self.error(f"unknown gallery group {group!r}; known: {sorted(GROUPS)}")
        container = nodes.container(classes=["schedule-gallery"])
        for case in GROUPS[group]:
            slug = _slug(group, case.title)
            ensure_drawn(self.env.srcdir, case, slug)
            figure = nodes.figure(ids=[f"gallery-{slug}"], classes=["schedule-gallery-item"])
            figure += nodes.image(uri=f"/{OUT}/{slug}.png", alt=f"{case.title}: the schedule's value by count")
            caption = nodes.caption()
            caption += self._title(case)
            figure += caption
            legend = nodes.legend()
            code = layout(case.code, CODE_WIDTH)
            legend += nodes.literal_block(code, code, language="python")
            figure += legend
            container += figure
        return [container]

    @staticmethod
    def _title(case) -> nodes.Node:
        text = nodes.literal(case.title, case.title)
        if case.api is None:
            return text
        ref = addnodes.pending_xref("", refdomain="py", reftype="func", reftarget=case.api, refexplicit=True,
                                    refwarn=True)
        ref += text
        return ref


def ensure_drawn(srcdir: str, case, slug: str) -> str:
    """The figure of ``case`` as ``/_generated/gallery/<slug>.png``, drawn once per build process."""
    if slug not in _drawn:
        draw(case, os.path.join(srcdir, OUT, slug + ".png"))
        _drawn.add(slug)
    return f"/{OUT}/{slug}.png"


def _first_cases() -> dict:
    """Documented name -> (group, case) of the first case that draws it."""
    from gallery_cases import GROUPS

    first: dict = {}
    for group, cases in GROUPS.items():
        for case in cases:
            if case.api is not None:
                first.setdefault(case.api, (group, case))
    return first


def _figure_in_the_api_entry(app, what, name, obj, options, lines) -> None:
    """Append the gallery's figure of ``name`` to its docstring: the API entry shows what the gallery draws."""
    if what != "function" or name not in (first := _first_cases()):
        return
    group, case = first[name]
    uri = ensure_drawn(app.env.srcdir, case, _slug(group, case.title))
    code = " ".join(line.strip() for line in case.code.splitlines())
    lines += ["", f".. figure:: {uri}", f"   :alt: {case.title}: the schedule's value by count",
              "   :figclass: api-gallery-figure", "",
              f"   ``{code}``, as the :doc:`gallery </gallery>` draws it.", ""]


def setup(app):
    app.add_directive("schedule-gallery", ScheduleGallery)
    app.connect("autodoc-process-docstring", _figure_in_the_api_entry)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
