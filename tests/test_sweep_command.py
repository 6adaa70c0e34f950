"""`optax-warmup sweep`: end to end on a tiny grid, presets, every bad input refused before the first compile with
one line, Ctrl-C keeping what was computed, resume from a checkpoint."""

import os
import subprocess
import sys

import numpy as np
import optax
import pytest

from optax_warmup import cli, sweep
from optax_warmup.sweep import command

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = command.TINY_FLAGS


def _is_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_sweep_command_writes_table_results_and_figures_and_compares_sequential(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert cli.main(["sweep", *TINY, "--steps", "10", "--lrs", "3e-2", "--warmups", "0,50%",
                     "--compare-sequential", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for expected in ("sweep: 2 configs (1 warmup_shape x 2 warmup_steps x 1 peak_value x 1 seed), 10 steps",
                     "recommendation:", "max|g| early",
                     "ratio sequential / batched", f"outputs in {out}"):
        assert expected in printed
    for name in ("heatmap_final_loss.png", "loss_curves.png", "learning_rates.png"):
        assert _is_png(out / name), name

    result = sweep.load(out / "results.json")  # reads back into the same table
    assert result.table() == (out / "table.txt").read_text()[:-1]
    assert [(c["peak_value"], c["warmup_steps"]) for c in result.configs] == [(3e-2, 0), (3e-2, 5)]
    assert result.curves["loss"].shape == (2, 10) and result.eval_steps[0] == 0 and result.eval_steps[-1] == 10
    # the recorded learning rates are Optax's own schedule with the same (Python float) arguments
    for c, lrs in zip(result.configs, result.curves["lr"], strict=True):
        reference = optax.warmup_cosine_decay_schedule(0.0, c["peak_value"], c["warmup_steps"], 10,
                                                       0.1 * c["peak_value"])
        np.testing.assert_allclose(lrs, [float(reference(t)) for t in range(10)], rtol=1e-5, atol=1e-10)
    # one jit per config with Optax's schedule trains the same models (same data, same init)
    seq = result.settings["sequential"]
    assert seq["configs"] == 2 and seq["wall_s"] > 0
    np.testing.assert_allclose(seq["final_loss"], result.curves["loss"][:, -1], rtol=1e-4)


def test_quick_preset_yields_to_explicit_flags():
    s = command.settings(command.build_parser_for_tests(["--quick", "--steps", "7", "--norm", "post",
                                                         "--no-qk-norm", "--axis", "b2=0.99,0.999"]))
    assert s["steps"] == 7 and s["options"] == dict(d_model=32, valid_windows=128, pre_ln=False, qk_norm=False)
    assert s["axes"]["warmup_steps"] == [0, 0.25] and s["axes"]["b2"] == [0.99, 0.999]
    assert list(s["axes"])[-1] == "seed" and s["axes"]["seed"] == [0, 1]
    s = command.settings(command.build_parser_for_tests(["--warmups", "0,10%,50,1e2", "--seeds", "3"]))
    assert s["axes"]["warmup_steps"] == [0, "10%", 50, 100] and s["axes"]["seed"] == [0, 1, 2]


BAD = [
    (["--shapes", "linear,geometric"], "geometric"),
    (["--shapes", "bogus"], "bogus"),
    (["--warmups", "0,8"], "must be shorter than the run (8 steps)"),
    (["--warmups", "2.5"], "whole number of steps"),
    (["--axis", "momentum=0.9"], "axis 'momentum' is never read"),
    (["--task", "digits", "--d-model", "8"], "only apply to --task bytelm"),
    (["--task", "no_such_module:make"], "cannot import 'no_such_module'"),
    (["--task", "nonsense"], "neither a built-in task"),
]


@pytest.mark.parametrize("flags, message", BAD, ids=[m for _, m in BAD])
def test_sweep_rejects_bad_settings_in_one_line_before_training(flags, message, capsys, tmp_path):
    base = [] if "--task" in flags else TINY  # the tiny flags are the byte LM's
    assert cli.main(["sweep", *base, "--no-progress", "--out", str(tmp_path / "o"), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("optax-warmup sweep: ") and err.count("\n") == 1


FLAG_ERRORS = [
    (["--lrs=-1e-3"], "argument --lrs: learning rates must be > 0, got -1e-3"),
    (["--lrs", "0"], "argument --lrs: learning rates must be > 0"),
    (["--lrs", "fast"], "argument --lrs: must be a number, got 'fast'"),
    (["--seeds", "0"], "argument --seeds: must be >= 1, got 0"),
    (["--steps", "0"], "argument --steps: must be >= 1, got 0"),
    (["--steps", "-5"], "argument --steps: must be >= 1, got -5"),
    (["--warmups", "-3"], "argument --warmups: a warmup must be >= 0"),
    (["--axis", "peak_value"], "argument --axis: write an axis as NAME=V1,V2"),
    (["--b2", "1.5"], "argument --b2: must be in [0, 1), got 1.5"),
]


@pytest.mark.parametrize("flags, message", FLAG_ERRORS, ids=[m for _, m in FLAG_ERRORS])
def test_flag_errors_name_the_flag(flags, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["sweep", *flags])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "_floats" not in err


def test_an_existing_file_at_out_is_refused_before_anything_runs(tmp_path, capsys):
    a_file = tmp_path / "results"
    a_file.write_text("not a directory")
    assert cli.main(["sweep", *TINY, "--out", str(a_file)]) == 2
    assert capsys.readouterr().err == f"optax-warmup sweep: --out: {str(a_file)!r} exists and is not a directory\n"


def test_help_describes_every_option_and_the_quick_grid():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["sweep"]
    for action in sub._actions:
        if action.dest not in ("help", "max_files"):
            assert action.help, action.dest
    text = " ".join(sub.format_help().split())
    assert "200 steps, d_model 32, warmups 0 and 25%" in text
    examples = sub.format_help().split("examples:")[1]
    assert "  optax-warmup sweep --task mypkg.tasks:make_task --axis peak_value=1e-3,1e-2 --axis" in examples


def _sweep_command(tmp_path, *extra, env_extra=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, "tests"),
                                                       os.environ.get("PYTHONPATH", "")]), **(env_extra or {}))
    flags = ["--task", "sweep_tasks:command_line_task", "--axis", "peak_value=1e-2,1e-1", "--axis",
             "warmup_steps=0,4", "--steps", "24", "--eval-every", "8", "--steps-per-call", "4", "--no-progress",
             "--checkpoint-dir", str(tmp_path / "ckpt"), *extra]
    return subprocess.run([sys.executable, "-m", "optax_warmup", "sweep", *flags], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_ctrl_c_keeps_the_results_and_the_same_command_resumes(tmp_path):
    # The task's data stream sends SIGINT when batch 10 is drawn (during the call that trains steps 4-7):
    # that call finishes, the sweep is saved at step 8 and the partial results are written.
    out = str(tmp_path / "out")
    first = _sweep_command(tmp_path, "--out", out, env_extra={"OPTAX_WARMUP_TEST_INTERRUPT_AT": "10"})
    assert first.returncode == 130, first.stderr[-2000:]
    assert "Traceback" not in first.stderr + first.stdout
    assert "sweep interrupted by SIGINT after 8 of 24 steps" in first.stdout
    assert f"partial results in {out}" in first.stdout and "ckpt to resume" in first.stdout
    partial = sweep.load(os.path.join(out, "results.json"))
    assert partial.completed_steps == 8 and partial.interrupted == "SIGINT"

    second = _sweep_command(tmp_path, "--out", out)
    assert second.returncode == 0, second.stderr[-2000:]
    resumed = sweep.load(os.path.join(out, "results.json"))
    straight = _sweep_command(tmp_path / "fresh", "--out", str(tmp_path / "fresh_out"))
    assert straight.returncode == 0, straight.stderr[-2000:]
    fresh = sweep.load(tmp_path / "fresh_out" / "results.json")
    assert resumed.completed_steps == 24
    np.testing.assert_array_equal(resumed.curves["loss"], fresh.curves["loss"])
    np.testing.assert_array_equal(resumed.eval["loss"], fresh.eval["loss"])
