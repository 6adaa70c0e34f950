"""Fine-tuning the byte LM: pretrained on the standard library's code, fine-tuned on English prose.

The prose is ``pydoc_data/topics.py``, the help texts that every CPython ships (about 750 KB): the values of its
``topics`` dict, sorted by topic; the topics that make up the last 10% of the bytes are held out for validation
(topics differ a lot in size, so holding out every 10th one would keep only a few percent). The code is the byte
LM task's corpus (the ``*.py`` files beside ``os.py``). The pretrained parameters are trained once and cached
under ``cache_dir`` (default ``runs/cache/``, git-ignored), keyed by every setting that changes them.

The task's evaluation reports both losses: ``loss`` on the held-out prose (the fine-tuning goal) and ``code_loss``
on the held-out code (what fine-tuning forgets).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optax_warmup.sweep.engine import Task
from optax_warmup.sweep.tasks import _corpus
from optax_warmup.sweep.tasks._bytelm_model import ByteLM, init_params, loss_fn

PRETRAIN = dict(steps=1500, batch_size=32, peak_value=3e-3, warmup=0.1, weight_decay=0.01, seed=0)


def load_prose_corpus(holdout: float = 0.1, max_topics: int | None = None) -> _corpus.Corpus:
    """The help topics of ``pydoc_data.topics`` (sorted by name) as bytes; the topics that start in the last
    ``holdout`` of the bytes are held out."""
    from pydoc_data.topics import topics

    texts = [topics[name].encode("utf-8") for name in sorted(topics)[:max_topics]]
    total, start = sum(len(t) for t in texts), 0
    train: list[bytes] = []
    valid: list[bytes] = []
    for text in texts:
        (valid if start >= (1.0 - holdout) * total else train).append(text)
        start += len(text)
    as_array = lambda chunks: np.frombuffer(b"\n".join(chunks), dtype=np.uint8)  # noqa: E731
    return _corpus.Corpus(as_array(train), as_array(valid), len(train), len(valid))


def lower_upper_labels(params: Any, n_layers: int) -> Any:
    """``"lower"`` for the embeddings, the positions and the first half of the blocks; ``"upper"`` for the rest."""
    lower_blocks = {f"Block_{i}" for i in range(max(1, n_layers // 2))}

    def label(path, _):
        name = path[1].key if len(path) > 1 else path[0].key
        return "lower" if name in ("Embed_0", "pos") or name in lower_blocks else "upper"

    return jax.tree_util.tree_map_with_path(label, params)


def _cache_key(model: ByteLM, pretrain: dict, code: _corpus.Corpus) -> str:
    settings = dict(model=dict(d_model=model.d_model, n_layers=model.n_layers, n_heads=model.n_heads,
                               context=model.context, pre_ln=model.pre_ln, qk_norm=model.qk_norm),
                    pretrain=pretrain, code_bytes=int(code.train.size), python=platform.python_version(),
                    jax=jax.__version__, optax=optax.__version__)
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def pretrain(model: ByteLM, code: _corpus.Corpus, settings: dict, progress: bool = False) -> tuple[Any, list]:
    """Trains one model on the code corpus: AdamW, linear warmup then cosine to 10% of the peak. Returns the
    parameters and the training loss every 100 steps."""
    from optax_warmup._composite import warmup_cosine_decay_schedule

    steps = settings["steps"]
    schedule = warmup_cosine_decay_schedule(0.0, settings["peak_value"], math.ceil(settings["warmup"] * steps), steps,
                                            0.1 * settings["peak_value"])
    tx = optax.adamw(schedule, weight_decay=settings["weight_decay"])
    params = jax.tree.map(lambda a: jnp.asarray(a[0]), init_params(model, np.asarray([settings["seed"]]), 17))
    state = tx.init(params)

    @jax.jit
    def step(params, state, windows):
        loss, grads = jax.value_and_grad(lambda p: loss_fn(model, p, windows))(params)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    rng = np.random.default_rng([17, settings["seed"]])
    log = []
    for t in range(steps):
        windows = _corpus.sample_windows(code.train, rng, settings["batch_size"], model.context + 1)
        params, state, loss = step(params, state, windows)
        if t % 100 == 0 or t == steps - 1:
            log.append((t, float(loss)))
            if progress:
                print(f"pretraining on code: step {t}/{steps}, loss {float(loss):.3f}", flush=True)
    return jax.device_get(params), log


def pretrained_params(model: ByteLM, code: _corpus.Corpus, settings: dict | None = None,
                      cache_dir: str = os.path.join("runs", "cache"), progress: bool = False) -> tuple[Any, dict]:
    """The pretrained parameters, from the cache or trained now (then cached). Returns ``(params, info)``."""
    settings = dict(PRETRAIN, **(settings or {}))
    key = _cache_key(model, settings, code)
    path = os.path.join(cache_dir, f"bytelm_code_{key}.npz")
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, model.context), jnp.int32)))
    treedef = jax.tree.structure(shapes)
    if os.path.exists(path):
        with np.load(path) as data:
            leaves = [data[f"leaf_{i}"] for i in range(len(jax.tree.leaves(shapes)))]
            log = data["log"].tolist()
        return jax.tree.unflatten(treedef, leaves), dict(cache=path, cached=True, settings=settings, log=log)
    start = time.perf_counter()
    params, log = pretrain(model, code, settings, progress)
    seconds = round(time.perf_counter() - start, 1)
    os.makedirs(cache_dir, exist_ok=True)
    leaves = jax.tree.leaves(params)
    tmp = path + ".tmp.npz"
    arrays: dict[str, Any] = {f"leaf_{i}": np.asarray(x) for i, x in enumerate(leaves)}
    np.savez(tmp, log=np.asarray(log), **arrays)
    os.replace(tmp, path)
    return params, dict(cache=path, cached=False, settings=settings, log=log, seconds=seconds)


def finetune(d_model: int = 64, n_layers: int = 2, n_heads: int = 4, context: int = 32, batch_size: int = 16,
             valid_windows: int = 256, max_files: int | None = None, max_topics: int | None = None,
             pretrain_settings: dict | None = None, cache_dir: str = os.path.join("runs", "cache"),
             progress: bool = False) -> Task:
    """The fine-tuning task: every config starts from the same pretrained byte LM; its seed picks its stream of
    prose windows. ``lower_upper_labels(params, n_layers)`` gives the parameter groups for ``per_group_warmup``."""
    model = ByteLM(d_model, n_layers, n_heads, context)
    code = _corpus.load_stdlib_corpus(max_files=max_files)
    prose = load_prose_corpus(max_topics=max_topics)
    params, info = pretrained_params(model, code, pretrain_settings, cache_dir, progress)
    prose_valid = _corpus.validation_windows(prose, valid_windows, context)
    code_valid = _corpus.validation_windows(code, valid_windows, context)
    chunk = math.gcd(64, valid_windows)

    def init(seed: int):
        del seed  # every config starts from the pretrained model
        return params

    def batches(seed: int) -> Iterator[np.ndarray]:
        rng = np.random.default_rng([23, seed])
        while True:
            yield _corpus.sample_windows(prose.train, rng, batch_size, context + 1)

    def mean_loss(p, windows):
        return jax.lax.map(lambda w: loss_fn(model, p, w), windows.reshape(-1, chunk, windows.shape[-1])).mean()

    def evaluate(p):
        return {"loss": mean_loss(p, prose_valid), "code_loss": mean_loss(p, code_valid)}

    return Task(init=init, loss=lambda p, w: loss_fn(model, p, w), batches=batches, eval=evaluate, name="finetune",
                baseline_loss=prose.unigram_cross_entropy(),
                info=dict(model=dict(d_model=d_model, n_layers=n_layers, n_heads=n_heads, context=context),
                          batch_size=batch_size, valid_windows=valid_windows, pretrain=info,
                          prose_train_bytes=int(prose.train.size), prose_valid_bytes=int(prose.valid.size),
                          prose_unigram_cross_entropy=prose.unigram_cross_entropy(),
                          code_unigram_cross_entropy=code.unigram_cross_entropy()))
