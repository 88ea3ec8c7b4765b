"""Adversarial losses on discriminator logits, and gradient penalties.

Each loss is the batch mean. `D` below is the logit, `sigmoid(D)` the
probability of "real" where that reading applies.
"""

from typing import Callable

import jax
import jax.numpy as jnp

GAN_LOSSES = ("ns", "hinge", "wgan", "lsgan")


def d_loss(kind: str, real: jax.Array, fake: jax.Array) -> jax.Array:
  """Discriminator loss from logits on a real and a fake batch."""
  if kind == "ns":  # -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z))))
    return jnp.mean(jax.nn.softplus(-real)) + jnp.mean(jax.nn.softplus(fake))
  if kind == "hinge":
    return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))
  if kind == "wgan":
    return jnp.mean(fake) - jnp.mean(real)
  if kind == "lsgan":  # least squares with targets 1 (real) and 0 (fake)
    return 0.5 * jnp.mean((real - 1.0) ** 2) + 0.5 * jnp.mean(fake**2)
  raise ValueError(f"unknown GAN loss {kind!r}; one of {GAN_LOSSES}")


def g_loss(kind: str, fake: jax.Array) -> jax.Array:
  """Generator loss from the discriminator's logits on fakes."""
  if kind == "ns":  # non-saturating: -log sigmoid(D(G(z)))
    return jnp.mean(jax.nn.softplus(-fake))
  if kind in ("hinge", "wgan"):
    return -jnp.mean(fake)
  if kind == "lsgan":
    return 0.5 * jnp.mean((fake - 1.0) ** 2)
  raise ValueError(f"unknown GAN loss {kind!r}; one of {GAN_LOSSES}")


def _input_grad_sq_norm(d: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """Per-example squared L2 norm of d(sum D)/dx."""
  grad = jax.grad(lambda x: jnp.sum(d(x)))(x)
  return jnp.sum(grad.reshape(grad.shape[0], -1) ** 2, axis=-1)


def gradient_penalty(d: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array,
                     key: jax.Array) -> jax.Array:
  """WGAN-GP (Gulrajani et al. 2017): E[(||grad D(x_hat)|| - 1)^2] on random interpolates."""
  eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
  x_hat = eps * real + (1.0 - eps) * fake
  norm = jnp.sqrt(_input_grad_sq_norm(d, x_hat) + 1e-12)
  return jnp.mean((norm - 1.0) ** 2)


def r1_penalty(d: Callable[[jax.Array], jax.Array], real: jax.Array) -> jax.Array:
  """R1 (Mescheder et al. 2018): E[||grad D(x)||^2] on real data; weight it by gamma / 2."""
  return jnp.mean(_input_grad_sq_norm(d, real))


def least_squares(x: jax.Array, target: float) -> jax.Array:
  """mean((x - target)^2): CycleGAN's generator loss is least_squares(D(G(x)), 1)."""
  return jnp.mean((x - target) ** 2)


def l1(a: jax.Array, b: jax.Array) -> jax.Array:
  """mean |a - b|: CycleGAN's cycle-consistency and identity losses."""
  return jnp.mean(jnp.abs(a - b))
