"""Evidence (b): a warmup whose length follows the training metrics (``adaptive_warmup``), on real runs.

Three parts, on the byte LM and on the digits task:

1. **Clean runs**: fixed warmups (none, linear 2 / 10 / 25%) over a peak-LR grid and seeds, recording every step's
   gradient norm and loss: what the spike test of ``adaptive_warmup`` sees in real training.
2. **Its defaults**: the spike test replayed (``_replay``, float64, checked against the library) over those
   trajectories for a grid of settings of its statistics: back-offs on calm runs (the two lowest LRs, where nothing
   goes wrong: every back-off there is a false alarm), back-offs at high LRs, and the smallest gradient spike it
   flags at each step (a 10x, 100x, 1000x spike injected anywhere from step 10 on; and the 1000x spike at step 90
   that went unflagged in a new user's trial). The rule that chose the library's defaults: at most one false
   back-off per ten calm runs on each task, then the best detection over steps 10-99 (the warmup and the steps
   just after it, where an adaptive warmup acts) averaged over the two tasks and the three spike sizes.
3. **Real runs**: at a high peak LR, ``adaptive_warmup`` with its defaults and a too-short length (2% of the run)
   against fixed linear warmups of the same length and of the best length (from part 1), and no warmup: does it
   back off where the fixed one spikes? Its factor step by step over the loss. And a 1000x gradient spike injected
   at step 90 of a run at a middle LR: flagged? what does it cost with and without ``skip_spikes``?
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optax_warmup import sweep
from optax_warmup._adaptive import adaptive_warmup
from optax_warmup.sweep.evidence import _common as C
from optax_warmup.sweep.evidence import _figures as F
from optax_warmup.sweep.evidence._replay import replay
from optax_warmup.sweep.optimizers import warmup_methods
from optax_warmup.sweep.tasks import BUILTIN

NAME = "adaptive"
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "bytelm": dict(task=dict(d_model=64, valid_windows=256), steps=200, lrs=[1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
                       seeds=3, spike_step=90),
        "digits": dict(task=dict(), steps=300, lrs=[1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1], seeds=5, spike_step=90),
    },
    "quick": {
        "bytelm": dict(task=dict(d_model=32, valid_windows=128), steps=120, lrs=[1e-3, 3e-3, 1e-2, 3e-2, 1e-1],
                       seeds=2, spike_step=90),
        "digits": dict(task=dict(), steps=200, lrs=[1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1], seeds=3, spike_step=90),
    },
    "tiny": {  # one task: a smoke test of seconds
        "digits": dict(task=dict(hidden=(16,)), steps=24, lrs=[1e-3, 3e-3, 1e-1], seeds=2, spike_step=16),
    },
}
CLEAN = [("none", 0), ("linear", 0.02), ("linear", 0.1), ("linear", 0.25)]  # (method, warmup) of part 1
TOO_SHORT = 0.02
SPIKE_FACTOR = 1000.0
SPIKE_SIZES = (10.0, 100.0, 1000.0)
# Detection is scored over these steps: the warmup and the steps just after it, where the adaptive warmup acts (no
# rule can judge before it has statistics); the later steps are reported too, not scored.
SCORED = (10, 100)
CALM_FLAGS = 0.1  # at most one false back-off per ten calm runs
RECORD = ("factor", "progress", "num_spikes")
# The grid of settings of the statistics replayed in part 2; "warm-up" = the first min_observations updates are
# not observed (the library's rule since this experiment), "none" = they are (the rule before).
CANDIDATES: dict[str, list] = dict(decay=[0.95, 0.98, 0.99], zscore=[3.0, 3.5, 4.0, 5.0], norm_ratio=[2.0, 3.0],
                  min_observations=[5, 10, 20], warmup=[True, False])
BEFORE = dict(decay=0.99, zscore=4.0, norm_ratio=2.0, loss_ratio=1.2, min_observations=20, warmup=False)


def library_defaults() -> dict:
    """``adaptive_warmup``'s current defaults, read from its signature, with the statistics' warm-up."""
    params = inspect.signature(adaptive_warmup).parameters
    out = {k: params[k].default for k in ("decay", "zscore", "norm_ratio", "loss_ratio", "min_observations")}
    return dict(out, warmup=True)


def gradient_spike(step, factor) -> optax.GradientTransformation:
    """Multiplies the gradients of update ``step`` (counting from 0) by ``factor``: an injected spike."""

    def init_fn(params):
        del params
        return jnp.zeros([], jnp.int32)

    def update_fn(updates, count, params=None):
        del params
        scale = jnp.where(count == step, factor, 1.0)
        return jax.tree.map(lambda g: g * scale.astype(g.dtype), updates), optax.safe_increment(count)

    return optax.GradientTransformation(init_fn, update_fn)


def with_spike(factory):
    """``factory`` with a ``gradient_spike(hp["spike_step"], hp["spike_factor"])`` in front of it."""

    def spiked(hp):
        return optax.chain(gradient_spike(hp["spike_step"], hp["spike_factor"]), factory(hp))

    return spiked


# ------------------------------------------------------------------------------------------- part 2: replay


def candidate_settings() -> list[dict]:
    keys = list(CANDIDATES)
    grid = [dict(zip(keys, combo, strict=True), loss_ratio=1.2) for combo in itertools.product(*CANDIDATES.values())]
    named = [BEFORE, library_defaults()]
    return named + [c for c in grid if c not in named]


def _replay_fields(settings: list[dict]) -> dict[str, np.ndarray]:
    fields = {k: np.asarray([s[k] for s in settings], np.float64)
              for k in ("decay", "zscore", "norm_ratio", "loss_ratio", "min_observations")}
    fields["burn"] = np.asarray([s["min_observations"] if s["warmup"] else 0 for s in settings], np.float64)
    return fields


def score_settings(clean: sweep.SweepResult, settings: list[dict], spike_step: int) -> list[dict]:
    """Part 2 on one task: back-offs and detection of each setting, replayed over the clean runs that finished."""
    ok = [i for i in range(len(clean)) if clean.diverged_step[i] < 0]
    lrs = np.asarray([clean.configs[i]["peak_value"] for i in ok])
    levels = sorted(set(lrs))
    calm, high = np.isin(lrs, levels[:2]), np.isin(lrs, levels[-2:])
    out = replay(clean.curves["grad_norm"][ok], clean.curves["loss"][ok], _replay_fields(settings))
    flags, threshold = out["flags"].sum(-1), out["threshold"]
    rows = []
    for j, s in enumerate(settings):
        row = dict(setting=s, calm_flags=float(flags[j, calm].mean()), high_flags=float(flags[j, high].mean()),
                   runs=len(ok), calm_runs=int(calm.sum()))
        early, late = threshold[j, :, SCORED[0]:SCORED[1]], threshold[j, :, SCORED[1]:]
        for f in SPIKE_SIZES:
            row[f"detect_{int(f)}x"] = float(np.mean(early < f))
            row[f"late_detect_{int(f)}x"] = float(np.mean(late < f)) if late.size else float("nan")
        step = min(spike_step, threshold.shape[-1] - 1)
        row["detect_1000x_at_spike_step"] = float(np.mean(threshold[j, :, step] < SPIKE_FACTOR))
        rows.append(row)
    return rows


def choose(scores: Mapping[str, list[dict]]) -> tuple[int, list[int]]:
    """The rule: calm back-offs <= CALM_FLAGS per run on every task, then the best mean detection. Returns the
    index of the chosen setting and the feasible indices, best first."""
    tasks = list(scores)
    n = len(scores[tasks[0]])

    def detection(j):
        return float(np.mean([scores[t][j][f"detect_{int(f)}x"] for t in tasks for f in SPIKE_SIZES]))

    feasible = [j for j in range(n) if all(scores[t][j]["calm_flags"] <= CALM_FLAGS for t in tasks)]
    feasible.sort(key=lambda j: -detection(j))
    return (feasible[0] if feasible else 0), feasible


# ---------------------------------------------------------------------------------------------- the runs


def _task(name: str, options: Mapping[str, Any]):
    return BUILTIN[name](**options)


def _clean_grid(size: dict) -> list[dict]:
    return [dict(warmup_method=m, warmup_steps=w, peak_value=lr, seed=s) for m, w in CLEAN for lr in size["lrs"]
            for s in range(size["seeds"])]


def best_fixed_warmup(clean: sweep.SweepResult, lr: float) -> Any:
    """The linear warmup (as given) with the lowest mean final loss at peak ``lr`` (a diverged seed counts as
    its loss before training)."""
    best, best_loss = None, np.inf
    for _, w in CLEAN[1:]:
        idx = C.members(clean, warmup_method="linear", warmup_steps=w, peak_value=lr)
        losses = np.where(np.isfinite(clean.final_loss[idx]), clean.final_loss[idx], clean.initial_loss[idx])
        if losses.mean() < best_loss:
            best, best_loss = w, float(losses.mean())
    return best


def _real_grid(size: dict, high_lr: float, mid_lr: float, best_w: Any) -> list[dict]:
    seeds, step = range(size["seeds"]), size["spike_step"]
    base = dict(skip_spikes=False, spike_step=step, spike_factor=1.0)
    short = list(dict.fromkeys([("none", 0), ("linear", TOO_SHORT), ("linear", best_w), ("adaptive", TOO_SHORT)]))
    grid = [dict(base, warmup_method=m, warmup_steps=w, peak_value=high_lr, seed=s) for m, w in short for s in seeds]
    for m, w, skip in (("linear", 0.1, False), ("adaptive", 0.1, False), ("adaptive", 0.1, True)):
        for factor in (1.0, SPIKE_FACTOR):
            grid += [dict(base, warmup_method=m, warmup_steps=w, peak_value=mid_lr, skip_spikes=skip,
                          spike_factor=factor, seed=s) for s in seeds]
    return grid


def run(size: str = "full", out: str = "runs/evidence/adaptive", figures: str | None = None,
        progress: bool = True) -> dict:
    """Runs the experiment; writes tables, JSON and figures to ``out`` (figures also to ``figures``)."""
    clock, outputs = C.Clock(), C.Outputs(out, figures)
    sizes = SIZES[size]
    clean, real, scores, picks = {}, {}, {}, {}
    for task_name, s in sizes.items():
        task = _task(task_name, s["task"])
        clean[task_name] = sweep.run(task, warmup_methods(s["steps"]), s["steps"], _clean_grid(s),
                                     eval_every=s["steps"], progress=progress,
                                     out_dir=outputs.path(f"clean_{task_name}"))
        clock.sample()
        lrs = s["lrs"]
        high_lr, mid_lr = lrs[-1] if task_name == "bytelm" else lrs[-2], lrs[len(lrs) // 2]
        best_w = best_fixed_warmup(clean[task_name], high_lr)
        picks[task_name] = dict(high_lr=high_lr, mid_lr=mid_lr, best_warmup=best_w)
        real[task_name] = sweep.run(task, with_spike(warmup_methods(s["steps"])), s["steps"],
                                    _real_grid(s, high_lr, mid_lr, best_w), eval_every=s["steps"], record=RECORD,
                                    progress=progress, out_dir=outputs.path(f"real_{task_name}"))
        clock.sample()
    settings = candidate_settings()
    for task_name, s in sizes.items():
        scores[task_name] = score_settings(clean[task_name], settings, s["spike_step"])
    chosen, feasible = choose(scores)
    summary = dict(experiment=NAME, size=size, sizes=sizes, picks=picks, before=BEFORE,
                   library_defaults=library_defaults(), rule_choice=settings[chosen],
                   rule_matches_library=settings[chosen] == library_defaults(),
                   scores={t: [scores[t][0], scores[t][1]] + [scores[t][j] for j in feasible[:10]] for t in scores},
                   real={t: _real_summary(real[t], picks[t], sizes[t]) for t in real},
                   machine=C.machine())
    return C.finish(outputs, summary, clock, lambda read: draw(outputs, read, clean, real))


def draw(outputs: C.Outputs, summary: Mapping, clean: Mapping[str, sweep.SweepResult],
         real: Mapping[str, sweep.SweepResult]) -> None:
    """The report and the figures, from the summary and the sweeps' results (``replot`` reads them back)."""
    outputs.text("report.md", report(summary))
    picks, sizes = summary["picks"], summary["sizes"]
    for task_name in sizes:
        outputs.figure(f"adaptive_factor_{task_name}.png",
                       functools.partial(F.adaptive_factor, real[task_name], picks[task_name], TOO_SHORT))
        outputs.figure(f"adaptive_spike_{task_name}.png",
                       functools.partial(F.spike_runs, real[task_name], picks[task_name]["mid_lr"],
                                         sizes[task_name]["spike_step"]))
    before, after = _replay_fields([summary["before"]]), _replay_fields([summary["library_defaults"]])
    outputs.figure("adaptive_detection.png", lambda p: F.detection(
        clean, {"before": before, "library defaults": after}, replay, SPIKE_FACTOR, p))


def replot(out: str, figures: str | None = None) -> dict:
    """Redraws the report and the figures from a finished run in ``out``, without training."""
    summary = C.read_json(out, "summary.json")
    clean = {t: sweep.load(f"{out}/clean_{t}/results.json") for t in summary["sizes"]}
    real = {t: sweep.load(f"{out}/real_{t}/results.json") for t in summary["sizes"]}
    draw(C.Outputs(out, figures), summary, clean, real)
    return summary


def _real_summary(result: sweep.SweepResult, picks: dict, size: dict) -> dict:
    high, mid, step = picks["high_lr"], picks["mid_lr"], size["spike_step"]
    short = {}
    for label, m, w in (("none", "none", 0), (f"linear {TOO_SHORT:g}", "linear", TOO_SHORT),
                        (f"linear {picks['best_warmup']} (best)", "linear", picks["best_warmup"]),
                        (f"adaptive {TOO_SHORT:g}", "adaptive", TOO_SHORT)):
        idx = C.members(result, warmup_method=m, warmup_steps=w, peak_value=high)
        rows = result.summary()
        short[label] = dict(final_loss=C.seed_stats(result.final_loss[idx]),
                            early_max_loss_jump=C.seed_stats([rows[i]["early_max_loss_jump"] for i in idx]),
                            early_max_grad_norm=C.seed_stats([rows[i]["early_max_grad_norm"] for i in idx]),
                            backoffs=[float(result.curves["num_spikes"][i, -1]) if m == "adaptive" else None
                                      for i in idx])
    a = C.members(result, warmup_method="adaptive", warmup_steps=TOO_SHORT, peak_value=high)
    lin = C.members(result, warmup_method="linear", warmup_steps=TOO_SHORT, peak_value=high)
    best = C.members(result, warmup_method="linear", warmup_steps=picks["best_warmup"], peak_value=high)
    comparisons = {"adaptive - linear same length": C.paired(result.final_loss[a], result.final_loss[lin]),
                   "adaptive - linear best length": C.paired(result.final_loss[a], result.final_loss[best])}
    spike = {}
    loss = result.curves["loss"]
    after = slice(step + 1, min(step + 21, loss.shape[1]))
    for label, m, skip in (("linear 0.1", "linear", False), ("adaptive 0.1", "adaptive", False),
                           ("adaptive 0.1, skip_spikes", "adaptive", True)):
        hit = C.members(result, warmup_method=m, warmup_steps=0.1, peak_value=mid, skip_spikes=skip,
                        spike_factor=SPIKE_FACTOR)
        calm = C.members(result, warmup_method=m, warmup_steps=0.1, peak_value=mid, skip_spikes=skip,
                         spike_factor=1.0)
        flagged = None
        if m == "adaptive":
            spikes = result.curves["num_spikes"]
            flagged = [bool(spikes[i, step] > (spikes[i, step - 1] if step > 0 else 0)) for i in hit]
        with C.quiet_nan():
            cost = np.nanmean(loss[hit, after], 1) - np.nanmean(loss[calm, after], 1)
        spike[label] = dict(flagged=flagged, final_loss=C.seed_stats(result.final_loss[hit]),
                            final_loss_without_spike=C.seed_stats(result.final_loss[calm]),
                            final_cost=C.paired(result.final_loss[hit], result.final_loss[calm]),
                            loss_cost_next_20_steps=C.seed_stats(cost))
    return dict(short=short, comparisons=comparisons, spike=spike)


# --------------------------------------------------------------------------------------------------- report


def _fraction(x) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.2f}"


def _setting_label(s: Mapping) -> str:
    return (f"decay {s['decay']:g}, zscore {s['zscore']:g}, norm_ratio {s['norm_ratio']:g}, "
            f"min_observations {s['min_observations']:g}, warm-up {'yes' if s['warmup'] else 'no'}")


def report(summary: Mapping) -> str:
    """The experiment's tables in Markdown."""
    tasks = list(summary["scores"])
    lines = [f"## Metric-adapted duration (`optax-warmup evidence adaptive --size {summary['size']}`)", ""]
    head = ["setting"] + [f"{t}: {k}" for t in tasks for k in ("calm back-offs/run", "high-LR back-offs/run",
                                                                   "10x", "100x", "1000x", "1000x at step 90")]
    rows = []
    for j, row in enumerate(summary["scores"][tasks[0]]):
        tag = "before" if j == 0 else "library defaults" if j == 1 else ""
        cells = [f"{tag + ': ' if tag else ''}{_setting_label(row['setting'])}"]
        for t in tasks:
            r = summary["scores"][t][j]
            cells += [f"{r['calm_flags']:.2f}", f"{r['high_flags']:.2f}", f"{r['detect_10x']:.2f}",
                      f"{r['detect_100x']:.2f}", f"{r['detect_1000x']:.2f}", f"{r['detect_1000x_at_spike_step']:.2f}"]
        rows.append(cells)
    lines += ["Spike test replayed over the clean runs (detection: fraction of (run, step) pairs, steps "
              f"{SCORED[0]}-{SCORED[1] - 1}, at which a gradient spike of that size would be flagged):", "",
              C.markdown_table(head, rows), ""]
    lines += [f"Rule's choice: {_setting_label(summary['rule_choice'])}; library defaults "
              f"{'match' if summary['rule_matches_library'] else 'DO NOT match'} it.", ""]
    late = [[label] + [_fraction(summary["scores"][t][j][f"late_detect_{int(f)}x"]) for t in tasks for f in SPIKE_SIZES]
            for j, label in ((0, "before"), (1, "library defaults"))]
    lines += [f"Later steps ({SCORED[1]} to the end; not scored):", "",
              C.markdown_table(["setting"] + [f"{t}: {int(f)}x" for t in tasks for f in SPIKE_SIZES], late), ""]
    for t in tasks:
        real = summary["real"][t]
        p = summary["picks"][t]
        lines += [f"### {t}: too-short adaptive warmup at peak LR {p['high_lr']:g}", ""]
        lines.append(C.markdown_table(
            ["warmup", "final loss", "early max loss jump", "early max grad norm", "back-offs per seed"],
            [[k, C.fmt(v["final_loss"]), C.fmt(v["early_max_loss_jump"], 2), C.fmt(v["early_max_grad_norm"], 2),
              ", ".join(f"{b:g}" for b in v["backoffs"]) if v["backoffs"][0] is not None else ""]
             for k, v in real["short"].items()]))
        lines += [""] + [f"- {k}: {C.fmt_diff(v)}{' (inside the noise)' if C.inside_noise(v) else ''}"
                         for k, v in real["comparisons"].items()] + [""]
        lines += [f"### {t}: a {SPIKE_FACTOR:g}x gradient spike at step {summary['sizes'][t]['spike_step']}, "
                  f"peak LR {p['mid_lr']:g}", ""]
        lines.append(C.markdown_table(
            ["warmup", "flagged (per seed)", "final loss", "without the spike", "final cost",
             "loss cost, next 20 steps"],
            [[k, "" if v["flagged"] is None else ", ".join("yes" if f else "no" for f in v["flagged"]),
              C.fmt(v["final_loss"]), C.fmt(v["final_loss_without_spike"]), C.fmt_diff(v["final_cost"]),
              C.fmt(v["loss_cost_next_20_steps"])] for k, v in real["spike"].items()]))
        lines.append("")
    lines.append(C.timing_line(summary))
    return "\n".join(lines) + "\n"
