"""``optax-warmup search``: the command line of ``sweep.search``.

Every input is checked before the first compile; a mistake is one line on stderr and exit code 2; Ctrl-C keeps
what was computed (exit code 130) and, with ``--checkpoint-dir``, the same command resumes.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

from optax_warmup.sweep.command import _number, _option, _positive_int

EXAMPLES = """examples:
  optax-warmup search --task digits --space "peak_value=log(1e-4,1e-1)" --space "warmup_steps=uniform(0,0.5)" \\
      --budget 25600 --method asha
  optax-warmup search --task digits --sampler tpe          Optuna's TPE proposes (needs the search extra)
  optax-warmup search --checkpoint-dir runs/ckpt          Ctrl-C, then the same command again, resumes

a space axis is NAME=KIND(ARGS): log(LOW,HIGH), uniform(LOW,HIGH), int(LOW,HIGH) or choice(A,B,...); an axis
named *_steps is a duration (a range within [0, 1] is a fraction of --steps)."""

DEFAULT_SPACE = ["peak_value=log(1e-4,1e-1)", "warmup_steps=uniform(0,0.5)"]
SAMPLERS = ("sobol", "tpe", "gp", "cmaes", "random")
_AXIS = re.compile(r"\s*([A-Za-z_]\w*)\s*=\s*(\w+)\s*\((.*)\)\s*")


def parse_axis(text: str) -> tuple[str, Any]:
    """``"peak_value=log(1e-4,1e-1)"`` -> ``("peak_value", LogUniform(1e-4, 1e-1))`` (checked later, with the
    space)."""
    from optax_warmup.sweep import space as space_lib

    m = _AXIS.fullmatch(text)
    if not m:
        raise argparse.ArgumentTypeError(f"write a space axis as NAME=KIND(ARGS), e.g. peak_value=log(1e-4,1e-1), "
                                         f"got {text!r}")
    name, kind, inner = m.groups()
    args = [a.strip() for a in inner.split(",") if a.strip()]
    if kind == "choice":
        values: list[Any] = []
        for a in args:
            try:
                number = float(a)
                values.append(int(number) if number == int(number) and "." not in a and "e" not in a.lower()
                              else number)
            except ValueError:
                values.append(a)
        return name, space_lib.Choice(values)
    if kind not in ("log", "uniform", "int"):
        raise argparse.ArgumentTypeError(f"space axis {name!r}: the kinds are log, uniform, int and choice, got "
                                         f"{kind!r}")
    if len(args) != 2:
        raise argparse.ArgumentTypeError(f"space axis {name!r}: {kind}(LOW,HIGH) takes two numbers, got {inner!r}")
    low, high = (_number(a) for a in args)
    if kind == "int":
        if low != int(low) or high != int(high):
            raise argparse.ArgumentTypeError(f"space axis {name!r}: int(LOW,HIGH) takes whole numbers, got {inner!r}")
        return name, space_lib.IntUniform(int(low), int(high))
    return name, (space_lib.LogUniform(low, high) if kind == "log" else space_lib.Uniform(low, high))


def add_parser(sub) -> None:
    p = sub.add_parser(
        "search", help="search warmup settings adaptively (ASHA, Hyperband, Optuna samplers) in one program",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Search a space of settings within a budget of config-steps: slots of one compiled program "
                    "start new configs as others stop, with no recompiling; the best few are then confirmed on "
                    "fresh seeds. Writes a table, search.json and figures.")
    p.add_argument("--task", default="digits", metavar="NAME",
                   help="digits (default; needs the digits extra), bytelm, or package.module:factory returning a "
                        "Task or (Task, optimizer)")
    p.add_argument("--task-option", dest="options", action="append", type=_option, default=[], metavar="KEY=VALUE",
                   help="an argument of the task's factory, repeatable")
    p.add_argument("--space", dest="space", action="append", type=parse_axis, default=[], metavar="NAME=KIND(ARGS)",
                   help="a space axis, repeatable (default: " + " ".join(DEFAULT_SPACE) + ")")
    p.add_argument("--steps", type=_positive_int, default=300, help="training steps of a full config (default 300)")
    p.add_argument("--budget", type=_positive_int,
                   help="config-steps to spend (default: a quarter of a 64-config grid, 16 x --steps)")
    p.add_argument("--method", choices=("random", "asha", "hyperband"), default="asha",
                   help="when to stop configs early (default asha)")
    p.add_argument("--sampler", choices=SAMPLERS, default="sobol",
                   help="who proposes configs: sobol (quasi-random, default) or an Optuna sampler: tpe, gp, cmaes, "
                        "random (needs the search extra)")
    p.add_argument("--slots", type=_positive_int, default=16, help="configs training at once (default 16)")
    p.add_argument("--seed", type=int, default=0, help="search seed; confirmation uses the seeds after it")
    p.add_argument("--eta", type=_positive_int, help="ASHA's reduction factor (default 3)")
    p.add_argument("--min-steps", type=_positive_int, help="the first rung (default steps / eta^3)")
    p.add_argument("--confirm-top", type=int, default=3, help="configs to confirm on fresh seeds (default 3)")
    p.add_argument("--confirm-seeds", type=_positive_int, help="fresh seeds per confirmed config (default 5)")
    p.add_argument("--budget-seconds", type=lambda s: _number(s, positive=True),
                   help="also stop after this much wall time")
    p.add_argument("--strategy", choices=("auto", "vmap", "map"), default="auto",
                   help="how each device runs its slots (auto: map on CPU, vmap elsewhere)")
    p.add_argument("--steps-per-call", type=_positive_int, help="training steps per device call (default 10)")
    p.add_argument("--out", default=os.path.join("runs", "search"), help="output directory (default runs/search)")
    p.add_argument("--checkpoint-dir", help="checkpoint the search here; the same command again resumes")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=main)


def _sampler(name: str, seed: int):
    if name == "sobol":
        return None
    from optax_warmup._extras import require

    optuna = require("optuna", "search", f"--sampler {name}")
    make = {"tpe": optuna.samplers.TPESampler, "gp": optuna.samplers.GPSampler,
            "cmaes": optuna.samplers.CmaEsSampler, "random": optuna.samplers.RandomSampler}[name]
    return make(seed=seed)


def main(args: argparse.Namespace) -> int:
    """Runs ``optax-warmup search``; returns the exit code."""
    try:
        return _main(args)
    except (ValueError, ImportError) as e:
        print(f"optax-warmup search: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("optax-warmup search: interrupted before training started; nothing to keep", file=sys.stderr)
        return 130


def _main(args: argparse.Namespace) -> int:
    from optax_warmup.sweep import engine, tasks
    from optax_warmup.sweep.optimizers import warmup_adamw
    from optax_warmup.sweep.search import search

    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.confirm_top < 0:
        raise ValueError(f"--confirm-top must be >= 0, got {args.confirm_top}")
    axes = args.space or [parse_axis(a) for a in DEFAULT_SPACE]
    names = [n for n, _ in axes]
    if len(set(names)) != len(names):
        raise ValueError(f"--space names an axis twice: {sorted(n for n in set(names) if names.count(n) > 1)}")
    engine.check_directory("--out", args.out)
    engine.check_directory("--checkpoint-dir", args.checkpoint_dir)
    sampler = _sampler(args.sampler, args.seed)
    task, user_optimizer = tasks.resolve(args.task, **dict(args.options))
    optimizer = user_optimizer or warmup_adamw(args.steps)
    budget = args.budget or 16 * args.steps
    print(f"search: {args.method} with {args.sampler} proposals over {', '.join(names)}; budget {budget} "
          f"config-steps ({budget / args.steps:.1f} full configs), {args.steps} steps, task {args.task}", flush=True)
    found = search(task, optimizer, args.steps, dict(axes), budget, slots=args.slots, method=args.method,
                   sampler=sampler, seed=args.seed, eta=args.eta, min_steps=args.min_steps,
                   budget_seconds=args.budget_seconds, confirm_top=args.confirm_top,
                   confirm_seeds=args.confirm_seeds, steps_per_call=args.steps_per_call, strategy=args.strategy,
                   checkpoint_dir=args.checkpoint_dir, progress=args.progress)
    print(found.table())
    if found.interrupted:
        return 130 if found.interrupted == "SIGINT" else 143
    paths = found.write(args.out)
    print(f"\noutputs in {os.path.abspath(args.out)}:")
    for name, path in paths.items():
        print(f"  {name:<10} {path}")
    return 0


def build_parser_for_tests(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="optax-warmup")
    add_parser(parser.add_subparsers())
    return parser.parse_args(["search", *argv])
