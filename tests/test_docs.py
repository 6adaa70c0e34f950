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
