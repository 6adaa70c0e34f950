"""No host round-trips: a jitted train step using each schedule (inside ``optax.adamw``) and each warmup
transformation runs 1,000 steps under ``jax.transfer_guard("disallow")`` and compiles exactly once, and its program
holds no host callback (the guard sees transfers at the jit boundary, not callbacks inside the program)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_hostile import ROLE, TABLE, _defaults
from test_resume import OPTIMIZERS

STEPS = 1000
SCHEDULES = [name for name in TABLE if name not in ROLE]


def _train(tx, with_value=False, dtype=jnp.float32):
    """1,000 steps of a jitted step under the transfer guard; returns the final state, the compile count and the
    step's program (jaxpr) as text."""

    @jax.jit
    def step(params, opt_state, t):
        target = jnp.sin(0.01 * t + jnp.arange(3.0))

        def loss_fn(p):
            return jnp.sum((p["w"].astype(jnp.float32) - target) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        extra = {"value": loss} if with_value else {}
        updates, opt_state = tx.update(grads, opt_state, params, **extra)
        return optax.apply_updates(params, updates), opt_state, t + 1.0

    params = {"w": jnp.zeros(3, dtype)}
    params, opt_state, t = jax.device_put((params, tx.init(params), jnp.zeros((), jnp.float32)))
    program = str(jax.make_jaxpr(step)(params, opt_state, t))
    with jax.transfer_guard("disallow"):
        for _ in range(STEPS):
            params, opt_state, t = step(params, opt_state, t)
    return params, opt_state, t, step._cache_size(), program


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedule_in_adamw_runs_on_device_and_compiles_once(name):
    schedule = TABLE[name][0](**_defaults(name))
    params, opt_state, t, compiles, program = _train(optax.adamw(schedule))
    assert compiles == 1
    assert "callback" not in program
    assert float(t) == STEPS
    assert int(opt_state[0].count) == STEPS  # ScaleByAdamState: every step was an update
    assert np.isfinite(np.asarray(params["w"])).all()


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_transformation_runs_on_device_and_compiles_once(name):
    factory, dtype, with_value = OPTIMIZERS[name]
    params, opt_state, t, compiles, program = _train(factory(), with_value, dtype)
    assert compiles == 1
    assert "callback" not in program
    assert float(t) == STEPS
    assert np.isfinite(np.asarray(params["w"], np.float32)).all()
    assert not np.array_equal(np.asarray(params["w"], np.float32), np.zeros(3))  # it trained


def test_the_checks_can_fail():
    """A host value fed to the step each iteration is refused by the guard; a schedule computed on the host
    (a callback) shows up in the program; a Python-number hyperparameter changed between steps recompiles."""
    step = jax.jit(lambda x, lr: x - lr * x)
    x = jax.device_put(jnp.ones(3))
    with jax.transfer_guard("disallow"), pytest.raises(Exception, match="(?i)disallowed"):
        step(x, np.float32(0.1))

    def host_schedule(count):
        return jax.pure_callback(lambda c: np.float32(1e-3), jax.ShapeDtypeStruct((), jnp.float32), count)

    _, _, _, _, program = _train(optax.adamw(host_schedule))
    assert "callback" in program

    recompiling = jax.jit(lambda x, lr: x - lr * x, static_argnums=1)
    for lr in (0.1, 0.2):
        recompiling(x, lr)
    assert recompiling._cache_size() == 2
