"""DCGAN generator and discriminator (Radford et al. 2016), as in pytorch/examples/dcgan.

64x64: z (1x1) -> 4x4x8ngf -> 8x8x4ngf -> 16x16x2ngf -> 32x32xngf -> 64x64xC, and the
discriminator mirrors it (no norm on its first layer, LeakyReLU 0.2, a final
4x4 valid conv to one logit). 32x32 starts at 4x4x4ngf; 28x28 starts at
7x7x2ngf (7 -> 14 -> 28). Every (transposed) conv is 4x4 with stride 2 and no
bias; weights are N(0, 0.02). The 1x1 -> base projection of z is written as a
Dense layer and the final base x base valid conv of the discriminator as a
Dense layer on the flattened features: the same functions with the same
parameter counts (3,576,704 in G and 2,765,568 in D at 64x64x3, as in PyTorch).
Non-square images (H, W) start from the smaller side's base times the aspect (32x48:
4x6, 28x56: 7x14).

Options: spectral norm in D (Miyato et al. 2018), class conditioning (one-hot
label appended to z in G; projection discriminator, Miyato & Koyama 2018, in D).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen.errors import UserError
from gen.models.layers import UpConv, batch_norm, dcgan_init

SUPPORTED = "28 (7 * 2**2) or 4 * 2**k for k >= 3 (32, 64, 128, ...)"


def layout(image_size) -> tuple:
  """(base resolution, number of stride-2 stages) for a square image size; for (H, W), the
  smaller side's layout with the other side as many times the base as it is that side:
  ((base_h, base_w), stages), e.g. (32, 48) -> ((4, 6), 3), (28, 56) -> ((7, 14), 2)."""
  if not isinstance(image_size, int):
    h, w = image_size
    _, stages = layout(min(h, w))
    if h % 2**stages or w % 2**stages:
      raise UserError(f"the convolutional models do not support {h}x{w} images: the smaller "
                      f"side must be {SUPPORTED} and the other a multiple of {2**stages}")
    return (h // 2**stages, w // 2**stages), stages
  if image_size == 28:
    return 7, 2
  stages = round(math.log2(image_size / 4)) if image_size > 0 else 0
  if image_size >= 32 and 4 * 2**stages == image_size:
    return 4, stages
  raise UserError(f"the convolutional models do not support image size {image_size}: "
                  f"use {SUPPORTED} (--config.data.image_size)")


class Generator(nn.Module):
  image_size: int | tuple[int, int]  # side, or (H, W) for non-square images
  channels: int
  z_dim: int = 100
  ngf: int = 64
  num_classes: int = 0  # > 0: class-conditional

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    base, stages = layout(self.image_size)
    bh, bw = base if isinstance(base, tuple) else (base, base)
    if self.num_classes:
      z = jnp.concatenate([z, jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype)], -1)
    features = self.ngf * 2 ** (stages - 1)
    h = nn.Dense(bh * bw * features, use_bias=False, kernel_init=dcgan_init, name="project")(z)
    h = h.reshape(z.shape[0], bh, bw, features)
    h = nn.relu(batch_norm(train, "project_bn")(h))
    for i in range(stages - 1):
      features //= 2
      h = UpConv(features, name=f"up{i}")(h)
      h = nn.relu(batch_norm(train, f"up{i}_bn")(h))
    h = UpConv(self.channels, name=f"up{stages - 1}")(h)
    return jnp.tanh(h)


class Discriminator(nn.Module):
  image_size: int | tuple[int, int]
  channels: int
  ndf: int = 64
  num_classes: int = 0  # > 0: projection discriminator
  norm: str = "batch"  # batch | layer | none; BN always uses batch statistics, as in DCGAN
  spectral_norm: bool = False

  def _wrap(self, layer, update_stats: bool):
    if self.spectral_norm:
      return lambda x: nn.SpectralNorm(layer)(x, update_stats=update_stats)
    return layer

  @nn.compact
  def __call__(self, x, labels=None, update_stats: bool = True):
    """Logits [N]. `update_stats`: advance the spectral-norm power iteration."""
    _, stages = layout(self.image_size)
    h, features = x, self.ndf
    for i in range(stages):
      conv = nn.Conv(features, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)), use_bias=False,
                     kernel_init=dcgan_init, name=f"down{i}")
      h = self._wrap(conv, update_stats)(h)
      if i > 0 and self.norm == "batch":
        h = batch_norm(True, f"down{i}_bn")(h)
      elif i > 0 and self.norm == "layer":
        h = nn.LayerNorm(name=f"down{i}_ln")(h)
      h = nn.leaky_relu(h, 0.2)
      features *= 2
    flat = h.reshape(h.shape[0], -1)
    logits = self._wrap(nn.Dense(1, use_bias=False, kernel_init=dcgan_init, name="logit"),
                        update_stats)(flat)[:, 0]
    if self.num_classes:
      embed = nn.Embed(self.num_classes, h.shape[-1], embedding_init=dcgan_init, name="class_embed")
      logits = logits + jnp.sum(embed(labels) * h.sum(axis=(1, 2)), axis=-1)
    return logits
