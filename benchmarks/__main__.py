"""``python -m benchmarks [--quick] [--out DIR] [--only SECTION ...]``: run the measurements, write the results.

Writes ``results.json`` (every number) and ``RESULTS.md`` (the tables and the verdict on each target) to ``--out``
(default: this package's folder). Everything runs in one process, one section after another.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

from benchmarks import _common, compile_size, curve, report, step_overhead, sweep, sweep_engine, sweep_execution

SECTIONS = {
    "step_overhead": step_overhead,
    "compile_size": compile_size,
    "sweep": sweep,
    "curve": curve,
    "sweep_engine": sweep_engine,
    "sweep_execution": sweep_execution,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: smaller model, fewer rounds, K=8 only")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).parent, help="output folder")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run only these sections")
    args = parser.parse_args(argv)

    results: dict = {"mode": "quick" if args.quick else "full", "machine": _common.machine()}
    start = time.perf_counter()
    for name in args.only or SECTIONS:
        t0 = time.perf_counter()
        print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
        results[name] = SECTIONS[name].run(quick=args.quick)
        results[name]["section_s"] = time.perf_counter() - t0
        print(f"[benchmarks] {name} done in {results[name]['section_s']:.1f} s", file=sys.stderr, flush=True)
    results["total_s"] = time.perf_counter() - start
    results["machine"]["load_average_end"] = _common.load_average()

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    text = report.render(results)
    searched = args.out / "search_results.json"  # section 6 runs on its own (python -m benchmarks.search): kept
    if searched.exists():
        from benchmarks import search

        saved = json.loads(searched.read_text())
        section = "\n" + search.render(saved, saved.get("machine"))
        marker = "\n## 7. "  # the sections in order: 6 before 7
        text = text.replace(marker, section + marker, 1) if marker in text else text + section
    (args.out / "RESULTS.md").write_text(text)
    print(
        f"[benchmarks] wrote {args.out / 'RESULTS.md'} and results.json in {results['total_s']:.1f} s", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
