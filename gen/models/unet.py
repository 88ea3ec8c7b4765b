"""EDM's DDPM++ U-Net ("SongUNet") in Flax, for the diffusion family.

Follows NVlabs/edm training/networks.py (SongUNet with its UNetBlock, PositionalEmbedding and
FourierEmbedding; Karras et al. 2022), itself a reimplementation of Song et al. 2021's DDPM++
and NCSN++: per-resolution channel multipliers, `num_blocks` residual blocks per resolution,
single-head self-attention at `attn_resolutions`, a positional (DDPM++) or Fourier (NCSN++)
noise embedding mapped by two dense layers, dropout, and class labels (one-hot, zeroed when
dropped for classifier-free guidance) added to the embedding. Down- and upsampling use the
[1, 1] filter (2x2 mean and nearest neighbour), each residual block's skip a 1x1 projection.
Initialisation as the reference: Xavier-uniform, the output-side convolutions scaled by 1e-5,
the attention's qkv by sqrt(0.2), biases zero.

With EDM's CIFAR-10 settings (`cifar10_edm` in gen/configs/diffusion.py) its parameter count
equals the reference's (tests/test_diffusion.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def _xavier(scale: float = 1.0):
  base = nn.initializers.xavier_uniform()
  return lambda key, shape, dtype=jnp.float32: base(key, shape, dtype) * scale


INIT, INIT_ZERO, INIT_ATTN = 1.0, 1e-5, math.sqrt(0.2)


def group_norm(channels: int, eps: float, name: str) -> nn.GroupNorm:
  """EDM's GroupNorm: 32 groups, but at least 4 channels per group."""
  return nn.GroupNorm(num_groups=min(32, channels // 4), epsilon=eps, name=name)


def downsample(x):
  """The [1, 1] filter at stride 2: 2x2 means."""
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def upsample(x):
  """The transposed [1, 1] filter at stride 2: nearest neighbour."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def conv(features: int, kernel: int, scale: float, name: str) -> nn.Conv:
  return nn.Conv(features, (kernel, kernel), padding="SAME", kernel_init=_xavier(scale),
                 name=name)


def dense(features: int, name: str, use_bias: bool = True) -> nn.Dense:
  return nn.Dense(features, use_bias=use_bias, kernel_init=_xavier(INIT), name=name)


def positional_embedding(x: jax.Array, channels: int, max_positions: int = 10000) -> jax.Array:
  """DDPM++'s sinusoidal embedding of the noise label (EDM: endpoint=True), as [sin, cos] (the
  reference builds [cos, sin] and swaps the halves)."""
  freqs = jnp.arange(channels // 2, dtype=jnp.float32) / (channels // 2 - 1)
  freqs = (1.0 / max_positions) ** freqs
  x = x[:, None].astype(jnp.float32) * freqs[None, :]
  return jnp.concatenate([jnp.sin(x), jnp.cos(x)], axis=1)


class UNetBlock(nn.Module):
  """A residual block (GroupNorm, SiLU, 3x3 conv, + embedding, GroupNorm, SiLU, dropout, 3x3
  conv), optionally resampling, optionally followed by single-head self-attention; both sums
  scaled by sqrt(1/2)."""
  out_channels: int
  up: bool = False
  down: bool = False
  attention: bool = False
  dropout: float = 0.0
  eps: float = 1e-6

  @nn.compact
  def __call__(self, x, emb, train: bool):
    skip_scale = math.sqrt(0.5)
    resample = upsample if self.up else downsample if self.down else (lambda t: t)
    orig = x
    h = nn.silu(group_norm(x.shape[-1], self.eps, "norm0")(x))
    h = conv(self.out_channels, 3, INIT, "conv0")(resample(h))
    h = h + dense(self.out_channels, "affine")(emb)[:, None, None, :]
    h = nn.silu(group_norm(self.out_channels, self.eps, "norm1")(h))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = conv(self.out_channels, 3, INIT_ZERO, "conv1")(h)
    if self.out_channels != x.shape[-1] or self.up or self.down:
      orig = conv(self.out_channels, 1, INIT, "skip")(resample(orig))
    x = (h + orig) * skip_scale
    if self.attention:
      n, height, width, c = x.shape
      qkv = conv(3 * c, 1, INIT_ATTN, "qkv")(group_norm(c, self.eps, "norm2")(x))
      q, k, v = jnp.split(qkv.reshape(n, height * width, 3 * c), 3, axis=-1)
      w = jax.nn.softmax(jnp.einsum("nqc,nkc->nqk", q.astype(jnp.float32),
                                    k.astype(jnp.float32)) / math.sqrt(c), axis=-1)
      a = jnp.einsum("nqk,nkc->nqc", w.astype(v.dtype), v).reshape(n, height, width, c)
      x = (conv(c, 1, INIT_ZERO, "proj")(a) + x) * skip_scale
    return x


class SongUNet(nn.Module):
  """F(x_in, noise_label, labels) -> [B, H, W, out_channels]; `labels` one-hot [B, C] (zeros
  for none) when label_dim > 0. H and W must halve len(channel_mult) - 1 times."""
  out_channels: int
  label_dim: int = 0
  model_channels: int = 128
  channel_mult: Sequence[int] = (1, 2, 2, 2)
  channel_mult_emb: int = 4
  num_blocks: int = 4
  attn_resolutions: Sequence[int] = (16,)
  dropout: float = 0.10
  embedding: str = "positional"  # positional (DDPM++) | fourier (NCSN++)
  channel_mult_noise: int = 1

  @nn.compact
  def __call__(self, x, noise_label, labels=None, train: bool = False):
    emb_channels = self.model_channels * self.channel_mult_emb
    noise_channels = self.model_channels * self.channel_mult_noise
    if self.embedding == "positional":
      emb = positional_embedding(noise_label, noise_channels)
    else:  # NCSN++: random Fourier features; fixed (seed 0), so not part of the state
      freqs = 16.0 * jax.random.normal(jax.random.key(0), (noise_channels // 2,))
      arg = noise_label[:, None].astype(jnp.float32) * (2 * math.pi * freqs)[None, :]
      emb = jnp.concatenate([jnp.sin(arg), jnp.cos(arg)], axis=1)
    if self.label_dim:
      emb = emb + dense(noise_channels, "map_label")(labels * math.sqrt(self.label_dim))
    emb = nn.silu(dense(emb_channels, "map_layer0")(emb))
    emb = nn.silu(dense(emb_channels, "map_layer1")(emb))

    block = lambda c, name, **kw: UNetBlock(c, dropout=self.dropout, name=name, **kw)
    skips = []
    h = x
    for level, mult in enumerate(self.channel_mult):
      res = x.shape[1] >> level
      if level == 0:
        h = conv(self.model_channels, 3, INIT, f"enc_{res}_conv")(h)
      else:
        h = block(h.shape[-1], f"enc_{res}_down", down=True)(h, emb, train)
      skips.append(h)
      for i in range(self.num_blocks):
        h = block(self.model_channels * mult, f"enc_{res}_block{i}",
                  attention=res in self.attn_resolutions)(h, emb, train)
        skips.append(h)

    for level in reversed(range(len(self.channel_mult))):
      mult = self.channel_mult[level]
      res = x.shape[1] >> level
      if level == len(self.channel_mult) - 1:
        h = block(h.shape[-1], f"dec_{res}_in0", attention=True)(h, emb, train)
        h = block(h.shape[-1], f"dec_{res}_in1")(h, emb, train)
      else:
        h = block(h.shape[-1], f"dec_{res}_up", up=True)(h, emb, train)
      for i in range(self.num_blocks + 1):
        h = jnp.concatenate([h, skips.pop()], axis=-1)
        h = block(self.model_channels * mult, f"dec_{res}_block{i}",
                  attention=i == self.num_blocks and res in self.attn_resolutions)(h, emb, train)
    h = nn.silu(group_norm(h.shape[-1], 1e-6, "out_norm")(h))
    return conv(self.out_channels, 3, INIT_ZERO, "out_conv")(h)


def num_params(params) -> int:
  return sum(int(p.size) for p in jax.tree.leaves(params))
