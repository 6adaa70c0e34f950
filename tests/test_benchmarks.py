"""The benchmark suite keeps running: ``python -m benchmarks --quick`` end to end, sane numbers, no timing targets."""

from __future__ import annotations

import json
import math
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _positive(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "results.json").read_text()), (out / "RESULTS.md").read_text()


def test_quick_run_writes_every_section(quick_run):
    results, markdown = quick_run
    assert results["mode"] == "quick"
    for section in ("machine", "step_overhead", "compile_size", "sweep", "curve"):
        assert section in results, section
    for heading in ("## Targets", "## 1. Step overhead", "## 2. Compiled size", "## 3. Sweep", "## 4. Curve"):
        assert heading in markdown, heading
    assert results["machine"]["jax"] and results["machine"]["optax"] and results["machine"]["cpu"]


def test_step_overhead_numbers_are_sane(quick_run):
    variants = quick_run[0]["step_overhead"]["variants"]
    assert {"a_constant", "b_optax_schedule", "c_ours_schedule", "d_ours_traced"} <= set(variants)
    for name, row in variants.items():
        assert _positive(row["step_ms"]["median"]), name
        assert _positive(row["ratio_to_a"]), name
        assert _positive(row["flops"]), name
    # The constant learning rate is the reference: its own ratio is exactly 1.
    assert variants["a_constant"]["ratio_to_a"] == 1.0


def test_compile_sizes_cover_every_drop_in(quick_run):
    size = quick_run[0]["compile_size"]
    expected = {
        "constant_schedule", "linear_schedule", "polynomial_schedule", "cosine_decay_schedule", "exponential_decay",
        "piecewise_constant_schedule", "piecewise_interpolate_schedule", "warmup_constant_schedule",
        "warmup_cosine_decay_schedule", "warmup_exponential_decay_schedule", "linear_onecycle_schedule",
        "cosine_onecycle_schedule", "sgdr_schedule (4 cycles)",
    }  # fmt: skip
    assert expected <= set(size["schedules"])
    assert set(size["joins"]) == {f"join_schedules ({n} pieces)" for n in (2, 8, 32)}
    for name, row in {**size["schedules"], **size["joins"]}.items():
        for lib in ("ours", "optax"):
            assert _positive(row[lib]["stablehlo_ops"]), (name, lib)
            assert _positive(row[lib]["lower_ms"]["median"]) and _positive(row[lib]["compile_ms"]["median"])
    # Optax's join evaluates every piece, so its program grows with the pieces (research note: 45 -> 706 ops).
    assert size["joins"]["join_schedules (2 pieces)"]["optax"]["stablehlo_ops"] == 45
    assert size["joins"]["join_schedules (32 pieces)"]["optax"]["stablehlo_ops"] == 706


def test_sweep_runs_and_both_ways_agree(quick_run):
    k8 = quick_run[0]["sweep"]["k"]["8"]
    assert _positive(k8["ours_wall_s"]["median"]) and _positive(k8["optax_wall_s"]["median"])
    assert _positive(k8["speedup"])
    assert len(k8["final_loss_ours"]) == len(k8["final_loss_optax"]) == 8
    assert all(_positive(x) for x in k8["final_loss_ours"])
    assert k8["losses_match"], (k8["max_abs_loss_diff"], k8["max_rel_loss_diff"])


def test_curve_throughput_is_positive_and_values_match_optax(quick_run):
    curves = quick_run[0]["curve"]["curves"]
    for name, row in curves.items():
        for variant in ("optax_vmap", "ours_vmap", "ours_direct"):
            assert _positive(row[variant]["elements_per_s"]), (name, variant)
        assert row["max_abs_diff_vs_optax"] < 1e-5, name
