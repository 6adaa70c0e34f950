"""A small byte-level Transformer LM (Flax linen): Pre- or Post-LN, optional parameter-free LayerNorm on q, k.

Plain linen so the parameters are a plain pytree that `vmap` can stack over configs.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

INIT_STD = 0.02
_init = nn.initializers.normal(INIT_STD)


def _normalize(x: jax.Array, eps: float = 1e-6) -> jax.Array:
    """LayerNorm without scale or bias, over the last axis."""
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps)


class SelfAttention(nn.Module):
    n_heads: int
    qk_norm: bool

    @nn.compact
    def __call__(self, x):
        b, t, d = x.shape
        hd = d // self.n_heads
        qkv = nn.Dense(3 * d, kernel_init=_init, name="qkv")(x).reshape(b, t, 3 * self.n_heads, hd)
        q, k, v = jnp.split(qkv, 3, axis=2)
        if self.qk_norm:  # bounds the attention logits, the usual source of early instability
            q, k = _normalize(q), _normalize(k)
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(hd).astype(x.dtype)
        causal = jnp.tril(jnp.ones((t, t), bool))
        weights = jax.nn.softmax(jnp.where(causal, logits, jnp.finfo(x.dtype).min), axis=-1)
        out = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, t, d)
        return nn.Dense(d, kernel_init=_init, name="out")(out)


class Block(nn.Module):
    n_heads: int
    pre_ln: bool
    qk_norm: bool

    @nn.compact
    def __call__(self, x):
        d = x.shape[-1]
        attn = SelfAttention(self.n_heads, self.qk_norm)
        mlp = nn.Sequential([nn.Dense(4 * d, kernel_init=_init), nn.gelu, nn.Dense(d, kernel_init=_init)])
        ln1, ln2 = nn.LayerNorm(), nn.LayerNorm()
        if self.pre_ln:
            x = x + attn(ln1(x))
            return x + mlp(ln2(x))
        x = ln1(x + attn(x))
        return ln2(x + mlp(x))


class ByteLM(nn.Module):
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    context: int = 64
    pre_ln: bool = True
    qk_norm: bool = True

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(256, self.d_model, embedding_init=_init)(tokens)
        pos = self.param("pos", _init, (self.context, self.d_model))
        x = x + pos[: tokens.shape[-1]]
        for _ in range(self.n_layers):
            x = Block(self.n_heads, self.pre_ln, self.qk_norm)(x)
        if self.pre_ln:
            x = nn.LayerNorm()(x)
        return nn.Dense(256, kernel_init=_init, name="head")(x)


def loss_fn(model: ByteLM, params, windows: jax.Array) -> jax.Array:
    """Mean next-byte cross-entropy (nats) over windows of shape (..., context + 1)."""
    logits = model.apply(params, windows[..., :-1])
    return optax.softmax_cross_entropy_with_integer_labels(logits, windows[..., 1:]).mean()


def init_params(model: ByteLM, seeds: np.ndarray, base_seed: int = 0):
    """Parameters for a stack of models, one per entry of `seeds`, drawn with NumPy on the host.

    Same distribution as `model.init` (every weight N(0, INIT_STD), biases 0, LayerNorm scales 1), but no XLA
    compile: compiling `vmap(model.init)` (threefry random bits) took longer than a whole quick sweep's step.
    Identical seeds give identical parameters, whatever the device count.
    """
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, model.context), jnp.int32)))
    rngs = {int(s): np.random.default_rng([base_seed, int(s)]) for s in np.unique(seeds)}

    def leaf(path, spec):
        name = path[-1].key
        if name == "bias":
            return np.zeros((len(seeds), *spec.shape), np.float32)
        if name == "scale":
            return np.ones((len(seeds), *spec.shape), np.float32)
        one = {s: (INIT_STD * r.standard_normal(spec.shape)).astype(np.float32) for s, r in rngs.items()}
        return np.stack([one[int(s)] for s in seeds])

    return jax.tree_util.tree_map_with_path(leaf, shapes)
