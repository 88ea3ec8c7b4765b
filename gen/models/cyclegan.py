"""CycleGAN networks (Zhu et al. 2017), as in the authors' pytorch-CycleGAN-and-pix2pix.

ResNet generator: c7s1-ngf (reflection pad 3), two stride-2 3x3 convs down
(2ngf, 4ngf), `blocks` residual blocks at 4ngf (reflection pad 1, 3x3 conv,
IN, ReLU, reflection pad 1, 3x3 conv, IN), two stride-2 3x3 transposed convs
up (2ngf, ngf), c7s1-C (reflection pad 3) and tanh. The paper uses 9 blocks at
256x256 and 6 at 128x128 or below. Instance norm without affine parameters
(PyTorch's InstanceNorm2d default), ReLU, conv weights N(0, 0.02), zero biases.

70x70 PatchGAN discriminator (`layers` = 3): 4x4 convs C64 (stride 2, no norm),
C128, C256 (stride 2), C512 (stride 1), then a 4x4 stride-1 conv to one logit
per patch; LeakyReLU 0.2, instance norm. Padding 1 everywhere.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen.errors import UserError
from gen.models.layers import UpConv, batch_norm, dcgan_init

init = dcgan_init  # N(0, 0.02)


def instance_norm() -> nn.InstanceNorm:
  return nn.InstanceNorm(epsilon=1e-5, use_scale=False, use_bias=False)


def reflect_pad(x: jax.Array, p: int) -> jax.Array:
  return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")


class ResidualBlock(nn.Module):
  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    h = nn.Conv(c, (3, 3), padding="VALID", kernel_init=init)(reflect_pad(x, 1))
    h = nn.relu(instance_norm()(h))
    h = nn.Conv(c, (3, 3), padding="VALID", kernel_init=init)(reflect_pad(h, 1))
    return x + instance_norm()(h)


class ResnetGenerator(nn.Module):
  channels: int
  ngf: int = 64
  blocks: int = 9

  @nn.compact
  def __call__(self, x):
    h = nn.Conv(self.ngf, (7, 7), padding="VALID", kernel_init=init)(reflect_pad(x, 3))
    h = nn.relu(instance_norm()(h))
    for mult in (2, 4):
      h = nn.Conv(self.ngf * mult, (3, 3), (2, 2), padding=((1, 1), (1, 1)), kernel_init=init)(h)
      h = nn.relu(instance_norm()(h))
    for _ in range(self.blocks):
      h = ResidualBlock()(h)
    for mult in (2, 1):
      # PyTorch's ConvTranspose2d(k=3, s=2, padding=1, output_padding=1): H -> 2H.
      h = UpConv(self.ngf * mult, use_bias=True, kernel_init=init, kernel_size=3)(h)
      h = nn.relu(instance_norm()(h))
    h = nn.Conv(self.channels, (7, 7), padding="VALID", kernel_init=init)(reflect_pad(h, 3))
    return jnp.tanh(h)


def patch_grid(size: int, layers: int) -> int:
  """Rows (or columns) of patch logits a `layers`-layer PatchGAN gives for `size` pixels:
  `layers` 4x4 stride-2 convs, then two stride-1 ones (padding 1). < 1: the image is too small."""
  for _ in range(layers):
    size = (size + 2 - 4) // 2 + 1
  return size - 2


def check_patch_size(h: int, w: int, layers: int) -> None:
  if min(patch_grid(h, layers), patch_grid(w, layers)) < 1:
    smallest = next(s for s in range(1, 4096) if patch_grid(s, layers) >= 1)
    raise UserError(f"a {layers}-layer PatchGAN needs images of at least {smallest}x{smallest}, "
                    f"not {h}x{w} (fewer model.d_layers, or a larger data.image_size)")


class PatchDiscriminator(nn.Module):
  """pytorch-CycleGAN-and-pix2pix's NLayerDiscriminator. `norm`: instance (CycleGAN; convs
  keep biases) or batch (pix2pix; normalised convs without biases, BN with affine parameters,
  batch statistics when `train`). pix2pix feeds it the input and output side by side on
  channels (a conditional D)."""
  ndf: int = 64
  layers: int = 3  # 3: the 70x70 PatchGAN
  norm: str = "instance"  # instance | batch

  @nn.compact
  def __call__(self, x, train: bool = True):
    batch = self.norm == "batch"
    conv = lambda f, s, bias=True: nn.Conv(f, (4, 4), (s, s), padding=((1, 1), (1, 1)),
                                           use_bias=bias, kernel_init=init)
    h = nn.leaky_relu(conv(self.ndf, 2)(x), 0.2)
    for i in range(1, self.layers + 1):
      h = conv(self.ndf * min(2**i, 8), 2 if i < self.layers else 1, not batch)(h)
      h = batch_norm(train)(h) if batch else instance_norm()(h)
      h = nn.leaky_relu(h, 0.2)
    return conv(1, 1)(h)
