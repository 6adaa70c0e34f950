"""The `optax-warmup` command: sweep end to end on a tiny grid, the plot command, safe schedule parsing."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import optax
import pytest

import optax_warmup
from optax_warmup import cli
from optax_warmup.sweep import report
from optax_warmup.sweep.train import TINY

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = dict(steps="--steps", d_model="--d-model", n_layers="--layers", n_heads="--heads", context="--context",
             batch_size="--batch-size", valid_windows="--valid-windows", max_files="--max-files", seeds="--seeds")
TINY_FLAGS = [arg for key, value in TINY.items() for arg in (FLAGS[key], str(value))] + ["--no-progress"]
SPEC = "warmup_cosine_decay_schedule(init_value=0,peak_value=1e-3,warmup_steps=100,decay_steps=1000)"


def _is_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_sweep_command_writes_table_results_and_figures_and_compares_sequential(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert cli.main(["sweep", *TINY_FLAGS, "--steps", "10", "--lrs", "3e-2", "--warmups", "0,50%",
                     "--compare-sequential", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for expected in ("LR sensitivity", "max|g| early", "ratio sequential / batched", f"outputs in {out}"):
        assert expected in printed
    for name in ("heatmap_val_loss.png", "loss_curves.png", "lr_schedules.png"):
        assert _is_png(out / name), name

    results = json.loads((out / "results.json").read_text())
    # results.json reads back into the same table
    assert report.format_table(report.load_results(out / "results.json")) == (out / "table.txt").read_text()[:-1]
    configs = results["configs"]
    assert [(c["lr"], c["warmup_steps"]) for c in configs] == [(3e-2, 0), (3e-2, 5)]
    assert len(results["curves"]["loss"]) == 2 and len(results["curves"]["loss"][0]) == 10
    assert results["curves"]["val_steps"][0] == 0 and results["curves"]["val_steps"][-1] == 10
    # the recorded learning rates are Optax's own schedule with the same (Python float) arguments
    for c, lrs in zip(configs, results["curves"]["lr"], strict=True):
        reference = optax.warmup_cosine_decay_schedule(0.0, c["lr"], c["warmup_steps"], 10, 0.1 * c["lr"])
        np.testing.assert_allclose(lrs, [float(reference(t)) for t in range(10)], rtol=1e-5, atol=1e-10)
    assert configs[1]["early_max_loss_jump"] is not None and not any(c["diverged"] for c in configs)
    # one jit per config with optax's schedule trains the same models (same data, same init)
    seq = results["sequential"]
    assert seq["configs"] == 2 and seq["wall_s"] > 0
    last = [curve[-1] for curve in results["curves"]["loss"]]
    np.testing.assert_allclose(seq["final_loss"], last, rtol=1e-4)


def test_quick_preset_yields_to_explicit_flags():
    args = cli.build_parser().parse_args(["sweep", "--quick", "--steps", "7", "--norm", "post", "--no-qk-norm"])
    cfg = cli.sweep_config(args)
    assert (cfg.steps, cfg.d_model, tuple(cfg.warmups)) == (7, cli.QUICK["d_model"], cli.QUICK["warmups"])
    assert cfg.pre_ln is False and cfg.qk_norm is False
    assert cli._warmups("0,0.1,25%,50,1e2") == (0, 0.1, 0.25, 50, 100)
    assert [type(w) for w in cli._warmups("0,0.1,50")] == [int, float, int]


@pytest.mark.parametrize("flags, message", [
    (["--shapes", "linear,geometric"], "geometric"),
    (["--shapes", "bogus"], "bogus"),
    (["--warmups", "0,8"], "not shorter than the run"),
    (["--warmups", "2.5"], "whole number"),
])
def test_sweep_rejects_bad_settings_before_training(flags, message, capsys):
    assert cli.main(["sweep", *TINY_FLAGS, *flags]) == 2
    assert message in capsys.readouterr().err


def test_plot_command_writes_a_png_with_the_warmup_marked(tmp_path, capsys):
    png = tmp_path / "schedules.png"
    assert cli.main(["plot", SPEC, "optax.linear_schedule(0.0, 1e-3, 300)", "--out", str(png)]) == 0
    assert _is_png(png) and png.stat().st_size > 5000
    assert str(png) in capsys.readouterr().out
    label, schedule, warmup, length = cli.load_schedule(SPEC)
    assert (warmup, length) == (100, 1000) and float(schedule(50)) == pytest.approx(5e-4)
    # positional arguments are named through the signature, so the warmup is found and marked there too
    assert cli.load_schedule("warmup_cosine_decay_schedule(0, 1e-3, 300, 2000)")[2:] == (300, 2000)


@pytest.mark.parametrize("spec", [
    "__import__('os').system('true')",
    "os.system('true')",
    "warmup_cosine_decay_schedule(init_value=x)",
    "warmup_cosine_decay_schedule(**{'init_value': 0})",
    "_private_helper()",
    "warmup_schedule",
    "no_such_schedule(1)",
])
def test_plot_spec_is_parsed_not_evaluated(spec):
    with pytest.raises(ValueError):
        cli.parse_schedule_call(spec)


def test_plot_json_config_goes_through_config_from_config(tmp_path, monkeypatch):
    seen = []

    def from_config(config):
        seen.append(config)
        return optax_warmup.warmup_cosine_decay_schedule(**config["schedule"])

    monkeypatch.setitem(sys.modules, "optax_warmup.config", types.SimpleNamespace(from_config=from_config))
    spec = {"schedule": dict(init_value=0.0, peak_value=1.0, warmup_steps=20, decay_steps=200)}
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(spec))
    png = tmp_path / "cfg.png"
    assert cli.main(["plot", str(path), "--out", str(png)]) == 0
    assert seen == [spec] and _is_png(png)


def test_plot_spec_names_come_from_the_registry_of_factories():
    factory, args, kwargs = cli.parse_schedule_call("power_schedule(0.02, 100, batch_size=8, seq_len=64)")
    assert factory is optax_warmup.power_schedule and args == [0.02, 100] and kwargs == dict(batch_size=8, seq_len=64)
    # Public but not a schedule of plain values: not in the registry, so not a plot spec.
    for name in ("scale_by_warmup", "join_schedules", "from_config", "compat"):
        with pytest.raises(ValueError, match="no schedule"):
            cli.parse_schedule_call(f"{name}(1)")
    assert cli.parse_schedule_call("optax.cosine_decay_schedule(1.0, 10)")[0] is optax.cosine_decay_schedule


def test_plot_json_config_in_the_library_format_marks_its_warmup(tmp_path, monkeypatch):
    pytest.importorskip("optax_warmup.config")
    import optax_warmup.plotting as plotting

    path = tmp_path / "wsd.json"
    path.write_text(json.dumps({"peak": 1e-3, "total": 400, "warmup": "10%", "stable": 100, "decay": "linear"}))
    drawn = {}
    monkeypatch.setattr(plotting, "plot_schedules", lambda schedules, steps, out, warmups, **kw: drawn.update(
        steps=steps, warmups=dict(warmups), at_200=float(schedules["wsd.json"](200))) or str(out))
    assert cli.main(["plot", str(path), "--out", str(tmp_path / "wsd.png")]) == 0
    # drawn over "total" steps, the warmup marked up to the first peak (10% of 400), then 100 steps at the peak
    # and a linear decay over the remaining 260
    assert drawn == {"steps": 400, "warmups": {"wsd.json": 40}, "at_200": pytest.approx(1e-3 * (1 - 60 / 260))}


def test_python_dash_m_optax_warmup_runs_the_cli(tmp_path):
    png = tmp_path / "s.png"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "optax_warmup", "plot", SPEC, "--out", str(png), "--log-y"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert _is_png(png)
