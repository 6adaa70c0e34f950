"""The warmup transformations inside Flax (TrainState, nnx.Optimizer) and through an Orbax checkpoint."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_warmup as ow

flax = pytest.importorskip("flax")
from flax import nnx  # noqa: E402
from flax.training import train_state  # noqa: E402

X = jnp.asarray(np.random.default_rng(0).normal(size=(16, 3)), jnp.float32)
Y = X @ jnp.array([[1.0], [-2.0], [0.5]]) + 0.3


def apply_fn(params, x):
    return x @ params["w"] + params["b"]


def loss_fn(params):
    return jnp.mean((apply_fn(params, X) - Y) ** 2)


def init_params():
    return {"w": jnp.full((3, 1), 0.1), "b": jnp.zeros((1,))}


LR = ow.warmup_cosine_decay_schedule(0.0, 0.05, 6, 40)


def make_tx():
    inner = optax.inject_hyperparams(optax.adamw)(learning_rate=LR, b1=ow.warmup_schedule(0.5, 0.9, 6))
    return ow.adaptive_warmup(optax.chain(ow.clip_by_global_norm_schedule(ow.linear_schedule(1.0, 5.0, 10)), inner), 4)


@jax.jit
def train_step(state):
    """``TrainState.apply_gradients`` with the loss passed on (``apply_gradients`` forwards no ``value=``)."""
    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params, value=loss)
    return state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates), opt_state=opt_state)


@jax.jit
def apply_gradients_step(state):
    return state.apply_gradients(grads=jax.grad(loss_fn)(state.params))


def test_train_state_matches_a_plain_optax_loop():
    tx = make_tx()
    state = train_state.TrainState.create(apply_fn=apply_fn, params=init_params(), tx=tx)
    params, opt_state = init_params(), tx.init(init_params())

    @jax.jit
    def plain_step(params, opt_state):
        updates, opt_state = tx.update(jax.grad(loss_fn)(params), opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    for n in range(8):
        state = apply_gradients_step(state)
        params, opt_state = plain_step(params, opt_state)
        jax.tree.map(np.testing.assert_array_equal, state.params, params)
        lr = ow.current_learning_rate(state.opt_state)
        assert float(lr) == pytest.approx(float(LR(n)) * min(n / 4, 1.0), rel=1e-6, abs=1e-12)
        hp = ow.current_hyperparams(state.opt_state)
        assert float(hp["b1"]) == pytest.approx(0.5 + 0.4 * min(n / 6, 1.0), rel=1e-6)
        assert float(hp["max_norm"]) == pytest.approx(1.0 + 0.4 * n)
    assert int(state.step) == 8


def test_nnx_optimizer_uses_the_scheduled_values():
    model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
    start = jax.tree.map(jnp.copy, nnx.state(model, nnx.Param))
    momentum = ow.warmup_schedule(0.5, 0.9, 4)
    tx = optax.chain(optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=momentum), ow.scale_by_warmup(3))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        grads = nnx.grad(lambda m: jnp.mean((m(X) - Y) ** 2))(model)
        optimizer.update(model, grads)

    # The same training, functionally, on the same initial parameters.
    graphdef, _ = nnx.split(model, nnx.Param)
    params, opt_state = start, tx.init(start)

    def pure_loss(p):
        return jnp.mean((nnx.merge(graphdef, p)(X) - Y) ** 2)

    for n in range(6):
        step(model, optimizer)
        updates, opt_state = tx.update(jax.grad(pure_loss)(params), opt_state, params)
        params = optax.apply_updates(params, updates)
        hp = ow.current_hyperparams(optimizer.opt_state)
        assert float(hp["momentum"]) == pytest.approx(0.5 + 0.1 * min(n, 4), rel=1e-6)
        assert float(hp["warmup_factor"]) == pytest.approx(min(n / 3, 1.0))
        assert float(ow.current_learning_rate(optimizer.opt_state)) == pytest.approx(0.1 * min(n / 3, 1.0))
    np.testing.assert_allclose(model.kernel[...], params["kernel"][...], rtol=1e-6)
    np.testing.assert_allclose(model.bias[...], params["bias"][...], rtol=1e-6)
    assert not np.allclose(model.kernel[...], start["kernel"][...])


def test_orbax_checkpoint_mid_warmup_resumes_bit_for_bit(tmp_path):
    ocp = pytest.importorskip("orbax.checkpoint")

    tx = make_tx()  # one optimizer object for both runs of this process: one compilation
    uninterrupted = train_state.TrainState.create(apply_fn=apply_fn, params=init_params(), tx=tx)
    for _ in range(10):
        uninterrupted = train_step(uninterrupted)

    state = train_state.TrainState.create(apply_fn=apply_fn, params=init_params(), tx=tx)
    for _ in range(4):  # stop mid-warmup (4 of 6 learning-rate warmup steps)
        state = train_step(state)
    path = tmp_path / "ckpt"
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, state)
        checkpointer.wait_until_finished()
    del state

    # A fresh setting: new optimizer objects, the state rebuilt from its abstract shape.
    fresh = train_state.TrainState.create(apply_fn=apply_fn, params=init_params(), tx=make_tx())
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, fresh)
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(path, target)
    assert int(restored.step) == 4
    assert float(ow.current_hyperparams(restored.opt_state)["warmup_progress"]) == 4.0
    restored = restored.replace(tx=fresh.tx, apply_fn=apply_fn)
    for _ in range(6):
        restored = train_step(restored)

    jax.tree.map(np.testing.assert_array_equal, restored.params, uninterrupted.params)
    jax.tree.map(np.testing.assert_array_equal, restored.opt_state, uninterrupted.opt_state)
    assert float(ow.current_learning_rate(restored.opt_state)) == float(
        ow.current_learning_rate(uninterrupted.opt_state)
    )
