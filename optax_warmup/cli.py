"""The `optax-warmup` command (also `python -m optax_warmup`).

    optax-warmup sweep [--quick] [--lrs ...] [--warmups ...] [--out DIR]   train a grid of models at once
    optax-warmup plot SPEC [SPEC ...] [--steps N] [--out PNG]               draw schedules to a PNG
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import inspect
import json
import os
import sys
from collections.abc import Sequence

from optax_warmup._extras import MissingExtra
from optax_warmup._version import __version__

# `--quick`: a smoke test that runs in under a minute on 2 CPU cores. Flags given explicitly still win.
QUICK = dict(steps=200, d_model=32, warmups=(0, 0.25), valid_windows=128)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(t) for t in text.split(",") if t.strip())


def _warmups(text: str) -> tuple[float | int, ...]:
    """'0,0.1,25%,50,1e2' -> (0, 0.1, 0.25, 50, 100): a number in [0, 1) or a % is a fraction of --steps,
    a whole number is steps (as in optax_warmup.config)."""
    out: list[float | int] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        value = float(token[:-1]) / 100 if token.endswith("%") else float(token)
        if token.endswith("%") and not 0 <= value < 1:
            raise argparse.ArgumentTypeError(f"a warmup fraction must be in [0%, 100%), got {token}")
        out.append(value if 0 < value < 1 else int(value) if value == int(value) else value)
    return tuple(out)


def _strings(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _add_sweep_parser(sub) -> None:
    p = sub.add_parser("sweep", help="train a grid of warmup settings simultaneously (one compiled step)",
                       description="Train a grid of small byte-level Transformer LMs on the standard "
                                   "library's source, one config per (peak lr, warmup, shape, seed), all in "
                                   "one compiled step; write a table, results.json and figures.")
    g = p.add_argument_group("grid")
    g.add_argument("--steps", type=int, help="training steps per config (default 300)")
    g.add_argument("--lrs", type=_floats,
                   help="peak learning rates, comma-separated (default 1e-3,3e-3,1e-2,3e-2,1e-1)")
    g.add_argument("--warmups", type=_warmups,
                   help="warmup lengths: whole numbers are steps, numbers in [0, 1) or 10%% are fractions "
                        "of --steps (default 0,0.02,0.1,0.25)")
    g.add_argument("--shapes", type=_strings,
                   help="warmup shapes, e.g. linear,cosine,exponential (default linear)")
    g.add_argument("--seeds", type=int, help="number of seeds, a vmapped axis like the others (default 2)")
    g.add_argument("--seed", type=int, help="base random seed (default 0)")
    m = p.add_argument_group("model and training")
    m.add_argument("--d-model", type=int, help="model width (default 64)")
    m.add_argument("--layers", dest="n_layers", type=int, help="Transformer blocks (default 2)")
    m.add_argument("--heads", dest="n_heads", type=int, help="attention heads (default 4)")
    m.add_argument("--context", type=int, help="context length in bytes (default 32)")
    m.add_argument("--batch-size", type=int, help="windows per step (default 16)")
    m.add_argument("--norm", choices=("pre", "post"), help="Pre-LN (default) or Post-LN blocks")
    m.add_argument("--no-qk-norm", dest="qk_norm", action="store_false", default=None,
                   help="drop the parameter-free LayerNorm on queries and keys")
    m.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 0.01)")
    m.add_argument("--b2", type=float, help="AdamW b2 (default 0.999)")
    r = p.add_argument_group("run")
    r.add_argument("--quick", action="store_true",
                   help="a smoke-test grid that runs in under a minute on 2 cores")
    r.add_argument("--strategy", choices=("auto", "vmap", "map"),
                   help="how each device runs its configs: vmap (batched) or map (a lax.map loop, also one "
                        "compile); auto = map on CPU, vmap on accelerators (default)")
    r.add_argument("--eval-every", type=int, help="validation every N steps (default: 10 evaluations)")
    r.add_argument("--valid-windows", type=int, help="validation windows (default 256)")
    r.add_argument("--max-files", type=int, help=argparse.SUPPRESS)  # tests: read fewer stdlib files
    r.add_argument("--out", default=os.path.join("runs", "sweep"),
                   help="output directory (default runs/sweep)")
    r.add_argument("--compare-sequential", action="store_true",
                   help="also run the grid with Optax's own schedule, one compile and run per config, and "
                        "compare wall times")
    r.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    r.add_argument("--distributed", action="store_true",
                   help="call jax.distributed.initialize() first (multi-host: run the same command on every "
                        "host; the config axis is sharded over all hosts' devices; process 0 writes the outputs)."
                        " Cloud TPU, SLURM, Open MPI and Kubernetes are detected; elsewhere give the next three")
    r.add_argument("--coordinator", metavar="HOST:PORT", help="with --distributed: process 0's address")
    r.add_argument("--num-processes", type=int, help="with --distributed: how many processes")
    r.add_argument("--process-id", type=int, help="with --distributed: this process's index")
    p.set_defaults(func=_sweep)


def sweep_config(args: argparse.Namespace):
    from optax_warmup.sweep.train import SweepConfig

    values = dict(QUICK) if args.quick else {}
    for field in dataclasses.fields(SweepConfig):
        given = getattr(args, field.name, None)
        if given is not None:
            values[field.name] = given
    if args.norm is not None:
        values["pre_ln"] = args.norm == "pre"
    return SweepConfig(**values)


def _sweep(args: argparse.Namespace) -> int:
    import numpy as np

    from optax_warmup.sweep import report, train

    if args.distributed:
        import jax

        jax.distributed.initialize(coordinator_address=args.coordinator, num_processes=args.num_processes,
                                   process_id=args.process_id)
    main_process = _is_main_process()
    say = print if main_process else (lambda *a, **k: None)  # one copy of the report, from process 0
    cfg = sweep_config(args)
    try:
        grid = train.build_grid(cfg)
    except ValueError as e:
        print(f"optax-warmup sweep: {e}", file=sys.stderr)
        return 2
    say(f"sweep: {len(grid)} configs ({len(cfg.lrs)} lrs x {len(cfg.warmups)} warmups x "
        f"{len(cfg.shapes)} shapes x {cfg.seeds} seeds), {cfg.steps} steps, "
        f"strategy {train.resolve_strategy(cfg.strategy)}", flush=True)
    results = train.run_sweep(cfg, progress=args.progress and main_process)
    t = results["timing"]
    say(report.format_table(results))
    say(f"\ncompile {t['compile_s']:.1f} s, {1000 * t['step_s']:.0f} ms/step for {len(grid)} configs, "
        f"eval {t['eval_s']:.1f} s, total {t['total_s']:.1f} s on {results['settings']['devices']} "
        f"{results['settings']['backend']} device(s)")
    if args.compare_sequential:
        seq = train.run_sequential(cfg, progress=args.progress and main_process)
        batched = t["compile_s"] + t["train_s"]
        per_cfg_b, per_cfg_s = batched / len(grid), seq["wall_s"] / max(seq["configs"], 1)
        results["sequential"] = dict(seq, batched_train_s=batched)
        note = (f" ({seq['skipped']} non-linear configs skipped; per-config times compared)"
                if seq["skipped"] else "")
        say(f"\none compiled step for all {len(grid)} configs: {batched:.1f} s (compile + train, no eval)\n"
            f"optax.warmup_cosine_decay_schedule, one jit per config: {seq['wall_s']:.1f} s for "
            f"{seq['configs']} configs{note}, of which {seq['first_steps_s']:.1f} s in first steps "
            f"(compiles)\nratio sequential / batched: {per_cfg_s / per_cfg_b:.2f}x")
        batched_last = results["curves"]["loss"][-1, seq["grid_index"]]
        finite = np.isfinite(batched_last) & np.isfinite(seq["final_loss"])
        if finite.any():
            gap = np.max(np.abs(batched_last[finite] - np.asarray(seq["final_loss"])[finite]))
            say(f"largest difference in last-step loss, batched vs sequential: {gap:.2e}")
    if not main_process:
        return 0
    paths = report.write_outputs(results, args.out)
    say(f"\noutputs in {os.path.abspath(args.out)}:")
    for name, path in paths.items():
        say(f"  {name:<10} {path}")
    return 0


def _is_main_process() -> bool:
    import jax

    return jax.process_index() == 0


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
    _add_sweep_parser(sub)
    _add_plot_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MissingExtra as e:  # an optional dependency is not installed: one line naming the extra, no traceback
        print(f"optax-warmup: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
