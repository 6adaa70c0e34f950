"""The spike test of ``adaptive_warmup``, replayed in float64 NumPy over recorded gradient norms and losses.

Which steps would ``adaptive_warmup`` flag, for many settings of its statistics at once, on the gradient norms and
losses that real runs recorded? And how large must a gradient spike injected at a step be to be flagged there?
The answer to the second needs only the statistics *before* that step, so a clean run answers it for every step
at once. A replay ignores one thing: a back-off changes the run that follows it (the replayed trajectories are the
runs' own, which may have had no back-offs). A test checks the replay against ``adaptive_warmup`` itself.

The rule replayed (``optax_warmup._adaptive``), with ``x = log ||g||``, ``l`` the loss and ``m =
min_observations``: a step is a spike when ``x - mu_x > max(z sigma_x, log r_g)`` or ``l - mu_l > max(z sigma_l,
(r_l - 1) |mu_l|)``, each once its statistics hold ``m`` values; the statistics are exponential moving means and
variances (``alpha = max(1 - decay, 1 / (n + 1))``), a spiking value enters them clipped to the threshold, and the
first ``burn`` updates are not observed (the library's statistics' warm-up has ``burn = m``; ``burn = 0`` is the
rule before it).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

TINY = np.finfo(np.float32).tiny
FIELDS = ("decay", "zscore", "norm_ratio", "loss_ratio", "min_observations", "burn")


def _observe(x, mean, var, count, ready, margin, ok, decay):
    x = np.where(ready, np.minimum(x, mean + margin), x)
    alpha = np.maximum(1.0 - decay, 1.0 / (count + 1.0))
    delta = x - mean
    new_mean, new_var = mean + alpha * delta, (1.0 - alpha) * (var + alpha * delta * delta)
    return np.where(ok, new_mean, mean), np.where(ok, new_var, var), np.where(ok, count + 1.0, count)


def replay(norms: np.ndarray, losses: np.ndarray | None, settings: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Replays the spike test over trajectories for several settings of the statistics.

    Args:
      norms: gradient norms ``[runs, steps]`` (NaN after a run stopped: not finite, nothing observed).
      losses: losses ``[runs, steps]``, or None (no loss test, as without ``value=``).
      settings: ``{field: [settings]}`` for the fields in ``FIELDS`` (``loss_ratio`` may be omitted without
        losses), each a 1-d array of the same length.

    Returns:
      ``flags``: bool ``[settings, runs, steps]``, the steps flagged as spikes; ``threshold``: ``[settings, runs,
      steps]``, the smallest factor by which the gradient of that step would have to be multiplied to be flagged
      by the gradient-norm test (``inf`` before the statistics are ready or after the run stopped).
    """
    norms = np.asarray(norms, np.float64)
    losses = None if losses is None else np.asarray(losses, np.float64)
    s = {k: np.asarray(settings[k], np.float64)[:, None] for k in FIELDS if k in settings}
    n_set, (n_runs, steps) = len(s["decay"]), norms.shape
    shape = (n_set, n_runs)
    nm, nv, nc, lm, lv, lc = (np.zeros(shape) for _ in range(6))
    flags = np.zeros((n_set, n_runs, steps), bool)
    threshold = np.full((n_set, n_runs, steps), np.inf)
    log_ratio = np.log(np.maximum(s["norm_ratio"], 1.0))
    for t in range(steps):
        norm = norms[:, t][None, :]
        finite = np.isfinite(norm)
        loss = None
        if losses is not None:
            loss = losses[:, t][None, :]
            finite = finite & np.isfinite(loss)
            loss = np.where(finite, loss, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.log(np.maximum(np.where(finite, norm, 1.0), TINY))
        ready = nc >= s["min_observations"]
        margin = np.maximum(s["zscore"] * np.sqrt(nv), log_ratio)
        spike = ready & (x - nm > margin)
        threshold[:, :, t] = np.where(ready & finite, np.exp(np.minimum(nm + margin - x, 700.0)), np.inf)
        if loss is not None:
            l_ready = lc >= s["min_observations"]
            l_margin = np.maximum(s["zscore"] * np.sqrt(lv), (np.maximum(s["loss_ratio"], 1.0) - 1.0) * np.abs(lm))
            spike = spike | (l_ready & (loss - lm > l_margin))
        flags[:, :, t] = finite & spike
        observe = finite & (t >= s["burn"])
        nm, nv, nc = _observe(x, nm, nv, nc, ready, margin, observe & (norm > 0), s["decay"])
        if loss is not None:
            lm, lv, lc = _observe(loss, lm, lv, lc, l_ready, l_margin, observe, s["decay"])
    return dict(flags=flags, threshold=threshold)
