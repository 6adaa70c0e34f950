"""6. Search vs grid, and the search in one program vs Optuna one trial at a time.

``python -m benchmarks.search [--quick]`` (also a section of ``python -m benchmarks``). Per task (digits; the byte
LM, small):

* **grid**: ``sweep.run`` of a full 64-config grid (8 peaks log-spaced over [1e-3, 1e-1] x 8 warmups 0 to 7/16 of
  the run) on seed 0; its best setting (``recommend()``) is then re-trained on seeds 1-5;
* **ASHA** (Sobol proposals), **TPE + ASHA** (``optuna.samplers.TPESampler(seed=0)``) and **Hyperband** (Sobol):
  ``sweep.search`` over
  ``peak_value ~ LogUniform(1e-3, 1e-1)``, ``warmup_steps ~ Uniform(0, 0.5)`` with a budget of a quarter of the
  grid's config-steps, 8 slots; its top 3 confirmed on seeds 1-5;
* **Optuna one at a time**: the same TPE search run the way a user does today: one trial after another, each a
  plain loop over one jitted training step (compiled once, the hyperparameters passed as arrays), Optuna's
  ``SuccessiveHalvingPruner`` (same eta and first rung) asked every 5 steps, same budget in config-steps.

Confirmed losses are final losses (the task's evaluation) on the same fresh seeds 1-5 for every contender, so they
pair seed by seed. Wall times are whole calls from cold caches; the search's excludes its confirmation.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time

import jax
import numpy as np
import optax

from optax_warmup import sweep
from optax_warmup.sweep import stats
from optax_warmup.sweep.optimizers import warmup_adamw

FULL = dict(digits=dict(steps=200), bytelm=dict(steps=200))
QUICK = dict(digits=dict(steps=40), bytelm=dict(steps=40))
BYTELM = dict(d_model=32, n_layers=1, n_heads=2, context=16, batch_size=8, valid_windows=64, max_files=60)
SEEDS = [1, 2, 3, 4, 5]
SLOTS = 8
ETA = 3


def _task(name: str):
    from optax_warmup.sweep.tasks import bytelm, digits

    return digits.digits() if name == "digits" else bytelm.bytelm(**BYTELM)


def _grid(steps: int) -> dict:
    return {"peak_value": [float(v) for v in np.geomspace(1e-3, 1e-1, 8)],
            "warmup_steps": [int(w) for w in np.arange(8) * (steps // 16)]}


def _space() -> dict:
    return {"peak_value": sweep.LogUniform(1e-3, 1e-1), "warmup_steps": sweep.Uniform(0.0, 0.5)}


def _first_rung(steps: int) -> int:
    """The first rung ``sweep.search`` uses for this space (its default: not before the longest warmup)."""
    import importlib

    search_lib = importlib.import_module("optax_warmup.sweep.search")  # (sweep.search is the function)
    space_lib = importlib.import_module("optax_warmup.sweep.space")

    sp = space_lib.check(_space(), steps)
    return search_lib.Rungs.make("asha", steps, ETA, None, search_lib._longest_warmup(sp)).rungs[0]


def _confirm(task, steps: int, config: dict) -> list[float]:
    r = sweep.run(task, warmup_adamw(steps), steps, [dict(config, seed=s) for s in SEEDS], progress=False)
    return [float(v) for v in r.final_loss]


def _optuna_one_at_a_time(task, steps: int, budget: int) -> dict:
    """TPE + SuccessiveHalvingPruner, one trial after another, each a Python loop over one jitted step."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optimizer = warmup_adamw(steps)
    loss_fn = sweep.engine._loss_with_aux(task.loss)

    def step_fn(params, opt, hp, batch):
        tx = optimizer(hp)
        (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt, loss

    train = jax.jit(step_fn, donate_argnums=(0, 1))
    init_opt = jax.jit(lambda params, hp: optimizer(hp).init(params))
    make_batch = jax.jit(task.data) if task.data is not None else None
    init = (lambda: task.init(0)) if task.host_init else (
        lambda: jax.jit(task.init)(jax.random.fold_in(jax.random.key(0), 0)))
    data_key = jax.random.fold_in(jax.random.key(0), 1)
    first_rung = _first_rung(steps)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0),
                                pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=first_rung,
                                                                              reduction_factor=ETA))
    spent, trials = 0, 0
    t0 = time.perf_counter()
    while spent < budget:
        trial = study.ask()
        hp = {"peak_value": np.float32(trial.suggest_float("peak_value", 1e-3, 1e-1, log=True)),
              "warmup_steps": np.int32(math.ceil(round(trial.suggest_float("warmup_steps", 0.0, 0.5) * steps, 9)))}
        params = init()
        opt = init_opt(params, hp)
        stream = iter(task.batches(0)) if task.batches is not None else None
        losses, pruned = [], False
        for step in range(steps):
            batch = make_batch(np.int32(step), data_key) if make_batch is not None else next(stream)
            params, opt, loss = train(params, opt, hp, batch)
            losses.append(loss)
            spent += 1
            if (step + 1) % 5 == 0:
                tail = losses[-max(1, round(0.1 * len(losses))):]
                trial.report(float(np.mean([float(v) for v in tail])), step + 1)
                if trial.should_prune():
                    pruned = True
                    break
            if spent >= budget:
                break
        trials += 1
        tail = [float(v) for v in losses[-max(1, round(0.1 * len(losses))):]]
        if pruned or len(losses) < steps:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, float(np.mean(tail)) if np.all(np.isfinite(tail)) else float("inf"))
    wall = time.perf_counter() - t0
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value) if complete else None
    return dict(wall_s=wall, trials=trials, completed=len(complete), spent=spent,
                best_value=None if best is None else best.value, best=None if best is None else best.params)


def _contender(name: str, found, grid_best_losses: list[float]) -> dict:
    losses = found.confirmed["losses"]
    iv = stats.interval(losses)
    vs_grid = stats.paired(losses, grid_best_losses)
    return dict(name=name, best=found.best, confirmed=losses, interval=iv.to_dict(), configs=len(found.history),
                completed=len(found.completed()), spent=found.spent, search_s=found.timing["search_s"],
                compile_s=found.timing["compile_s"], vs_grid=vs_grid.to_dict())


def run_task(name: str, steps: int) -> dict:
    import optuna

    task = _task(name)
    jax.clear_caches()
    t0 = time.perf_counter()
    grid = sweep.run(task, warmup_adamw(steps), steps, _grid(steps), progress=False)
    grid_s = time.perf_counter() - t0
    rec = grid.recommend()
    grid_best = {a: v for a, v in rec["setting"].items()}
    grid_best = {k: (int(v) if k == "warmup_steps" else float(v)) for k, v in grid_best.items()}
    grid_losses = _confirm(task, steps, grid_best)
    budget = len(grid) * steps // 4
    out = dict(task=name, steps=steps, grid_configs=len(grid), grid_config_steps=len(grid) * steps, budget=budget,
               grid=dict(best=grid_best, wall_s=grid_s, confirmed=grid_losses,
                         interval=stats.interval(grid_losses).to_dict()))
    contenders = []
    for label, sampler, method in (("ASHA (Sobol)", None, "asha"),
                                   ("TPE + ASHA", optuna.samplers.TPESampler(seed=0), "asha"),
                                   ("Hyperband (Sobol)", None, "hyperband")):
        jax.clear_caches()
        found = sweep.search(task, warmup_adamw(steps), steps, _space(), budget, slots=SLOTS, method=method,
                             sampler=sampler, seed=0, eta=ETA, confirm_top=3, confirm_seeds=len(SEEDS),
                             progress=False)
        assert found.confirmed["seeds"] == SEEDS
        contenders.append(_contender(label, found, grid_losses))
    out["search"] = contenders
    jax.clear_caches()
    out["optuna_one_at_a_time"] = _optuna_one_at_a_time(task, steps, budget)
    return out


def run(quick: bool = False) -> dict:
    s = QUICK if quick else FULL
    return {"tasks": [run_task(name, cfg["steps"]) for name, cfg in s.items()]}


def _fmt_iv(iv: dict) -> str:
    if not iv["known"]:
        return f"{iv['mean']:.4f} (spread unknown)"
    return f"{iv['mean']:.4f} [{iv['low']:.4f}, {iv['high']:.4f}], n={iv['n']}"


def render(results: dict, machine: dict | None = None) -> str:
    lines = ["## 6. Search: a quarter of the grid's budget, and one program vs Optuna one trial at a time", ""]
    if machine:
        loads = [*machine["load_average_start"], *(machine.get("load_average_end") or [])]
        busy = max(loads) > machine["logical_cores"]
        lines += [f"- {machine['date_utc']}; {machine['cpu']}, {machine['logical_cores']} logical cores; load "
                  f"average at start {machine['load_average_start']}, at end {machine.get('load_average_end')} "
                  + ("(above the core count: other processes competed for the CPU)" if busy
                     else "(below the core count: a quiet machine)"), ""]
    lines += ["Confirmed loss = final (evaluation) loss on fresh seeds 1-5, mean and 95% t-interval; \"within\" = the "
              "search's confirmed mean is no higher than the top of the grid-best's interval. Paired = search "
              "minus grid-best, seed by seed (negative: the search's answer is better).", "",
              "| task | contender | config-steps | configs (completed) | answer | confirmed loss | paired vs grid-best "
              "(p) | within grid-best's interval | wall (s) |", "|---|---|---|---|---|---|---|---|---|"]
    for t in results["tasks"]:
        g = t["grid"]
        lines.append(f"| {t['task']} | full grid ({t['grid_configs']} configs) | {t['grid_config_steps']} | "
                     f"{t['grid_configs']} | {_cfg(g['best'])} | {_fmt_iv(g['interval'])} | | | {g['wall_s']:.1f} |")
        high = g["interval"]["high"] if g["interval"]["known"] else g["interval"]["mean"]
        for c in t["search"]:
            within = c["interval"]["mean"] <= high
            v = c["vs_grid"]
            lines.append(f"| {t['task']} | {c['name']} | {c['spent']} | {c['configs']} ({c['completed']}) | "
                         f"{_cfg(c['best'])} | {_fmt_iv(c['interval'])} | {v['difference']:+.4f} ({v['p']:.2g}) | "
                         f"**{'yes' if within else 'NO'}** | {c['search_s']:.1f} |")
        o = t["optuna_one_at_a_time"]
        lines.append(f"| {t['task']} | Optuna TPE + SuccessiveHalvingPruner, one trial at a time | {o['spent']} | "
                     f"{o['trials']} ({o['completed']}) | {_cfg(o['best'] or {})} | (not confirmed; best search "
                     f"value {o['best_value'] if o['best_value'] is None else round(o['best_value'], 4)}) | | | "
                     f"{o['wall_s']:.1f} |")
    verdicts = []
    for t in results["tasks"]:
        g = t["grid"]["interval"]
        high = g["high"] if g["known"] else g["mean"]
        verdicts.append(f"{t['task']}: " + ", ".join(f"{c['name']} {'yes' if c['interval']['mean'] <= high else 'NO'}"
                                                       for c in t["search"]))
    lines += ["", "Target: with a quarter of the grid's budget, a confirmed loss within the grid-best's interval. "
              + "; ".join(verdicts) + "."]
    lines += ["", "Wall time of the same search (TPE proposals, successive halving, same budget): one compiled "
              "program vs one trial at a time:", ""]
    for t in results["tasks"]:
        tpe = next(c for c in t["search"] if c["name"].startswith("TPE"))
        o = t["optuna_one_at_a_time"]
        train = tpe["search_s"] - tpe["compile_s"]
        lines.append(f"- {t['task']} ({t['steps']} steps, budget {t['budget']} config-steps): "
                     f"{tpe['search_s']:.1f} s in one program, of which compile {tpe['compile_s']:.1f} s, vs "
                     f"{o['wall_s']:.1f} s one at a time (its three small programs' compiles included): "
                     f"{o['wall_s'] / tpe['search_s']:.2f}x as fast in all, {o['wall_s'] / train:.2f}x past the "
                     "compile")
    return "\n".join(lines) + "\n"


def _cfg(c: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in c.items())


def main(argv: list[str] | None = None) -> int:
    from benchmarks import _common

    parser = argparse.ArgumentParser(prog="python -m benchmarks.search", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 40 steps per config")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).parent, help="output folder")
    args = parser.parse_args(argv)
    machine = _common.machine()
    t0 = time.perf_counter()
    results = run(quick=args.quick)
    machine["load_average_end"] = _common.load_average()
    results["section_s"] = time.perf_counter() - t0
    results["machine"], results["mode"] = machine, "quick" if args.quick else "full"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "search_results.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    text = render(results, machine)
    md = args.out / "RESULTS.md"
    old = md.read_text() if md.exists() else ""
    marker = "## 6. Search"
    md.write_text((old.split(marker)[0].rstrip("\n") + "\n\n" if old else "") + text)
    print(text)
    print(f"[benchmarks.search] {results['section_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
