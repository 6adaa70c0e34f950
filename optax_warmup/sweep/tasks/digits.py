"""Handwritten digits (scikit-learn's bundled ``load_digits``: 1,797 8x8 images, no download), ``--task digits``.

A multilayer perceptron (ReLU, He-normal weights) classifies the 64 pixels into 10 digits; 20% of the images (a
fixed shuffle) are held out. The batches are drawn on the device (``data(step, key)``), so a sweep moves no data
between host and device while it trains. Baseline loss: ``ln 10``, the loss of a uniform guess.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optax_warmup._extras import require
from optax_warmup.sweep.engine import Task


def load(holdout: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_valid, y_valid): pixels standardised with the training statistics."""
    data = require("sklearn.datasets", "digits", "the digits task").load_digits()
    x, y = data.data.astype(np.float32), data.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(x))
    n_valid = int(round(holdout * len(x)))
    valid, train = order[:n_valid], order[n_valid:]
    mean, std = x[train].mean(0), x[train].std(0) + 1.0
    scale = lambda a: (a - mean) / std  # noqa: E731
    return scale(x[train]), y[train], scale(x[valid]), y[valid]


def _forward(params, x):
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def digits(hidden: tuple[int, ...] = (128, 128), batch_size: int = 32, holdout: float = 0.2) -> Task:
    """The digits task.

    Args:
      hidden: widths of the hidden layers.
      batch_size: images per training step, drawn with replacement from the training set.
      holdout: fraction of the images held out for the evaluation (loss and accuracy).
    """
    hidden = tuple(hidden)
    if not hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
        raise ValueError(f"digits: hidden must be a non-empty tuple of whole numbers >= 1, got {hidden!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"digits: batch_size must be a whole number >= 1, got {batch_size!r}")
    if not 0 < holdout < 1:
        raise ValueError(f"digits: holdout must be in (0, 1), got {holdout!r}")
    x_train, y_train, x_valid, y_valid = load(holdout)
    sizes = (x_train.shape[1], *hidden, 10)

    def init(key):
        keys = jax.random.split(key, len(sizes) - 1)
        return [dict(w=jax.random.normal(k, (m, n)) * jnp.sqrt(2.0 / m), b=jnp.zeros(n))
                for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True)]

    def loss(params, batch):
        x, y = batch
        logits = _forward(params, x)
        accuracy = jnp.mean(jnp.argmax(logits, -1) == y)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), {"accuracy": accuracy}

    train_x, train_y = jnp.asarray(x_train), jnp.asarray(y_train)

    def data(step, key):
        idx = jax.random.randint(jax.random.fold_in(key, step), (batch_size,), 0, train_x.shape[0])
        return train_x[idx], train_y[idx]

    valid_x, valid_y = jnp.asarray(x_valid), jnp.asarray(y_valid)

    def evaluate(params):
        value, aux = loss(params, (valid_x, valid_y))
        return {"loss": value, **aux}

    return Task(init=init, loss=loss, data=data, eval=evaluate, name="digits", baseline_loss=math.log(10),
                info=dict(hidden=list(hidden), batch_size=batch_size, train_examples=int(len(x_train)),
                          valid_examples=int(len(x_valid)), baseline_label="uniform guess"))
