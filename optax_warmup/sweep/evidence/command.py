"""``optax-warmup evidence NAME``: one command per experiment of ``docs/evidence.md``."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from optax_warmup.sweep.evidence import EXPERIMENTS

EXAMPLES = """examples:
  optax-warmup evidence methods                 warmup methods head to head (byte LM and digits), ~47 min
  optax-warmup evidence adaptive --size quick   the metric-adapted warmup, a few minutes
  optax-warmup evidence transfer --figures docs/img/evidence
  optax-warmup evidence methods --replot        redraw the report and figures of a finished run
"""


def add_parser(sub) -> None:
    p = sub.add_parser("evidence", help="run one experiment of the evidence page (docs/evidence.md)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
                       description="Run one experiment of docs/evidence.md and write its tables (report.md), "
                                   "numbers (summary.json), every sweep's results.json and its figures.")
    p.add_argument("experiment", choices=EXPERIMENTS)
    p.add_argument("--size", choices=("full", "quick", "tiny"), default="full",
                   help="full (the documented run, default), quick (a few minutes) or tiny (seconds, a smoke test)")
    p.add_argument("--out", help="output directory (default runs/evidence/EXPERIMENT)")
    p.add_argument("--figures", help="also copy the figures here (e.g. docs/img/evidence)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--replot", action="store_true",
                   help="no training: redraw report.md and the figures from the outputs already in --out")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"optax_warmup.sweep.evidence.{args.experiment}")
    out = args.out or os.path.join("runs", "evidence", args.experiment)
    try:
        if args.replot:
            summary = module.replot(out, figures=args.figures)
        else:
            summary = module.run(size=args.size, out=out, figures=args.figures, progress=args.progress)
    except (ValueError, ImportError, FileNotFoundError) as e:
        print(f"optax-warmup evidence: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("optax-warmup evidence: interrupted", file=sys.stderr)
        return 130
    with open(os.path.join(out, "report.md")) as f:
        print(f.read())
    print(json.dumps(summary["timing"]))
    print(f"outputs in {os.path.abspath(out)}")
    return 0
