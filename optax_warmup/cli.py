"""The `optax-warmup` command (also `python -m optax_warmup`).

    optax-warmup sweep [--task T] [--axis NAME=V,...] [--quick] [--out DIR]  train a grid of models at once
    optax-warmup search [--task T] [--space NAME=KIND(ARGS)] [--budget N]   search settings adaptively (ASHA, TPE)
    optax-warmup evidence methods|adaptive|transfer [--size S]              one experiment of docs/evidence.md
    optax-warmup plot SPEC [SPEC ...] [--steps N] [--out PNG]               draw schedules to a PNG
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from optax_warmup._extras import MissingExtra, require
from optax_warmup._version import __version__

# What each command needs beyond the core dependencies: (the extra that installs it, modules), checked before the
# command starts. The digits task's scikit-learn (the `digits` extra) is checked where the task loads.
EXTRAS = {"plot": ("plot", ("matplotlib",)), "sweep": ("sweep", ("flax", "matplotlib", "tqdm")),
          "search": ("sweep", ("flax", "matplotlib", "tqdm", "scipy"))}

# ---------------------------------------------------------------------------------------------------- plot

def parse_schedule_call(spec: str) -> tuple[Callable, list, dict]:
    """'name(k=v, ...)' -> (factory, args, kwargs), without eval: the call is parsed with `ast` and every
    argument must be a literal. `name` is a schedule of optax_warmup (its registry of factories); `optax.name`
    is Optax's."""
    try:
        node = ast.parse(spec.strip(), mode="eval").body
    except SyntaxError as e:
        raise ValueError(f"cannot parse schedule spec {spec!r}: {e.msg}") from None
    if not isinstance(node, ast.Call):
        raise ValueError(f"schedule spec must be a call like name(arg=value, ...), got {spec!r}")
    func = node.func
    if isinstance(func, ast.Name):
        module, name = "optax_warmup", func.id
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in (
            "optax", "optax_warmup"):
        module, name = func.value.id, func.attr
    else:
        raise ValueError(f"schedule must be a plain name or optax.name, got {ast.unparse(func)!r}")
    if name.startswith("_"):
        raise ValueError(f"{name!r} is private")
    if module == "optax_warmup":
        from optax_warmup._registry import SCHEDULES

        factory = SCHEDULES.get(name)
    else:
        factory = getattr(importlib.import_module(module), name, None)
    if not callable(factory):
        raise ValueError(f"{module} has no schedule {name!r}")
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    except ValueError:
        raise ValueError(f"schedule arguments must be literals (numbers, strings): {spec!r}") from None
    if None in kwargs:
        raise ValueError("**kwargs is not allowed in a schedule spec")
    return factory, args, kwargs


def _find(d, key):
    """The first value under `key` anywhere in a nested dict/list (for marking warmups from a JSON config)."""
    if isinstance(d, dict):
        if key in d:
            return d[key]
        d = list(d.values())
    if isinstance(d, list):
        for v in d:
            found = _find(v, key)
            if found is not None:
                return found
    return None


def _mentions_warmup(d) -> bool:
    """Whether a nested dict has a non-zero entry whose key mentions a warmup."""
    if isinstance(d, dict):
        return any(("warmup" in str(k) and v not in (0, None, "0%")) or _mentions_warmup(v) for k, v in d.items())
    return isinstance(d, list) and any(_mentions_warmup(v) for v in d)


# Config files `plot` reads (any other existing file is read as JSON).
CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
LABEL_WIDTH = 90  # legend labels longer than this keep their two ends


def _is_yaml(path: str) -> bool:
    return path.lower().endswith((".yaml", ".yml"))


def read_config_file(path: str):
    """A JSON or YAML (``.yaml`` / ``.yml``) config file -> its data. Every problem is a one-line ``ValueError``
    naming the file: missing, unreadable, not text, not valid JSON / YAML, or PyYAML not installed."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, not a config file") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file (a JSON or YAML config is expected)") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read it ({e.strerror or e})") from None
    if not _is_yaml(path):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
    try:
        import yaml
    except ImportError:
        raise ValueError(f"{path}: reading YAML needs PyYAML: pip install pyyaml (it comes with the dev extra, "
                         "pip install 'optax_warmup[dev]'), or write the config as JSON") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ValueError(f"{path}: not valid YAML{where} ({getattr(e, 'problem', None) or e})") from None


def load_schedule(spec: str) -> tuple[str, Callable, Any, float | None]:
    """A schedule spec -> (label, schedule, warmup, natural length or None). warmup: steps, None, or "peak" (a
    config file with a warmup: the warmup is marked up to the schedule's first maximum).

    A spec is a JSON or YAML config file (read by ``optax_warmup.config.from_config``) or a call like
    ``name(arg=value, ...)``. Every mistake in it is a one-line ``ValueError`` that names the spec."""
    is_file = os.path.exists(spec) or spec.lower().endswith(CONFIG_SUFFIXES)
    if is_file:
        from optax_warmup.config import from_config

        config = read_config_file(spec)
        try:
            schedule = from_config(config)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{spec}: {e}") from None
        label = os.path.basename(spec)
        params = config
    else:
        if "(" not in spec:
            raise ValueError(f"{spec}: no such file, and not a schedule call like "
                             "warmup_cosine_decay_schedule(init_value=0, peak_value=1e-3, ...)")
        factory, args, kwargs = parse_schedule_call(spec)
        try:
            schedule = factory(*args, **kwargs)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{spec}: {e}") from None
        try:  # name the positional arguments too, to find warmup_steps and decay_steps
            params = dict(inspect.signature(factory).bind(*args, **kwargs).arguments)
        except (TypeError, ValueError):
            params = kwargs
        label = "".join(spec.split())
    if not callable(schedule):
        raise ValueError(f"{spec}: does not describe a schedule (got {type(schedule).__name__})")
    try:  # a bad argument that only shows when the schedule runs (Optax's factories check nothing)
        schedule(0)
    except (TypeError, ValueError, ArithmeticError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{spec}: evaluating it at count 0 failed: {first_line}") from None
    warmup = _find(params, "warmup_steps")
    if warmup is None and _mentions_warmup(params) and is_file:
        warmup = "peak"  # a config's warmup may be "10%" or {"tokens": ...}: mark up to the first peak instead
    length = max((v for k in ("decay_steps", "total_steps", "transition_steps", "total", "num_training_steps")
                  if isinstance(v := _find(params, k), int | float) and not isinstance(v, bool)), default=None)
    if length is not None and isinstance(warmup, int | float) and 0 < warmup and length <= warmup:
        length += warmup  # e.g. a transition after the warmup
    return label, schedule, warmup, length


def legend_labels(labels: Sequence[str], width: int = LABEL_WIDTH) -> list[str]:
    """One legend label per schedule, all distinct: a label longer than ``width`` keeps its beginning and its end
    (where the arguments that differ usually are), and labels that would still read the same get the position of
    their SPEC on the command line, ``" #2"``."""
    head = (width - 3) * 2 // 3
    short = [label if len(label) <= width else label[:head] + "..." + label[-(width - 3 - head):] for label in labels]
    return [f"{s} #{i + 1}" if short.count(s) > 1 else s for i, s in enumerate(short)]


def _positive_steps(text: str) -> int:
    """--steps: a whole number of steps > 0 (argparse names the flag in front of the message)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not value.is_integer() or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of steps > 0, got {text!r}")
    return int(value)


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    """A mistake on this parser's command line is one line on stderr (no usage block), exit code 2."""

    def error(message: str):
        parser.exit(2, f"{parser.prog}: error: {message} (see {parser.prog} --help)\n")

    parser.error = error  # type: ignore[method-assign]  # argparse has no hook for this


def _add_plot_parser(sub) -> None:
    p = sub.add_parser("plot", help="draw schedules to a PNG",
                       description="Draw one or more schedules to a PNG, warmup phase shaded. SPEC is a "
                                   "call, e.g. 'warmup_cosine_decay_schedule(init_value=0,peak_value=1e-3,"
                                   "warmup_steps=100,decay_steps=1000)' (literal arguments only; "
                                   "optax.NAME(...) for Optax's), or a JSON or YAML (.yaml, .yml) config file "
                                   "read by optax_warmup.config.from_config.")
    p.add_argument("specs", nargs="+", metavar="SPEC", help="a schedule call or a JSON / YAML config file")
    p.add_argument("--steps", type=_positive_steps,
                   help="steps to draw (default: the longest decay_steps, else 1000)")
    p.add_argument("--out", default="schedule.png", help="PNG path (default schedule.png)")
    p.add_argument("--log-y", action="store_true", help="logarithmic learning-rate axis")
    p.add_argument("--title", default="learning-rate schedule", help="figure title")
    _one_line_errors(p)
    p.set_defaults(func=_plot)


def _check_out(path: str) -> str | None:
    """Why ``--out`` cannot be written, or None; checked before any schedule is evaluated."""
    if os.path.isdir(path):
        return f"--out {path}: is a directory; give a file name such as {os.path.join(path, 'schedule.png')}"
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):  # missing folders are created
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"--out {path}: {parent} is a file, not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"--out {path}: cannot write in {parent}"
    return None


def _plot(args: argparse.Namespace) -> int:
    import numpy as np

    from optax_warmup.plotting import plot_schedules, schedule_values

    def fail(message: str) -> int:
        print(f"optax-warmup plot: {message}", file=sys.stderr)
        return 2

    problem = _check_out(args.out)
    if problem:
        return fail(problem)
    try:
        loaded = [load_schedule(s) for s in args.specs]
    except ValueError as e:
        return fail(str(e))
    steps = args.steps or int(max((n for *_, n in loaded if n), default=1000))
    labels = legend_labels([label for label, *_ in loaded])
    schedules = {label: fn for label, (_, fn, _, _) in zip(labels, loaded, strict=True)}
    warmups = {}
    for label, (_, fn, warmup, _) in zip(labels, loaded, strict=True):
        if warmup == "peak":
            warmup = int(np.argmax(schedule_values(fn, steps)))
        if isinstance(warmup, int | float) and warmup > 0:
            warmups[label] = warmup
    try:
        path = plot_schedules(schedules, steps, args.out, warmups, title=args.title, log_y=args.log_y)
    except ImportError as e:
        return fail(f"drawing needs matplotlib ({e}): pip install 'optax_warmup[plot]'")
    except OSError as e:
        return fail(f"--out {args.out}: cannot write it ({e.strerror or e})")
    print(f"wrote {os.path.abspath(path)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="optax-warmup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    from optax_warmup.sweep.command import add_parser as add_sweep_parser
    from optax_warmup.sweep.evidence.command import add_parser as add_evidence_parser
    from optax_warmup.sweep.search_command import add_parser as add_search_parser

    add_sweep_parser(sub)
    add_search_parser(sub)
    add_evidence_parser(sub)
    _add_plot_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        extra, modules = EXTRAS.get(args.command, ("", ()))
        for module in modules:
            require(module, extra)
        return args.func(args)
    except MissingExtra as e:  # an optional dependency is not installed: one line naming the extra, no traceback
        print(f"optax-warmup {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
