"""What a user installs: one version, `--version`, a missing extra named in one line, metadata that matches CI.

Building and installing the wheel into fresh environments is `make dist-check` (tools/check_dist.py); here the
same behaviours are checked in the development environment, with an optional dependency hidden from a subprocess
(`sys.modules[name] = None` makes its import fail as if it were not installed).
"""

import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import tomllib

import pytest
import yaml

import optax_warmup
from optax_warmup import _version, cli
from optax_warmup._extras import MissingExtra, require

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = "warmup_cosine_decay_schedule(init_value=0,peak_value=1e-3,warmup_steps=10,decay_steps=100)"
EXTRA_MODULES = ["flax", "matplotlib", "tqdm", "orbax", "sklearn", "yaml"]  # what the extras bring


def _pyproject() -> dict:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def _hidden(modules, code: str, cwd) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter where `modules` cannot be imported."""
    prelude = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, JAX_PLATFORMS="cpu"), timeout=300)


def _cli_hidden(modules, argv, cwd) -> subprocess.CompletedProcess:
    return _hidden(modules, f"from optax_warmup.cli import main\nraise SystemExit(main({list(argv)!r}))", cwd)


# ------------------------------------------------------------------------------------------------ the version

def test_the_version_has_one_source():
    assert re.fullmatch(r"\d+\.\d+\.\d+", _version.__version__)
    assert optax_warmup.__version__ == _version.__version__
    assert _pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "optax_warmup._version.__version__"}
    assert "version" in _pyproject()["project"]["dynamic"] and "version" not in _pyproject()["project"]
    # the installed metadata (make's install stamp depends on _version.py, so a bump reinstalls)
    assert importlib.metadata.version("optax_warmup") == _version.__version__


def test_version_flag_prints_the_version_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"optax-warmup {_version.__version__}\n"


def test_changelog_has_an_unreleased_section_above_the_current_version():
    with open(os.path.join(ROOT, "CHANGELOG.md")) as f:
        headings = re.findall(r"^## \[([^\]]+)\]", f.read(), flags=re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert headings[1] == _version.__version__, "the newest release in CHANGELOG.md is not optax_warmup/_version.py"


# ---------------------------------------------------------------------------------------------- missing extras

def test_require_returns_the_module_and_names_the_extra_when_it_is_missing():
    import json

    assert require("json", "plot") is json
    with pytest.raises(MissingExtra) as exc:
        require("surely_not_installed_xyz", "sweep", "the sweep")
    assert str(exc.value) == ("the sweep needs surely_not_installed_xyz, which is not installed: "
                              "pip install 'optax_warmup[sweep]'")
    assert isinstance(exc.value, ImportError) and (exc.value.module, exc.value.extra) == (
        "surely_not_installed_xyz", "sweep")


def test_require_keeps_the_error_of_an_installed_module_that_fails_to_import(tmp_path, monkeypatch):
    """Installing the extra again would not fix a package whose own import is broken: its error stays."""
    (tmp_path / "pack_broken_mod.py").write_text("import surely_missing_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as exc:
        require("pack_broken_mod", "plot")
    assert not isinstance(exc.value, MissingExtra) and exc.value.name == "surely_missing_dependency_xyz"


def test_importing_the_package_needs_no_extra(tmp_path):
    proc = _hidden(EXTRA_MODULES, (
        "import optax_warmup as ow\n"
        "from optax_warmup import compat, config, cli, plotting\n"
        "print(float(ow.warmup_cosine_decay_schedule(0.0, 1.0, 10, 110)(5)))\n"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "0.5\n"


def test_version_and_help_need_no_extra(tmp_path):
    proc = _cli_hidden(EXTRA_MODULES, ["--version"], tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"optax-warmup {_version.__version__}\n", "")
    proc = _cli_hidden(EXTRA_MODULES, ["sweep", "--help"], tmp_path)
    assert proc.returncode == 0 and "--quick" in proc.stdout, proc.stderr


@pytest.mark.parametrize("missing", ["flax", "matplotlib", "tqdm"])
def test_sweep_without_its_extra_ends_in_one_line_naming_it(missing, tmp_path):
    proc = _cli_hidden([missing], ["sweep", "--quick", "--no-progress", "--out", str(tmp_path / "out")], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == f"optax-warmup sweep: {missing} is not installed: pip install 'optax_warmup[sweep]'\n"
    assert proc.stdout == "" and not (tmp_path / "out").exists()


def test_plot_without_matplotlib_ends_in_one_line_naming_the_plot_extra(tmp_path):
    proc = _cli_hidden(["matplotlib"], ["plot", SPEC, "--out", str(tmp_path / "s.png")], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == "optax-warmup plot: matplotlib is not installed: pip install 'optax_warmup[plot]'\n"
    assert proc.stdout == "" and not (tmp_path / "s.png").exists()


def test_drawing_from_python_without_matplotlib_raises_missing_extra(tmp_path):
    proc = _hidden(["matplotlib"], (
        "from optax_warmup import plotting\n"
        "try:\n    plotting.pyplot()\nexcept ImportError as e:\n    print(type(e).__name__, e)\n"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ("MissingExtra drawing figures needs matplotlib, which is not installed: "
                           "pip install 'optax_warmup[plot]'\n")


def test_the_extras_bring_what_the_code_says_they_do():
    """The modules the CLI and `require` check are installed by the extra they name, and every
    `pip install 'optax_warmup[X]'` in a message names an extra that exists."""
    extras = _pyproject()["project"]["optional-dependencies"]
    names = {e: {re.split(r"[<>=!~ ;\[]", r, maxsplit=1)[0].lower() for r in reqs} for e, reqs in extras.items()}
    assert cli.EXTRAS["plot"] == ("plot", ("matplotlib",)) and {"matplotlib"} <= names["plot"]
    assert {"flax", "matplotlib", "tqdm"} <= set(cli.EXTRAS["sweep"][1]) and cli.EXTRAS["sweep"][0] == "sweep"
    for extra, modules in cli.EXTRAS.values():
        assert set(modules) <= names[extra], (extra, modules)
    for module, extra in re.findall(r'require\("(\w+)", "(\w+)"', _read("optax_warmup/plotting.py")):
        assert module in names[extra], (module, extra)
    named = set()
    for dirpath, _, filenames in os.walk(os.path.join(ROOT, "optax_warmup")):
        for f in filenames:
            if f.endswith(".py"):
                with open(os.path.join(dirpath, f)) as fh:
                    named |= set(re.findall(r"optax_warmup\[(\w+)\]", fh.read()))
    assert named and named <= set(extras), named - set(extras)


def _read(path: str) -> str:
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


# ---------------------------------------------------------------------------------------------------- metadata

def test_license_is_an_spdx_expression_with_its_file():
    project = _pyproject()["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert not any(c.startswith("License ::") for c in project["classifiers"])  # PEP 639: not both
    text = _read("LICENSE")
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text


def test_classified_python_versions_are_the_ones_ci_runs():
    project = _pyproject()["project"]
    classified = sorted(c.rsplit(" :: ", 1)[1] for c in project["classifiers"]
                        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
    with open(os.path.join(ROOT, ".github", "workflows", "ci.yml")) as f:
        jobs = yaml.safe_load(f)["jobs"]
    ci = sorted(jobs["test"]["strategy"]["matrix"]["python-version"])
    assert classified == ci
    assert project["requires-python"] == f">={classified[0]}"
    # the minimum-versions job runs on the oldest Python, as `make test-min` insists
    setup = [s["with"] for s in jobs["min-versions"]["steps"] if s.get("uses", "").startswith("actions/setup-python")]
    assert setup == [{"python-version": classified[0], "cache": "pip"}]
    assert f"v == ({classified[0].replace('.', ', ')})" in _read("Makefile")


def test_lower_bounds_are_the_versions_the_minimum_job_pins():
    """Each `name>=X` of the runtime dependencies and the plot/sweep/digits/search extras is pinned `name==X` in
    .ci/min-constraints.txt, which `make test-min` (a CI job) installs."""
    project = _pyproject()["project"]
    requirements = project["dependencies"] + [r for e in ("plot", "sweep", "digits", "search")
                                              for r in project["optional-dependencies"][e]]
    bounds = dict(re.fullmatch(r"([\w-]+)>=([\w.]+)", r).groups() for r in requirements)
    pins = dict(re.fullmatch(r"([\w-]+)==([\w.]+)", line).groups()
                for line in _read(".ci/min-constraints.txt").splitlines() if line and not line.startswith("#"))
    for name, version in bounds.items():
        assert pins.get(name) == version, f"{name}>={version} in pyproject.toml, {pins.get(name)} pinned"
    assert pins["jaxlib"] == pins["jax"]


def test_dist_check_sees_deprecation_warnings_not_file_names():
    spec = importlib.util.spec_from_file_location(
        "check_dist", os.path.join(os.path.dirname(os.path.dirname(__file__)), "tools", "check_dist.py"))
    check_dist = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_dist)
    log = "\n".join([
        "copying optax_warmup/_deprecation.py -> optax_warmup-0.1.0/optax_warmup",
        "adding 'optax_warmup/_deprecation.py'",
        "copying tests/test_deprecation.py -> optax_warmup-0.1.0/tests",
        "/usr/lib/python3/site-packages/setuptools/config/_apply_pyprojecttoml.py:82: "
        "SetuptoolsDeprecationWarning: `project.license` as a TOML table is deprecated",
        "!! License classifiers are deprecated.",
    ])
    assert check_dist.deprecation_warnings(log) == log.splitlines()[3:]
