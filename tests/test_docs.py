"""The documentation site's sources cover the public API: every public name in the API reference, every public
schedule and shape in the gallery, no dead relative link. Building the site itself (Sphinx, warnings as errors)
is `make docs-check`, a CI step of its own."""

import importlib.util
import inspect
import math
import os
import re
import sys

import optax
import pytest

import optax_warmup as ow
from optax_warmup import compat, config
from optax_warmup._phases import PhaseSchedule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
DIRECTIVE = re.compile(r"^\s*\.\. (currentmodule|automodule|autofunction|autoclass|autodata)::\s*(\S+)", re.M)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def documented_names() -> dict[str, int]:
    """Fully qualified name -> how many times an autodoc directive of docs/api/*.md documents it."""
    names: dict[str, int] = {}
    api = os.path.join(DOCS, "api")
    for page in sorted(os.listdir(api)):
        if not page.endswith(".md"):
            continue
        module = None
        for kind, name in DIRECTIVE.findall(_read(os.path.join(api, page))):
            if kind == "currentmodule":
                module = name
                continue
            full = name if kind == "automodule" or "." in name else f"{module}.{name}"
            names[full] = names.get(full, 0) + 1
    return names


def _gallery_cases():
    spec = importlib.util.spec_from_file_location("gallery_cases", os.path.join(DOCS, "_ext", "gallery_cases.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # a dataclass looks its module up while it is defined
    spec.loader.exec_module(module)
    return module.GROUPS


GROUPS = _gallery_cases()
CASES = [(group, case) for group, cases in GROUPS.items() for case in cases]


def _public_schedule_factories() -> list[str]:
    """The names of optax_warmup.__all__ whose factory returns a PhaseSchedule."""
    return [name for name in ow.__all__
            if inspect.isfunction(inspect.unwrap(getattr(ow, name)))
            and inspect.signature(getattr(ow, name), eval_str=True).return_annotation is PhaseSchedule]


# ------------------------------------------------------------------------------------------------ API reference

def test_every_public_name_is_in_the_api_reference_once():
    names = documented_names()
    expected = {f"optax_warmup.{n}" for n in ow.__all__}
    expected |= {f"optax_warmup.compat.{n}" for n in compat.__all__}
    expected |= {"optax_warmup.config"} | {f"optax_warmup.{n}" for n in config.__all__}  # re-exported by ow
    from optax_warmup import sweep

    expected |= {"optax_warmup.sweep"} | {f"optax_warmup.sweep.{n}" for n in sweep.__all__}
    assert sorted(expected - set(names)) == []
    assert {n: k for n, k in names.items() if k > 1} == {}


def test_the_api_reference_parser_sees_what_the_pages_hold():
    """The check above can fail: a name the pages document, and one they do not."""
    names = documented_names()
    assert names["optax_warmup.warmup_cosine_decay_schedule"] == 1
    assert names["optax_warmup.compat.hf_schedule"] == 1
    assert "optax_warmup.not_a_public_name" not in names


# ------------------------------------------------------------------------------------------------------ gallery

def test_the_gallery_draws_every_public_schedule_factory():
    factories = _public_schedule_factories()
    assert "warmup_cosine_decay_schedule" in factories and "scale_by_warmup" not in factories
    assert len(factories) >= 29  # the engine's factories; a new one needs a gallery case
    drawn = {case.api for _, case in CASES}
    assert sorted(f"optax_warmup.{n}" for n in factories if f"optax_warmup.{n}" not in drawn) == []


def test_the_gallery_draws_every_warmup_shape_and_decay_shape():
    warmup = " ".join(case.code for case in GROUPS["warmup-shapes"])
    assert [s for s in ow.WARMUP_SHAPES if f'warmup_shape="{s}"' not in warmup] == []
    decay = " ".join(case.code for case in GROUPS["decay-shapes"])
    assert [s for s in ow.WSD_DECAY_SHAPES if f'decay_shape="{s}"' not in decay] == []


@pytest.mark.parametrize("function, names", [
    ("hf_schedule", compat.HF_NAMES),
    ("torch_schedule", compat.TORCH_NAMES),
    ("timm_schedule", compat.TIMM_NAMES),
    ("keras_schedule", compat.KERAS_NAMES),
    ("pytorch_warmup_schedule", compat.PYTORCH_WARMUP_NAMES),
])
def test_the_gallery_draws_every_peer_schedule(function, names):
    titles = {case.title for _, case in CASES}
    assert [n for n in names if f'{function}("{n}")' not in titles] == []


@pytest.mark.parametrize("group, case", CASES, ids=[f"{g}:{c.title}" for g, c in CASES])
def test_every_gallery_case_builds_a_finite_schedule(group, case):
    schedule = eval(case.code, {"ow": ow, "optax": optax})
    values = [float(schedule(t)) for t in (0, case.steps // 2, case.steps - 1)]
    assert all(math.isfinite(v) for v in values), values
    assert case.api is None or documented_names().get(case.api) == 1, f"{case.api} is not in the API reference"


# ------------------------------------------------------------------------------------------------------- links

LINK = re.compile(r"\]\(([^)\s]+)\)")


def _markdown_files() -> list[str]:
    files = [os.path.join(ROOT, "README.md")]
    for folder, dirs, names in os.walk(DOCS):
        dirs[:] = [d for d in dirs if not d.startswith("_")]  # _build, _generated, _ext, _static
        files += [os.path.join(folder, n) for n in names if n.endswith(".md")]
    return sorted(files)


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: os.path.relpath(p, ROOT))
def test_relative_links_point_to_files_that_exist(path):
    targets = [t.split("#")[0] for t in LINK.findall(_read(path)) if not re.match(r"[a-z]+:|#", t)]
    missing = [t for t in targets if not os.path.exists(os.path.join(os.path.dirname(path), t))]
    assert missing == []


def test_the_readme_is_short_and_links_to_the_site():
    readme = _read(os.path.join(ROOT, "README.md"))
    assert len(readme.splitlines()) <= 250
    for page in ("docs/index.md", "docs/api/index.md", "docs/gallery.md", "docs/sweep.md", "docs/migration.md"):
        assert f"]({page}" in readme, page


def test_the_tutorial_page_is_the_notebook_itself():
    """docs/tutorial.ipynb is a link to notebooks/tutorial.ipynb, not a copy that could drift."""
    page = os.path.join(DOCS, "tutorial.ipynb")
    assert os.path.islink(page)
    assert os.path.realpath(page) == os.path.realpath(os.path.join(ROOT, "notebooks", "tutorial.ipynb"))


# ------------------------------------------------------------------------------------ code that fits 88 columns

WIDTH = 88  # what a code block shows without scrolling sideways at 1280 px (and what ruff's formatter uses)
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*(\S*)")
NOT_CODE = {"{toctree}", "{math}", "{schedule-gallery}", "{include}", "{eval-rst}", "mermaid"}


def _fenced_code(path: str) -> list[tuple[int, str]]:
    """(line number, line) of every line of code in the fenced blocks of a Markdown file."""
    lines, out, i = _read(path).splitlines(), [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m.groups()
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        if info not in NOT_CODE:
            out += [(k + 1, lines[k][len(indent):]) for k in range(i + 1, j) if not lines[k].startswith(":")]
        i = j + 1
    return out


def _included_files() -> list[str]:
    """Files the pages pull in with ``{include}`` (the benchmarks' README and results)."""
    files = []
    for page in _markdown_files():
        for target in re.findall(r"^```\{include\}\s+(\S+)", _read(page), re.M):
            files.append(os.path.normpath(os.path.join(os.path.dirname(page), target)))
    return files


def _doctest_lines(path: str) -> list[tuple[int, str]]:
    """(line number, line without its indentation) of the docstring examples of a module: the prompts and the
    output under them, as the API reference shows them."""
    out, in_example, indent = [], False, 0
    for number, line in enumerate(_read(path).splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith((">>>", "...")) and (not in_example or len(line) - len(stripped) == indent):
            in_example, indent = True, len(line) - len(stripped)
        elif not stripped or len(line) - len(stripped) != indent or stripped.startswith('"""'):
            in_example = False
        if in_example:
            out.append((number, stripped))
    return out


def _python_files() -> list[str]:
    return sorted(os.path.join(folder, n) for folder, _, names in os.walk(os.path.join(ROOT, "optax_warmup"))
                  for n in names if n.endswith(".py"))


def _wide(lines: list[tuple[int, str]]) -> list[str]:
    return [f"line {n}: {len(text)} columns: {text[:50]}..." for n, text in lines if len(text) > WIDTH]


@pytest.mark.parametrize("path", _markdown_files() + _included_files(), ids=lambda p: os.path.relpath(p, ROOT))
def test_code_blocks_of_the_pages_fit_88_columns(path):
    assert _wide(_fenced_code(path)) == []


def test_code_of_the_tutorial_fits_88_columns():
    import json

    with open(os.path.join(ROOT, "notebooks", "tutorial.ipynb"), encoding="utf-8") as f:
        cells = [c for c in json.load(f)["cells"] if c["cell_type"] == "code"]
    lines = [(i, line) for i, c in enumerate(cells) for line in "".join(c["source"]).splitlines()]
    assert _wide(lines) == []


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: os.path.relpath(p, ROOT))
def test_docstring_examples_fit_88_columns(path):
    assert _wide(_doctest_lines(path)) == []


def test_the_88_column_checks_see_what_they_check():
    """The scanners above find code: a fenced block of a page, and the examples of a docstring."""
    assert any("import optax_warmup as ow" in text for _, text in _fenced_code(os.path.join(DOCS, "index.md")))
    examples = [text for _, text in _doctest_lines(os.path.join(ROOT, "optax_warmup", "_decay.py"))]
    assert ">>> import optax_warmup as ow" in examples and "0.25" in examples
    assert _wide([(1, "x" * (WIDTH + 1))]) != []


def test_the_gallery_lays_its_code_out_to_fit_its_cards():
    import ast

    spec = importlib.util.spec_from_file_location("gallery_layout", os.path.join(DOCS, "_ext", "gallery_layout.py"))
    gallery = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gallery)
    for _, case in CASES:
        code = gallery.layout(case.code, gallery.CODE_WIDTH)
        assert max(len(line) for line in code.splitlines()) <= gallery.CODE_WIDTH, code
        assert ast.dump(ast.parse(code, mode="eval")) == ast.dump(ast.parse(case.code.strip(), mode="eval"))


# ------------------------------------------------------------------------------------------ API entries, links

def _public_functions():
    from optax_warmup import sweep

    for module, names in ((ow, ow.__all__), (compat, compat.__all__), (sweep, sweep.__all__)):
        for name in names:
            if inspect.isfunction(inspect.unwrap(getattr(module, name))):
                yield f"{module.__name__}.{name}", getattr(module, name)


def _listed_arguments(doc: str) -> set[str]:
    """The names an ``Args:`` section lists (``b1, b2: ...`` lists two)."""
    m = re.search(r"^Args:\n((?:[ \t]+.*\n|\n)+)", doc + "\n", re.M)
    names: set[str] = set()
    for entry in re.findall(r"^  ([\w, *]+?)(?: \(.*?\))?:", m.group(1) if m else "", re.M):
        names |= {e.strip(" *") for e in entry.split(",")}
    return names


@pytest.mark.parametrize("name, function", list(_public_functions()), ids=lambda x: x if isinstance(x, str) else "")
def test_every_public_function_lists_its_arguments(name, function):
    parameters = [p.name for p in inspect.signature(function).parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    listed = _listed_arguments(inspect.getdoc(function) or "")
    assert [p for p in parameters if p not in listed] == [], f"{name}: add them to its Args section"


def test_every_schedule_factory_has_its_formula():
    factories = _public_schedule_factories()
    assert [n for n in factories if ".. math::" not in (inspect.getdoc(getattr(ow, n)) or "")] == []


def test_the_clamping_note_lives_once():
    """The rules for traced arguments are written in docs/guarantees.md (label ``clamping``) and the package's
    docstring; an entry links to them in one line instead of repeating them."""
    note = "cannot be checked and is clamped instead"
    copies = [os.path.relpath(p, ROOT) for p in _python_files() if note in _read(p)]
    assert copies == ["optax_warmup/__init__.py"]
    assert "(clamping)=" in _read(os.path.join(DOCS, "guarantees.md"))
    assert ":ref:`how <clamping>`" in inspect.getdoc(ow.warmup_cosine_decay_schedule)


def test_the_intersphinx_inventories_are_in_the_repository():
    """The build reads no network: every inventory of conf.py's intersphinx_mapping is a file of docs/."""
    import zlib

    conf = _read(os.path.join(DOCS, "conf.py"))
    inventories = re.findall(r'\("https://[^"]+", "(_intersphinx/\w+\.inv)"\)', conf)
    assert len(inventories) == 5
    names = set()
    for inventory in inventories:
        with open(os.path.join(DOCS, inventory), "rb") as f:
            header, body = f.read().split(b"zlib.\n", 1)
        assert header.startswith(b"# Sphinx inventory version 2")
        names |= {line.split(" ", 1)[0] for line in zlib.decompress(body).decode().splitlines()}
    assert {"optax.adamw", "optax.join_schedules", "optax.inject_hyperparams", "jax.Array"} <= names


def test_no_link_to_a_repository_that_does_not_exist():
    """The repository has no public address yet: install from a checkout or a wheel, link files relatively."""
    files = [os.path.join(ROOT, n) for n in ("README.md", "pyproject.toml", "CHANGELOG.md")]
    files += _markdown_files() + [os.path.join(DOCS, "conf.py")]
    assert [os.path.relpath(p, ROOT) for p in files if "github.com/optax-warmup" in _read(p)] == []


def test_pyplot_keeps_a_backend_already_in_use():
    """A notebook's figures stay inline after a call of the library's plotting (the tutorial's bug: every
    figure after ``plot_schedules`` rendered nothing, the kernel had been switched to Agg)."""
    import subprocess

    code = ("import matplotlib; matplotlib.use('svg'); import matplotlib.pyplot\n"
            "from optax_warmup.plotting import pyplot\n"
            "pyplot(); print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "svg"


def test_the_site_checks_find_what_they_look_for():
    """tools/check_docs.py (run by make docs-check on the built site) on pages made up for it."""
    bs4 = pytest.importorskip("bs4")
    spec = importlib.util.spec_from_file_location("check_docs", os.path.join(ROOT, "tools", "check_docs.py"))
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    page = bs4.BeautifulSoup(
        '<script src="https://cdn.example/mathjax.js"></script><script src="_static/zoom.js"></script>'
        f'<div class="highlight"><pre>{"x" * 89}\nok</pre></div>'
        f'<div class="cell_output"><div class="highlight"><pre>{"y" * 120}</pre></div></div>', "html.parser")
    assert len(check.long_code_lines("p.html", page)) == 1
    assert check.remote_resources("p.html", page) == ["p.html: loads https://cdn.example/mathjax.js from the network"]
    assert check.plotting_cells() == 4
    assert check.tutorial_figures(bs4.BeautifulSoup('<div class="cell_output"><img src="a.png"></div>',
                                                    "html.parser")) != []


def test_no_page_takes_a_name_sphinx_writes_itself():
    # Sphinx writes search.html, genindex.html and py-modindex.html after the pages: a page with one of these
    # names is replaced by Sphinx's own (the search guide was, as an empty search form, until it was renamed).
    docs = os.path.join(ROOT, "docs")
    pages = {os.path.splitext(name)[0] for name in os.listdir(docs) if name.endswith((".md", ".ipynb", ".rst"))}
    assert pages & {"search", "genindex", "py-modindex"} == set()
    assert "searching" in pages
