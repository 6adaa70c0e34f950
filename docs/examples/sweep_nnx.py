"""Sweep the warmup of your own Flax NNX model: peak learning rate x warmup length x seed, one compiled program.

NNX modules are Python objects; the sweep engine trains pytrees. ``nnx.split`` turns a module into a graph
definition (its structure, fixed) and a state (its arrays, a pytree), ``nnx.merge`` turns them back: the engine
stacks and trains the states, the loss rebuilds the module from each one. Run: ``python docs/examples/sweep_nnx.py``.
"""

import jax
import jax.numpy as jnp
import optax
from flax import nnx

import optax_warmup as ow
from optax_warmup import sweep

STEPS = 200


class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(8, 32, rngs=rngs)
        self.out = nnx.Linear(32, 1, rngs=rngs)

    def __call__(self, x):
        return self.out(nnx.gelu(self.hidden(x)))


graphdef, _ = nnx.split(nnx.eval_shape(lambda: MLP(nnx.Rngs(0))))  # the structure, once


def init(key):  # -> the model's state, a pytree of arrays
    return nnx.split(MLP(nnx.Rngs(key)))[1]


def loss(state, batch):
    x, y = batch
    model = nnx.merge(graphdef, state)
    return jnp.mean((model(x) - y) ** 2)


def data(step, key):
    x = jax.random.normal(jax.random.fold_in(key, step), (64, 8))
    return x, jnp.sin(x[:, :1] * 2) + 0.5 * x[:, 1:2] ** 2


def optimizer(hp):
    schedule = ow.warmup_cosine_decay_schedule(0.0, hp["peak_value"], hp["warmup_steps"], STEPS)
    return optax.adamw(schedule, weight_decay=1e-4)


if __name__ == "__main__":
    result = sweep.run(sweep.Task(init=init, loss=loss, data=data, name="nnx-mlp"), optimizer, STEPS,
                       grid={"peak_value": [3e-3, 3e-2, 3e-1], "warmup_steps": [0, "10%"], "seed": [0, 1]})
    print(result.table())
    best = result.recommend()
    print("best:", best["setting"], f"{best['mean']:.4f}")
