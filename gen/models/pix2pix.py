"""pix2pix's U-Net generator (Isola et al. 2017), as in pytorch-CycleGAN-and-pix2pix.

`UnetGenerator(num_downs=8)` is the authors' `unet_256`: 4x4 stride-2 convs down
C64 - C128 - C256 - C512 x 5 (LeakyReLU 0.2 before each but the first; batch norm after
each but the first and the innermost; the authors' in-place LeakyReLU also reaches the skip
copies, which changes nothing as a ReLU follows each concatenation), then 4x4 stride-2
transposed convs up, each after a ReLU on the previous output concatenated with the mirror
encoder output (the skip), batch norm after each but the last, dropout 0.5 after the three
innermost C512 ones (with num_downs = 8), and tanh. Convs followed by batch norm have no bias
(instance norm: they do; the last transposed conv always has one); weights N(0, 0.02), BN scales N(1, 0.02).
54,414,080 parameters for RGB -> RGB with batch norm, as the authors' code prints
("[Network G] Total number of parameters : 54.414 M").

Any image size: the input is padded (reflecting) to a multiple of 2**num_downs and the
output cropped back, so 28x28 digits run through a 32x32 U-Net and non-square images work.
"""

import flax.linen as nn
import jax.numpy as jnp

from gen.models.cyclegan import instance_norm
from gen.models.layers import UpConv, batch_norm, dcgan_init


def auto_downs(height: int, width: int) -> int:
  """num_downs = ceil(log2(smaller side)): 8 at 256 (unet_256), 7 at 128, 5 at 28 (padded to 32)."""
  return max(1, (min(height, width) - 1).bit_length())


class UnetGenerator(nn.Module):
  channels: int  # output channels
  num_downs: int = 8
  ngf: int = 64
  norm: str = "batch"  # batch | instance
  dropout: float = 0.5

  @nn.compact
  def __call__(self, x, train: bool = True):
    batch = self.norm == "batch"
    norm = lambda: batch_norm(train) if batch else instance_norm()
    h, w = x.shape[1:3]
    m = 2**self.num_downs
    ph, pw = -h % m, -w % m
    mode = "reflect" if ph < h and pw < w else "edge"
    x = jnp.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode=mode)
    widths = [self.ngf * min(2**i, 8) for i in range(self.num_downs)]
    skips, y = [], x
    for i, f in enumerate(widths):  # encoder
      innermost = i == self.num_downs - 1
      if i:
        y = nn.leaky_relu(y, 0.2)
      y = nn.Conv(f, (4, 4), (2, 2), padding=((1, 1), (1, 1)), kernel_init=dcgan_init,
                  use_bias=not batch)(y)
      if i and not innermost:
        y = norm()(y)
      skips.append(y)
    for i in reversed(range(self.num_downs)):  # decoder, innermost first
      if i < self.num_downs - 1:
        y = jnp.concatenate([skips[i], y], axis=-1)
      y = nn.relu(y)
      if i == 0:
        y = UpConv(self.channels, use_bias=True, kernel_init=dcgan_init)(y)
        break
      y = norm()(UpConv(widths[i - 1], use_bias=not batch, kernel_init=dcgan_init)(y))
      # the authors' blocks with dropout: the ngf*8 ones between the innermost and ngf*4
      if self.dropout and 1 <= self.num_downs - 1 - i <= self.num_downs - 5:
        y = nn.Dropout(self.dropout, deterministic=not train)(y)
    y = jnp.tanh(y)
    return y[:, ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
