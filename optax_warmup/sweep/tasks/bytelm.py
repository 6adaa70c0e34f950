"""The byte-level language model on the running Python's standard library (``--task bytelm``, the default).

A small Transformer (Pre-LN, a parameter-free LayerNorm on queries and keys) predicts the next byte of the
``*.py`` files beside ``os.py``; every 10th file is held out for validation. No download: the same bytes on every
machine with the same Python. Its baseline loss is the unigram cross-entropy (what a byte-frequency table
achieves): a run that ends there learned nothing more, whatever its loss curve did before.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import jax
import numpy as np

from optax_warmup.sweep.engine import Task
from optax_warmup.sweep.tasks import _corpus
from optax_warmup.sweep.tasks._bytelm_model import ByteLM, init_params, loss_fn


def bytelm(d_model: int = 64, n_layers: int = 2, n_heads: int = 4, context: int = 32, batch_size: int = 16,
           pre_ln: bool = True, qk_norm: bool = True, valid_windows: int = 256, base_seed: int = 0,
           max_files: int | None = None) -> Task:
    """The byte-level LM task.

    Args:
      d_model, n_layers, n_heads, context: the Transformer (context in bytes).
      batch_size: windows per training step.
      pre_ln, qk_norm: Pre-LN blocks (else Post-LN); LayerNorm on queries and keys.
      valid_windows: fixed validation windows (the evaluation is their mean loss).
      base_seed: with a config's seed, picks its initial parameters and its stream of training windows
        (NumPy generators ``[base_seed, seed]``); the validation windows come from ``base_seed`` alone.
      max_files: read only the first standard-library files (tests and smoke runs).
    """
    for name, value in (("d_model", d_model), ("n_layers", n_layers), ("n_heads", n_heads), ("context", context),
                        ("batch_size", batch_size), ("valid_windows", valid_windows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"bytelm: {name} must be a whole number >= 1, got {value!r}")
    if d_model % n_heads:
        raise ValueError(f"bytelm: d_model ({d_model}) must be a multiple of n_heads ({n_heads})")
    corpus = _corpus.load_stdlib_corpus(max_files=max_files)
    model = ByteLM(d_model, n_layers, n_heads, context, pre_ln, qk_norm)
    valid = _corpus.validation_windows(corpus, valid_windows, context, base_seed)
    chunk = math.gcd(64, valid_windows)  # bounded memory: the validation loss over `chunk` windows at a time

    def init(seed: int):
        return jax.tree.map(lambda a: a[0], init_params(model, np.asarray([seed]), base_seed))

    def batches(seed: int) -> Iterator[np.ndarray]:
        rng = np.random.default_rng([base_seed, seed])
        while True:
            yield _corpus.sample_windows(corpus.train, rng, batch_size, context + 1)

    def evaluate(params):
        chunks = valid.reshape(-1, chunk, valid.shape[-1])
        return {"loss": jax.lax.map(lambda w: loss_fn(model, params, w), chunks).mean()}

    return Task(init=init, loss=lambda params, windows: loss_fn(model, params, windows), batches=batches,
                eval=evaluate, name="bytelm", baseline_loss=corpus.unigram_cross_entropy(),
                info=dict(model=dict(d_model=d_model, n_layers=n_layers, n_heads=n_heads, context=context,
                                     pre_ln=pre_ln, qk_norm=qk_norm),
                          batch_size=batch_size, valid_windows=valid_windows, base_seed=base_seed,
                          train_bytes=int(corpus.train.size), valid_bytes=int(corpus.valid.size),
                          train_files=corpus.n_train_files, valid_files=corpus.n_valid_files,
                          unigram_cross_entropy=corpus.unigram_cross_entropy(), log_vocab=math.log(256),
                          baseline_label="unigram cross-entropy"))
