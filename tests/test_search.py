"""sweep.search: slots that start new configs inside one compiled program, the ASHA rule, resume, confirmation,
and bad spaces refused before anything compiles. Tiny tasks (tests/sweep_tasks.py): the whole file runs in
seconds."""

import contextlib
import importlib
import importlib.util
import json
import math
import os
import signal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import optuna
import pytest
import sweep_tasks as T

import optax_warmup as ow
from optax_warmup import sweep

STEPS = T.STEPS
search_lib = importlib.import_module("optax_warmup.sweep.search")  # the module; sweep.search is the function
space_lib = importlib.import_module("optax_warmup.sweep.space")


def two_optimizers(hp):
    schedule = ow.warmup_cosine_decay_schedule(0.0, hp["peak_value"], hp["warmup_steps"], STEPS)
    return optax.adamw(schedule) if hp["opt"] == "adamw" else optax.lion(schedule)


SPACE = {"peak_value": sweep.LogUniform(1e-3, 1.0), "warmup_steps": sweep.Uniform(0.0, 0.5),
         "opt": sweep.Choice(["adamw", "lion"])}
ADAMW_SPACE = {"peak_value": sweep.LogUniform(1e-3, 1.0), "warmup_steps": sweep.Uniform(0.0, 0.5)}


@contextlib.contextmanager
def count_compiles():
    """Counts XLA backend compiles while active."""
    seen = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            seen.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def _search(**kwargs):
    args = dict(steps=STEPS, space=ADAMW_SPACE, budget=8 * STEPS, slots=2, method="asha", seed=0, confirm_top=0,
                progress=False)
    args.update(kwargs)
    if args["method"] != "random":  # rungs at 3 and 8 steps (the default would wait for the 12-step warmups)
        args.setdefault("min_steps", 3)
    return sweep.search(args.pop("task", T.device_task()), args.pop("optimizer", T.adamw), **args)


# A model with state: BatchNorm statistics and dropout (flax linen), on the regression data of sweep_tasks.
class BatchNormMLP(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool):
        # no bias before BatchNorm: it has no gradient, and Adam would move it on rounding noise
        x = nn.Dense(8, use_bias=False)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.8)(x))
        x = nn.Dropout(0.2, deterministic=not train)(x)
        return nn.Dense(1)(x)


bn_mlp = BatchNormMLP()


def state_init(key):
    v = bn_mlp.init(key, jnp.zeros((1, T.DIM)), train=False)
    return v["params"], {"batch_stats": v["batch_stats"]}


def state_loss(params, batch, *, model_state, key):
    x, y = batch
    pred, new_state = bn_mlp.apply({"params": params, **model_state}, x, train=True, mutable=["batch_stats"],
                                   rngs={"dropout": key})
    # the running mean enters the value too: a slot that kept its last config's statistics (or a resume that lost
    # them) would show in the curve, not only in an evaluation
    drift = jnp.mean(model_state["batch_stats"]["BatchNorm_0"]["mean"] ** 2)
    return jnp.mean((pred - y) ** 2) + drift, {}, new_state


def state_task():
    return sweep.Task(init=state_init, loss=state_loss, data=T.data, model_state=True, name="bn-dropout")


# ------------------------------------------------------------------------------------------------ slots


@pytest.mark.parametrize("make_task", [T.device_task, state_task], ids=["plain", "batchnorm-dropout"])
def test_a_slot_restarted_mid_search_trains_exactly_like_a_fresh_run_of_its_config(make_task):
    # two slots, four configs trained to the end: configs 2 and 3 start in slots where another config trained
    # (some after a config that diverged, peak 1e30, which must leave nothing behind: params, optimizer state,
    # model state; and their dropout keys follow their own step counter, not the slot's)
    space = {"peak_value": sweep.Choice([3e-2, 1e30, 1e-2]), "warmup_steps": sweep.Choice([0, 4, 0.5])}
    found = _search(task=make_task(), space=space, method="random", budget=5 * STEPS)
    restarted = [h for h in found.history[2:] if h["status"] == "completed"]
    assert len(restarted) >= 2
    assert any(h["status"] == "diverged" and h["steps"] < STEPS for h in found.history)
    fresh = sweep.run(make_task(), T.adamw, STEPS, [dict(h["config"], seed=0) for h in restarted],
                      progress=False)
    for i, h in enumerate(restarted):
        np.testing.assert_allclose(h["losses"], fresh.curves["loss"][i], rtol=2e-5, atol=1e-6,
                                   err_msg=str(h["config"]))
        assert h["value"] == pytest.approx(float(fresh.train_loss[i]), rel=1e-5)


def test_a_non_finite_model_state_frees_its_slot_like_a_nan_loss():
    def init(key):
        return {"w": jnp.ones(())}, {"count": jnp.zeros(())}

    def counting_loss(params, batch, *, model_state):
        # the state turns inf once count * w > 4.5: at step 4 for a learning rate of 0 (w stays 1), at step 2 for
        # 0.2 (w = 1, 1.4, 1.64); the loss itself stays finite
        grow = model_state["count"] + 1.0
        new = {"count": jnp.where(grow * params["w"] > 4.5, jnp.inf, grow)}
        return (params["w"] - 2.0) ** 2 + 0.0 * batch, {}, new

    task = sweep.Task(init=init, loss=counting_loss, data=lambda step, key: jnp.float32(0), model_state=True)
    found = sweep.search(task, lambda hp: optax.sgd(hp["learning_rate"]), 10,
                         {"learning_rate": sweep.Choice([0.0, 0.2])}, 20, slots=2, method="random", confirm_top=0,
                         progress=False)
    assert {h["config"]["learning_rate"] for h in found.history} == {0.0, 0.2}
    for h in found.history:  # trained up to and including the step whose state was not finite, then freed
        assert (h["status"], h["steps"]) == ("diverged", {0.0: 5, 0.2: 3}[h["config"]["learning_rate"]]), h
        assert h["value"] == math.inf


def test_one_training_program_per_static_group_for_the_whole_search():
    with count_compiles() as seen:
        found = _search(optimizer=two_optimizers, space=SPACE, budget=12 * STEPS, slots=4, method="asha")
    assert found.timing["training_compiles"] == 2  # adamw, lion
    assert len(found.history) > 20  # configs started in slots: none of them compiled anything
    assert len(seen) == 2, seen  # nothing else compiled either (the host reads results with NumPy)


def test_a_diverged_config_frees_its_slot_in_the_call_it_diverged():
    found = _search(space={"peak_value": sweep.LogUniform(1e25, 1e30), "warmup_steps": sweep.Choice([0])},
                    method="random", budget=4 * STEPS, steps_per_call=4)
    diverged = [h for h in found.history if h["status"] == "diverged"]
    assert diverged and all(h["steps"] <= 4 for h in diverged)  # gone after the first call, not after 24 steps
    assert all(h["value"] == math.inf for h in diverged)
    assert found.spent == sum(h["steps"] for h in found.history)


# ------------------------------------------------------------------------------------------------ rules


def test_the_asha_rule_by_hand():
    r = search_lib.Rungs.make("asha", 81, 3, None)
    assert r.rungs == [3, 9, 27] and r.brackets == 1  # 81 / 3**k down to 81 / 27
    # at a rung, a value continues if no worse than the max(1, n // 3)-th best of the n recorded there
    decisions = [r.promote(0, 3, v) for v in (5.0, 4.0, 6.0, 3.0, 4.5, 1.0, 2.0)]
    # n=1: best of 1; n=2: 4 < 5; n=3: 6 not best; n=4: 3 best; n=5: 4.5 vs 3 -> no; n=6: 2nd best 1.0... 1 yes;
    # n=7: 2nd best of {1, 2, 3, ...} is 2 -> yes
    assert decisions == [True, True, False, True, False, True, True]
    assert r.promote(0, 9, math.inf) is False
    assert r.next_target(0, 0) == 3 and r.next_target(0, 3) == 9 and r.next_target(0, 27) == 81


def test_hyperband_brackets_start_at_later_rungs_and_the_last_never_stops():
    r = search_lib.Rungs.make("hyperband", 81, 3, None)
    assert r.brackets == 4 and [r.bracket_of(i) for i in range(5)] == [0, 1, 2, 3, 0]
    assert [r.next_target(b, 0) for b in range(4)] == [3, 9, 27, 81]
    assert search_lib.Rungs.make("random", 81, 3, None).next_target(0, 0) == 81


def test_default_rungs_wait_for_the_longest_warmup_of_the_space():
    def rungs(space, steps=200, eta=3):
        sp = space_lib.check(space, steps)
        return search_lib.Rungs.make("asha", steps, eta, None, search_lib._longest_warmup(sp)).rungs

    peak = {"peak_value": sweep.LogUniform(1e-3, 1e-1)}
    assert rungs(peak) == [8, 23, 67]  # no warmup axis: three rungs, steps / 3**k
    assert rungs({**peak, "warmup_steps": sweep.Uniform(0.0, 0.1)}) == [23, 67]  # warmups up to 20 steps
    assert rungs({**peak, "warmup_steps": sweep.Uniform(0.0, 0.5)}) == [67]  # up to 100: the last rung is kept
    assert rungs({**peak, "warmup_steps": sweep.Choice([0, 10, 30])}) == [67]  # 30 steps: 23 is too early
    assert rungs({**peak, "decay_steps": sweep.Choice([150, 190])}) == [8, 23, 67]  # a duration, not a warmup
    assert rungs({**peak, "warmup_steps": sweep.Uniform(0.0, 0.5)}, eta=2) == [100]
    # min_steps= overrides the rule
    assert search_lib.Rungs.make("asha", 200, 3, 5, 100).rungs == [8, 23, 67]


@pytest.mark.parametrize("method", ["asha", "hyperband"])
def test_asha_stops_exactly_the_configs_its_rule_says(method):
    found = _search(method=method, budget=10 * STEPS, slots=3)
    rungs = found.settings["rungs"]
    assert rungs == [3, 8] and found.settings["brackets"] == (3 if method == "hyperband" else 1)
    checked = 0
    for key, values in found.rungs.items():
        bracket, rung = (int(x) for x in key.split("/"))
        for h in found.history:
            if h["bracket"] != bracket or str(rung) not in h["rungs"]:
                continue
            v = h["rungs"][str(rung)]
            n = values.index(v) + 1  # its place in the order of arrival
            kth = sorted(values[:n])[max(1, n // 3) - 1]
            stopped_here = h["status"] == "stopped" and h["steps"] == rung
            assert stopped_here == (v > kth), (h["number"], rung, v, values[:n])
            checked += 1
    assert checked > 10 and any(h["status"] == "stopped" for h in found.history)
    if method == "hyperband":  # the last bracket never stops early: its configs run to the end or the budget
        last = [h for h in found.history if h["bracket"] == 2]
        assert last and all(h["status"] in ("completed", "budget") for h in last)


# ------------------------------------------------------------------------------------------------ resume


def test_a_resumed_search_equals_an_uninterrupted_one_sampler_state_included(tmp_path, monkeypatch):
    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=3)
    args = dict(method="asha", budget=8 * STEPS, slots=2, sampler=sampler)
    whole = _search(**args)
    args["checkpoint_every"] = 100  # only on Ctrl-C and at the end
    original = search_lib._Searcher._round
    calls = {"n": 0}

    def round_then_ctrl_c(self, *a):
        original(self, *a)
        calls["n"] += 1
        if calls["n"] == 6:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(search_lib._Searcher, "_round", round_then_ctrl_c)
    part = _search(checkpoint_dir=tmp_path, **args)
    assert part.interrupted == "SIGINT" and part.spent < whole.spent
    monkeypatch.setattr(search_lib._Searcher, "_round", original)
    resumed = _search(checkpoint_dir=tmp_path, **args)
    assert resumed.interrupted is None and resumed.timing["resumed_at_spent"] == part.spent
    assert [h["given"] for h in resumed.history] == [h["given"] for h in whole.history]  # TPE saw the same tells
    assert [h["losses"] for h in resumed.history] == [h["losses"] for h in whole.history]  # bit for bit
    assert [h["status"] for h in resumed.history] == [h["status"] for h in whole.history]
    assert resumed.best == whole.best and resumed.spent == whole.spent


def test_a_resumed_model_state_search_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    # the slots' BatchNorm statistics are in the checkpoint: the loss reads them, so a resume that lost them
    # would not match bit for bit
    args = dict(task=state_task(), method="asha", budget=4 * STEPS, slots=2)
    whole = _search(**args)
    original = search_lib._Searcher._round
    calls = {"n": 0}

    def round_then_ctrl_c(self, *a):
        original(self, *a)
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(search_lib._Searcher, "_round", round_then_ctrl_c)
    part = _search(checkpoint_dir=tmp_path, **args)
    assert part.interrupted == "SIGINT" and 0 < part.spent < whole.spent
    monkeypatch.setattr(search_lib._Searcher, "_round", original)
    resumed = _search(checkpoint_dir=tmp_path, **args)
    assert resumed.timing["resumed_at_spent"] == part.spent
    assert any(h["spent_at_start"] < part.spent < h["spent_at_end"] for h in resumed.history)  # cut mid-config
    assert [h["losses"] for h in resumed.history] == [h["losses"] for h in whole.history]  # bit for bit
    assert [h["status"] for h in resumed.history] == [h["status"] for h in whole.history]


# ------------------------------------------------------------------------------------------------ confirmation


def test_confirmation_trains_the_top_configs_on_fresh_seeds_and_reports_how_sure(tmp_path):
    args = dict(method="asha", budget=10 * STEPS, slots=3, seed=4, confirm_top=2, confirm_seeds=3,
                checkpoint_dir=tmp_path / "ckpt")
    found = _search(**args)
    again = _search(**args)  # a finished search resumes as finished, its confirmation from its own checkpoint
    assert again.timing["resumed_at_spent"] == found.spent and again.confirmed == found.confirmed
    c = found.confirmed
    assert c["seeds"] == [5, 6, 7] and 4 not in c["seeds"]  # the search trained every config on seed 4
    assert set(found.confirmation.seeds) == {5, 6, 7} and len(found.confirmation) == 2 * 3
    ranked = sorted(found.completed(), key=lambda h: h["value"])[:2]
    assert {tuple(sorted(x["config"].items())) for x in c["candidates"]} == {
        tuple(sorted(h["config"].items())) for h in ranked}
    assert found.best == c["config"] and c["mean"] == pytest.approx(np.mean(c["losses"]))
    assert c["mean"] == min(x["mean"] for x in c["candidates"])  # best by confirmed mean
    iv = sweep.stats.interval(c["losses"])
    assert c["interval"]["low"] == pytest.approx(iv.low) and c["interval"]["known"]
    up = c["runner_up"]
    assert up["comparison"]["difference"] == pytest.approx(up["mean"] - c["mean"], abs=1e-6)
    paths = found.write(tmp_path / "out")
    table = open(paths["table"]).read()
    assert "confirmed on fresh seeds [5, 6, 7]" in table and "(95% t-interval, 3 seeds)" in table
    assert "rung survival" in table and os.path.getsize(paths["spent"]) > 1000
    assert json.load(open(paths["json"]))["best"] == found.best


# ------------------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize("kwargs, message", [
    (dict(space={"peak_value": sweep.Choice([]), "warmup_steps": sweep.Choice([0])}), r"Choice\(\[\]\) is empty"),
    (dict(space={"peak_value": sweep.Uniform(0.1, 0.1), "warmup_steps": sweep.Choice([0])}), "low < high"),
    (dict(space={"peak_value": sweep.LogUniform(0.0, 0.1), "warmup_steps": sweep.Choice([0])}), "positive bounds"),
    (dict(space={**ADAMW_SPACE, "b1": sweep.Uniform(0.8, 0.9)}), "'b1' is never read"),
    (dict(space={**ADAMW_SPACE, "seed": sweep.Choice([1, 2])}), "'seed' is not searched"),
    (dict(space={**ADAMW_SPACE, "x": 3}), r"Choice\(\[3\]\)"),
    (dict(space={"peak_value": sweep.LogUniform(1e-3, 1.0), "warmup_steps": sweep.Uniform(0, 30)}),
     "longer than the run"),
    (dict(method="bohb"), "method must be one of"),
    (dict(sampler="tpe"), "Optuna sampler"),
    pytest.param(dict(sampler=optuna.samplers.CmaEsSampler(seed=0)), "CmaEsSampler needs cmaes",
                 marks=pytest.mark.skipif(importlib.util.find_spec("cmaes") is not None, reason="cmaes installed")),
    (dict(budget=0), "budget must be"),
    (dict(method="random", min_steps=3), "method='random' has none"),
    (dict(method="random", eta=4), "method='random' has none"),
    (dict(checkpoint_every=5), "give checkpoint_dir too"),
    (dict(confirm_seeds=3), "confirm_top=0 asks for no confirmation"),
    (dict(task=sweep.Task(init=state_init, loss=state_loss, data=T.data, eval=lambda params: {},
                          model_state=True)), r"eval must take the state by name"),
], ids=["empty-choice", "low-eq-high", "log-nonpositive", "unread-axis", "seed", "not-a-distribution",
        "warmup-too-long", "method", "sampler", "cmaes", "budget", "min-steps-random", "eta-random", "checkpoint-every",
        "confirm-seeds", "model-state-eval"])
def test_a_bad_search_is_refused_in_one_line_before_anything_compiles(kwargs, message):
    with count_compiles() as seen, pytest.raises(ValueError, match=message) as e:
        _search(**kwargs)
    assert "\n" not in str(e.value) and seen == []


def test_a_host_task_searches_too_and_trains_like_run():
    # init(seed) and batches(seed) on the host: made once for the search seed, each slot reading its own step
    found = sweep.search(T.host_task(), T.adamw, STEPS, ADAMW_SPACE, 3 * STEPS, slots=2, method="random",
                         seed=2, confirm_top=0, progress=False)
    done = found.completed()
    assert len(done) >= 2
    fresh = sweep.run(T.host_task(), T.adamw, STEPS, [dict(h["config"], seed=2) for h in done], progress=False)
    for i, h in enumerate(done):
        np.testing.assert_allclose(h["losses"], fresh.curves["loss"][i], rtol=2e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------ command line


def test_the_search_command_runs_and_writes_its_report(tmp_path, capsys):
    from optax_warmup import cli

    code = cli.main(["search", "--task", "tests.sweep_tasks:command_line_task", "--steps", str(STEPS), "--space",
                     "peak_value=log(1e-3,1)", "--space", "warmup_steps=uniform(0,0.5)", "--budget", "120",
                     "--slots", "2", "--confirm-top", "2", "--confirm-seeds", "3", "--out", str(tmp_path),
                     "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "search: asha with sobol proposals over peak_value, warmup_steps; budget 120" in out
    assert "confirmed on fresh seeds [1, 2, 3]" in out
    assert sorted(os.listdir(tmp_path)) == ["confirmed.png", "curves.png", "loss_over_spent.png", "search.json",
                                            "table.txt"]


@pytest.mark.parametrize("flags, message", [
    (["--space", "peak_value=log(0,1)"], "LogUniform needs positive bounds"),
    (["--space", "peak_value=normal(0,1)"], "the kinds are log, uniform, int and choice"),
    (["--space", "peak_value=log(1)"], "takes two numbers"),
    (["--space", "peak_value"], "NAME=KIND(ARGS)"),
    (["--method", "bohb"], "invalid choice"),
    (["--space", "peak_value=log(1e-3,1)", "--space", "peak_value=log(1e-3,1)"], "names an axis twice"),
], ids=["log-of-zero", "kind", "one-bound", "no-kind", "method", "twice"])
def test_a_bad_search_flag_is_one_line_and_exit_2(flags, message, capsys, tmp_path):
    from optax_warmup import cli

    try:
        code = cli.main(["search", "--task", "tests.sweep_tasks:command_line_task", "--steps", str(STEPS),
                         "--out", str(tmp_path), *flags])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and message in err[-1], err
    assert sum(1 for line in err if "optax-warmup" in line and "error" in line.lower()) <= 1


def test_budget_seconds_counts_the_whole_search_compile_included():
    found = _search(method="random", budget=100 * STEPS, budget_seconds=1e-3)
    assert found.spent == 0 and found.history == [] and found.best is None  # spent compiling: nothing started


def test_a_light_search_program_compiles_at_the_engines_quick_level_on_cpu(monkeypatch):
    plan_lib = importlib.import_module("optax_warmup.sweep._plan")
    seen = []
    real = plan_lib.compiler_options_for

    def spy(flops, **kwargs):
        seen.append((flops, real(flops, **kwargs)))
        return seen[-1][1]

    monkeypatch.setattr(plan_lib, "compiler_options_for", spy)
    _search(method="random", budget=2 * STEPS, slots=2)
    assert len(seen) == 1  # the one training program of the one group
    flops, options = seen[0]
    # the regression task: a linear model on batches of 16, a few hundred FLOP per config-step
    assert 0 < flops < 1e4 and options == {"xla_backend_optimization_level": 1}
    monkeypatch.setattr(plan_lib, "LIGHT_STEP_FLOPS", flops)  # now it is not light: XLA's defaults
    _search(method="random", budget=2 * STEPS, slots=2)
    assert seen[-1] == (flops, None)
