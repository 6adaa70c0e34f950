"""The package as users get it: build the sdist and the wheel, check them, install the wheel into fresh environments.

    python tools/check_dist.py [--workdir DIR] [--keep]        (make dist-check)

1. `python -m build` (sdist, then the wheel from the sdist); the build log has no deprecation warning;
   `twine check --strict` passes on both.
2. The wheel holds exactly the package's modules, `py.typed` and the license (no tests, no data); the metadata
   carries the SPDX license, the version of `optax_warmup/_version.py` and the extras. The sdist holds what the
   test suite needs.
3. A fresh venv with the core dependencies only (the wheel, no extra): the package imports without any extra,
   a schedule gives its closed-form values, `optax-warmup --version` answers, and `plot` and `sweep` end in one
   line naming their extra.
4. `pip install 'optax_warmup[plot]'` -> a seconds-long `plot` writes a PNG (the sweep still names its extra);
   `pip install 'optax_warmup[sweep]'` -> a seconds-long `sweep` writes its table, results.json and figures.

Needs `build` and `twine` (both in the dev extra) and the package registry (or pip's cache) for the venvs.
Run from anywhere; nothing is written into the checkout except setuptools' usual `*.egg-info`.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "optax_warmup"
SPEC = "warmup_cosine_decay_schedule(init_value=0,peak_value=1e-3,warmup_steps=10,decay_steps=100)"
# A seconds-long sweep: the installed package's tiny flags (optax_warmup.sweep.command.TINY_FLAGS) and 2 configs.
TINY_FLAGS = "import json; from optax_warmup.sweep.command import TINY_FLAGS; print(json.dumps(TINY_FLAGS))"
SWEEP_SMOKE = ["--lrs", "3e-2", "--warmups", "0,50%"]
# What a user needs in the sdist to run the tests (beyond the package itself).
SDIST_MUST_HOLD = ["LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "tests/conftest.py",
                   "tests/data/compat_golden.json"]


class CheckFailed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def run(cmd: list[str], *, cwd: str, ok: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command; with ok=True a non-zero exit fails the check and shows its output."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if ok and proc.returncode != 0:
        raise CheckFailed(f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


class Step:
    """Prints each step with its wall time."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        print(f"-- {self.name} ...", flush=True)
        self.t0 = time.perf_counter()

    def __exit__(self, exc_type, *_):
        if exc_type is None:
            print(f"   ok ({time.perf_counter() - self.t0:.1f} s)", flush=True)


def source_version() -> str:
    with open(os.path.join(ROOT, NAME, "_version.py")) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise CheckFailed(f"{NAME}/_version.py has no __version__")


def package_files() -> set[str]:
    """The files of the package in the checkout: what the wheel must hold, and nothing else."""
    files = set()
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, NAME)):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for f in filenames:
            if f.endswith(".py") or f == "py.typed":
                files.add(os.path.relpath(os.path.join(dirpath, f), ROOT).replace(os.sep, "/"))
    return files


# A file name or path in the build log ("copying optax_warmup/_deprecation.py -> ..."): not a warning.
_PATH = re.compile(r"\S*[/\\]\S*|\S+\.(py|typed|txt|md|json|toml|cfg)\b")


def deprecation_warnings(log: str) -> list[str]:
    """The build log's lines that speak of a deprecation, once the file names and paths are taken out."""
    return [line for line in log.splitlines() if re.search(r"deprecat", _PATH.sub(" ", line), re.IGNORECASE)]


def build(dist: str, version: str) -> tuple[str, str]:
    log = run([sys.executable, "-m", "build", "--outdir", dist, ROOT], cwd=ROOT)
    text = log.stdout + log.stderr
    warnings = deprecation_warnings(text)
    check(not warnings, "the build warns of deprecations:\n" + "\n".join(warnings))
    wheel = os.path.join(dist, f"{NAME}-{version}-py3-none-any.whl")
    sdist = os.path.join(dist, f"{NAME}-{version}.tar.gz")
    check(os.path.isfile(wheel) and os.path.isfile(sdist), f"expected {wheel} and {sdist}, got {os.listdir(dist)}")
    run([sys.executable, "-m", "twine", "check", "--strict", wheel, sdist], cwd=ROOT)
    return wheel, sdist


def check_wheel(wheel: str, version: str) -> None:
    info = f"{NAME}-{version}.dist-info"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        metadata = z.read(f"{info}/METADATA").decode()
    package = {n for n in names if not n.startswith(info + "/")}
    check(f"{NAME}/py.typed" in package, "the wheel has no py.typed")
    expected = package_files()
    check(package == expected, f"the wheel's files differ from the package's: extra {sorted(package - expected)}, "
                               f"missing {sorted(expected - package)}")
    check(f"{info}/licenses/LICENSE" in names, "the wheel has no license file")
    fields = [line.split(": ", 1) for line in metadata.split("\n\n", 1)[0].splitlines() if ": " in line]
    meta: dict[str, list[str]] = {}
    for key, value in fields:
        meta.setdefault(key, []).append(value)
    check(meta.get("Version") == [version], f"wheel version {meta.get('Version')}, _version.py says {version}")
    check(meta.get("License-Expression") == ["Apache-2.0"], f"License-Expression {meta.get('License-Expression')}")
    check(not any(c.startswith("License ::") for c in meta.get("Classifier", [])),
          "a License classifier next to the SPDX expression")
    check({"plot", "sweep", "dev"} <= set(meta.get("Provides-Extra", [])), f"extras {meta.get('Provides-Extra')}")
    # No Project-URL: the repository has no public address yet, and a URL that does not exist is worse than none.
    check(all(k in meta for k in ("Keywords", "Requires-Python")), "metadata lacks keywords / Requires-Python")
    check("Project-URL" not in meta or not any("optax-warmup/optax_warmup" in u for u in meta["Project-URL"]),
          "a Project-URL to the placeholder repository")
    print(f"   wheel: {len(package)} package files, py.typed, LICENSE; {os.path.getsize(wheel) / 1024:.0f} KiB")


def check_sdist(sdist: str, version: str) -> None:
    top = f"{NAME}-{version}/"
    with tarfile.open(sdist) as t:
        names = {n[len(top):] for n in t.getnames() if n.startswith(top)}
    missing = [n for n in SDIST_MUST_HOLD if n not in names] + sorted(package_files() - names)
    check(not missing, f"the sdist lacks {missing}")
    junk = [n for n in names if re.search(r"(^|/)(__pycache__|\.venv|\.git|\.hypothesis|build|dist)(/|$)", n)]
    check(not junk, f"the sdist holds {junk[:10]}")
    print(f"   sdist: {len(names)} entries; {os.path.getsize(sdist) / 1024:.0f} KiB")


def one_line_naming(proc: subprocess.CompletedProcess, extra: str) -> None:
    """A missing extra ends the command with exit status 2 and one line on stderr naming the extra."""
    lines = proc.stderr.strip().splitlines()
    check(proc.returncode == 2, f"exit status {proc.returncode}, expected 2\n{proc.stderr[-2000:]}")
    check("Traceback" not in proc.stderr and len(lines) == 1, f"expected one line, got:\n{proc.stderr[-2000:]}")
    check(f"pip install '{NAME}[{extra}]'" in lines[0], f"the line does not name the {extra} extra: {lines[0]}")
    print(f"   {lines[0]}")


CORE_SCRIPT = f"""
import importlib.metadata, math, os, sys
import optax_warmup as ow
from optax_warmup import compat, config
assert ow.__version__ == importlib.metadata.version("{NAME}"), ow.__version__
assert os.path.dirname(ow.__file__).startswith(sys.prefix), ow.__file__  # the installed copy, not the checkout
s = ow.warmup_cosine_decay_schedule(0.0, 1.0, 10, 110)
values = [float(s(t)) for t in (0, 5, 10, 60, 110)]
expected = [0.0, 0.5, 1.0, 0.5, 0.0]  # linear warmup to 1 at 10, half of the cosine at 60, 0 at 110
assert all(math.isclose(v, e, abs_tol=1e-6) for v, e in zip(values, expected)), values
c = ow.from_config({{"peak": 1.0, "total": 25, "warmup": "10%", "decay": "linear"}})  # 10% of 25 steps: 3
assert [round(float(c(t)), 6) for t in (2, 3, 25)] == [round(2 / 3, 6), 1.0, 0.0], c.config
extras = sorted(m for m in ("flax", "matplotlib", "tqdm", "orbax", "yaml") if m in sys.modules)
assert not extras, f"importing optax_warmup imported optional dependencies: {{extras}}"
print("core: version", ow.__version__, "schedule", values)
"""


def venv_checks(work: str, wheel: str, version: str, python: str) -> None:
    venv = os.path.join(work, "venv")
    bindir = os.path.join(venv, "Scripts" if os.name == "nt" else "bin")
    py, pip, cli = (os.path.join(bindir, n) for n in ("python", "pip", "optax-warmup"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(JAX_PLATFORMS="cpu")

    with Step("fresh venv, the wheel with the core dependencies only"):
        run([python, "-m", "venv", venv], cwd=work)
        run([pip, "install", "-q", wheel], cwd=work, env=env)
        frozen = run([pip, "freeze"], cwd=work, env=env).stdout.lower()
        for extra_dist in ("flax", "matplotlib", "tqdm"):
            check(f"\n{extra_dist}==" not in "\n" + frozen, f"the core install brought {extra_dist}")
    with Step("core: import, a schedule's values, --version, the extras named"):
        print("   " + run([py, "-c", CORE_SCRIPT], cwd=work, env=env).stdout.strip())
        out = run([cli, "--version"], cwd=work, env=env).stdout.strip()
        check(out == f"optax-warmup {version}", f"--version says {out!r}")
        one_line_naming(run([cli, "sweep", "--quick", "--out", "sweep"], cwd=work, env=env, ok=False), "sweep")
        one_line_naming(run([cli, "plot", SPEC, "--out", "core.png"], cwd=work, env=env, ok=False), "plot")
        check(not os.path.exists(os.path.join(work, "sweep")), "the sweep wrote outputs without its extra")
    with Step("[plot] extra: plot draws a PNG; sweep still names its extra"):
        run([pip, "install", "-q", f"{wheel}[plot]"], cwd=work, env=env)
        run([cli, "plot", SPEC, "--out", "plot.png"], cwd=work, env=env)
        with open(os.path.join(work, "plot.png"), "rb") as f:
            check(f.read(8) == b"\x89PNG\r\n\x1a\n", "plot.png is not a PNG")
        one_line_naming(run([cli, "sweep", "--quick", "--out", "sweep"], cwd=work, env=env, ok=False), "sweep")
    with Step("[sweep] extra: a seconds-long sweep writes its outputs"):
        run([pip, "install", "-q", f"{wheel}[sweep]"], cwd=work, env=env)
        tiny = json.loads(run([py, "-c", TINY_FLAGS], cwd=work, env=env).stdout)
        run([cli, "sweep", *tiny, *SWEEP_SMOKE, "--out", "sweep"], cwd=work, env=env)
        written = os.listdir(os.path.join(work, "sweep"))
        for name in ("table.txt", "results.json"):
            check(name in written, f"the sweep did not write {name}: {written}")
        check(any(n.endswith(".png") for n in written), f"the sweep drew no figure: {written}")
        print(f"   sweep wrote {', '.join(sorted(written))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", help="where to build and install (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the fresh venv")
    parser.add_argument("--no-install", action="store_true", help="build and inspect only (no venv)")
    args = parser.parse_args(argv)
    work = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(prefix="optax_warmup_dist_")
    os.makedirs(work, exist_ok=True)
    t0 = time.perf_counter()
    try:
        version = source_version()
        with Step(f"build sdist and wheel of {NAME} {version}, twine check"):
            wheel, sdist = build(os.path.join(work, "dist"), version)
        with Step("contents of the wheel and the sdist"):
            check_wheel(wheel, version)
            check_sdist(sdist, version)
        if not args.no_install:
            venv_checks(work, wheel, version, args.python)
    except CheckFailed as e:
        print(f"dist-check FAILED: {e}", file=sys.stderr)
        print(f"(work directory kept: {work})", file=sys.stderr)
        return 1
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"dist-check passed in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
