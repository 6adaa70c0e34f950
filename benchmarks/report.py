"""Renders ``results.json`` as ``RESULTS.md``: the machine, a verdict on each target, then one table per section.

``python -m benchmarks.report results.json > RESULTS.md`` re-renders saved results.
"""

from __future__ import annotations

import json
import sys

STEP_TARGET = 1.02  # (c) and (d) within 2% of the constant learning rate
JOIN_TARGET = 1.0  # a 32-piece join no larger than an 8-piece one (no growth per piece)
SWEEP_TARGET = 10.0  # at K = 64

STEP_LABELS = {
    "a_constant": "(a) `optax.adamw(1e-3)`, constant float",
    "b_optax_schedule": "(b) `optax.warmup_cosine_decay_schedule`",
    "c_ours_schedule": "(c) `optax_warmup.warmup_cosine_decay_schedule`, same Python arguments",
    "d_ours_traced": "(d) ours, peak / warmup / decay traced (jit arguments)",
    "e_scale_by_warmup": "(e) `chain(adamw(1e-3), optax_warmup.scale_by_warmup(100))`",
    "e_adaptive_warmup": "(e) `optax_warmup.adaptive_warmup(adamw(1e-3), 100)`, `value=loss` passed",
}

# Diagnoses printed under a section only when its numbers show a miss; they describe the engine as it is now.
SIZE_DIAGNOSIS = """\
**Why ours is larger where it is.** A `PhaseSchedule` with concrete hyperparameters compiles to its formulas
with the constants folded in: up to four segments with different kinds are each evaluated with their own constants
and picked with selects on `count >= begin` (a constant segment that a neighbour already gives is dropped); more
segments, or segments sharing a kind, are told apart by selecting (or gathering) the fields that differ and
evaluating each kind once. What remains on top of Optax's formula is the clamp of negative counts, the progress
clip `min(max(t / L, 0), 1)` where a segment needs it, and the selects. A join of foreign pieces adds one
`lax.cond` / `lax.switch` region per piece (two lines each) and the index computation. See the table for which
schedule comes out larger."""

CURVE_DIAGNOSIS = """\
**Where ours can be slower.** On an array of counts every piece of a join of foreign pieces is evaluated and the
right one selected, as in Optax; through `jax.vmap` over the counts the `lax.switch` that evaluates one piece per
scalar count becomes a select among all of them (call the schedule on the array instead). A timing within the
run-to-run spread of this machine is not resolved: see the load average at the top."""


def _table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _median(d: dict) -> float:
    return d["median"]


def _spread(d: dict) -> float:
    """Interquartile range relative to the median: how much one sample moves around on this machine."""
    return (d["p75"] - d["p25"]) / d["median"] if d["median"] else float("nan")


def _verdicts(results: dict) -> list[list[str]]:
    rows = []
    step = results.get("step_overhead")
    if step:
        v = step["variants"]
        for name in ("c_ours_schedule", "d_ours_traced"):
            row, label = v[name], f"({name[:1]})"
            spread = _spread(row["step_ms"])
            share = row["extra_flops_vs_a"] / v["a_constant"]["flops"]
            rows.append(
                [
                    f"{label} step time within 2% of (a)",
                    f"{row['ratio_to_a']:.3f}x (a); its schedule adds {row['extra_flops_vs_a']:.0f} flops to the step "
                    f"({share:.1e} of it); run-to-run spread (IQR/median) {spread:.1%}",
                    _noisy_verdict(row["ratio_to_a"], STEP_TARGET, spread),
                ]
            )
            rows.append(
                [
                    f"{label} step time no slower than (b)",
                    f"{row['ratio_to_b']:.3f}x (b)",
                    _noisy_verdict(row["ratio_to_b"], 1.0, spread),
                ]
            )
    size = results.get("compile_size")
    if size:
        larger = [
            f"{name} ({r['ours']['stablehlo_ops']} vs {r['optax']['stablehlo_ops']} ops, "
            f"{r['ours']['stablehlo_ops'] / r['optax']['stablehlo_ops']:.1f}x)"
            for name, r in {**size["schedules"], **size["joins"], **size.get("foreign_joins", {})}.items()
            if r["ours"]["stablehlo_ops"] > r["optax"]["stablehlo_ops"]
        ]
        rows.append(
            [
                "never larger than Optax (StableHLO ops)",
                "larger: " + "; ".join(larger) + " (diagnosis under section 2)" if larger else "never larger",
                _ok(not larger),
            ]
        )
        g, g8 = size["join_growth"], size.get("join_growth_from_8")
        if g8 is not None:
            rows.append(
                [
                    "a join does not grow per piece: 32 pieces no larger than 8",
                    f"ours {g8['ours']:.2f}x from 8 to 32 pieces ({g['ours']:.2f}x from 2), Optax {g8['optax']:.1f}x "
                    f"({g['optax']:.1f}x from 2)",
                    _ok(g8["ours"] <= JOIN_TARGET),
                ]
            )
        foreign = size.get("foreign_joins")
        if foreign:
            cells = [
                f"{name.split('(')[-1][:-1]}: {r['ours']['stablehlo_lines']} vs {r['optax']['stablehlo_lines']}"
                for name, r in foreign.items()
            ]
            last = list(foreign.values())[-1]
            rows.append(
                [
                    "join of Optax's closures no larger than Optax's join (StableHLO lines, 32 pieces)",
                    "; ".join(cells),
                    _ok(last["ours"]["stablehlo_lines"] <= last["optax"]["stablehlo_lines"]),
                ]
            )
    curve = results.get("curve")
    if curve:
        r = curve["curves"].get("warmup_cosine_decay_schedule")
        if r:
            ratio = r["ours_direct"].get("speed_vs_optax") or (
                r["ours_direct"]["elements_per_s"] / r["optax_vmap"]["elements_per_s"])
            ratio_min = r["optax_vmap"]["ms"]["min"] / r["ours_direct"]["ms"]["min"]
            spread = _spread(r["ours_direct"]["ms"])
            flops = (r["ours_direct"].get("flops_per_count"), r["optax_vmap"].get("flops_per_count"))
            work = f"; {flops[0]:.0f} vs {flops[1]:.0f} flops per count" if None not in flops else ""
            rows.append(
                [
                    f"curve of the warmup-cosine ({curve['counts']:,} counts) at least as fast as Optax",
                    f"{ratio:.3f}x Optax's speed (median over rounds of the same-round ratio; {ratio_min:.3f}x on "
                    f"the fastest samples); spread {spread:.0%}{work}",
                    _noisy_verdict(1 / ratio, 1.0, spread),
                ]
            )
        f = curve["curves"].get("join_schedules of Optax pieces (32 pieces)")
        if f and "ours_scan" in f:
            speed = f["ours_scan"].get("speed_vs_optax") or (
                f["ours_scan"]["elements_per_s"] / f["optax_scan"]["elements_per_s"])
            rows.append(
                [
                    "join of 32 Optax closures, scalar count: only the active piece evaluated",
                    f"{speed:.1f}x Optax's speed, one count at a time in a `lax.scan`",
                    _ok(speed > 1.0),
                ]
            )
    sweep = results.get("sweep")
    if sweep:
        k = sweep["k"]
        if "64" in k:
            rows.append(["sweep >= 10x faster at K = 64", f"{k['64']['speedup']:.1f}x", _ok(k["64"]["speedup"] >= 10)])
        else:
            ks = ", ".join(f"K = {kk}: {r['speedup']:.1f}x" for kk, r in k.items())
            rows.append(["sweep >= 10x faster at K = 64", f"not measured in this mode ({ks})", "n/a"])
        st = sweep["setting"]
        rows.append(
            [
                f"sweep: same final losses (abs. diff <= {st['loss_atol']:g} + {st['loss_rtol']:g} x Optax's loss)",
                f"max abs. diff {max(r['max_abs_loss_diff'] for r in k.values()):.2g}, max rel. diff "
                f"{max(r['max_rel_loss_diff'] for r in k.values()):.2g}",
                _ok(all(r["losses_match"] for r in k.values())),
            ]
        )
    engine = results.get("sweep_engine")
    if engine:
        st = engine["setting"]
        speedup = engine["speedup_vs_one_jit_per_config"]
        rows.append([f"sweep engine >= 10x faster than one jit per config at K = 64 ({st['task']})",
                     f"{speedup:.1f}x at K = {st['k']}", _ok(speedup >= 10) if st["k"] >= 64 else "n/a"])
        if st["backend"] != "cpu":
            ratio = (engine["engine"]["config_steps_per_s_training"]
                     / engine["one_jit_per_config"]["config_steps_per_s_training"])
            rows.append(["sweep engine per-config-step throughput >= 5x a per-config loop (accelerator)",
                         f"{ratio:.1f}x", _ok(ratio >= 5)])
    execution = results.get("sweep_execution")
    if execution:
        worst = max(execution["rows"], key=lambda r: r["ratio_to_best"])
        rows.append([f"sweep engine <= {execution['target']:g}x the fastest hand-written loop, every task and K "
                     f"({execution['backend']})",
                     f"worst {worst['ratio_to_best']:.3f}x ({worst['task']}, K = {worst['k']})",
                     _ok(all(r["ratio_to_best"] <= execution["target"] for r in execution["rows"]))])
    return rows


def _noisy_verdict(ratio: float, limit: float, spread: float) -> str:
    """The verdict on a timing ratio, saying so when the miss is smaller than the machine's run-to-run spread."""
    if ratio <= limit:
        return _ok(True)
    miss = ratio / limit - 1
    if miss < spread:
        return f"{_ok(False)} by {miss:.1%}, less than the {spread:.0%} spread: not resolved on this machine"
    return f"{_ok(False)} by {miss:.1%}"


def _ok(ok: bool) -> str:
    return "**met**" if ok else "**MISSED**"


def _machine(results: dict) -> str:
    m = results["machine"]
    return (
        f"- Date: {m['date_utc']}; mode: `{results['mode']}`"
        f"{' (`--quick`: smaller model, fewer rounds; not the numbers to quote)' if results['mode'] == 'quick' else ''}"
        f"; total {results.get('total_s', 0):.0f} s\n"
        f"- Machine: {m['cpu']}, {m['logical_cores']} logical cores; {m['platform']}; JAX backend "
        f"`{m['jax_backend']}` ({', '.join(m['devices'])})\n"
        f"- Load average (1, 5, 15 min) at start {m.get('load_average_start')}, at end {m.get('load_average_end')}"
        " (above the core count means other processes competed for the CPU and timings are noisy)\n"
        f"- Python {m['python']}, jax {m['jax']}, jaxlib {m['jaxlib']}, optax {m['optax']}, numpy {m['numpy']}; "
        f"optax_warmup at commit `{m.get('git_commit')}`\n"
    )


def _step_section(step: dict) -> str:
    s = step["setting"]
    rows = []
    for name, r in step["variants"].items():
        t = r["step_ms"]
        rows.append(
            [
                STEP_LABELS.get(name, name),
                f"{t['median']:.3f}",
                f"{t['p25']:.3f} to {t['p75']:.3f}",
                f"{r['ratio_to_a']:.3f}",
                f"{r['min_ratio_to_a']:.3f}",
                f"{r['flops']:.4g}",
                f"{r['extra_flops_vs_a']:+.0f}",
            ]
        )
    out = (
        f"\n## 1. Step overhead\n\nJitted AdamW train step, MLP {'-'.join(map(str, s['sizes']))} "
        f"({s['params']:,} parameters), batch {s['batch']}, params and optimizer state donated in every variant. "
        f"Schedule: `warmup_cosine_decay_schedule{tuple(step['schedule_args'].values())}`. {s['rounds']} rounds, "
        f"each variant timed once per round over {s['inner']} consecutive steps (then `block_until_ready`), in "
        "rotating order. Ratio = median over rounds of (variant time / (a) time in the same round); min / min (a) "
        "compares the fastest samples, the ones least disturbed by other processes. "
        "Flops = `cost_analysis()` of the whole compiled step: the schedule's own cost is the difference to (a), "
        "exact and free of timing noise.\n\n"
    )
    headers = ["variant", "median ms/step", "p25 to p75", "ratio to (a)", "min / min (a)", "step flops", "flops vs (a)"]
    out += _table(headers, rows)
    for name, why in step.get("skipped", {}).items():
        out += f"\n- `{name}` present in the package but not measured: `{why}`\n"
    if not any(n.startswith("e_") for n in {**step["variants"], **step.get("skipped", {})}):
        out += "\n(e) rows are absent: `optax_warmup` has no `scale_by_warmup` / `adaptive_warmup` yet.\n"
    return out


def _size_rows(rows: dict) -> list[list]:
    out = []
    for name, r in rows.items():
        o, x = r["ours"], r["optax"]
        out.append(
            [
                name,
                f"{o['stablehlo_ops']} / {x['stablehlo_ops']}",
                f"{o['stablehlo_ops'] / max(x['stablehlo_ops'], 1):.2f}",
                f"{o['hlo_instructions']} / {x['hlo_instructions']}",
                f"{o['flops']:.0f} / {x['flops']:.0f}",
                f"{_median(o['lower_ms']):.1f} / {_median(x['lower_ms']):.1f}",
                f"{_median(o['compile_ms']):.1f} / {_median(x['compile_ms']):.1f}",
            ]
        )
    return out


def _size_section(size: dict) -> str:
    headers = ["schedule", "StableHLO ops", "ratio", "optimized HLO instr.", "flops", "lower ms", "compile ms"]
    out = (
        "\n## 2. Compiled size and compile time (each cell: ours / Optax)\n\n"
        "Program: `jax.jit(lambda count: schedule(count))` for a scalar int32 count, the same Python arguments for "
        "both libraries (see `benchmarks/compile_size.py`).\n"
        "- **StableHLO ops**: non-blank lines of `jax.jit(f).lower(count).as_text()` except `module`, "
        "`func.func`, `return` / `func.return` / `stablehlo.return`, lines starting with `}` and block labels "
        "(`^bb`): one line per operation. A private function (`@clip`, `@_where`, `@_take`) counts once however "
        "often it is called; each call is one op. Same definition as the Optax research note "
        "(`optax_anchor.md` §2(d)), whose 45 / 178 / 706 ops for Optax's 2 / 8 / 32-piece joins this reproduces.\n"
        "- **Optimized HLO instr.**: instruction lines of `lower().compile().as_text()` (parameters excluded, "
        "fusion bodies included): the program XLA actually runs, after constant folding.\n"
        "- **Flops**: `cost_analysis()['flops']` of the compiled program.\n"
        f"- **lower ms / compile ms**: median over {size['rounds']} rounds of `lower()` (trace and lower) and "
        "`compile()`, each after `jax.clear_caches()` with a freshly built schedule, ours and Optax's alternating.\n\n"
    )
    out += _table(headers, _size_rows(size["schedules"]))
    g = size["join_growth"]
    out += (
        f"\n### `join_schedules` with more pieces\n\nPieces alternate `linear_schedule(1.0, 0.1, 100)` and "
        f"`cosine_decay_schedule(1.0, 100, 0.1)`, 100 steps each. Growth of StableHLO ops from 2 to 32 pieces: "
        f"ours {g['ours']:.2f}x, Optax {g['optax']:.1f}x (ours at 2 pieces evaluates each piece with its constants "
        "folded; from 5 pieces on, one comparison and one gather, whatever the number of pieces).\n\n"
    )
    out += _table(headers, _size_rows(size["joins"]))
    foreign = size.get("foreign_joins")
    if foreign:
        out += (
            "\n### `join_schedules` of Optax's closures\n\nThe same pieces built by Optax (`optax.linear_schedule`, "
            "`optax.cosine_decay_schedule`), joined by ours (each a function segment; a scalar count evaluates only "
            "the active one, in a `lax.cond` / `lax.switch`) and by `optax.join_schedules` (every piece evaluated, "
            "then selected). **StableHLO lines** counts every line of the module, region braces and returns "
            "included.\n\n"
        )
        rows = [
            [name, f"{r['ours']['stablehlo_lines']} / {r['optax']['stablehlo_lines']}", *row[1:]]
            for (name, r), row in zip(foreign.items(), _size_rows(foreign), strict=True)
        ]
        out += _table(["schedule", "StableHLO lines", *headers[1:]], rows)
    if any(
        r["ours"]["stablehlo_ops"] > r["optax"]["stablehlo_ops"]
        for r in {**size["schedules"], **size["joins"], **(foreign or {})}.values()
    ):
        out += "\n" + SIZE_DIAGNOSIS + "\n"
    return out


def _sweep_section(sweep: dict) -> str:
    s = sweep["setting"]
    out = (
        f"\n## 3. Sweep: one compile for K configurations\n\nMLP {'-'.join(map(str, s['sizes']))} "
        f"({s['params']:,} parameters) regression on {s['examples']} examples, {s['steps']} full-batch AdamW steps "
        "(`lax.scan`), `warmup_cosine_decay_schedule(0, peak, warmup_steps, steps)`; K configurations of peak "
        "(log-spaced 1e-3 to 3e-2) x warmup_steps (0 to steps/2). **Ours**: one `jit(vmap(train))` over the K "
        "configurations, hyperparameters traced. **Optax way**: for each configuration a `jit` with the Python "
        "numbers baked into `optax.warmup_cosine_decay_schedule`, compiled and run. Wall = from cold caches "
        f"(`jax.clear_caches()`) to finished final losses, median of {s['rounds']} interleaved rounds; speedup = "
        "median over rounds of Optax wall / ours wall.\n\n"
    )
    rows = []
    for k, r in sweep["k"].items():
        rows.append(
            [
                k,
                f"{_median(r['ours_wall_s']):.2f} ({_median(r['ours_compile_s']):.2f} + "
                f"{_median(r['ours_run_s']):.2f})",
                f"{_median(r['optax_wall_s']):.2f} ({_median(r['optax_compile_s']):.2f} + "
                f"{_median(r['optax_run_s']):.2f})",
                f"{r['speedup']:.1f}x",
                f"{r['max_abs_loss_diff']:.2g} / {r['max_rel_loss_diff']:.2g}",
            ]
        )
    headers = ["K", "ours wall s (compile + run)", "Optax wall s (compile + run)", "speedup", "max loss diff abs / rel"]
    out += _table(headers, rows)
    return out


def _curve_section(curve: dict) -> str:
    out = (
        f"\n## 4. Curve evaluation\n\nOne jitted evaluation of the schedule at counts 0 to {curve['counts']:,} - 1 "
        f"(int32), compiled beforehand; median of {curve['rounds']} interleaved calls. Optax through `jax.vmap`; "
        "ours through `jax.vmap` and called directly on the array. **scan**: "
        f"{curve.get('scan_counts', 0):,} counts over the joins' 3,200 steps, one scalar count at a time in a "
        "`lax.scan` (a training loop's view; Optax's join evaluates every piece, ours only the active one).\n\n"
    )
    rows = []
    variants = ("optax_vmap", "ours_vmap", "ours_direct", "optax_scan", "ours_scan")
    for name, r in curve["curves"].items():
        for variant in (v for v in variants if v in r):
            flops = r[variant].get("flops_per_count")
            speed = r[variant].get("speed_vs_optax")
            rows.append(
                [name, variant, f"{r[variant]['ms']['median']:.2f}", f"{r[variant]['ms']['min']:.2f}",
                 f"{r[variant]['elements_per_s'] / 1e6:.1f}", "—" if speed is None else f"{speed:.2f}x",
                 "—" if flops is None else f"{flops:.1f}"]
            )
    headers = ["schedule", "variant", "median ms", "min ms", "M elements/s", "speed vs Optax", "flops / count"]
    out += _table(headers, rows)
    slower = any(
        r[v]["elements_per_s"] < r[f"optax_{v.split('_')[1]}" if v.endswith("scan") else "optax_vmap"]["elements_per_s"]
        for r in curve["curves"].values()
        for v in ("ours_vmap", "ours_direct", "ours_scan")
        if v in r
    )
    if slower:
        out += "\n" + CURVE_DIAGNOSIS + "\n"
    return out


def _engine_section(engine: dict) -> str:
    s = engine["setting"]
    out = (
        f"\n## 5. Sweep engine: K = {s['k']} configurations of the digits task\n\n"
        f"MLP {s['hidden']} on scikit-learn's digits, batch {s['batch_size']}, {s['steps']} AdamW steps under "
        "`warmup_cosine_decay_schedule`, K configurations of peak (log-spaced 1e-3 to 1e-1) x warmup_steps "
        f"(0 to steps / 2), no evaluation, {s['devices']} {s['backend']} device(s). **Engine**: `sweep.run` "
        f"(strategy {s['strategy']}, {s['steps_per_call']} steps per device call). **Engine, 1 step per call**: "
        "`steps_per_call=1`. **One jit per config**: `run_sequential` with Optax's own schedule. Wall from cold "
        "caches; compiles counted from JAX's monitoring events.\n\n"
    )
    rows = []
    for name, label in (("engine", "engine"), ("engine_one_step_per_call", "engine, 1 step per call"),
                        ("one_jit_per_config", "one jit per config")):
        r = engine[name]
        rows.append([label, f"{r['wall_s']:.1f}", str(r["compiles"]), f"{r['config_steps_per_s']:,.0f}",
                     f"{r['config_steps_per_s_training']:,.0f}"])
    out += _table(["way", "wall s", "compiles", "config-steps / s (whole call)",
                   "config-steps / s (training, compiles excluded)"], rows)
    out += ("\nThe engine's compiles are its one training program plus small ones (initial parameters, optimizer "
            "states, data keys), the same number whatever K; one jit per config compiles a step per config.\n")
    out += (f"\nSpeedup over one jit per config: {engine['speedup_vs_one_jit_per_config']:.1f}x; over one step per "
            f"call: {engine['speedup_vs_one_step_per_call']:.2f}x. Losses of the first 20 steps agree to "
            f"{engine['max_rel_loss_diff_first_20_steps']:.2g} (relative); last-step losses differ by "
            f"{engine['median_rel_last_loss_diff']:.2g} (median, relative; chaotic high-LR runs diverge from "
            "float rounding).\n")
    return out


EXECUTION_LABELS = {"a_one_jit_per_config": "(a) one jit per config",
                    "b_one_jit_sequential": "(b) one jit, configs one after another",
                    "c_one_jit_vmapped": "(c) one jit, vmapped over configs"}


def _execution_section(ex: dict) -> str:
    out = ("\n## 7. Sweep engine against the loops a user writes\n\n"
           "`benchmarks/sweep_execution.py`: an MLP (64-128-128-10) and a CNN (conv 16, BatchNorm, dropout 0.1, "
           "dense) on scikit-learn's digits, a Transformer LM (2 Pre-LN blocks, d_model 64, context 32) on random "
           "bytes; K configs of peak (log-spaced 1e-3 to 1e-2) x 4 warmups, AdamW under "
           "`warmup_cosine_decay_schedule`; every way trains the same models from the same parameters on the same "
           f"batches. Wall time of the whole call from cold caches (tracing, compiling, initialising, training, "
           f"reading the losses back); backend {ex['backend']} ({ex['device']}, {ex['devices']} device(s)). "
           + ("Each way ran twice in each row, mirrored (engine, (a), (b), (c), (c), (b), engine; (a), 4-10x "
              "slower than the others, once): a time is the faster of its two runs (both in results.json), and the "
              "ratio to the fastest baseline is also given run by run (first runs, last runs).\n\n"
              if all(len(r[m].get("wall_s_runs", [])) == 2 for r in ex["rows"] for m in
                     ("b_one_jit_sequential", "c_one_jit_vmapped")) else
              "The engine ran first and last in each row: its time is the faster of the two (both in "
              "results.json), and its ratio to the fastest baseline is given for both runs.\n\n"))
    m = ex.get("machine")
    if m:  # run on its own (python -c / the section alone): its own date and load
        out += (f"Run on its own: {m['date_utc']}, commit `{m.get('git_commit')}`, {m['cpu']}, {m['logical_cores']} "
                f"cores, load average (1, 5, 15 min) {ex.get('load_average_end')} when it ended.\n\n")
    rows = []
    for r in ex["rows"]:
        e = r["engine"]
        rows.append([r["task"], str(r["k"]), str(r["steps"]), f"{e['wall_s']:.1f} ({e['strategy']})",
                     *(f"{r[m]['wall_s']:.1f}" for m in EXECUTION_LABELS),
                     EXECUTION_LABELS[r["best_baseline"]][:3],
                     f"{r['ratio_to_best']:.3f} ({', '.join(f'{x:.3f}' for x in r['ratio_to_best_runs'])})",
                     f"{e['config_steps_per_s']:,.0f}", f"{r[r['best_baseline']]['config_steps_per_s']:,.0f}",
                     _ok(r["ratio_to_best"] <= ex["target"])])
    out += _table(["task", "K", "steps", "engine s", "(a) s", "(b) s", "(c) s", "best", "engine / best",
                   "engine config-steps/s", "best config-steps/s", f"<= {ex['target']:g}x"], rows)
    out += "\n" + "; ".join(f"{label}" for label in EXECUTION_LABELS.values()) + ".\n"
    diffs = max(max(v for k, v in r["max_rel_loss_diff_first_steps"].items()) for r in ex["rows"])
    out += (f"\nThe same models: the losses of the first steps agree with (b)'s to {diffs:.2g} (relative) for "
            "every way.\n")
    strategies = {r["engine"]["strategy"]: r["engine"]["reason"] for r in ex["rows"]}
    for strategy, reason in strategies.items():
        out += f"\nThe engine chose `{strategy}`: {reason}.\n"
    return out


def render(results: dict) -> str:
    out = "# optax_warmup benchmarks\n\nGenerated by `python -m benchmarks"
    out += " --quick`" if results["mode"] == "quick" else "` (`make bench`)"
    out += "; what each number means: `benchmarks/README.md`.\n\n" + _machine(results)
    out += "\n## Targets\n\n" + _table(["target", "measured", "verdict"], _verdicts(results))
    for key, section in (
        ("step_overhead", _step_section),
        ("compile_size", _size_section),
        ("sweep", _sweep_section),
        ("curve", _curve_section),
        ("sweep_engine", _engine_section),
        ("sweep_execution", _execution_section),
    ):
        if key in results:
            out += section(results[key])
    return out


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        sys.stdout.write(render(json.load(f)))
