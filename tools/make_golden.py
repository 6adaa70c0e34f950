"""Record golden learning-rate sequences from the real peer libraries.

The test suite never imports torch, transformers, timm, keras or pytorch_warmup: it reads the JSON file
this script writes (``tests/data/compat_golden.json``) and compares ``optax_warmup.compat`` against it.
Regenerate it in a throwaway environment that has the peers installed, for example::

    python3 -m venv /tmp/peers
    /tmp/peers/bin/pip install torch transformers timm keras pytorch-warmup jax
    KERAS_BACKEND=jax /tmp/peers/bin/python tools/make_golden.py

Every case is driven the way the peer documents it, and the value stored at index ``k`` is the learning
rate the optimizer holds for its ``(k+1)``-th update:

* HF / torch: read ``param_groups[0]["lr"]``, then ``optimizer.step()``, then ``scheduler.step()``.
* timm: ``t_in_epochs=False``; read the LR, ``optimizer.step()``, ``scheduler.step_update(num_updates)``.
* pytorch_warmup: read the LR, ``optimizer.step()``, then
  ``with warmup.dampening(): <base scheduler step, or pass>``.
* Keras: ``float(schedule(k))``.

A case's ``args`` are exactly the keyword arguments of the matching ``optax_warmup.compat`` function.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")


def _stub_torchvision_if_broken() -> None:
    """timm imports torchvision at import time but its schedulers never use it. PyPI's torchvision wheel is built
    against CUDA torch and does not load beside the CPU build of torch (``operator torchvision::nms does not
    exist``); then stand in empty modules for it, so that ``import timm`` works."""
    import importlib.abc
    import importlib.machinery
    import sys
    import types

    try:
        import torchvision  # noqa: F401
        return
    except (ImportError, RuntimeError, OSError):
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]

    class AnyAttribute(type):  # a class whose every attribute is another such class (enums, constants)
        def __getattr__(cls, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return AnyAttribute(name, (), {})

    class Stub(types.ModuleType):
        __path__: list = []

        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return AnyAttribute(name, (), {})

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, fullname, path, target=None):
            if fullname == "torchvision" or fullname.startswith("torchvision."):
                return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
            return None

        def create_module(self, spec):
            return Stub(spec.name)

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, Finder())


_stub_torchvision_if_broken()

import keras  # noqa: E402
import pytorch_warmup  # noqa: E402
import timm  # noqa: E402
import timm.scheduler  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers.optimization import get_scheduler  # noqa: E402

warnings.filterwarnings("ignore")
N = 300  # default number of recorded steps


def _round(x: float) -> float:
    return float(f"{x:.12g}")


def _opt(lr: float, beta2: float = 0.999) -> torch.optim.Optimizer:
    param = torch.nn.Parameter(torch.zeros(1))
    return torch.optim.Adam([param], lr=lr, betas=(0.9, beta2))


def _drive(opt, step, n: int) -> list[float]:
    values = [float(opt.param_groups[0]["lr"])]
    for _ in range(n - 1):
        opt.step()
        step()
        values.append(float(opt.param_groups[0]["lr"]))
    return values


# ----------------------------------------------------------------------------------------------------
# HF transformers
def hf_case(name, learning_rate, num_warmup_steps=None, num_training_steps=None, n=N, **kwargs):
    opt = _opt(learning_rate)
    sched = get_scheduler(name, opt, num_warmup_steps, num_training_steps, scheduler_specific_kwargs=kwargs)
    args = dict(
        learning_rate=learning_rate,
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        **kwargs,
    )
    return dict(peer="hf", name=name, args=args, values=_drive(opt, sched.step, n))


def hf_cases():
    b = 0.1
    yield hf_case("constant", b)
    yield hf_case("constant_with_warmup", b, 0)
    yield hf_case("constant_with_warmup", b, 50)
    yield hf_case("linear", b, 20, 200)
    yield hf_case("linear", b, 0, 200)
    yield hf_case("linear", b, 250, 200)  # warmup longer than training
    yield hf_case("linear", b, 200, 200)
    yield hf_case("cosine", b, 20, 200)  # periodic after T
    yield hf_case("cosine", b, 0, 200)
    yield hf_case("cosine", 3e-4, 20, 200, num_cycles=1.5)
    yield hf_case("cosine", b, 250, 200)
    yield hf_case("cosine_with_restarts", b, 10, 200, num_cycles=3)
    yield hf_case("cosine_with_restarts", b, 0, 200)
    yield hf_case("cosine_with_restarts", b, 20, 150, num_cycles=2)
    yield hf_case("polynomial", b, 20, 200, lr_end=1e-4, power=2.0)
    yield hf_case("polynomial", b, 20, 200)
    yield hf_case("polynomial", b, 0, 200, power=0.5, lr_end=0.01)
    yield hf_case("inverse_sqrt", b, 30)
    yield hf_case("inverse_sqrt", b, 0)
    yield hf_case("inverse_sqrt", b, 30, timescale=100)
    yield hf_case("cosine_with_min_lr", b, 20, 200, min_lr_rate=0.1)
    yield hf_case("cosine_with_min_lr", b, 20, 200, min_lr=0.01, num_cycles=1.0)
    yield hf_case("cosine_with_min_lr", b, 0, 150, min_lr_rate=0.05)
    yield hf_case("cosine_warmup_with_min_lr", b, 20, 200, min_lr_rate=0.1)
    yield hf_case("cosine_warmup_with_min_lr", b, 20, 200, min_lr_rate=0.05, warmup_lr_rate=0.2)
    yield hf_case("cosine_warmup_with_min_lr", b, 0, 200, min_lr=0.001)
    yield hf_case("cosine_warmup_with_min_lr", b, 1, 100, min_lr_rate=0.1, warmup_lr_rate=0.3)
    yield hf_case("warmup_stable_decay", b, 20, 200, num_decay_steps=50)
    yield hf_case(
        "warmup_stable_decay",
        b,
        20,
        200,
        num_decay_steps=60,
        warmup_type="cosine",
        decay_type="1-sqrt",
        min_lr_ratio=0.1,
    )
    yield hf_case(
        "warmup_stable_decay",
        b,
        30,
        None,
        num_decay_steps=40,
        num_stable_steps=100,
        warmup_type="1-sqrt",
        decay_type="linear",
        min_lr_ratio=0.05,
    )
    yield hf_case("warmup_stable_decay", b, 10, 150, num_decay_steps=50, num_stable_steps=60)  # both: S wins
    yield hf_case("warmup_stable_decay", b, 0, 200, num_decay_steps=100, num_cycles=1.0, min_lr_ratio=0.2)


# ----------------------------------------------------------------------------------------------------
# torch.optim.lr_scheduler
def _torch_sched(opt, name, kwargs):
    return getattr(torch.optim.lr_scheduler, name)(opt, **kwargs)


def torch_case(name, learning_rate, n=N, **kwargs):
    opt = _opt(learning_rate)
    if name == "SequentialLR":
        subs = [_torch_sched(opt, sub, sub_kwargs) for sub, sub_kwargs in kwargs["schedulers"]]
        sched = torch.optim.lr_scheduler.SequentialLR(opt, subs, milestones=kwargs["milestones"])
        kwargs = dict(
            schedulers=[[sub, dict(sub_kwargs)] for sub, sub_kwargs in kwargs["schedulers"]],
            milestones=list(kwargs["milestones"]),
        )
    else:
        sched = _torch_sched(opt, name, kwargs)
    # OneCycleLR and CyclicLR overwrite the optimizer's LR: torch_schedule refuses learning_rate for them.
    lr_arg = {} if name in ("OneCycleLR", "CyclicLR") else dict(learning_rate=learning_rate)
    return dict(peer="torch", name=name, args=dict(lr_arg, **kwargs), values=_drive(opt, sched.step, n))


def torch_cases():
    b = 0.1
    yield torch_case("ConstantLR", b)
    yield torch_case("ConstantLR", b, factor=0.5, total_iters=50)
    yield torch_case("LinearLR", b)
    yield torch_case("LinearLR", b, start_factor=0.01, end_factor=1.0, total_iters=50)
    yield torch_case("LinearLR", b, start_factor=1.0, end_factor=0.1, total_iters=100)
    yield torch_case("ExponentialLR", b, gamma=0.99)
    yield torch_case("StepLR", b, step_size=30, gamma=0.5)
    yield torch_case("StepLR", b, step_size=45)
    yield torch_case("MultiStepLR", b, milestones=[50, 120, 120, 200], gamma=0.5)
    yield torch_case("MultiStepLR", b, milestones=[120, 30])
    yield torch_case("PolynomialLR", b, total_iters=100, power=0.9)
    yield torch_case("PolynomialLR", b)
    yield torch_case("PolynomialLR", b, total_iters=150, power=2.0)
    yield torch_case("CosineAnnealingLR", b, T_max=50, eta_min=0.01)  # periodic, recursive form
    yield torch_case("CosineAnnealingLR", b, T_max=100)
    yield torch_case("CosineAnnealingLR", b, T_max=1, eta_min=0.02, n=20)
    yield torch_case("CosineAnnealingWarmRestarts", b, T_0=10, T_mult=2, eta_min=0.001)
    yield torch_case("CosineAnnealingWarmRestarts", b, T_0=25)
    yield torch_case("CosineAnnealingWarmRestarts", b, T_0=3, T_mult=3)
    yield torch_case("OneCycleLR", b, max_lr=0.1, total_steps=300, n=301)
    yield torch_case("OneCycleLR", b, max_lr=0.05, total_steps=200, anneal_strategy="linear", n=201)
    yield torch_case("OneCycleLR", b, max_lr=0.1, total_steps=250, three_phase=True, n=251)
    yield torch_case("OneCycleLR", b, max_lr=1.0, total_steps=10, n=11)
    yield torch_case(
        "OneCycleLR",
        b,
        max_lr=0.1,
        epochs=10,
        steps_per_epoch=30,
        pct_start=0.25,
        div_factor=10.0,
        final_div_factor=100.0,
        n=301,
    )
    yield torch_case("CyclicLR", b, base_lr=0.01, max_lr=0.1, step_size_up=20)
    yield torch_case(
        "CyclicLR", b, base_lr=0.01, max_lr=0.1, step_size_up=20, step_size_down=40, mode="triangular2"
    )
    yield torch_case("CyclicLR", b, base_lr=0.001, max_lr=0.1, step_size_up=15, mode="exp_range", gamma=0.99)
    yield torch_case(
        "SequentialLR",
        b,
        schedulers=[
            ("LinearLR", dict(start_factor=0.01, total_iters=20)),
            ("CosineAnnealingLR", dict(T_max=180)),
        ],
        milestones=[20],
    )
    yield torch_case(
        "SequentialLR",
        b,
        schedulers=[("ConstantLR", dict(factor=0.1, total_iters=10)), ("ExponentialLR", dict(gamma=0.99))],
        milestones=[10],
    )
    yield torch_case(
        "SequentialLR",
        b,
        schedulers=[
            ("LinearLR", dict(start_factor=0.1, total_iters=30)),
            ("ConstantLR", dict(factor=0.5, total_iters=40)),
            ("StepLR", dict(step_size=50, gamma=0.5)),
        ],
        milestones=[30, 100],
    )
    yield torch_case(
        "SequentialLR",
        b,
        schedulers=[
            ("LinearLR", dict(start_factor=0.2, total_iters=50)),
            ("PolynomialLR", dict(total_iters=200, power=2.0)),
        ],
        milestones=[40],
    )


# ----------------------------------------------------------------------------------------------------
# timm
TIMM = {
    "cosine": timm.scheduler.CosineLRScheduler,
    "tanh": timm.scheduler.TanhLRScheduler,
    "step": timm.scheduler.StepLRScheduler,
    "multistep": timm.scheduler.MultiStepLRScheduler,
    "poly": timm.scheduler.PolyLRScheduler,
    "wsd": timm.scheduler.WSDLRScheduler,
}


def timm_case(name, learning_rate, n=N, **kwargs):
    opt = _opt(learning_rate)
    sched = TIMM[name](opt, t_in_epochs=False, **kwargs)
    values = [float(opt.param_groups[0]["lr"])]
    for num_updates in range(1, n):
        opt.step()
        sched.step_update(num_updates)
        values.append(float(opt.param_groups[0]["lr"]))
    return dict(peer="timm", name=name, args=dict(learning_rate=learning_rate, **kwargs), values=values)


def timm_cases():
    b = 0.1
    yield timm_case("cosine", b, t_initial=200, warmup_t=20, warmup_lr_init=1e-4, lr_min=1e-3)
    yield timm_case(
        "cosine", b, t_initial=200, warmup_t=20, warmup_lr_init=1e-4, lr_min=1e-3, warmup_prefix=True
    )
    yield timm_case("cosine", b, t_initial=50, cycle_limit=4, cycle_decay=0.5)
    yield timm_case("cosine", b, t_initial=20, cycle_mul=2.0, cycle_limit=4, lr_min=1e-3)
    yield timm_case("cosine", b, t_initial=30, cycle_mul=1.5, cycle_limit=3, warmup_t=5, warmup_prefix=True)
    yield timm_case("cosine", b, t_initial=200, k_decay=2.0, warmup_t=10)
    yield timm_case("cosine", b, t_initial=10, cycle_mul=3.0, cycle_limit=5)
    yield timm_case("tanh", b, t_initial=200, warmup_t=20, warmup_lr_init=1e-4)
    yield timm_case("tanh", b, t_initial=200, warmup_t=20, warmup_lr_init=1e-4, warmup_prefix=True)
    yield timm_case("tanh", b, t_initial=100, lb=-5.0, ub=5.0, lr_min=1e-3, cycle_limit=2, cycle_decay=0.5)
    yield timm_case("tanh", b, t_initial=40, cycle_mul=2.0, cycle_limit=3)
    yield timm_case("step", b, decay_t=30, decay_rate=0.5, warmup_t=10, warmup_lr_init=1e-3)
    yield timm_case(
        "step", b, decay_t=30, decay_rate=0.5, warmup_t=10, warmup_lr_init=1e-3, warmup_prefix=False
    )
    yield timm_case("step", b, decay_t=45, decay_rate=0.8)
    yield timm_case("multistep", b, decay_t=[50, 120, 200], decay_rate=0.5)
    yield timm_case("multistep", b, decay_t=[50, 120, 200], decay_rate=0.5, warmup_t=10, warmup_lr_init=1e-3)
    yield timm_case("multistep", b, decay_t=[1, 60], decay_rate=0.1)
    yield timm_case("poly", b, t_initial=200, power=0.5, warmup_t=20, lr_min=1e-3)
    yield timm_case(
        "poly", b, t_initial=200, power=2.0, warmup_t=20, warmup_lr_init=1e-3, warmup_prefix=True, k_decay=1.5
    )
    yield timm_case("poly", b, t_initial=100, power=1.0, cycle_limit=2, cycle_decay=0.5)


# ----------------------------------------------------------------------------------------------------
# Keras 3
def keras_case(name, n=N, **kwargs):
    sched = getattr(keras.optimizers.schedules, name)(**kwargs)
    values = [float(sched(k)) for k in range(n)]
    return dict(peer="keras", name=name, args=dict(kwargs), values=values)


def keras_cases():
    yield keras_case("CosineDecay", initial_learning_rate=0.1, decay_steps=200)
    yield keras_case("CosineDecay", initial_learning_rate=0.1, decay_steps=200, alpha=0.1)
    yield keras_case(
        "CosineDecay",
        initial_learning_rate=0.0,
        decay_steps=200,
        alpha=0.05,
        warmup_target=0.1,
        warmup_steps=30,
    )
    yield keras_case(
        "CosineDecay", initial_learning_rate=1e-4, decay_steps=100, warmup_target=0.1, warmup_steps=0
    )
    yield keras_case(
        "CosineDecay", initial_learning_rate=0.01, decay_steps=100, warmup_target=0.1, warmup_steps=250
    )
    yield keras_case("CosineDecayRestarts", initial_learning_rate=0.1, first_decay_steps=20)
    yield keras_case(
        "CosineDecayRestarts",
        initial_learning_rate=0.1,
        first_decay_steps=30,
        t_mul=1.0,
        m_mul=0.5,
        alpha=0.1,
    )
    yield keras_case(
        "CosineDecayRestarts", initial_learning_rate=0.1, first_decay_steps=10, t_mul=1.5, m_mul=0.8
    )
    yield keras_case("CosineDecayRestarts", initial_learning_rate=0.1, first_decay_steps=5, t_mul=3.0)
    yield keras_case("ExponentialDecay", initial_learning_rate=0.1, decay_steps=50, decay_rate=0.5)
    yield keras_case(
        "ExponentialDecay", initial_learning_rate=0.1, decay_steps=50, decay_rate=0.5, staircase=True
    )
    yield keras_case("PolynomialDecay", initial_learning_rate=0.1, decay_steps=200)
    yield keras_case(
        "PolynomialDecay",
        initial_learning_rate=0.1,
        decay_steps=50,
        end_learning_rate=0.001,
        power=2.0,
        cycle=True,
    )
    yield keras_case(
        "PolynomialDecay", initial_learning_rate=0.1, decay_steps=150, end_learning_rate=0.01, power=0.5
    )
    yield keras_case("PiecewiseConstantDecay", boundaries=[50, 120], values=[0.1, 0.05, 0.01])
    yield keras_case("PiecewiseConstantDecay", boundaries=[100], values=[1.0, 0.5])
    yield keras_case("InverseTimeDecay", initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5)
    yield keras_case(
        "InverseTimeDecay", initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5, staircase=True
    )


# ----------------------------------------------------------------------------------------------------
# pytorch_warmup
def pw_case(name, learning_rate, n=N, counts=None, base=None, **kwargs):
    beta2 = kwargs.get("beta2", 0.999)
    opt = _opt(learning_rate, beta2=beta2)
    base_sched = _torch_sched(opt, base[0], base[1]) if base else None  # the warmup must come after it
    ctor_kwargs = {k: v for k, v in kwargs.items() if k != "beta2"}
    warm = getattr(pytorch_warmup, name)(opt, **ctor_kwargs)
    values = []
    last = max(counts) + 1 if counts else n
    for _ in range(last):
        values.append(float(opt.param_groups[0]["lr"]))
        opt.step()
        with warm.dampening():
            if base_sched is not None:
                base_sched.step()
    case = dict(peer="pytorch_warmup", name=name, args=dict(learning_rate=learning_rate, **kwargs))
    if base:
        case["base"] = ["torch", base[0], dict(learning_rate=learning_rate, **base[1])]
    if counts:
        case["counts"] = list(counts)
        values = [values[c] for c in counts]
    case["values"] = values
    return case


def pw_cases():
    b = 0.1
    sparse = list(range(0, 100)) + list(range(100, 4000, 37))
    yield pw_case("LinearWarmup", b, warmup_period=50)
    yield pw_case("LinearWarmup", b, warmup_period=1, n=10)
    yield pw_case("ExponentialWarmup", b, warmup_period=30)
    yield pw_case("UntunedLinearWarmup", b, beta2=0.99)
    yield pw_case("UntunedLinearWarmup", b, beta2=0.999, counts=sparse)
    yield pw_case("UntunedLinearWarmup", b, beta2=0.98)
    yield pw_case("UntunedExponentialWarmup", b, beta2=0.99)
    yield pw_case("UntunedExponentialWarmup", b, beta2=0.999, counts=sparse)
    yield pw_case("RAdamWarmup", b, beta2=0.7, n=50)
    yield pw_case("RAdamWarmup", b, beta2=0.99)
    yield pw_case("RAdamWarmup", b, beta2=0.999, counts=sparse)
    yield pw_case("LinearWarmup", b, warmup_period=40, base=("CosineAnnealingLR", dict(T_max=300)))


# ----------------------------------------------------------------------------------------------------
# Parity cases (tests/data/compat_golden_parity.json): lambda and chained schedulers, SWALR, the momentum
# OneCycleLR / CyclicLR set, and the metric-driven plateau schedulers of torch, HF and timm.
#
# A lambda is stored as the text of an expression in `e` (the epoch); the test evaluates the same text with
# jax.numpy functions under the same names.
LAMBDA_NAMESPACE = dict(min=min, max=max, cos=math.cos, sqrt=math.sqrt, pi=math.pi, floor=math.floor)


def _lambda(expr: str):
    return eval("lambda e: " + expr, dict(LAMBDA_NAMESPACE))  # noqa: S307 (our own fixed expressions)


def _torch_child(opt, name, kwargs):
    kwargs = dict(kwargs)
    if name == "ChainedScheduler":
        return torch.optim.lr_scheduler.ChainedScheduler([_torch_child(opt, n, k) for n, k in kwargs["schedulers"]])
    if "lr_lambda" in kwargs:
        kwargs["lr_lambda"] = _lambda(kwargs["lr_lambda"])
    if name == "SWALR":
        return torch.optim.swa_utils.SWALR(opt, **kwargs)
    return getattr(torch.optim.lr_scheduler, name)(opt, **kwargs)


def _as_args(kwargs):
    """JSON form of nested (name, kwargs) lists."""
    out = dict(kwargs)
    if "schedulers" in out:
        out["schedulers"] = [[n, _as_args(k)] for n, k in out["schedulers"]]
    return out


def torch_parity_case(name, learning_rate, n=N, **kwargs):
    opt = _opt(learning_rate)
    if name == "SequentialLR":
        subs = [_torch_child(opt, sub, sub_kwargs) for sub, sub_kwargs in kwargs["schedulers"]]
        sched = torch.optim.lr_scheduler.SequentialLR(opt, subs, milestones=kwargs["milestones"])
    else:
        sched = _torch_child(opt, name, kwargs)
    args = dict(learning_rate=learning_rate, **_as_args(kwargs))
    return dict(peer="torch", name=name, args=args, values=_drive(opt, sched.step, n))


def momentum_case(name, optimizer="adam", n=N, **kwargs):
    """The momentum torch sets before each update: Adam's betas[0], or SGD's momentum."""
    param = torch.nn.Parameter(torch.zeros(1))
    if optimizer == "adam":
        opt = torch.optim.Adam([param], lr=0.1)
    else:
        opt = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    sched = getattr(torch.optim.lr_scheduler, name)(opt, **kwargs)

    def momentum():
        group = opt.param_groups[0]
        return float(group["betas"][0] if optimizer == "adam" else group["momentum"])

    values = [momentum()]
    for _ in range(n - 1):
        opt.step()
        sched.step()
        values.append(momentum())
    return dict(peer="torch_momentum", name=name, args=dict(kwargs), optimizer=optimizer, values=values)


def _metrics(seed: int, n: int, kind: str) -> list[float]:
    """A metric that improves, then stalls and wobbles (so plateaus are found), rounded to 4 decimals."""
    import random

    rng = random.Random(seed)
    out, level = [], 1.0
    for i in range(n):
        if kind == "min":
            level = level * (0.97 if i < n // 4 else 0.999) if i % 40 < 25 else level
            out.append(round(level + rng.uniform(-0.01, 0.01), 4))
        else:
            level = min(0.95, level + (0.02 if i % 50 < 20 else 0.0)) if i else 0.3
            out.append(round(level + rng.uniform(-0.01, 0.01), 4))
    return out


def _drive_metrics(opt, step, metrics):
    values = [float(opt.param_groups[0]["lr"])]
    for m in metrics[:-1]:
        opt.step()
        step(m)
        values.append(float(opt.param_groups[0]["lr"]))
    return values


def torch_plateau_case(learning_rate, metrics, **kwargs):
    opt = _opt(learning_rate)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kwargs)
    return dict(peer="torch_plateau", name="ReduceLROnPlateau", args=dict(learning_rate=learning_rate, **kwargs),
                metrics=metrics, values=_drive_metrics(opt, sched.step, metrics))


def keras_plateau_case(learning_rate, metrics, **kwargs):
    """Keras' ReduceLROnPlateau callback, called at the end of each "epoch" (here: each update) with the metric."""
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    callback = keras.callbacks.ReduceLROnPlateau(**kwargs)
    callback.set_model(type("Model", (), {"optimizer": optimizer})())
    callback.on_train_begin()
    values = []
    for epoch, metric in enumerate(metrics):
        values.append(float(keras.ops.convert_to_numpy(optimizer.learning_rate)))
        callback.on_epoch_end(epoch, logs={callback.monitor: float(metric)})
    return dict(peer="keras_plateau", name="ReduceLROnPlateau", args=dict(learning_rate=learning_rate, **kwargs),
                metrics=metrics, values=values)


def hf_plateau_case(learning_rate, metrics, name="reduce_lr_on_plateau", **kwargs):
    opt = _opt(learning_rate)
    sched = get_scheduler(name, opt, scheduler_specific_kwargs=kwargs)
    return dict(peer="hf", name=name, args=dict(learning_rate=learning_rate, **kwargs),
                metrics=metrics, values=_drive_metrics(opt, sched.step, metrics))


def timm_plateau_case(learning_rate, metrics, **kwargs):
    opt = _opt(learning_rate)
    sched = timm.scheduler.PlateauLRScheduler(opt, **kwargs)
    values = [float(opt.param_groups[0]["lr"])]
    for epoch, m in enumerate(metrics[:-1], start=1):  # timm's train.py: step(epoch + 1, metric) per epoch
        opt.step()
        sched.step(epoch, m)
        values.append(float(opt.param_groups[0]["lr"]))
    return dict(peer="timm", name="plateau", args=dict(learning_rate=learning_rate, **kwargs), metrics=metrics,
                values=values)


def megatron_case(start, increment, samples, global_batch_size, n):
    """Megatron's classic ramp: the global batch size of each iteration and the samples consumed before it."""
    from megatron.core.num_microbatches_calculator import RampupBatchsizeNumMicroBatchesCalculator

    calc = RampupBatchsizeNumMicroBatchesCalculator(
        global_batch_size, 1, 1, False, 0, start, increment, samples
    )
    consumed, batches, seen = 0, [], []
    for _ in range(n):  # megatron/training/training.py: update_num_microbatches(consumed) before each iteration
        calc.update(consumed, consistency_check=False)
        batch = calc.get_current_global_batch_size()
        batches.append(batch)
        seen.append(consumed)
        consumed += batch
    args = dict(rampup=[start, increment, samples], global_batch_size=global_batch_size)
    return dict(peer="megatron", name="rampup", args=args, values=batches, samples_seen=seen)


def parity_cases():
    b = 0.1
    yield timm_case("wsd", b, t_initial=250, decay_t=60, warmup_t=20, warmup_lr_init=1e-3)
    yield timm_case("wsd", b, t_initial=200, decay_t=200, lr_min=1e-3, decay_fn="cosine")
    yield timm_case(
        "wsd", b, t_initial=250, decay_t=50, warmup_t=25, stable_fn="rsqrt", decay_fn="linear", lr_min=1e-4
    )
    yield timm_case(
        "wsd", b, t_initial=250, decay_t=80, warmup_t=10, stable_fn="power", stable_power=0.3,
        stable_timescale=40, decay_fn="power", decay_power=2.0,
    )
    yield timm_case("wsd", b, t_initial=280, decay_t=100, decay_fn="exp", decay_ratio=0.05, lr_min=0.01)
    yield megatron_case(16, 16, 100, 64, n=20)
    yield megatron_case(32, 32, 1_953_125, 1536, n=1200)
    yield megatron_case(8, 8, 1000, 256, n=200)
    yield megatron_case(4, 2, 7, 64, n=40)  # fewer samples than increments: several sizes per threshold
    yield torch_parity_case("LambdaLR", b, lr_lambda="0.95 ** e")
    yield torch_parity_case("LambdaLR", b, lr_lambda="min(1.0, (e + 1) / 25)")
    yield torch_parity_case("LambdaLR", b, lr_lambda="0.5 * (1 + cos(pi * min(e, 200) / 200))")
    yield torch_parity_case("MultiplicativeLR", b, lr_lambda="0.99")
    yield torch_parity_case("MultiplicativeLR", b, lr_lambda="max(0.97, 1 - 0.001 * e)")
    chain_warm_exp = [("LinearLR", dict(start_factor=0.1, total_iters=20)), ("ExponentialLR", dict(gamma=0.99))]
    yield torch_parity_case("ChainedScheduler", b, schedulers=chain_warm_exp)
    yield torch_parity_case(
        "ChainedScheduler",
        b,
        schedulers=[
            ("ConstantLR", dict(factor=0.5, total_iters=10)),
            ("StepLR", dict(step_size=30, gamma=0.5)),
            ("PolynomialLR", dict(total_iters=200, power=2.0)),
        ],
    )
    yield torch_parity_case(
        "ChainedScheduler",
        b,
        schedulers=[
            ("LinearLR", dict(start_factor=0.25, end_factor=0.9, total_iters=40)),
            ("MultiStepLR", dict(milestones=[50, 100, 100], gamma=0.3)),
            ("MultiplicativeLR", dict(lr_lambda="0.998")),
        ],
    )
    yield torch_parity_case(
        "SequentialLR",
        b,
        schedulers=[("ChainedScheduler", dict(schedulers=chain_warm_exp)), ("StepLR", dict(step_size=30))],
        milestones=[120],
    )
    yield torch_parity_case(
        "SequentialLR",
        b,
        schedulers=[
            (
                "ChainedScheduler",
                dict(
                    schedulers=[
                        ("PolynomialLR", dict(total_iters=100, power=1.5)),
                        ("MultiplicativeLR", dict(lr_lambda="0.999")),
                    ]
                ),
            ),
            ("ConstantLR", dict(factor=0.2, total_iters=20)),
        ],
        milestones=[150],
    )
    # Chains torch does not compose as a product: a cosine stepping from the LR the others left (zero, then
    # restart, past T_max), resetting children (LambdaLR, CosineAnnealingWarmRestarts) and what follows them.
    warm = ("LinearLR", dict(start_factor=0.1, total_iters=20))
    yield torch_parity_case("ChainedScheduler", b, schedulers=[warm, ("CosineAnnealingLR", dict(T_max=100))])
    yield torch_parity_case(
        "ChainedScheduler",
        b,
        schedulers=[("CosineAnnealingLR", dict(T_max=45)), ("StepLR", dict(step_size=30, gamma=0.5)),
                    ("PolynomialLR", dict(total_iters=250, power=1.0))],
    )
    yield torch_parity_case(
        "ChainedScheduler",
        b,
        schedulers=[("ExponentialLR", dict(gamma=0.99)), ("LambdaLR", dict(lr_lambda="min(1.0, (e + 1) / 25)")),
                    ("CosineAnnealingLR", dict(T_max=80, eta_min=0.01)), ("ExponentialLR", dict(gamma=0.995))],
    )
    yield torch_parity_case(
        "ChainedScheduler",
        b,
        schedulers=[("CosineAnnealingWarmRestarts", dict(T_0=40, T_mult=2, eta_min=0.001)),
                    ("StepLR", dict(step_size=25, gamma=0.7))],
    )
    yield torch_parity_case(
        "ChainedScheduler",
        b,
        schedulers=[("ChainedScheduler", dict(schedulers=[warm, ("MultiplicativeLR", dict(lr_lambda="0.999"))])),
                    ("CosineAnnealingLR", dict(T_max=60))],
    )
    yield torch_parity_case("ChainedScheduler", b, schedulers=[("CosineAnnealingLR", dict(T_max=70, eta_min=0.02))])
    yield torch_parity_case(
        "SequentialLR",
        b,
        schedulers=[("ChainedScheduler", dict(schedulers=[("ExponentialLR", dict(gamma=0.98)),
                                                          ("CosineAnnealingLR", dict(T_max=50))])),
                    ("StepLR", dict(step_size=30))],
        milestones=[150],
    )
    yield torch_parity_case(
        "SequentialLR",
        b,
        schedulers=[("ChainedScheduler", dict(schedulers=[("LambdaLR", dict(lr_lambda="0.97 ** e")),
                                                          ("ExponentialLR", dict(gamma=0.9))])),
                    ("ConstantLR", dict(factor=0.5, total_iters=20))],
        milestones=[100],
    )
    yield torch_parity_case("SWALR", b, swa_lr=0.01, anneal_epochs=10)
    yield torch_parity_case("SWALR", b, swa_lr=0.05, anneal_epochs=25, anneal_strategy="linear")
    yield torch_parity_case("SWALR", b, swa_lr=0.02, anneal_epochs=0, n=20)

    yield momentum_case("OneCycleLR", max_lr=0.1, total_steps=300, n=301)
    yield momentum_case(
        "OneCycleLR", "sgd", max_lr=0.1, total_steps=200, three_phase=True, anneal_strategy="linear",
        base_momentum=0.8, max_momentum=0.9, n=201,
    )
    yield momentum_case("OneCycleLR", max_lr=0.1, epochs=10, steps_per_epoch=25, pct_start=0.25, n=251)
    yield momentum_case("CyclicLR", "sgd", base_lr=0.01, max_lr=0.1, step_size_up=20)
    yield momentum_case(
        "CyclicLR", base_lr=0.01, max_lr=0.1, step_size_up=15, step_size_down=30, mode="triangular2",
        base_momentum=0.85, max_momentum=0.95,
    )
    yield momentum_case("CyclicLR", "sgd", base_lr=0.001, max_lr=0.1, step_size_up=25, mode="exp_range", gamma=0.995)

    # The metric sequences and settings of torch's own tests (test/optim/test_lrscheduler.py,
    # test_reduce_lr_on_plateau1-7, LR 0.5), recorded from torch itself.
    yield torch_plateau_case(0.5, [10 - i * 0.0167 for i in range(20)], threshold_mode="abs", mode="min",
                             threshold=0.01, patience=5, cooldown=5)
    yield torch_plateau_case(0.5, [10 - i * 0.0165 for i in range(22)], patience=5, cooldown=0,
                             threshold_mode="abs", mode="min", threshold=0.1)
    yield torch_plateau_case(0.5, [-0.8] * 2 + [-0.234] * 20, mode="max", patience=5, cooldown=5,
                             threshold_mode="abs")
    yield torch_plateau_case(0.5, [1.5 * (1.025**i) for i in range(20)], mode="max", patience=3,
                             threshold_mode="rel", threshold=0.1)
    yield torch_plateau_case(0.5, [1.5 * (1.005**i) for i in range(20)], mode="max", threshold_mode="rel",
                             threshold=0.1, patience=5, cooldown=5)
    yield torch_plateau_case(0.5, [1.5 * (0.85**i) for i in range(20)], mode="min", threshold_mode="rel",
                             threshold=0.1)
    yield torch_plateau_case(0.5, [1] * 7 + [0.6] + [0.5] * 12, mode="min", threshold_mode="rel", threshold=0.1,
                             patience=5, cooldown=5)
    down, up = _metrics(0, N, "min"), _metrics(1, N, "max")
    yield torch_plateau_case(b, down)
    yield torch_plateau_case(b, down, patience=3, threshold=0.01, threshold_mode="abs", cooldown=2)
    yield torch_plateau_case(b, down, patience=2, factor=0.5, min_lr=0.004, cooldown=5)
    yield torch_plateau_case(b, down, patience=1, factor=0.5, eps=0.004)
    yield torch_plateau_case(b, up, mode="max", patience=4, factor=0.3)
    yield torch_plateau_case(b, up, mode="max", threshold_mode="abs", threshold=0.005, patience=2, cooldown=3)
    yield torch_plateau_case(b, down, threshold=0.05, patience=0)
    yield keras_plateau_case(b, down)
    yield keras_plateau_case(b, down, patience=3, min_delta=0.01, cooldown=2, factor=0.5)
    yield keras_plateau_case(b, down, patience=0, cooldown=1, min_lr=0.02, factor=0.5)
    yield keras_plateau_case(b, down, patience=2, cooldown=4, factor=0.3, min_delta=-0.002)
    yield keras_plateau_case(b, up, monitor="val_accuracy", mode="max", patience=4, factor=0.5, cooldown=3)
    yield keras_plateau_case(0.5, [1] * 7 + [0.6] + [0.5] * 12, mode="min", min_delta=0.1, patience=5, cooldown=5)
    yield hf_plateau_case(b, down)
    yield hf_plateau_case(b, down, patience=2, factor=0.5, cooldown=1, min_lr=1e-3)
    yield hf_plateau_case(b, down, "greedy")
    yield hf_plateau_case(
        b, down, "greedy", patience=3, factor=0.5, cooldown=2, warmup=2, min_lr=0.01, max_lr=0.5, reset_start=3
    )
    yield hf_plateau_case(
        b, up, "greedy", mode="max", threshold=0.01, threshold_mode="rel", patience=2, smooth=True, window_size=5
    )
    yield timm_plateau_case(b, up)
    yield timm_plateau_case(b, up, patience_t=3, decay_rate=0.5, warmup_t=10, warmup_lr_init=1e-3, cooldown_t=2)
    yield timm_plateau_case(b, down, mode="min", patience_t=2, lr_min=0.01, warmup_t=5)


SCHEDULE_CONVENTION = (
    "values[k] is the LR of the (k+1)-th optimizer update; with 'counts', values[i] belongs to count counts[i]"
)
PARITY_CONVENTION = (
    "values[k] is the LR (peer torch_momentum: the momentum) of the (k+1)-th optimizer update; with 'metrics', "
    "metrics[k] is the value given to the scheduler's step after update k"
)


def _write(out: str, cases: list[dict], convention: str) -> None:
    for case in cases:
        assert all(math.isfinite(v) for v in case["values"]), case["name"]
        case["values"] = [_round(v) for v in case["values"]]
    data = dict(
        generator="tools/make_golden.py",
        convention=convention,
        versions={
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "timm": timm.__version__,
            "keras": keras.__version__,
            "keras_backend": keras.backend.backend(),
            "pytorch_warmup": getattr(pytorch_warmup, "__version__", "0.2.0"),
        },
        cases=cases,
    )
    with open(out, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out} ({os.path.getsize(out) / 1e6:.2f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.path.join(os.path.dirname(__file__), "..", "tests", "data")
    parser.add_argument("--out", default=os.path.join(data, "compat_golden.json"))
    parser.add_argument("--parity-out", default=os.path.join(data, "compat_golden_parity.json"))
    parser.add_argument("--only", choices=("schedules", "parity"), help="write only one of the two files")
    args = parser.parse_args()
    if args.only != "parity":
        _write(args.out, [*hf_cases(), *torch_cases(), *timm_cases(), *keras_cases(), *pw_cases()],
               SCHEDULE_CONVENTION)
    if args.only != "schedules":
        _write(args.parity_out, list(parity_cases()), PARITY_CONVENTION)


if __name__ == "__main__":
    main()
