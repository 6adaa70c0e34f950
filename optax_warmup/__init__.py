"""optax_warmup: learning-rate warmup for JAX and Optax."""
