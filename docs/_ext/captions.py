"""Sphinx extension: a Markdown image that stands alone in its paragraph becomes a figure captioned with its alt text.

``![training loss at peak LR 0.1, mean of 3 seeds](img/evidence/methods_curves_bytelm.png)`` reads the same on
GitHub, and on the site it shows its description under it (a screen reader still gets the alt text). Such
figures enlarge on a click (``_static/zoom.js``), which the evidence page's wide figures need.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.transforms import SphinxTransform


class CaptionedImages(SphinxTransform):
    default_priority = 410

    def apply(self, **kwargs) -> None:
        for paragraph in list(self.document.findall(nodes.paragraph)):
            children = [c for c in paragraph.children if not (isinstance(c, nodes.Text) and not c.strip())]
            if len(children) != 1 or not isinstance(children[0], nodes.image) or not children[0].get("alt"):
                continue
            if isinstance(paragraph.parent, (nodes.figure, nodes.table, nodes.entry)):
                continue
            image = children[0]
            figure = nodes.figure(classes=["zoomable"])
            figure += image.deepcopy()
            figure += nodes.caption(image["alt"], image["alt"])
            paragraph.replace_self(figure)
            self.document.set_id(figure)  # Sphinx numbers and links figures by id


def setup(app):
    app.add_transform(CaptionedImages)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
