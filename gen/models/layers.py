"""Layers shared by the model families."""

import os
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

_DN = ("NHWC", "HWIO", "NHWC")

# DCGAN (Radford et al.) and CycleGAN initialise weights from N(0, 0.02).
dcgan_init = nn.initializers.normal(0.02)


def conv_transpose_4x4_s2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The 4x4, stride-2 transposed convolution that doubles H and W, without a dilated input.

  Same function as `nn.ConvTranspose(features, (4, 4), strides=(2, 2),
  padding=((2, 2), (2, 2)))` with the same kernel (PyTorch's
  `ConvTranspose2d(k=4, s=2, p=1)` up to the kernel's flip). XLA:CPU
  differentiates that dilated form ~7x slower than the two formulations here,
  which multiply no zeros; on GPU/TPU all three are plain convolutions/matmuls.
  Measured on 2 CPU cores: the tap form is ~3x faster for a 1-3 channel output
  layer, the phase form is faster for wide layers.
  """
  if kernel.shape[-1] <= 4:  # the image-output layer (1 or 3 channels)
    return _by_taps(x, kernel)
  return _by_phases(x, kernel)


def _by_phases(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """Four 2x2 convolutions, one per output phase (row parity a, column parity b), interleaved.

  Output pixel (2i+a, 2j+b) only meets the kernel taps kernel[a::2, b::2].
  """
  n, h, w, _ = x.shape
  rows = []
  for a in (0, 1):
    cols = []
    for b in (0, 1):
      # Phase 0 reads input rows i-1, i (pad before); phase 1 reads i, i+1 (pad after).
      padding = ((1, 0) if a == 0 else (0, 1), (1, 0) if b == 0 else (0, 1))
      cols.append(lax.conv_general_dilated(x, kernel[a::2, b::2], (1, 1), padding,
                                           dimension_numbers=_DN))
    rows.append(jnp.stack(cols, axis=3))  # [n, h, w, b, c]
  y = jnp.stack(rows, axis=2)  # [n, h, a, w, b, c]
  return y.reshape(n, 2 * h, 2 * w, kernel.shape[-1])


# Input pixel i's tap k lands on output row 2i + 2 - k, i.e. in phase a at row j = i - d:
# phase a gathers, for each (k, d) below, the tap k of input row j + d.
_TAPS = {0: ((2, 0), (0, -1)), 1: ((1, 0), (3, 1))}


def _shifted(t: jax.Array, d: int, axis: int) -> jax.Array:
  """out[j] = t[j + d] along `axis`, zero where j + d falls outside."""
  if d == 0:
    return t
  size = t.shape[axis]
  pad = [(0, 0)] * t.ndim
  pad[axis] = (0, 1) if d > 0 else (1, 0)
  return lax.slice_in_dim(jnp.pad(t, pad), max(d, 0), max(d, 0) + size, axis=axis)


def _by_taps(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """One matmul for all 16 taps of every input pixel, then overlap-add into the 4 phases."""
  n, h, w, c = x.shape
  out = kernel.shape[-1]
  taps = x.reshape(-1, c) @ kernel.transpose(2, 0, 1, 3).reshape(c, 16 * out)
  taps = taps.reshape(n, h, w, 4, 4, out)
  rows = []
  for a in (0, 1):
    cols = []
    for b in (0, 1):
      cols.append(sum(_shifted(_shifted(taps[:, :, :, kh, kw], dh, 1), dw, 2)
                      for kh, dh in _TAPS[a] for kw, dw in _TAPS[b]))
    rows.append(jnp.stack(cols, axis=3))
  return jnp.stack(rows, axis=2).reshape(n, 2 * h, 2 * w, out)


# Phase a of a 3x3 stride-2 transposed conv reads kernel rows _TAPS_3x3[a] at input rows i, i+1.
_TAPS_3x3 = {0: [1], 1: [0, 2]}


def conv_transpose_3x3_s2(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The 3x3, stride-2 transposed convolution that doubles H and W, without a dilated input.

  Same function as `nn.ConvTranspose(features, (3, 3), strides=(2, 2),
  padding=((1, 2), (1, 2)))` with the same kernel (PyTorch's
  `ConvTranspose2d(k=3, s=2, p=1, output_padding=1)`, CycleGAN's up-sampling,
  up to the kernel's flip): even outputs see one tap, odd ones two, per axis.
  """
  n, h, w, _ = x.shape
  rows = []
  for a in (0, 1):
    cols = []
    for b in (0, 1):
      k = kernel[jnp.asarray(_TAPS_3x3[a])][:, jnp.asarray(_TAPS_3x3[b])]
      cols.append(lax.conv_general_dilated(x, k, (1, 1), ((0, a), (0, b)), dimension_numbers=_DN))
    rows.append(jnp.stack(cols, axis=3))  # [n, h, w, b, c]
  return jnp.stack(rows, axis=2).reshape(n, 2 * h, 2 * w, kernel.shape[-1])


# Which formulation of the stride-2 up-sampling each backend runs. All compute the same function
# (tests/test_layers.py); the choice is speed only, by measurement (benchmarks/upsample.py):
#   cpu   'gather': the tap/phase forms above. XLA:CPU runs the native (dilated) transposed
#         convolution's forward + backward 12x slower over DCGAN-64's and CycleGAN-256's
#         up-sampling layers (2 cores: 3.1 vs 37.2 s; benchmarks/results/upsample_cpu.json).
#   gpu, tpu  'native': lax.conv_transpose, which cuDNN and the TPU compiler lower to their own
#         transposed-convolution kernels. No GPU/TPU measurement has been recorded in this
#         repository yet: run benchmarks/upsample.py there and change the entry if 'gather'
#         wins.
UPSAMPLE_BY_BACKEND = {"cpu": "gather", "gpu": "native", "cuda": "native", "rocm": "native",
                       "tpu": "native"}
UPSAMPLE_FORMULATIONS = ("gather", "native")
_NATIVE_PADDING = {4: ((2, 2), (2, 2)), 3: ((1, 2), (1, 2))}


def upsample_formulation() -> str:
  """$GEN_UPSAMPLE (gather | native), else UPSAMPLE_BY_BACKEND for the default backend."""
  chosen = os.environ.get("GEN_UPSAMPLE") or UPSAMPLE_BY_BACKEND.get(jax.default_backend(), "native")
  if chosen not in UPSAMPLE_FORMULATIONS:
    raise ValueError(f"GEN_UPSAMPLE={chosen!r} must be one of {', '.join(UPSAMPLE_FORMULATIONS)}")
  return chosen


def conv_transpose_s2(x: jax.Array, kernel: jax.Array, formulation: str | None = None) -> jax.Array:
  """The k x k (k = 3 or 4) stride-2 transposed convolution, H, W -> 2H, 2W, in the backend's
  formulation (see UPSAMPLE_BY_BACKEND)."""
  k = kernel.shape[0]
  if (formulation or upsample_formulation()) == "native":
    return lax.conv_transpose(x, kernel, (2, 2), _NATIVE_PADDING[k], dimension_numbers=_DN)
  return conv_transpose_4x4_s2(x, kernel) if k == 4 else conv_transpose_3x3_s2(x, kernel)


class UpConv(nn.Module):
  """A 4x4 (or 3x3) stride-2 transposed convolution, H, W -> 2H, 2W: see conv_transpose_*_s2."""
  features: int
  use_bias: bool = False
  kernel_init: Callable[..., Any] = dcgan_init
  kernel_size: int = 4

  @nn.compact
  def __call__(self, x):
    k = self.kernel_size
    if k not in (3, 4):
      raise ValueError(f"UpConv supports kernel sizes 3 and 4, not {k}")
    kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features), jnp.float32)
    y = conv_transpose_s2(x, kernel.astype(x.dtype))
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
    return y


def batch_norm(train: bool, name: str | None = None) -> nn.BatchNorm:
  """BatchNorm as in PyTorch's defaults (momentum 0.1 there is 0.9 here), DCGAN's scale init."""
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                      scale_init=lambda k, s, d=jnp.float32: 1.0 + 0.02 * jax.random.normal(k, s, d),
                      name=name)
