"""VAE encoders and decoders: the IWAE paper's MLP and a convolutional pair.

MLP (Burda et al. 2016, one stochastic layer, "architecture 1"): the encoder
is x (flattened) -> 200 -> 200 -> (mean, log sigma) of 50 Gaussian latents and
the decoder is z -> 200 -> 200 -> per-pixel likelihood parameters, tanh
between layers. Weights are Glorot-uniform, biases zero (the paper's Glorot &
Bengio heuristic); sigma = exp(output), as in the authors' code. 425,284
parameters at 28x28x1 with a Bernoulli decoder.

Convolutional (28x28, 32x32, 64x64, ...; the DCGAN layouts): the encoder is
4x4 stride-2 convs with nf, 2nf, 4nf, ... channels down to the base
resolution (7x7 at 28, 4x4 otherwise), then a Dense layer to (mean, log
sigma); the decoder is a Dense layer to the base grid and 4x4 stride-2
transposed convs back up, the last one emitting the likelihood parameters.
SiLU between layers, no normalisation (it would couple the examples of a
batch, which a likelihood must not).

Decoders return [B, H, W, C * n] for a likelihood with n parameters per
pixel (Bernoulli logits: 1; Gaussian mean and log sigma: 2).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen.models.dcgan import layout
from gen.models.layers import UpConv

glorot = nn.initializers.xavier_uniform()


def split_gaussian(h: jax.Array) -> tuple[jax.Array, jax.Array]:
  """[..., 2L] -> (mean, log sigma), each [..., L]."""
  mean, log_scale = jnp.split(h, 2, axis=-1)
  return mean, log_scale


class MLPEncoder(nn.Module):
  latents: int = 50
  hidden: tuple[int, ...] = (200, 200)

  @nn.compact
  def __call__(self, x):
    h = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      h = jnp.tanh(nn.Dense(width, kernel_init=glorot)(h))
    return split_gaussian(nn.Dense(2 * self.latents, kernel_init=glorot)(h))


class MLPDecoder(nn.Module):
  image_shape: tuple[int, int, int]
  params_per_pixel: int = 1
  hidden: tuple[int, ...] = (200, 200)

  @nn.compact
  def __call__(self, z):
    h = z
    for width in self.hidden:
      h = jnp.tanh(nn.Dense(width, kernel_init=glorot)(h))
    rows, cols, channels = self.image_shape
    out = nn.Dense(rows * cols * channels * self.params_per_pixel, kernel_init=glorot)(h)
    return out.reshape(z.shape[0], rows, cols, channels * self.params_per_pixel)


class ConvEncoder(nn.Module):
  latents: int
  nf: int = 32

  @nn.compact
  def __call__(self, x):
    _, stages = layout(x.shape[1] if x.shape[1] == x.shape[2] else tuple(x.shape[1:3]))
    h = x
    for i in range(stages):
      h = nn.silu(nn.Conv(self.nf * 2**i, (4, 4), (2, 2), padding=((1, 1), (1, 1)))(h))
    h = h.reshape(h.shape[0], -1)
    return split_gaussian(nn.Dense(2 * self.latents)(h))


class ConvDecoder(nn.Module):
  image_shape: tuple[int, int, int]
  params_per_pixel: int = 1
  nf: int = 32

  @nn.compact
  def __call__(self, z):
    rows, cols, channels = self.image_shape
    base, stages = layout(rows if rows == cols else (rows, cols))
    bh, bw = base if isinstance(base, tuple) else (base, base)
    width = self.nf * 2**(stages - 1)
    h = nn.silu(nn.Dense(bh * bw * width)(z)).reshape(z.shape[0], bh, bw, width)
    for i in reversed(range(1, stages)):
      h = nn.silu(UpConv(self.nf * 2**(i - 1), use_bias=True, kernel_init=glorot)(h))
    return UpConv(channels * self.params_per_pixel, use_bias=True, kernel_init=glorot)(h)


class EncoderDecoder(nn.Module):
  """An encoder q(z|x) and a decoder p(x|z) as one set of parameters."""
  encoder: nn.Module
  decoder: nn.Module

  def __call__(self, x, z):  # touches both halves, for `init`
    return self.encoder(x), self.decoder(z)

  def encode(self, x):
    return self.encoder(x)

  def decode(self, z):
    return self.decoder(z)
