"""The `optax-warmup` command: the plot command, safe schedule parsing (the sweep command: test_sweep_command.py)."""

import json
import os
import subprocess
import sys
import types

import pytest

import optax_warmup
from optax_warmup import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = "warmup_cosine_decay_schedule(init_value=0,peak_value=1e-3,warmup_steps=100,decay_steps=1000)"


def _is_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


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

    monkeypatch.setitem(sys.modules, "optax_warmup.config", None)  # a version without the config module
    with pytest.raises(SystemExit, match="from_config"):
        cli.load_schedule(str(path))


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
