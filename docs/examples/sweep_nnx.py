"""Sweep the warmup of your own Flax NNX model with BatchNorm and Dropout: peak learning rate x warmup x seed.

NNX modules are Python objects; the sweep engine trains pytrees. ``nnx.split(model, nnx.Param, ...)`` splits a
module into its structure (fixed), its parameters (what the optimizer trains) and the rest (here BatchNorm's running
statistics: the task's model state, carried per config, never decayed), and ``nnx.merge`` puts them back together
inside the loss. Dropout gets the engine's key of each step. Run: ``python docs/examples/sweep_nnx.py``.
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx

import optax_warmup as ow
from optax_warmup import sweep

STEPS = 200


class Net(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(8, 64, rngs=rngs)
        self.norm = nnx.BatchNorm(64, rngs=rngs)
        self.drop = nnx.Dropout(0.1)
        self.out = nnx.Linear(64, 1, rngs=rngs)

    def __call__(self, x, *, train: bool, key=None):
        x = nnx.relu(self.norm(self.hidden(x), use_running_average=not train))
        return self.out(self.drop(x, deterministic=not train, rngs=key))


graphdef, _, _ = nnx.split(nnx.eval_shape(lambda: Net(nnx.Rngs(0))), nnx.Param, ...)


def init(key):  # -> (params, model_state)
    _, params, rest = nnx.split(Net(nnx.Rngs(key)), nnx.Param, ...)
    return params, rest


def loss(params, batch, *, model_state, key):
    x, y = batch
    model = nnx.merge(graphdef, params, model_state)
    value = jnp.mean((model(x, train=True, key=key) - y) ** 2)
    return value, {}, nnx.split(model, nnx.Param, ...)[2]  # the updated statistics


def data(step, key):
    x = jax.random.normal(jax.random.fold_in(key, step), (64, 8))
    return x, jnp.sin(x[:, :1] * 2) + 0.5 * x[:, 1:2] ** 2


x_val, y_val = data(0, jax.random.key(123))


def evaluate(params, *, model_state):  # running statistics, no dropout
    model = nnx.merge(graphdef, params, model_state)
    return {"loss": jnp.mean((model(x_val, train=False) - y_val) ** 2)}


def optimizer(hp):
    schedule = ow.warmup_cosine_decay_schedule(0.0, hp["peak_value"], hp["warmup_steps"], STEPS)
    return optax.adamw(schedule, weight_decay=1e-4)


if __name__ == "__main__":
    task = sweep.Task(init=init, loss=loss, data=data, eval=evaluate, model_state=True, name="nnx-net")
    grid = {"peak_value": [3e-3, 3e-2, 3e-1], "warmup_steps": [0, "10%"], "seed": [0, 1]}
    result = sweep.run(task, optimizer, STEPS, grid, keep="best")
    print(result.table())
    params, model_state = result.best_params  # the trained model of the recommended setting
    model = nnx.merge(graphdef, params, model_state)
    print("held-out loss:", float(jnp.mean((model(x_val, train=False) - y_val) ** 2)))
