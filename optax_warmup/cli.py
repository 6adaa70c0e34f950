"""The `optax-warmup` command (also `python -m optax_warmup`).

    optax-warmup sweep [--task T] [--axis NAME=V,...] [--quick] [--out DIR]  train a grid of models at once
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
from collections.abc import Sequence

from optax_warmup._extras import MissingExtra, require
from optax_warmup._version import __version__

# What each command needs beyond the core dependencies: (the extra that installs it, modules), checked before the
# command starts. The digits task's scikit-learn (the `digits` extra) is checked where the task loads.
EXTRAS = {"plot": ("plot", ("matplotlib",)), "sweep": ("sweep", ("flax", "matplotlib", "tqdm"))}

# ---------------------------------------------------------------------------------------------------- plot

def parse_schedule_call(spec: str):
    """'name(k=v, ...)' -> (factory, args, kwargs), without eval: the call is parsed with `ast` and every
    argument must be a literal. `name` is a public schedule of optax_warmup; `optax.name` is Optax's."""
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


def load_schedule(spec: str):
    """A schedule spec -> (label, schedule, warmup, natural length or None). warmup: steps, None, or "peak" (a
    JSON config with a warmup: the warmup is marked up to the schedule's first maximum)."""
    if spec.endswith(".json") or os.path.isfile(spec):
        with open(spec) as f:
            config = json.load(f)
        try:
            from optax_warmup.config import from_config
        except ImportError:
            raise SystemExit(f"{spec}: JSON configs need optax_warmup.config.from_config, which this "
                             "version does not have; pass a call like warmup_cosine_decay_schedule(...) "
                             "instead") from None
        schedule = from_config(config)
        label = os.path.basename(spec)
        params = config
    else:
        factory, args, kwargs = parse_schedule_call(spec)
        schedule = factory(*args, **kwargs)
        try:  # name the positional arguments too, to find warmup_steps and decay_steps
            params = dict(inspect.signature(factory).bind(*args, **kwargs).arguments)
        except (TypeError, ValueError):
            params = kwargs
        label = "".join(spec.split())
        label = label if len(label) <= 90 else label[:87] + "..."
    if not callable(schedule):
        raise SystemExit(f"{spec}: does not describe a schedule (got {type(schedule).__name__})")
    warmup = _find(params, "warmup_steps")
    if warmup is None and _mentions_warmup(params) and spec.endswith(".json"):
        warmup = "peak"  # a config's warmup may be "10%" or {"tokens": ...}: mark up to the first peak instead
    length = max((v for k in ("decay_steps", "total_steps", "transition_steps", "total", "num_training_steps")
                  if isinstance(v := _find(params, k), int | float) and not isinstance(v, bool)), default=None)
    if length is not None and isinstance(warmup, int | float) and 0 < warmup and length <= warmup:
        length += warmup  # e.g. a transition after the warmup
    return label, schedule, warmup, length


def _add_plot_parser(sub) -> None:
    p = sub.add_parser("plot", help="draw schedules to a PNG",
                       description="Draw one or more schedules to a PNG, warmup phase shaded. SPEC is a "
                                   "call, e.g. 'warmup_cosine_decay_schedule(init_value=0,peak_value=1e-3,"
                                   "warmup_steps=100,decay_steps=1000)' (literal arguments only; "
                                   "optax.NAME(...) for Optax's), or a JSON config file read by "
                                   "optax_warmup.config.from_config.")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.add_argument("--steps", type=int, help="steps to draw (default: the longest decay_steps, else 1000)")
    p.add_argument("--out", default="schedule.png", help="PNG path (default schedule.png)")
    p.add_argument("--log-y", action="store_true", help="logarithmic learning-rate axis")
    p.add_argument("--title", default="learning-rate schedule")
    p.set_defaults(func=_plot)


def _plot(args: argparse.Namespace) -> int:
    import numpy as np

    from optax_warmup.plotting import plot_schedules, schedule_values

    try:
        loaded = [load_schedule(s) for s in args.specs]
    except ValueError as e:
        print(f"optax-warmup plot: {e}", file=sys.stderr)
        return 2
    steps = args.steps or int(max((n for *_, n in loaded if n), default=1000))
    schedules = {label: fn for label, fn, _, _ in loaded}
    warmups = {}
    for label, fn, warmup, _ in loaded:
        if warmup == "peak":
            warmup = int(np.argmax(schedule_values(fn, steps)))
        if isinstance(warmup, int | float) and warmup > 0:
            warmups[label] = warmup
    path = plot_schedules(schedules, steps, args.out, warmups, title=args.title, log_y=args.log_y)
    print(f"wrote {os.path.abspath(path)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="optax-warmup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    from optax_warmup.sweep.command import add_parser as add_sweep_parser

    add_sweep_parser(sub)
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
