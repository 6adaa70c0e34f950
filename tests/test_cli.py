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


# --- plot: every user mistake is one line, exit code 2 --------------------------------------------------------------

LONG = "warmup_cosine_decay_schedule(init_value=0.0,peak_value=0.001,warmup_steps=100,decay_steps=1000,end_value={})"


def _plot_exit(argv, capsys):
    """(exit code, stderr) of `optax-warmup plot ARGV`, whether argparse or the command itself refuses it."""
    try:
        code = cli.main(["plot", *argv])
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


# (argv, where "{tmp}" is a folder holding the files of _mistake_files; what the one line says)
PLOT_MISTAKES = {
    "missing-json": (["{tmp}/missing.json"], "missing.json: no such file"),
    "missing-yaml": (["{tmp}/missing.yml"], "missing.yml: no such file"),
    "a-folder": (["{tmp}/folder.json"], "folder.json: is a directory"),
    "not-text": (["{tmp}/binary.json"], "binary.json: not a text file"),
    "bad-json": (["{tmp}/bad.json"], "bad.json: not valid JSON"),
    "bad-yaml": (["{tmp}/bad.yaml"], "bad.yaml: not valid YAML at line 2"),
    "bad-config": (["{tmp}/wrong.json"], "wrong.json: config['decay']['shape']: must be one of"),
    "neither-file-nor-call": (["configs/run"], "configs/run: no such file, and not a schedule call"),
    "unknown-argument": (["warmup_schedule(0, 1, 10, foo=1)"], "unexpected keyword argument 'foo'"),
    "bad-value": (["warmup_cosine_decay_schedule(0, 1, 10, 5)"], "decay_steps must be > warmup_steps"),
    "fails-when-run": (["optax.linear_schedule('a', 1, 10)"], "evaluating it at count 0 failed"),
    "steps-zero": ([SPEC, "--steps", "0"], "argument --steps: must be a whole number of steps > 0, got '0'"),
    "steps-negative": ([SPEC, "--steps", "-5"], "argument --steps: must be a whole number of steps > 0"),
    "steps-text": ([SPEC, "--steps", "ten"], "argument --steps: must be a whole number of steps > 0"),
    "no-spec": ([], "the following arguments are required: SPEC"),
    "out-is-a-folder": ([SPEC, "--out", "{tmp}"], "is a directory; give a file name"),
    "out-under-a-file": ([SPEC, "--out", "{tmp}/bad.json/x.png"], "bad.json is a file, not a folder"),
}


def _mistake_files(tmp):
    (tmp / "bad.json").write_text('{"peak": 1e-3, "total": 400,')
    (tmp / "bad.yaml").write_text("peak: [\n")
    (tmp / "wrong.json").write_text(json.dumps({"peak": 1e-3, "total": 400, "decay": "cosin"}))
    (tmp / "folder.json").mkdir()
    (tmp / "binary.json").write_bytes(b"\xff\xfe\x00\x9c")


@pytest.mark.parametrize("case", list(PLOT_MISTAKES))
def test_every_plot_mistake_is_one_line_and_exit_code_2(case, tmp_path, capsys):
    _mistake_files(tmp_path)
    argv, expected = PLOT_MISTAKES[case]
    code, err = _plot_exit([a.format(tmp=tmp_path) for a in argv], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("optax-warmup plot: "), err
    assert expected in err, err
    assert "Traceback" not in err and "_positive_steps" not in err and "usage:" not in err
    assert not (tmp_path / "schedule.png").exists()


def test_unreadable_plot_file_is_named(tmp_path, capsys, monkeypatch):
    import builtins

    path = tmp_path / "locked.json"
    path.write_text("{}")
    real_open = builtins.open

    def locked(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", locked)  # chmod does not stop root, who runs CI containers
    assert _plot_exit([str(path)], capsys) == (2, f"optax-warmup plot: {path}: cannot read it (Permission denied)\n")


def test_plot_command_line_mistake_has_no_traceback(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "optax_warmup", "plot", str(tmp_path / "nope.yaml")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stderr) == (2, f"optax-warmup plot: {tmp_path / 'nope.yaml'}: no such file\n")


def _drawn(monkeypatch):
    import optax_warmup.plotting as plotting

    drawn = {}

    def fake(schedules, steps, out, warmups, **kw):
        drawn.update(steps=steps, warmups=dict(warmups), labels=list(schedules),
                     ends=[float(s(steps)) for s in schedules.values()])
        return str(out)

    monkeypatch.setattr(plotting, "plot_schedules", fake)
    return drawn


def test_plot_draws_every_schedule_even_when_labels_would_collide(tmp_path, monkeypatch):
    drawn = _drawn(monkeypatch)
    specs = [LONG.format(1e-4), LONG.format(2e-4), LONG.format(1e-4)]
    assert len("".join(specs[0].split())) > 90 and specs[0][:87] == specs[1][:87]  # what used to collide
    assert cli.main(["plot", *specs, "--out", str(tmp_path / "p.png")]) == 0
    assert len(drawn["labels"]) == 3 == len(set(drawn["labels"]))
    assert drawn["ends"] == [pytest.approx(1e-4), pytest.approx(2e-4), pytest.approx(1e-4)]  # end_value at step 1000
    assert all(len(label) <= 90 + 3 for label in drawn["labels"])
    assert drawn["labels"][0].endswith("#1") and drawn["labels"][2].endswith("#3")  # the same spec twice
    assert "end_value=0.0002)" in drawn["labels"][1]  # the end of a long label survives
    assert set(drawn["warmups"]) == set(drawn["labels"]) and set(drawn["warmups"].values()) == {100}


def test_plot_reads_a_yaml_config_like_a_json_one(tmp_path, monkeypatch, capsys):
    pytest.importorskip("yaml")
    drawn = _drawn(monkeypatch)
    (tmp_path / "wsd.yaml").write_text("peak: 1e-3\ntotal: 4e2\nwarmup: 10%\nstable: 100\ndecay: linear\n")
    (tmp_path / "wsd.json").write_text(json.dumps({"peak": 1e-3, "total": 400, "warmup": "10%", "stable": 100,
                                                    "decay": "linear"}))
    assert cli.main(["plot", str(tmp_path / "wsd.yaml"), str(tmp_path / "wsd.json"),
                     "--out", str(tmp_path / "w.png")]) == 0
    # 400 steps (from total), the warmup marked up to the first peak, step 400 the end of the linear decay
    assert drawn == {"steps": 400, "warmups": {"wsd.yaml": 40, "wsd.json": 40}, "labels": ["wsd.yaml", "wsd.json"],
                     "ends": [0.0, 0.0]}

    monkeypatch.setitem(sys.modules, "yaml", None)  # PyYAML not installed
    code, err = _plot_exit([str(tmp_path / "wsd.yaml")], capsys)
    assert code == 2 and "needs PyYAML" in err and "optax_warmup[dev]" in err and err.count("\n") == 1


def test_legend_labels_are_distinct_and_short():
    labels = ["a" * 200, "a" * 199 + "b", "short", "short", "x" * 90]
    out = cli.legend_labels(labels)
    assert len(set(out)) == len(out)
    assert out[0].endswith("a") and out[1].endswith("b") and len(out[0]) == 90
    assert out[2:4] == ["short #3", "short #4"] and out[4] == "x" * 90
