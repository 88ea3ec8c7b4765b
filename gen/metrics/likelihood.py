"""`nll`: test negative ELBO and the importance-sampled negative log-likelihood.

For each example, K samples z_i ~ q(z|x) give log w_i = log p(x, z_i) - log q(z_i|x):
  elbo_nats     -(1/K) sum_i log w_i         (the negative ELBO, a K-sample estimate)
  nll_nats      -log (1/K) sum_i exp(log w_i)  (Burda et al.'s estimate; <= elbo_nats, and
                                              its expectation falls towards -log p(x) as K grows)
  bits_per_dim  nll_nats / (D log 2)
averaged over the split. K = config.eval.num_importance, drawn in chunks so
memory stays bounded. Binarisation or dequantisation of the test images and
the samples come from config.eval.seed: the same numbers at every evaluation.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from gen.configs import checks
from gen.errors import UserError
from gen.families import LikelihoodModel
from gen.metrics import register

MAX_VALUES = 2**26  # decoder outputs (examples x samples x dims) per chunk: ~256 MB in float32


def _chunk_size(k: int, batch: int, dims: int) -> int:
  """The largest divisor of k that keeps one chunk under MAX_VALUES (one compiled shape)."""
  limit = max(1, MAX_VALUES // (batch * dims))
  return max(d for d in range(1, min(k, limit) + 1) if k % d == 0)


@register("nll", outputs={"elbo_nats": "min", "nll_nats": "min", "bits_per_dim": "min"},
          needs=LikelihoodModel,
          check=lambda config, family: checks.positive(config, "eval.num_importance"))
def nll(family, state, batches, config, cache=None) -> dict[str, float]:
  k = config.eval.num_importance
  dims = family.num_dims
  s = _chunk_size(k, config.eval.batch_size, dims)
  base = jax.random.key(config.eval.seed)
  inputs = jax.jit(family.model_inputs)

  @jax.jit
  def add_chunk(state, x, key, lse, total):
    lw = family.log_importance_weights(state, x, key, s)
    return jnp.logaddexp(lse, jax.nn.logsumexp(lw, axis=0)), total + jnp.sum(lw, axis=0)

  @jax.jit
  def sums(lse, total, mask):
    nll_x, neg_elbo_x = -(lse - math.log(k)), -total / k
    return jnp.sum(mask * nll_x), jnp.sum(mask * neg_elbo_x), jnp.sum(mask)

  nll_sum = elbo_sum = count = 0.0
  for i, batch in enumerate(batches()):
    key_x, key_z = jax.random.split(jax.random.fold_in(base, i))
    x = inputs(batch["image"], key_x)
    lse = jnp.full(x.shape[:1], -jnp.inf)
    total = jnp.zeros(x.shape[:1])
    for j in range(k // s):
      lse, total = add_chunk(state, x, jax.random.fold_in(key_z, j), lse, total)
    a, b, c = sums(lse, total, batch["mask"])
    nll_sum, elbo_sum, count = nll_sum + float(a), elbo_sum + float(b), count + float(c)
  if not count:
    raise UserError(f"the evaluation split {config.eval.split!r} is empty")
  nll_nats = nll_sum / count
  return {"elbo_nats": elbo_sum / count, "nll_nats": nll_nats,
          "bits_per_dim": nll_nats / (dims * math.log(2.0))}
