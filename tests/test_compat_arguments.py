"""Every argument of every compat name is used or refused: none is accepted and then ignored.

For each name of each peer function, every argument its signature takes (read from the builders, so a new
argument is covered as soon as it exists) is changed from a working base configuration to another value; the
result must either raise (``ValueError`` / ``TypeError``) or change the output (the learning rates of the
schedule over 0..700 and a few large counts, or the updates and rates of a plateau transformation over a metric
sequence). The only argument allowed to change nothing but warn is ``cycle_momentum=True`` of ``torch_schedule``
(torch cycles the momentum, which is ``torch_momentum_schedule``'s job; the warning says so); and
``torch_momentum_schedule`` takes the learning-rate levels too, so that one dict of torch's arguments builds both
schedules (they are checked, and the momentum does not depend on them).
"""

from __future__ import annotations

import inspect
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

from optax_warmup import compat
from optax_warmup.compat import hf as hf_mod
from optax_warmup.compat import keras as keras_mod
from optax_warmup.compat import plateau, torch_lr
from optax_warmup.compat import timm as timm_mod

COUNTS = jnp.concatenate([jnp.arange(700), jnp.asarray([1_000, 2_500, 5_000, 20_000])])
# Falls by 2e-5 relative per step (not an improvement for threshold 1e-4 'rel', one for 'abs'), with a jump.
METRICS = jnp.concatenate([10.0 * (1.0 - 2e-5 * jnp.arange(40)), 5.0 * (1.0 - 2e-5 * jnp.arange(40))])
# GreedyLR raises the rate while the metric improves and lowers it while it does not: 30 steps of each kind
# (5e-3 per step: an improvement for threshold 1e-3 'abs', not 'rel'), then a long bad stretch at min_lr.
METRICS_GREEDY = jnp.concatenate([10.0 - 5e-3 * jnp.arange(30), 9.8 + 1e-3 * jnp.arange(70)])


def _params(fn) -> list[str]:
    return [p for p in inspect.signature(fn).parameters if p not in ("momentum",)]


def _hf_arguments(name: str) -> set[str]:
    if name == "reduce_lr_on_plateau":
        return {*_params(compat.torch_reduce_lr_on_plateau), "num_warmup_steps", "num_training_steps"}
    if name == "greedy":
        return {*_params(plateau.greedy_transformation), "num_warmup_steps", "num_training_steps"}
    builder = {
        "constant": hf_mod._constant,
        "constant_with_warmup": hf_mod._constant_with_warmup,
        "inverse_sqrt": hf_mod._inverse_sqrt,
        "warmup_stable_decay": hf_mod._wsd,
    }.get(name) or hf_mod._BUILDERS[name]
    return {*_params(builder), "learning_rate", "num_warmup_steps", "num_training_steps"}


def _timm_arguments(name: str) -> set[str]:
    epoch = {*timm_mod._NOISE_KEYS, "t_in_epochs", "initialize", "learning_rate"}
    if name == "plateau":
        return {*timm_mod._PLATEAU_DEFAULTS, *epoch}
    _, required, defaults = timm_mod._SPECS[name]
    return {*required, *defaults, *epoch}


def _pw_arguments(name: str) -> set[str]:
    return {"learning_rate", "warmup_period" if name in ("LinearWarmup", "ExponentialWarmup") else "beta2"}


# (function label, name) -> the arguments it takes.
def _torch_momentum_arguments(name: str) -> set[str]:
    builder = torch_lr._one_cycle if name == "OneCycleLR" else torch_lr._cyclic
    return {*_params(builder), "cycle_momentum"}


def all_arguments() -> dict[tuple[str, str], set[str]]:
    table = {}
    for name in (*compat.HF_NAMES, "reduce_lr_on_plateau", "greedy"):
        table["hf", name] = _hf_arguments(name)
    for name in compat.TORCH_NAMES:
        table["torch", name] = set(_params(torch_lr._BUILDERS[name]))
    for name in torch_lr.MOMENTUM_NAMES:
        table["torch_momentum", name] = _torch_momentum_arguments(name)
    table["torch_plateau", "ReduceLROnPlateau"] = set(_params(compat.torch_reduce_lr_on_plateau))
    table["keras_plateau", "ReduceLROnPlateau"] = set(_params(compat.keras_reduce_lr_on_plateau))
    for name in (*compat.TIMM_NAMES, "plateau"):
        table["timm", name] = _timm_arguments(name)
    for name in compat.KERAS_NAMES:
        table["keras", name] = set(_params(keras_mod._BUILDERS[name]))
    for name in compat.PYTORCH_WARMUP_NAMES:
        table["pytorch_warmup", name] = _pw_arguments(name)
    return table


CHAIN = [("LinearLR", {"start_factor": 0.1, "total_iters": 20}), ("ExponentialLR", {"gamma": 0.99})]
WSD = dict(num_warmup_steps=20, num_training_steps=200, num_decay_steps=50)
BASE: dict[tuple[str, str], dict] = {
    ("hf", "constant"): dict(learning_rate=0.1),
    ("hf", "constant_with_warmup"): dict(learning_rate=0.1, num_warmup_steps=20),
    ("hf", "linear"): dict(learning_rate=0.1, num_warmup_steps=20, num_training_steps=200),
    ("hf", "cosine"): dict(learning_rate=0.1, num_warmup_steps=20, num_training_steps=200),
    ("hf", "cosine_with_restarts"): dict(learning_rate=0.1, num_warmup_steps=20, num_training_steps=200),
    ("hf", "polynomial"): dict(learning_rate=0.1, num_warmup_steps=20, num_training_steps=200),
    ("hf", "inverse_sqrt"): dict(learning_rate=0.1, num_warmup_steps=20),
    ("hf", "cosine_with_min_lr"): dict(
        learning_rate=0.1, num_warmup_steps=20, num_training_steps=200, min_lr_rate=0.1
    ),
    ("hf", "cosine_warmup_with_min_lr"): dict(
        learning_rate=0.1, num_warmup_steps=20, num_training_steps=200, min_lr_rate=0.1
    ),
    ("hf", "warmup_stable_decay"): dict(learning_rate=0.1, **WSD),
    ("hf", "reduce_lr_on_plateau"): dict(learning_rate=0.1, patience=2),
    ("hf", "greedy"): dict(learning_rate=0.1, patience=1, factor=0.5, threshold=1e-3),
    ("torch", "ConstantLR"): dict(learning_rate=0.1),
    ("torch", "LinearLR"): dict(learning_rate=0.1),
    ("torch", "ExponentialLR"): dict(learning_rate=0.1, gamma=0.99),
    ("torch", "StepLR"): dict(learning_rate=0.1, step_size=30),
    ("torch", "MultiStepLR"): dict(learning_rate=0.1, milestones=[50, 100]),
    ("torch", "PolynomialLR"): dict(learning_rate=0.1),
    ("torch", "CosineAnnealingLR"): dict(learning_rate=0.1, T_max=100),
    ("torch", "CosineAnnealingWarmRestarts"): dict(learning_rate=0.1, T_0=10),
    ("torch", "OneCycleLR"): dict(max_lr=0.1, total_steps=300, cycle_momentum=False),
    ("torch", "CyclicLR"): dict(base_lr=0.01, max_lr=0.1, step_size_up=20, cycle_momentum=False),
    ("torch", "SequentialLR"): dict(learning_rate=0.1, schedulers=CHAIN, milestones=[20]),
    ("torch", "LambdaLR"): dict(learning_rate=0.1, lr_lambda=lambda e: 0.99**e),
    ("torch", "MultiplicativeLR"): dict(learning_rate=0.1, lr_lambda=lambda e: 0.99 + 0.0 * e),
    ("torch", "ChainedScheduler"): dict(learning_rate=0.1, schedulers=CHAIN),
    ("torch", "SWALR"): dict(learning_rate=0.1, swa_lr=0.01),
    ("torch_momentum", "OneCycleLR"): dict(max_lr=0.1, total_steps=300),
    ("torch_momentum", "CyclicLR"): dict(base_lr=0.01, max_lr=0.1, step_size_up=20),
    ("torch_plateau", "ReduceLROnPlateau"): dict(learning_rate=0.1, patience=2),
    ("keras_plateau", "ReduceLROnPlateau"): dict(learning_rate=0.1, patience=2, min_delta=1e-3),
    ("timm", "cosine"): dict(learning_rate=0.1, t_initial=200, warmup_t=10),
    ("timm", "tanh"): dict(learning_rate=0.1, t_initial=200, warmup_t=10),
    ("timm", "poly"): dict(learning_rate=0.1, t_initial=200, warmup_t=10),
    ("timm", "step"): dict(learning_rate=0.1, decay_t=30, decay_rate=0.5, warmup_t=10),
    ("timm", "multistep"): dict(learning_rate=0.1, decay_t=[50, 100], decay_rate=0.5, warmup_t=10),
    ("timm", "wsd"): dict(learning_rate=0.1, t_initial=200, decay_t=50, warmup_t=10),
    ("timm", "plateau"): dict(learning_rate=0.1, patience_t=2, warmup_t=3, mode="min"),
    ("keras", "CosineDecay"): dict(initial_learning_rate=0.1, decay_steps=200),
    ("keras", "CosineDecayRestarts"): dict(initial_learning_rate=0.1, first_decay_steps=20),
    ("keras", "ExponentialDecay"): dict(initial_learning_rate=0.1, decay_steps=20, decay_rate=0.5),
    ("keras", "InverseTimeDecay"): dict(initial_learning_rate=0.1, decay_steps=20, decay_rate=0.5),
    ("keras", "PolynomialDecay"): dict(initial_learning_rate=0.1, decay_steps=200),
    ("keras", "PiecewiseConstantDecay"): dict(boundaries=[50, 100], values=[0.1, 0.05, 0.01]),
    ("pytorch_warmup", "LinearWarmup"): dict(learning_rate=0.1, warmup_period=20),
    ("pytorch_warmup", "ExponentialWarmup"): dict(learning_rate=0.1, warmup_period=20),
    ("pytorch_warmup", "UntunedLinearWarmup"): dict(learning_rate=0.1),
    ("pytorch_warmup", "UntunedExponentialWarmup"): dict(learning_rate=0.1),
    ("pytorch_warmup", "RAdamWarmup"): dict(learning_rate=0.1),
}

# The other value of each argument (per argument name; a few names need one per schedule).
ALT = {
    "learning_rate": 0.2, "initial_learning_rate": 0.2, "num_warmup_steps": 10, "num_training_steps": 300,
    "num_cycles": 2.0, "lr_end": 0.01, "power": 2.0, "timescale": 100, "min_lr": 0.02, "min_lr_rate": 0.2,
    "warmup_lr_rate": 0.3, "num_decay_steps": 30, "num_stable_steps": 40, "warmup_type": "cosine",
    "decay_type": "linear", "min_lr_ratio": 0.1, "mode": "max", "factor": 0.5, "patience": 4, "threshold": 0.2,
    "threshold_mode": "abs", "cooldown": 3, "eps": 0.5, "flip_sign": False, "start_factor": 0.5,
    "end_factor": 0.5, "total_iters": 50, "gamma": 0.9, "step_size": 20, "milestones": [10, 60], "T_max": 50,
    "eta_min": 0.01, "T_0": 20, "T_mult": 2, "max_lr": 0.2, "total_steps": 200, "epochs": 10,
    "steps_per_epoch": 30, "pct_start": 0.4, "anneal_strategy": "linear", "cycle_momentum": True,
    "base_momentum": 0.7, "max_momentum": 0.99, "div_factor": 10.0, "final_div_factor": 100.0,
    "three_phase": True, "base_lr": 0.02, "step_size_up": 30, "step_size_down": 10, "scale_fn": None,
    "scale_mode": "iterations", "lr_lambda": lambda e: 0.98**e, "schedulers": [("StepLR", {"step_size": 7})],
    "swa_lr": 0.05, "anneal_epochs": 5, "t_initial": 100, "lr_min": 0.01, "cycle_mul": 2.0, "cycle_decay": 0.5,
    "cycle_limit": 3, "k_decay": 2.0, "warmup_t": 5, "warmup_lr_init": 0.01, "warmup_prefix": True, "lb": -5.0,
    "ub": 5.0, "decay_t": 40, "decay_rate": 0.3, "noise_range_t": 10, "noise_pct": 0.5, "noise_std": 0.5,
    "noise_seed": 1, "noise_type": "uniform", "t_in_epochs": True, "initialize": False, "patience_t": 4,
    "cooldown_t": 3, "decay_steps": 50, "alpha": 0.1, "warmup_target": 0.2, "warmup_steps": 10,
    "first_decay_steps": 30, "t_mul": 1.5, "m_mul": 0.5, "staircase": True, "end_learning_rate": 0.01,
    "cycle": True, "boundaries": [30, 100], "values": [0.2, 0.05, 0.01], "warmup_period": 30, "beta2": 0.99,
    "stable_fn": "rsqrt", "stable_timescale": 20, "stable_power": 0.3, "decay_fn": "linear", "decay_power": 2.0,
    "decay_ratio": 0.05, "warmup": 3, "verbose": True, "smooth": True, "window_size": 5,
    "reset_start": 3, "monitor": "val_accuracy", "min_delta": 1e-5,
}
OVERRIDES = {
    ("torch", "MultiplicativeLR", "lr_lambda"): lambda e: 0.98 + 0.0 * e,
    ("torch", "ChainedScheduler", "schedulers"): [("StepLR", {"step_size": 7})],
    ("torch", "CyclicLR", "mode"): "triangular2",
    ("torch_momentum", "CyclicLR", "mode"): "triangular2",
    ("torch", "CyclicLR", "scale_fn"): lambda x: 0.5**x,
    ("torch_momentum", "CyclicLR", "scale_fn"): lambda x: 0.5**x,
    ("timm", "multistep", "decay_t"): [20, 60],
    ("timm", "step", "warmup_prefix"): False,
    ("timm", "multistep", "warmup_prefix"): False,
    ("torch_momentum", "OneCycleLR", "cycle_momentum"): False,
    ("torch_momentum", "CyclicLR", "cycle_momentum"): False,
    ("hf", "greedy", "threshold_mode"): "rel",
    ("hf", "greedy", "factor"): 0.8,
}
WARN_ONLY = {("torch", "OneCycleLR", "cycle_momentum"), ("torch", "CyclicLR", "cycle_momentum")}
# torch_momentum_schedule takes the same keyword arguments as torch_schedule (one dict builds both), and
# validates them as torch does; the momentum does not depend on these learning-rate levels.
SAME_KWARGS = {
    ("torch_momentum", "OneCycleLR", "max_lr"),
    ("torch_momentum", "OneCycleLR", "div_factor"),
    ("torch_momentum", "OneCycleLR", "final_div_factor"),
    ("torch_momentum", "CyclicLR", "base_lr"),
    ("torch_momentum", "CyclicLR", "max_lr"),
}


def _build(peer: str, name: str, kwargs: dict):
    if peer == "hf":
        return compat.hf_schedule(name, **kwargs)
    if peer == "torch":
        return compat.torch_schedule(name, **kwargs)
    if peer == "torch_momentum":
        return compat.torch_momentum_schedule(name, **kwargs)
    if peer == "torch_plateau":
        return compat.torch_reduce_lr_on_plateau(**kwargs)
    if peer == "keras_plateau":
        return compat.keras_reduce_lr_on_plateau(**kwargs)
    if peer == "timm":
        return compat.timm_schedule(name, **kwargs)
    if peer == "keras":
        return compat.keras_schedule(name, **kwargs)
    return compat.pytorch_warmup_schedule(name, **kwargs)


def _output(built, metrics=METRICS) -> np.ndarray:
    if callable(built):
        return np.asarray(built(COUNTS))
    params = jnp.zeros(1)
    state, out = built.init(params), []
    for metric in metrics:
        u, state = built.update(jnp.ones(1), state, params, value=metric)
        out.append(float(u[0]))
    return np.asarray(out)


def outcome(peer: str, name: str, kwargs: dict):
    """``("raises", error)``, or ``("runs", output, warned)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            built = _build(peer, name, kwargs)
        except (ValueError, TypeError) as error:
            return ("raises", error)
        return ("runs", _output(built, METRICS_GREEDY if name == "greedy" else METRICS), bool(caught))


TABLE = all_arguments()
ALL = sorted((peer, name, arg) for (peer, name), args in TABLE.items() for arg in args)


def test_every_name_has_a_base_and_every_argument_an_alternative():
    assert set(BASE) == set(TABLE), set(BASE) ^ set(TABLE)
    missing = {arg for _, _, arg in ALL} - set(ALT)
    assert not missing, f"no alternative value for {sorted(missing)}"
    for (peer, name), kwargs in BASE.items():
        assert set(kwargs) <= TABLE[peer, name], (peer, name, set(kwargs) - TABLE[peer, name])
        assert outcome(peer, name, kwargs)[0] == "runs", (peer, name)


@pytest.mark.parametrize("peer, name, arg", ALL, ids=lambda x: str(x))
def test_argument_is_used_or_refused(peer, name, arg):
    base = BASE[peer, name]
    value = OVERRIDES.get((peer, name, arg), ALT[arg])
    if arg == "scale_fn" and value is None:
        pytest.fail("scale_fn needs an override")
    got = outcome(peer, name, dict(base, **{arg: value}))
    if got[0] == "raises":
        return
    _, output, warned = got
    reference = outcome(peer, name, base)[1]
    changed = output.shape != reference.shape or not np.allclose(output, reference, rtol=1e-7, atol=0.0)
    if (peer, name, arg) in WARN_ONLY:
        assert warned and not changed, f"{arg}={value!r} should warn (and leave the LR as it is)"
    elif (peer, name, arg) in SAME_KWARGS:
        assert not changed
        with pytest.raises(ValueError, match=arg):  # still checked like the learning-rate schedule checks it
            _build(peer, name, dict(base, **{arg: float("nan")}))
    else:
        assert changed, f"{peer} {name}: {arg}={value!r} neither raises nor changes the output"
