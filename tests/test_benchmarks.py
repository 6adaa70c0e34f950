"""The benchmark suite keeps running: ``python -m benchmarks --quick`` end to end, sane numbers, no timing targets.

One test function on purpose: under ``pytest -n 2`` a shared fixture would run the benchmarks once per worker.
"""

from __future__ import annotations

import json
import math
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DROP_INS = {
    "constant_schedule", "linear_schedule", "polynomial_schedule", "cosine_decay_schedule", "exponential_decay",
    "piecewise_constant_schedule", "piecewise_interpolate_schedule", "warmup_constant_schedule",
    "warmup_cosine_decay_schedule", "warmup_exponential_decay_schedule", "linear_onecycle_schedule",
    "cosine_onecycle_schedule", "sgdr_schedule (4 cycles)",
}  # fmt: skip


def _positive(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


def _check_step_overhead(step: dict) -> None:
    variants = step["variants"]
    assert {"a_constant", "b_optax_schedule", "c_ours_schedule", "d_ours_traced"} <= set(variants)
    for name, row in variants.items():
        assert _positive(row["step_ms"]["median"]) and _positive(row["ratio_to_a"]) and _positive(row["flops"]), name
    # The constant learning rate is the reference: its own ratio is exactly 1 and it adds no flops to itself.
    assert variants["a_constant"]["ratio_to_a"] == 1.0 and variants["a_constant"]["extra_flops_vs_a"] == 0


def _check_compile_size(size: dict) -> None:
    assert DROP_INS <= set(size["schedules"])
    assert set(size["joins"]) == {f"join_schedules ({n} pieces)" for n in (2, 8, 32)}
    assert set(size["foreign_joins"]) == {f"join_schedules of Optax pieces ({n} pieces)" for n in (2, 8, 32)}
    for name, row in {**size["schedules"], **size["joins"], **size["foreign_joins"]}.items():
        for lib in ("ours", "optax"):
            assert _positive(row[lib]["stablehlo_ops"]) and _positive(row[lib]["stablehlo_lines"]), (name, lib)
            assert _positive(row[lib]["lower_ms"]["median"]) and _positive(row[lib]["compile_ms"]["median"])
    # Optax's join evaluates every piece, so its program grows about linearly with the pieces (the research note's
    # 45 / 178 / 706 ops); the measure must see that growth in this run, whatever the JAX and Optax versions.
    optax_ops = [size["joins"][f"join_schedules ({n} pieces)"]["optax"]["stablehlo_ops"] for n in (2, 8, 32)]
    assert optax_ops[0] < optax_ops[1] < optax_ops[2] and optax_ops[2] / optax_ops[0] > 8, optax_ops
    assert size["join_growth"]["optax"] == optax_ops[2] / optax_ops[0]
    # The same pieces built by Optax cost the same in both joins' measure: ours differs only by how it joins.
    foreign = size["foreign_joins"]["join_schedules of Optax pieces (32 pieces)"]
    assert foreign["optax"]["stablehlo_ops"] == optax_ops[2]


def _check_sweep(sweep: dict) -> None:
    k8 = sweep["k"]["8"]
    assert _positive(k8["ours_wall_s"]["median"]) and _positive(k8["optax_wall_s"]["median"])
    assert _positive(k8["speedup"])
    assert len(k8["final_loss_ours"]) == len(k8["final_loss_optax"]) == 8
    assert all(_positive(x) for x in k8["final_loss_ours"])
    assert k8["losses_match"], (k8["max_abs_loss_diff"], k8["max_rel_loss_diff"])


def _check_curve(curve: dict) -> None:
    for name, row in curve["curves"].items():
        for variant in ("optax_vmap", "ours_vmap", "ours_direct", "optax_scan", "ours_scan"):
            assert _positive(row[variant]["elements_per_s"]), (name, variant)
        for variant in ("optax_vmap", "ours_vmap", "ours_direct"):
            assert _positive(row[variant]["flops_per_count"]), (name, variant)
        assert row["max_abs_diff_vs_optax"] < 1e-5, name


def _check_sweep_engine(engine: dict) -> None:
    assert engine["setting"]["k"] == 8 and engine["setting"]["task"] == "digits"
    for way in ("engine", "engine_one_step_per_call", "one_jit_per_config"):
        assert _positive(engine[way]["wall_s"]) and _positive(engine[way]["config_steps_per_s"]), way
    # one jit per config compiles at least once per config; the engine compiles one training program
    assert engine["one_jit_per_config"]["compiles"] >= 8
    assert engine["engine"]["compiles"] < engine["one_jit_per_config"]["compiles"]
    assert engine["max_rel_loss_diff_first_20_steps"] < 1e-4  # the same models, trained two ways


def _check_sweep_execution(ex: dict) -> None:
    assert [(r["task"], r["k"]) for r in ex["rows"]] == [("mlp", 4)]
    row = ex["rows"][0]
    for way in ("engine", "a_one_jit_per_config", "b_one_jit_sequential", "c_one_jit_vmapped"):
        assert _positive(row[way]["wall_s"]) and _positive(row[way]["config_steps_per_s"]), way
    assert row["best_baseline"] in ("a_one_jit_per_config", "b_one_jit_sequential", "c_one_jit_vmapped")
    assert row["ratio_to_best"] == pytest.approx(row["engine"]["wall_s"] / row[row["best_baseline"]]["wall_s"])
    assert row["engine"]["strategy"] == "vmap"  # auto on CPU for a light step (about 5 MFLOP per config-step)
    # the same models, trained four ways
    assert max(row["max_rel_loss_diff_first_steps"].values()) < 1e-4, row["max_rel_loss_diff_first_steps"]


def test_quick_benchmarks_write_every_section_with_sane_numbers(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    markdown = (tmp_path / "RESULTS.md").read_text()

    assert results["mode"] == "quick"
    assert results["machine"]["jax"] and results["machine"]["optax"] and results["machine"]["cpu"]
    for heading in ("## Targets", "## 1. Step overhead", "## 2. Compiled size", "## 3. Sweep", "## 4. Curve",
                    "## 5. Sweep engine", "## 7. Sweep engine against the loops a user writes"):
        assert heading in markdown, heading
    _check_step_overhead(results["step_overhead"])
    _check_compile_size(results["compile_size"])
    _check_sweep(results["sweep"])
    _check_curve(results["curve"])
    _check_sweep_engine(results["sweep_engine"])
    _check_sweep_execution(results["sweep_execution"])
