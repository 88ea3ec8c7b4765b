"""Log-densities and KL terms for latent-variable models, summed over event dimensions.

All take batched arrays and sum over every axis after the first `batch_dims`
(default 1), returning nats per example. Images are in [0, 1].
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr

LOG_2PI = math.log(2.0 * math.pi)
MIN_LOG_SCALE = -7.0  # Gaussian decoders: sigma >= e^-7 keeps the density bounded


def _sum_event(x: jax.Array, batch_dims: int) -> jax.Array:
  return jnp.sum(x, axis=tuple(range(batch_dims, x.ndim)))


def normal_log_prob(x, mean, log_scale, batch_dims: int = 1) -> jax.Array:
  """log N(x; mean, exp(log_scale)^2), a diagonal Gaussian."""
  z = (x - mean) * jnp.exp(-log_scale)
  return _sum_event(-0.5 * (z * z + LOG_2PI) - log_scale, batch_dims)


def standard_normal_log_prob(x, batch_dims: int = 1) -> jax.Array:
  return _sum_event(-0.5 * (x * x + LOG_2PI), batch_dims)


def kl_normal_standard(mean, log_scale, batch_dims: int = 1) -> jax.Array:
  """KL(N(mean, exp(log_scale)^2) || N(0, I)) in closed form."""
  return _sum_event(0.5 * (mean * mean + jnp.exp(2.0 * log_scale) - 1.0) - log_scale, batch_dims)


def bernoulli_log_prob(x, logits, batch_dims: int = 1) -> jax.Array:
  """log Bernoulli(x; sigmoid(logits)) for x in {0, 1} (also exact for soft x: -cross-entropy)."""
  return _sum_event(x * logits - jax.nn.softplus(logits), batch_dims)


def discretized_normal_log_prob(x, mean, log_scale, bins: int = 256, batch_dims: int = 1):
  """log P(x) for 8-bit data x = k / (bins - 1): the Gaussian's mass on k's bin.

  Bins are [x - h, x + h] with h = 1 / (2 (bins - 1)); the first and last bins
  extend to -inf and +inf, so the masses over all `bins` values sum to 1.
  """
  h = 0.5 / (bins - 1)
  inv_s = jnp.exp(-log_scale)
  upper = (x - mean + h) * inv_s
  lower = (x - mean - h) * inv_s
  # log(Phi(upper) - Phi(lower)), computed in the tail where the subtraction is stable.
  flip = lower > 0
  a, b = jnp.where(flip, -lower, upper), jnp.where(flip, -upper, lower)
  log_a, log_b = log_ndtr(a), log_ndtr(b)
  gap = jnp.minimum(log_b - log_a, -1e-6)
  log_mass = log_a + jnp.log1p(-jnp.exp(gap))
  # A bin narrow against the density's variation (wide sigma, or far out in a tail) loses the
  # difference to rounding: there the density at the centre times the width is accurate.
  z = (x - mean) * inv_s
  log_mid = -0.5 * (z * z + LOG_2PI) - log_scale + math.log(2 * h)
  log_mass = jnp.where(gap > -1e-3, log_mid, log_mass)
  lowest, highest = x < h, x > 1.0 - h
  log_p = jnp.where(lowest, log_ndtr(upper), jnp.where(highest, log_ndtr(-lower), log_mass))
  return _sum_event(log_p, batch_dims)


def log_mean_exp(x: jax.Array, axis: int = 0) -> jax.Array:
  """log(mean(exp(x))) along `axis`, stably: the importance-weighted bound."""
  return jax.nn.logsumexp(x, axis=axis) - math.log(x.shape[axis])
