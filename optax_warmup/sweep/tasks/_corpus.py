"""Byte-level text from the running Python's own standard library: no download, same bytes on every machine
with the same Python."""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Corpus:
    train: np.ndarray  # uint8 bytes of the training files, concatenated
    valid: np.ndarray  # uint8 bytes of the held-out files
    n_train_files: int
    n_valid_files: int

    def unigram_cross_entropy(self) -> float:
        """Cross-entropy (nats) of the validation bytes under the training byte frequencies (add-one
        smoothed): the loss of a model that learned nothing but byte frequencies."""
        counts = np.bincount(self.train, minlength=256).astype(np.float64) + 1.0
        logp = np.log(counts / counts.sum())
        return float(-logp[self.valid].mean())


def load_stdlib_corpus(holdout_every: int = 10, max_files: int | None = None) -> Corpus:
    """The `*.py` files beside `os.py`, sorted by name; every `holdout_every`-th file is held out."""
    files = sorted(pathlib.Path(os.__file__).parent.glob("*.py"))
    if max_files is not None:
        files = files[:max_files]
    train: list[bytes] = []
    valid: list[bytes] = []
    for i, path in enumerate(files):
        (valid if i % holdout_every == holdout_every - 1 else train).append(path.read_bytes())
    if not valid:
        raise RuntimeError(f"no validation files among {len(files)} standard-library files")
    as_array = lambda chunks: np.frombuffer(b"\n".join(chunks), dtype=np.uint8)
    return Corpus(as_array(train), as_array(valid), len(train), len(valid))


def sample_windows(data: np.ndarray, rng: np.random.Generator, n: int, length: int) -> np.ndarray:
    """`n` random windows of `length` bytes, as int32 of shape (n, length)."""
    starts = rng.integers(0, len(data) - length, size=n)
    return data[starts[:, None] + np.arange(length)].astype(np.int32)


def validation_windows(corpus: Corpus, n: int, context: int, seed: int = 0) -> np.ndarray:
    """A fixed set of `n` validation windows (n, context + 1), the same for every config and seed."""
    return sample_windows(corpus.valid, np.random.default_rng([seed, 10**6]), n, context + 1)
