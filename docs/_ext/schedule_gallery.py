"""Sphinx extension: the ``schedule-gallery`` directive draws a group of ``gallery_cases.GROUPS`` at build time.

    ```{schedule-gallery} warmup-shapes
    ```

Each case's expression is evaluated (``ow`` = ``optax_warmup``, ``optax`` = Optax), the schedule is evaluated at
every count in one jitted call, and the curve is written to ``docs/_generated/gallery/<slug>.png`` (git-ignored:
the figures are made by the build, never committed). Under each figure: the name, linked to its API entry, and the
expression that made it. A case that fails to build or draw fails the build.
"""

from __future__ import annotations

import os
import re

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective

OUT = "_generated/gallery"  # under the source directory, so Sphinx copies the images like any other


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
    fig, ax = plt.subplots(figsize=(4.0, 2.4), dpi=110)
    ax.plot(np.arange(case.steps), values, lw=1.8, color="#1f77b4")
    ax.set_xlabel("count", fontsize=8)
    ax.set_ylabel("value", fontsize=8)
    ax.tick_params(labelsize=7)
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
        out_dir = os.path.join(self.env.srcdir, OUT)
        container = nodes.container(classes=["schedule-gallery"])
        for case in GROUPS[group]:
            slug = _slug(group, case.title)
            draw(case, os.path.join(out_dir, slug + ".png"))
            figure = nodes.figure(ids=[f"gallery-{slug}"], classes=["schedule-gallery-item"])
            figure += nodes.image(uri=f"/{OUT}/{slug}.png", alt=case.title)
            caption = nodes.caption()
            caption += self._title(case)
            figure += caption
            legend = nodes.legend()
            legend += nodes.literal_block(case.code, case.code, language="python")
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


def setup(app):
    app.add_directive("schedule-gallery", ScheduleGallery)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
