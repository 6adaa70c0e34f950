"""``optax-warmup sweep``: the command line of the sweep engine.

Every input is checked before the first compile (numbers, the grid, the task, the output and checkpoint
directories); a mistake is one line on stderr and exit code 2; Ctrl-C keeps what was computed (exit code 130).
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from optax_warmup._duration import parse_duration

# Per built-in task: the default grid and settings, and what --quick changes. Explicit flags always win.
DEFAULTS: dict[str, dict[str, Any]] = {
    "bytelm": dict(steps=300, seeds=2, axes=dict(warmup_shape=["linear"], warmup_steps=[0, 0.02, 0.1, 0.25],
                                                 peak_value=[1e-3, 3e-3, 1e-2, 3e-2, 1e-1])),
    "digits": dict(steps=300, seeds=3, axes=dict(warmup_shape=["linear"], warmup_steps=[0, 0.02, 0.1, 0.25],
                                                 peak_value=[1e-3, 3e-3, 1e-2, 3e-2, 1e-1])),
}
# A run of seconds (tests, smoke checks): `optax-warmup sweep --quick` plus these flags.
TINY_FLAGS = ["--steps", "8", "--d-model", "16", "--layers", "1", "--heads", "2", "--context", "16",
              "--batch-size", "4", "--valid-windows", "32", "--max-files", "30", "--seeds", "1", "--no-progress"]
QUICK: dict[str, dict[str, Any]] = {
    "bytelm": dict(steps=200, axes=dict(warmup_steps=[0, 0.25]), options=dict(d_model=32, valid_windows=128)),
    "digits": dict(steps=150, seeds=2, axes=dict(warmup_steps=[0, 0.25])),
}
# Flags that are shorthands for task options of the byte LM.
BYTELM_FLAGS = dict(d_model="d_model", n_layers="n_layers", n_heads="n_heads", context="context",
                    batch_size="batch_size", valid_windows="valid_windows", base_seed="base_seed",
                    max_files="max_files")
EXAMPLES = """examples:
  optax-warmup sweep                                   the default grid: 40 byte-level LMs, about 2-3 min
  optax-warmup sweep --quick                           a smoke test (20 smaller LMs, under a minute)
  optax-warmup sweep --lrs 1e-3,1e-2 --warmups 0,10%,50 --shapes linear,cosine --seeds 3
  optax-warmup sweep --task digits --axis b2=0.99,0.999
  optax-warmup sweep --task mypkg.tasks:make_task --axis peak_value=1e-3,1e-2 --axis warmup_steps=0,10%
  optax-warmup sweep --checkpoint-dir runs/ckpt       Ctrl-C, then the same command again, resumes
"""


# ---------------------------------------------------------------------------------------------- flag parsing


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


_positive_int, _nonnegative_int = _int_at_least(1), _int_at_least(0)


def _number(text: str, *, positive: bool = False, unit: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    if positive and value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    if unit and not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _list(parse: Callable[[str], Any]) -> Callable[[str], list]:
    def parse_list(text: str) -> list:
        values = [parse(t.strip()) for t in text.split(",") if t.strip()]
        if not values:
            raise argparse.ArgumentTypeError("give at least one value")
        return values

    return parse_list


def _learning_rate(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"learning rates must be > 0, got {text}")
    return value


def _duration(text: str) -> int | float | str:
    try:
        value = parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if isinstance(value, int | float) and value < 0:
        raise argparse.ArgumentTypeError(f"a warmup must be >= 0, got {text}")
    return value


def _value(name: str, text: str) -> Any:
    """An --axis value: a duration on a ``*_steps`` axis, else a number when it reads as one, else a word."""
    if name.endswith("_steps"):
        return _duration(text)
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if math.isfinite(value) and value == int(value) and "." not in text and "e" not in lowered \
        else value


def _axis(text: str) -> tuple[str, list]:
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"write an axis as NAME=V1,V2,..., got {text!r}")
    parsed = [_value(name, t.strip()) for t in values.split(",") if t.strip()]
    if not parsed:
        raise argparse.ArgumentTypeError(f"axis {name!r} has no values")
    return name, parsed


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"write a task option as KEY=VALUE, got {text!r}")
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        parsed = value.strip()
    return key.strip(), parsed


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep", help="train a grid of warmup settings simultaneously (one compiled step)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
        description="Train a grid of configs (peak learning rate x warmup x ... x seed) of a model, all in one "
                    "compiled program; write a table, results.json and figures. The default task is a small "
                    "byte-level Transformer LM on the Python standard library's source.")
    g = p.add_argument_group("grid")
    g.add_argument("--task", default="bytelm", metavar="NAME",
                   help="bytelm (default), digits (scikit-learn's digits, needs the digits extra), or "
                        "package.module:factory returning a Task or (Task, optimizer)")
    g.add_argument("--axis", dest="axes", action="append", type=_axis, default=[], metavar="NAME=V1,V2",
                   help="a grid axis, repeatable: numbers are traced (one compile for all), words are static; an "
                        "axis named *_steps takes steps, fractions or percentages of --steps")
    g.add_argument("--steps", type=_positive_int, help="training steps per config (default 300)")
    g.add_argument("--seeds", type=_positive_int, help="number of seeds, an axis like the others (default 2)")
    g.add_argument("--lrs", type=_list(_learning_rate), metavar="LR,...",
                   help="shorthand for --axis peak_value=... (default 1e-3,3e-3,1e-2,3e-2,1e-1)")
    g.add_argument("--warmups", type=_list(_duration), metavar="W,...",
                   help="shorthand for --axis warmup_steps=...: whole numbers are steps, numbers in (0, 1) or "
                        "10%% are fractions of --steps (default 0,0.02,0.1,0.25)")
    g.add_argument("--shapes", type=_list(str), metavar="SHAPE,...",
                   help="shorthand for --axis warmup_shape=..., e.g. linear,cosine,exponential (default linear)")
    t = p.add_argument_group("task (the byte LM's flags are shorthands for --task-option)")
    t.add_argument("--task-option", dest="options", action="append", type=_option, default=[],
                   metavar="KEY=VALUE", help="an argument of the task's factory, repeatable (e.g. hidden=(64,64))")
    t.add_argument("--d-model", type=_positive_int, help="bytelm: model width (default 64)")
    t.add_argument("--layers", dest="n_layers", type=_positive_int, help="bytelm: Transformer blocks (default 2)")
    t.add_argument("--heads", dest="n_heads", type=_positive_int, help="bytelm: attention heads (default 4)")
    t.add_argument("--context", type=_positive_int, help="bytelm: context length in bytes (default 32)")
    t.add_argument("--batch-size", type=_positive_int, help="bytelm: windows per step (default 16)")
    t.add_argument("--norm", choices=("pre", "post"), help="bytelm: Pre-LN (default) or Post-LN blocks")
    t.add_argument("--no-qk-norm", dest="qk_norm", action="store_false", default=None,
                   help="bytelm: drop the parameter-free LayerNorm on queries and keys")
    t.add_argument("--valid-windows", type=_positive_int, help="bytelm: validation windows (default 256)")
    t.add_argument("--seed", dest="base_seed", type=_nonnegative_int,
                   help="bytelm: base seed of the data and initial parameters (default 0)")
    t.add_argument("--max-files", type=_positive_int, help=argparse.SUPPRESS)  # tests: fewer stdlib files
    o = p.add_argument_group("optimizer (the default: AdamW under warmup_cosine_decay_schedule)")
    o.add_argument("--b1", type=lambda s: _number(s, unit=True), help="AdamW b1 (default 0.9)")
    o.add_argument("--b2", type=lambda s: _number(s, unit=True), help="AdamW b2 (default 0.999)")
    o.add_argument("--weight-decay", type=lambda s: _number(s), help="AdamW weight decay (default 0.01)")
    o.add_argument("--end-fraction", type=lambda s: _number(s), help="the cosine ends at this times the peak "
                                                                      "(default 0.1)")
    r = p.add_argument_group("run")
    r.add_argument("--quick", action="store_true",
                   help="a smoke test: for bytelm 200 steps, d_model 32, warmups 0 and 25%% (20 models, under a "
                        "minute on 2 cores); for digits 150 steps, warmups 0 and 25%%, 2 seeds")
    r.add_argument("--strategy", choices=("auto", "loop", "vmap", "map"),
                   help="how each device runs its configs: loop (one device call per config, the host loops), "
                        "vmap (batched) or map (a loop inside the program); auto = loop on CPU, vmap on "
                        "accelerators (default)")
    r.add_argument("--chunk-size", type=_positive_int,
                   help="at most this many configs per device at once (bounds memory)")
    r.add_argument("--steps-per-call", type=_positive_int,
                   help="training steps per device call (default: up to 10 on CPU, 100 on accelerators)")
    r.add_argument("--eval-every", type=_positive_int, help="evaluate every N steps (default: 10 evaluations)")
    r.add_argument("--out", default=os.path.join("runs", "sweep"), help="output directory (default runs/sweep)")
    r.add_argument("--checkpoint-dir", help="checkpoint the whole sweep here; the same command again resumes")
    r.add_argument("--checkpoint-every", type=_positive_int, help="steps between checkpoints (default: 10 calls)")
    r.add_argument("--compilation-cache", default=os.path.join("runs", ".jax-cache"), metavar="DIR",
                   help="JAX's persistent compilation cache: a rerun loads its programs instead of compiling "
                        "them (default runs/.jax-cache)")
    r.add_argument("--no-compilation-cache", dest="compilation_cache", action="store_const", const=None,
                   help="compile every program afresh")
    r.add_argument("--compare-sequential", action="store_true",
                   help="also train the grid the Optax way, one compile and run per config, and compare times")
    r.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    r.add_argument("--distributed", action="store_true",
                   help="call jax.distributed.initialize() first (multi-host: run the same command on every "
                        "host; the configs are sharded over all hosts' devices; process 0 writes the outputs). "
                        "Cloud TPU, SLURM, Open MPI and Kubernetes are detected; elsewhere give the next three")
    r.add_argument("--coordinator", metavar="HOST:PORT", help="with --distributed: process 0's address")
    r.add_argument("--num-processes", type=_positive_int, help="with --distributed: how many processes")
    r.add_argument("--process-id", type=_nonnegative_int, help="with --distributed: this process's index")
    p.set_defaults(func=main)


# ---------------------------------------------------------------------------------------------- the settings


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run the flags describe: task name and options, steps, grid (axes in order, seed last), optimizer."""
    name = args.task
    base = DEFAULTS.get(name, dict(steps=300, seeds=1, axes={}))
    quick = QUICK.get(name, {}) if args.quick else {}
    axes = {**base["axes"], **quick.get("axes", {})}
    flagged = {key: getattr(args, flag) for flag, key in BYTELM_FLAGS.items() if getattr(args, flag, None) is not None}
    if args.norm is not None:
        flagged["pre_ln"] = args.norm == "pre"
    if args.qk_norm is not None:
        flagged["qk_norm"] = args.qk_norm
    if name != "bytelm" and flagged:
        raise ValueError(f"--task {name}: the flags for {sorted(flagged)} only apply to --task bytelm")
    options = {**quick.get("options", {}), **flagged, **dict(args.options)}
    for flag, axis in (("lrs", "peak_value"), ("warmups", "warmup_steps"), ("shapes", "warmup_shape")):
        if getattr(args, flag) is not None:
            axes[axis] = getattr(args, flag)
    for axis, values in args.axes:
        axes[axis] = values
    steps = args.steps or quick.get("steps") or base["steps"]
    seeds = args.seeds or quick.get("seeds") or base["seeds"]
    axes.pop("seed", None)
    axes["seed"] = list(range(seeds))
    optimizer = {k: getattr(args, k) for k in ("b1", "b2", "weight_decay", "end_fraction")
                 if getattr(args, k) is not None}
    return dict(task=name, options=options, steps=steps, axes=axes, optimizer=optimizer)


def _describe(axes: dict[str, list], steps: int, task: str, strategy: str, configs: int) -> str:
    sizes = " x ".join(f"{len(v)} {k}" for k, v in axes.items())
    return f"sweep: {configs} configs ({sizes}), {steps} steps, task {task}, strategy {strategy}"


def main(args: argparse.Namespace) -> int:
    """Runs ``optax-warmup sweep``; returns the exit code."""
    import numpy as np

    try:
        return _main(args, np)
    except ValueError as e:
        print(f"optax-warmup sweep: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"optax-warmup sweep: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("optax-warmup sweep: interrupted before training started; nothing to keep", file=sys.stderr)
        return 130


def _main(args: argparse.Namespace, np) -> int:
    import jax

    from optax_warmup.sweep import engine, sequential, tasks
    from optax_warmup.sweep.optimizers import warmup_adamw

    if args.distributed:
        jax.distributed.initialize(coordinator_address=args.coordinator, num_processes=args.num_processes,
                                   process_id=args.process_id)
    main_process = jax.process_index() == 0
    say = print if main_process else (lambda *a, **k: None)  # one copy of the report, from process 0
    s = settings(args)
    # Everything a user can get wrong is checked here, before the task loads its data or anything compiles.
    engine.check_directory("--out", args.out)
    engine.check_directory("--checkpoint-dir", args.checkpoint_dir)
    engine.check_directory("--compilation-cache", args.compilation_cache)
    task, user_optimizer = tasks.resolve(s["task"], **s["options"])
    optimizer = user_optimizer or warmup_adamw(s["steps"], **s["optimizer"])
    if user_optimizer is not None and s["optimizer"]:
        raise ValueError(f"--task {s['task']} brings its own optimizer: {sorted(s['optimizer'])} do not apply")
    axes = s["axes"] if user_optimizer is None or args.axes else {"seed": s["axes"]["seed"]}
    strategy = args.strategy or "auto"  # auto: the engine chooses from the traced step, and says why
    n = int(np.prod([len(v) for v in axes.values()]))
    say(_describe(axes, s["steps"], s["task"], strategy, n), flush=True)
    result = engine.run(task, optimizer, s["steps"], axes, eval_every=args.eval_every,
                        steps_per_call=args.steps_per_call, strategy=strategy, chunk_size=args.chunk_size,
                        checkpoint_dir=args.checkpoint_dir, checkpoint_every=args.checkpoint_every,
                        out_dir=args.out if main_process else None, progress=args.progress and main_process,
                        compilation_cache=args.compilation_cache)
    if result.interrupted:
        say(result.table())
        return 130 if result.interrupted == "SIGINT" else 143
    t = result.timing
    say(result.table())
    say(f"\ncompile {t['compile_s']:.1f} s, {1000 * t['step_s']:.0f} ms/step for {len(result)} configs "
        f"({result.settings['steps_per_call']} steps per call), eval {t['eval_s']:.1f} s, total {t['total_s']:.1f} s "
        f"on {result.settings['devices']} {result.settings['backend']} device(s); strategy "
        f"{result.settings['strategy']} ({result.settings.get('strategy_reason', '')})")
    if args.compare_sequential:
        _compare_sequential(result, task, user_optimizer, s, sequential, warmup_adamw, say, np)
    if main_process:
        paths = result.write(args.out)
        say(f"\noutputs in {os.path.abspath(args.out)}:")
        for name, path in paths.items():
            say(f"  {name:<15} {path}")
    return 0


def _compare_sequential(result, task, user_optimizer, s, sequential, warmup_adamw, say, np) -> None:
    """The same grid with one jit per config (Optax's schedule for the default optimizer), and the comparison."""
    axes = {k: list(v) for k, v in result.axes.items()}
    if user_optimizer is None:
        optimizer = warmup_adamw(s["steps"], use_optax=True, **s["optimizer"])
        select: Callable | None = lambda c: c.get("warmup_shape", "linear") == "linear"  # noqa: E731
    else:
        optimizer, select = user_optimizer, None
    seq = sequential.run_sequential(task, optimizer, s["steps"], axes, select=select)
    t = result.timing
    batched = t["compile_s"] + t["train_s"]
    per_b, per_s = batched / len(result), seq["wall_s"] / max(1, len(seq["index"]))
    skipped = len(result) - len(seq["index"])
    note = f" ({skipped} non-linear configs skipped; per-config times compared)" if skipped else ""
    say(f"\none compiled program for all {len(result)} configs: {batched:.1f} s (compile + train, no eval)\n"
        f"one jit per config: {seq['wall_s']:.1f} s for {len(seq['index'])} configs{note}, of which "
        f"{seq['first_steps_s']:.1f} s in first steps (compiles)\nratio sequential / batched: {per_s / per_b:.2f}x")
    last = result.curves["loss"][seq["index"], -1]
    finite = np.isfinite(last) & np.isfinite(seq["loss"][:, -1])
    gap = float(np.max(np.abs(last[finite] - seq["loss"][finite, -1]))) if finite.any() else float("nan")
    say(f"largest difference in last-step loss, batched vs sequential: {gap:.2e}")
    result.settings["sequential"] = dict(configs=len(seq["index"]), skipped=skipped, wall_s=seq["wall_s"],
                                         first_steps_s=seq["first_steps_s"], batched_train_s=batched,
                                         ratio=per_s / per_b, max_last_loss_difference=gap,
                                         grid_index=seq["index"],
                                         final_loss=[float(v) for v in seq["loss"][:, -1]])


def build_parser_for_tests(argv: Sequence[str]) -> argparse.Namespace:
    """Parses ``optax-warmup sweep`` flags alone (tests)."""
    parser = argparse.ArgumentParser(prog="optax-warmup")
    add_parser(parser.add_subparsers())
    return parser.parse_args(["sweep", *argv])
