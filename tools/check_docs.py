"""Checks of the built documentation site that a Sphinx warning does not catch (``make docs-check`` runs it).

    python tools/check_docs.py [HTML_DIR]    # default docs/_build/html

It fails (exit status 1, one line per problem) on:
- a code line wider than 88 columns in a page's code blocks (the program's outputs in the tutorial excepted);
- a tutorial page with fewer figures than the notebook has plotting cells;
- a schedule entry of the API reference without its figure or without its formula;
- a page that loads a script or a style sheet from the network (the site must render offline);
- an ``optax.*`` name of Optax's API, written as inline code, that does not link to Optax's documentation.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
import zlib

from bs4 import BeautifulSoup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
WIDTH = 88
SKIP = ("_modules", "_sources", "_static", "_images", "genindex.html", "search.html", "py-modindex.html")
REMOTE = re.compile(r"^(https?:)?//")


def pages(html: str):
    for folder, dirs, names in os.walk(html):
        dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.startswith("."))
        for name in sorted(names):
            if name.endswith(".html") and name not in SKIP:
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    yield os.path.relpath(path, html), BeautifulSoup(f.read(), "html.parser")


def long_code_lines(page: str, soup) -> list[str]:
    problems = []
    for pre in soup.select("div.highlight pre"):
        if pre.find_parent(class_="cell_output") or pre.find_parent(class_="output"):
            continue  # what a program printed, shown as it printed it
        for line in pre.get_text().splitlines():
            if len(line) > WIDTH:
                problems.append(f"{page}: a code line of {len(line)} columns (> {WIDTH}): {line[:60]}...")
    return problems


def remote_resources(page: str, soup) -> list[str]:
    found = [s.get("src") for s in soup.find_all("script") if REMOTE.match(s.get("src") or "")]
    found += [ln.get("href") for ln in soup.find_all("link", rel="stylesheet") if REMOTE.match(ln.get("href") or "")]
    return [f"{page}: loads {url} from the network" for url in found]


def plotting_cells() -> int:
    with open(os.path.join(ROOT, "notebooks", "tutorial.ipynb"), encoding="utf-8") as f:
        cells = json.load(f)["cells"]
    plotting = re.compile(r"plt\.(subplots|figure)\(")
    return sum(1 for c in cells if c["cell_type"] == "code" and plotting.search("".join(c["source"])))


def tutorial_figures(soup) -> list[str]:
    want, have = plotting_cells(), len(soup.select("div.cell_output img"))
    return [] if have >= want else [f"tutorial.html: {have} figures, the notebook has {want} plotting cells"]


def schedule_entries(html: str) -> list[str]:
    """Every schedule factory (and every peer schedule function) shows a figure; every factory a formula."""
    sys.path.insert(0, ROOT)
    import optax_warmup as ow
    from optax_warmup._phases import PhaseSchedule

    factories = {f"optax_warmup.{n}" for n in ow.__all__ if inspect.isfunction(inspect.unwrap(getattr(ow, n)))
                 and inspect.signature(getattr(ow, n), eval_str=True).return_annotation is PhaseSchedule}
    peers = {f"optax_warmup.compat.{n}_schedule" for n in ("hf", "torch", "timm", "keras", "pytorch_warmup")}
    entries = {}
    for page in ("api/schedules.html", "api/compat.html"):
        with open(os.path.join(html, page), encoding="utf-8") as f:
            soup = BeautifulSoup(f.read(), "html.parser")
        for dl in soup.select("dl.py.function"):
            dt = dl.find("dt")
            if dt and dt.get("id"):
                entries[dt["id"]] = (page, dl)
    problems = [f"{name}: no API entry" for name in sorted((factories | peers) - set(entries))]
    for name in sorted(factories | peers):
        if name not in entries:
            continue
        page, dl = entries[name]
        if not dl.select("figure.api-gallery-figure img"):
            problems.append(f"{page}: {name} has no figure")
        if name in factories and not dl.select(".math"):
            problems.append(f"{page}: {name} has no formula")
    return problems


def optax_inventory() -> set[str]:
    with open(os.path.join(DOCS, "_intersphinx", "optax.inv"), "rb") as f:
        data = f.read()
    body = zlib.decompress(data.split(b"zlib.\n", 1)[1]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines()}


def optax_links(page: str, soup, known: set[str]) -> list[str]:
    problems = []
    for code in soup.select("article code"):
        m = re.match(r"optax\.[A-Za-z_][\w.]*", code.get_text())
        if not m or m.group(0) not in known or code.find_parent("pre") or code.find_parent(class_="sig"):
            continue
        link = code.find_parent("a")
        if link is None or "optax.readthedocs.io" not in (link.get("href") or ""):
            problems.append(f"{page}: {m.group(0)} does not link to Optax's documentation")
    return problems


def main(html: str) -> int:
    problems: list[str] = []
    known = optax_inventory()
    linked = 0
    for page, soup in pages(html):
        problems += long_code_lines(page, soup)
        problems += remote_resources(page, soup)
        if not page.startswith("api/"):
            problems += optax_links(page, soup, known)
        linked += len(soup.select('a[href*="optax.readthedocs.io"]'))
        if page == "tutorial.html":
            problems += tutorial_figures(soup)
    problems += schedule_entries(html)
    for problem in problems:
        print(problem)
    print(f"check_docs: {len(problems)} problem(s); {linked} links to Optax's documentation")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(DOCS, "_build", "html")))
