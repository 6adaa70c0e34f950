"""Train a whole grid of warmup settings at once: one compiled step, batched over a config axis.

Every config has its own peak learning rate, warmup length and warmup shape. The learning rate and warmup
length are traced arrays inside the step (one entry per config), so the grid compiles once. The warmup shape
is a static string in the library, so the step evaluates one schedule per distinct shape and selects with a
traced index.

The config axis is sharded over all JAX devices (`shard_map` over a 1-D `Mesh`), padded to a multiple of the
device count. Inside each device the local configs are batched with `vmap` or looped with `lax.map`
(`--strategy`): XLA:CPU runs batched matmuls slower than separate ones, accelerators the other way round.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Callable, Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from optax_warmup import warmup_cosine_decay_schedule
from optax_warmup._duration import duration_steps
from optax_warmup.sweep import data as data_lib
from optax_warmup.sweep.model import ByteLM, init_params, loss_fn

AXIS = "config"


@dataclasses.dataclass
class SweepConfig:
    """Everything that defines a sweep. Defaults are `make demo` (about 3 minutes on 2 CPU cores)."""

    steps: int = 300
    lrs: Sequence[float] = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
    # A warmup is a number of steps (int) or a fraction of `steps` (float in [0, 1)).
    warmups: Sequence[float | int] = (0, 0.02, 0.1, 0.25)
    shapes: Sequence[str] = ("linear",)
    seeds: int = 2
    seed: int = 0
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    context: int = 32
    batch_size: int = 16
    pre_ln: bool = True
    qk_norm: bool = True
    b1: float = 0.9
    b2: float = 0.999
    weight_decay: float = 0.01
    end_fraction: float = 0.1  # the cosine decays to end_fraction * peak
    eval_every: int = 0  # 0: ten evaluations over the run
    valid_windows: int = 256
    strategy: str = "auto"  # vmap, map or auto (map on CPU, vmap elsewhere)
    max_files: int | None = None  # use only the first files of the standard library (tests)


# A sweep that takes seconds (a tiny model on 30 standard-library files): tests, the tutorial, smoke runs.
TINY = dict(steps=8, d_model=16, n_layers=1, n_heads=2, context=16, batch_size=4, valid_windows=32,
            max_files=30, seeds=1)


def warmup_steps_of(warmup: float | int | str, steps: int) -> int:
    """A warmup -> steps, by the library's one duration rule (``optax_warmup._duration``): a number in (0, 1) or
    a percentage is a fraction of the run (rounded up), a whole number is steps."""
    return duration_steps(warmup, steps, name="warmup")


def build_grid(cfg: SweepConfig) -> list[dict]:
    """One dict per config: shape x warmup x lr x seed, seeds innermost. Bad settings fail here, not mid-run."""
    for shape in cfg.shapes:  # the library's own message for an unknown shape, or geometric from 0
        warmup_cosine_decay_schedule(0.0, 1.0, 1, 2, 0.1, warmup_shape=shape)
    too_long = [w for w in cfg.warmups if warmup_steps_of(w, cfg.steps) >= cfg.steps]
    if too_long:
        raise ValueError(f"warmups {too_long} are not shorter than the run ({cfg.steps} steps)")
    grid = []
    for shape, warmup, lr, seed in itertools.product(cfg.shapes, cfg.warmups, cfg.lrs, range(cfg.seeds)):
        grid.append(dict(shape=shape, warmup=warmup, warmup_steps=warmup_steps_of(warmup, cfg.steps),
                         lr=float(lr), seed=seed))
    return grid


def resolve_strategy(strategy: str) -> str:
    if strategy == "auto":
        return "map" if jax.default_backend() == "cpu" else "vmap"
    if strategy not in ("vmap", "map"):
        raise ValueError(f"strategy must be vmap, map or auto, got {strategy!r}")
    return strategy


def learning_rate(hp: dict, count, *, steps: int, shapes: Sequence[str], end_fraction: float) -> jax.Array:
    """The learning rate of one config at `count`; `hp` holds its traced lr, warmup steps and shape index."""
    values = [
        warmup_cosine_decay_schedule(init_value=0.0, peak_value=hp["lr"], warmup_steps=hp["warmup_steps"],
                                     decay_steps=steps, end_value=end_fraction * hp["lr"],
                                     warmup_shape=shape)(count)
        for shape in shapes
    ]
    return jnp.stack(values)[hp["shape"]] if len(values) > 1 else values[0]


def make_optimizer(cfg: SweepConfig, lr: Callable) -> optax.GradientTransformation:
    return optax.adamw(lr, b1=cfg.b1, b2=cfg.b2, weight_decay=cfg.weight_decay)


def _tree_where(cond, new, old):
    return jax.tree.map(lambda n, o: jnp.where(cond, n, o), new, old)


def make_train_step(model: ByteLM, cfg: SweepConfig, mesh: Mesh, strategy: str):
    """(state, hparams, batch, step) -> (state, metrics), over the whole (padded, sharded) config axis."""
    schedule = partial(learning_rate, steps=cfg.steps, shapes=tuple(cfg.shapes),
                       end_fraction=cfg.end_fraction)

    def one_config(state, hp, batch, step):
        params, opt_state, alive = state["params"], state["opt"], state["alive"]
        windows = batch[hp["seed"]]
        loss, grads = jax.value_and_grad(lambda p: loss_fn(model, p, windows))(params)
        lr = partial(schedule, hp)
        updates, new_opt = make_optimizer(cfg, lr).update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        grad_norm = optax.tree.norm(grads)
        # A config that produces a non-finite value is frozen at its last finite params and state, so its NaNs
        # never reach anything downstream (later steps, the validation loss, the progress bar's mean).
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & jnp.isfinite(optax.tree.norm(new_params))
        ok = alive & finite
        new_state = dict(params=_tree_where(ok, new_params, params), opt=_tree_where(ok, new_opt, opt_state),
                         alive=ok)
        nan = jnp.float32(jnp.nan)
        metrics = dict(loss=jnp.where(alive, loss, nan), grad_norm=jnp.where(alive, grad_norm, nan),
                       lr=lr(step), alive=ok)
        return new_state, metrics

    def local(state, hp, batch, step):
        if strategy == "vmap":
            return jax.vmap(one_config, in_axes=(0, 0, None, None))(state, hp, batch, step)
        return jax.lax.map(lambda sh: one_config(sh[0], sh[1], batch, step), (state, hp))

    sharded = jax.shard_map(local, mesh=mesh, in_specs=(P(AXIS), P(AXIS), P(), P()),
                            out_specs=(P(AXIS), P(AXIS)))
    return jax.jit(sharded, donate_argnums=0)


def make_eval(model: ByteLM, mesh: Mesh, strategy: str, chunk: int = 64):
    """params (config axis) x validation windows -> mean validation loss per config."""

    def one_config(params, windows):
        size = math.gcd(chunk, windows.shape[0])  # bounded memory: loss over `size` windows at a time
        chunks = windows.reshape(-1, size, windows.shape[-1])
        return jax.lax.map(lambda w: loss_fn(model, params, w), chunks).mean()

    def local(params, windows):
        if strategy == "vmap":
            return jax.vmap(one_config, in_axes=(0, None))(params, windows)
        return jax.lax.map(lambda p: one_config(p, windows), params)

    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(AXIS), P()), out_specs=P(AXIS)))


def to_host(tree):
    """Device arrays -> NumPy. With several processes (multi-host), the config axis spans devices this process
    cannot address, so gather it from all processes first."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def config_mesh(devices=None) -> Mesh:
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (AXIS,))


def _pad(values: np.ndarray, n: int) -> np.ndarray:
    """Pad the leading (config) axis to n by repeating the last config; padded rows are dropped afterwards."""
    if n == len(values):
        return values
    return np.concatenate([values, np.repeat(values[-1:], n - len(values), axis=0)])


def init_state(model: ByteLM, cfg: SweepConfig, seeds: np.ndarray):
    """Params and optimizer state for each config; configs sharing a seed start from identical params."""
    params = init_params(model, seeds, cfg.seed)
    # The optimizer state must come from a *callable* learning rate: with a float, adamw keeps no step count
    # and the traced schedule has nothing to read.
    opt = jax.jit(jax.vmap(make_optimizer(cfg, lambda count: 0.0).init))(params)
    return dict(params=params, opt=opt, alive=np.ones(len(seeds), bool))


def run_sweep(cfg: SweepConfig, progress: bool = True, devices=None) -> dict:
    """Train every config of the grid together; return a results dict (see `report.results_json`)."""
    wall0 = time.perf_counter()
    strategy = resolve_strategy(cfg.strategy)
    grid = build_grid(cfg)
    shapes = list(cfg.shapes)
    corpus = data_lib.load_stdlib_corpus(max_files=cfg.max_files)
    model = ByteLM(cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.context, cfg.pre_ln, cfg.qk_norm)
    mesh = config_mesh(devices)
    n_dev = mesh.devices.size
    n_cfg = len(grid)
    n_pad = math.ceil(n_cfg / n_dev) * n_dev

    hp_host = dict(lr=np.array([g["lr"] for g in grid], np.float32),
                   warmup_steps=np.array([g["warmup_steps"] for g in grid], np.float32),
                   shape=np.array([shapes.index(g["shape"]) for g in grid], np.int32),
                   seed=np.array([g["seed"] for g in grid], np.int32))
    hp_host = {k: _pad(v, n_pad) for k, v in hp_host.items()}
    shard = NamedSharding(mesh, P(AXIS))
    replicated = NamedSharding(mesh, P())
    hp = jax.device_put(hp_host, shard)
    state = jax.device_put(init_state(model, cfg, hp_host["seed"]), shard)

    step_fn = make_train_step(model, cfg, mesh, strategy)
    eval_fn = make_eval(model, mesh, strategy)
    valid = jax.device_put(data_lib.validation_windows(corpus, cfg.valid_windows, cfg.context, cfg.seed),
                           replicated)
    batches = data_lib.batch_stream(corpus.train, cfg.seeds, cfg.batch_size, cfg.context, cfg.seed)
    eval_every = cfg.eval_every or max(1, cfg.steps // 10)
    eval_steps = sorted({0, *range(eval_every, cfg.steps, eval_every), cfg.steps})

    t0 = time.perf_counter()
    batch = jax.device_put(next(batches), replicated)
    step_exec = step_fn.lower(state, hp, batch, jnp.int32(0)).compile()
    compile_s = time.perf_counter() - t0
    eval_exec = eval_fn.lower(state["params"], valid).compile()

    curves = {k: np.full((cfg.steps, n_pad), np.nan, np.float32) for k in ("loss", "grad_norm", "lr")}
    alive_curve = np.ones((cfg.steps, n_pad), bool)
    val = {}
    train_s = eval_s = 0.0
    bar = _progress_bar(cfg.steps, progress)
    for step in range(cfg.steps + 1):
        if step in eval_steps:
            e0 = time.perf_counter()
            val[step] = np.asarray(to_host(eval_exec(state["params"], valid)))
            eval_s += time.perf_counter() - e0
        if step == cfg.steps:
            break
        s0 = time.perf_counter()
        if step > 0:
            batch = jax.device_put(next(batches), replicated)
        state, metrics = step_exec(state, hp, batch, jnp.int32(step))
        metrics = to_host(metrics)
        train_s += time.perf_counter() - s0
        for k in curves:
            curves[k][step] = metrics[k]
        alive_curve[step] = metrics["alive"]
        if bar is not None:
            live = metrics["loss"][:n_cfg]
            bar.update(1)
            bar.set_postfix(loss=f"{np.nanmean(live) if np.isfinite(live).any() else float('nan'):.3f}",
                            alive=f"{int(metrics['alive'][:n_cfg].sum())}/{n_cfg}",
                            cfg_steps_s=f"{n_cfg * (step + 1) / train_s:.0f}", refresh=False)
    if bar is not None:
        bar.close()

    drop = lambda a: a[:, :n_cfg]
    return dict(
        settings={**dataclasses.asdict(cfg), "strategy_used": strategy, "devices": n_dev,
                  "backend": jax.default_backend(), "lrs": list(cfg.lrs), "warmups": list(cfg.warmups),
                  "shapes": shapes},
        grid=grid,
        corpus=dict(train_bytes=int(corpus.train.size), valid_bytes=int(corpus.valid.size),
                    train_files=corpus.n_train_files, valid_files=corpus.n_valid_files,
                    unigram_cross_entropy=corpus.unigram_cross_entropy(), log_vocab=math.log(256)),
        curves={k: drop(v) for k, v in curves.items()},
        alive=drop(alive_curve),
        eval_steps=eval_steps,
        val_loss=np.stack([val[s][:n_cfg] for s in eval_steps]),
        timing=dict(compile_s=compile_s, train_s=train_s, eval_s=eval_s,
                    step_s=train_s / max(cfg.steps, 1), total_s=time.perf_counter() - wall0),
    )


def _progress_bar(total: int, enabled: bool, desc: str = "sweep", unit: str = "step"):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)


def run_sequential(cfg: SweepConfig, progress: bool = True) -> dict:
    """The same grid the way Optax's own schedules force: Python-float hyperparameters, so one compile and one
    run per config. Only the `linear` shape exists in Optax; other shapes are skipped and counted. Times the
    training only (no validation), like the batched run's compile_s + train_s."""
    full_grid = build_grid(cfg)
    index = [i for i, g in enumerate(full_grid) if g["shape"] == "linear"]
    grid = [full_grid[i] for i in index]
    corpus = data_lib.load_stdlib_corpus(max_files=cfg.max_files)
    model = ByteLM(cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.context, cfg.pre_ln, cfg.qk_norm)
    seeds = np.array([g["seed"] for g in grid], np.int32)
    all_params = init_state(model, cfg, seeds)["params"]
    host_batches = list(itertools.islice(data_lib.batch_stream(corpus.train, cfg.seeds, cfg.batch_size,
                                                               cfg.context, cfg.seed), cfg.steps))
    bar = _progress_bar(len(grid), progress, desc="sequential", unit="config")
    final_loss = []
    first_steps_s = 0.0
    t0 = time.perf_counter()
    for i, g in enumerate(grid):
        schedule = optax.warmup_cosine_decay_schedule(init_value=0.0, peak_value=g["lr"],
                                                      warmup_steps=g["warmup_steps"], decay_steps=cfg.steps,
                                                      end_value=cfg.end_fraction * g["lr"])
        tx = make_optimizer(cfg, schedule)

        @jax.jit
        def step(params, opt_state, windows, tx=tx):
            loss, grads = jax.value_and_grad(lambda p: loss_fn(model, p, windows))(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        params = jax.tree.map(lambda a, i=i: a[i], all_params)
        opt_state = tx.init(params)
        c0 = time.perf_counter()
        for k, batch in enumerate(host_batches):
            params, opt_state, loss = step(params, opt_state, batch[g["seed"]])
            if k == 0:
                jax.block_until_ready(loss)
                first_steps_s += time.perf_counter() - c0  # compile + one step
        final_loss.append(float(loss))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    # final_loss[k] is the loss at the last step of config grid_index[k]: the batched run's curves["loss"][-1]
    return dict(configs=len(grid), skipped=len(full_grid) - len(grid), wall_s=time.perf_counter() - t0,
                first_steps_s=first_steps_s, final_loss=final_loss, grid_index=index)
