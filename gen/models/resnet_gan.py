"""ResNet GANs: SNGAN (Miyato et al. 2018) and BigGAN (Brock et al. 2019), G and D in Flax Linen.

Both follow a named PyTorch implementation layer for layer, and their parameter counts equal that
implementation's (tests/test_resnet_gan.py counts ours with `jax.eval_shape`, so the full-size
models cost nothing to check). Counted like PyTorch's `sum(p.numel() for p in m.parameters())`:
our `params` collection only. Spectral norm's power-iteration vectors (PyTorch: the `weight_u`
/ `weight_v` buffers; here `u` and `sigma` in the `batch_stats` collection) and BatchNorm's
running statistics (buffers there, `batch_stats` here) are not parameters on either side.

SNGAN (`arch="sngan"`), 32x32 only: kwotsin/mimicry (torch_mimicry 0.1.16, commit a7fda06c),
`torch_mimicry/nets/sngan/sngan_32.py` with `modules/resblocks.py`, the CIFAR-10 ResNet of the
SNGAN paper's appendix. G: z (128) -> dense 4x4x256 -> 3 up-ResBlocks of 256 channels (BN, ReLU,
2x up-sampling, 3x3 conv, BN, ReLU, 3x3 conv; 1x1 conv shortcut) -> BN, ReLU, 3x3 conv to C,
tanh; no spectral norm in G. D: the "optimized" first block (conv, ReLU, conv, 2x2 average pool;
shortcut: pool, 1x1 conv), a down-sampling ResBlock, two plain ResBlocks (128 channels each),
ReLU, global sum pooling, dense to 1; spectral norm on every D layer. Xavier-uniform init (gain
sqrt 2 on the blocks' 3x3 convs, 1 elsewhere) as mimicry's, biases zero (PyTorch's default draws
them uniformly), BN eps 1e-5, SN eps 1e-12.
    mimicry SNGANGenerator32()       4,276,739 parameters   ours: the same
    mimicry SNGANDiscriminator32()   1,053,825 parameters   ours: the same
With `num_classes` (`model.conditional`) it is mimicry's cGAN-PD-32
(`nets/cgan_pd/cgan_pd_32.py`): class-conditional BN (a per-class embedding of the BN gains,
initialised N(1, 0.02), and biases, zero) in G's blocks and a projection D (Miyato & Koyama 2018):
    mimicry CGANPDGenerator32(10)     4,304,387              ours: the same
    mimicry CGANPDDiscriminator32(10) 1,055,105              ours: the same
One difference that holds no parameters: up-sampling is nearest-neighbour, as in Miyato's Chainer
code (pfnet-research/sngan_projection); mimicry uses bilinear.

BigGAN (`arch="biggan"`), 32/64/128: POSTECH-CVLab/PyTorch-StudioGAN (commit 947b35e9),
`src/models/big_resnet.py` with `src/utils/ops.py`. G: z split into (blocks + 1) chunks
(hierarchical latent); the first chunk -> SN dense to 4x4; each up-ResBlock's BNs are
class-conditional, their gains (1 + .) and biases are SN dense layers (no bias) of
[shared class embedding (128), the block's z chunk]; a non-local self-attention block at
`attention_res`; BN, ReLU, SN 3x3 conv, tanh. D: the optimized block, then pre-activation
ResBlocks ("wide": the first conv already has the output width), a self-attention block,
ReLU, global sum pooling, an SN dense to 1 plus the projection term with an SN class embedding.
Spectral norm on every conv/dense of G and D (not G's shared embedding), orthogonal init, zero
biases, BN eps 1e-4, SN eps 1e-6. Widths per resolution are StudioGAN's (in units of
ngf/ndf: G 4,4,4 at 32; 16->8,4,2,1 at 64; 16->16,8,4,2,1 at 128; D 2,2,2,2 at 32;
1,2,4,8,16 at 64; 1,2,4,8,16,16 at 128). Counted at StudioGAN's settings for each resolution:
    32,  src/configs/CIFAR10/BigGAN.yaml (10 classes, z 80, shared 128, ch 96/96, attention at 16):
         G 9,416,196   D 2,415,170   (also the numbers logged in StudioGAN's
         logs/CIFAR10/BigGAN-train-2021_01_15_14_48_48.log)
    64,  src/configs/Baby_ImageNet/BigGAN.yaml (100 classes, z 100, shared 128, ch 80/80, attention
         at 32): G 17,322,404   D 30,668,722
    128, src/configs/ImageNet/BigGAN-256.yaml (1000 classes, z 120, shared 128, ch 96/96, attention
         at 64): G 70,433,988   D 87,982,370; ajbrock/BigGAN-PyTorch's BigGAN.py (commit
         98459431) with its ImageNet-128 script's settings (G_ch=D_ch=96, dim_z 120, shared_dim
         128, --hier, --G_shared, attention 64) counts the same 70,433,988 and 87,982,370.
Unconditional (`num_classes=0`, StudioGAN's g_cond_mtd / d_cond_mtd "W/O"): the BN gains come
from the z chunks alone and D has no projection (32: G 8,825,092, D 2,413,250).
The shortcut's 1x1 conv runs before the nearest up-sampling (StudioGAN and mimicry: after); the
two commute, so this is the same function at a quarter of the cost. 2x2 pooling is a reshape and
a mean/max (the same function as a pooling window; its gradient compiles faster on CPU).

In both, `train` in G selects batch statistics for BN and advances the spectral-norm power
iteration (`update_stats`); D's `update_stats` does the same for D. The reference numbers above
were computed by instantiating the PyTorch classes (torch 2.x) from those commits.
"""

import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gen.errors import UserError

Init = Callable[..., Any]
SNGAN_SIZES = (32,)
# BigGAN widths per resolution (StudioGAN big_resnet.py): G's first width and each up-block's
# output width, in units of ngf; D's block widths (units of ndf) and which blocks down-sample.
BIGGAN_G = {32: (4, (4, 4, 4)), 64: (16, (8, 4, 2, 1)), 128: (16, (16, 8, 4, 2, 1))}
BIGGAN_D = {32: ((2, 2, 2, 2), (True, True, False, False)),
            64: ((1, 2, 4, 8, 16), (True, True, True, True, False)),
            128: ((1, 2, 4, 8, 16, 16), (True, True, True, True, True, False))}


def xavier(gain: float = 1.0) -> Init:
  """PyTorch's xavier_uniform_(w, gain) (fan_in, fan_out include the receptive field)."""
  return nn.initializers.variance_scaling(gain * gain, "fan_avg", "uniform")


orthogonal = nn.initializers.orthogonal()


def biggan_blocks(image_size: int) -> int:
  """The number of up-sampling blocks in BigGAN's G: z splits into this + 1 chunks."""
  return len(BIGGAN_G[image_size][1])


def attention_resolutions(image_size: int) -> tuple[int, ...]:
  """Where a BigGAN self-attention block may go: a resolution both G's up-blocks and D's blocks
  produce (D's first one at image_size / 2, G's first at 8)."""
  return tuple(r for r in (2**k for k in range(3, 12)) if 8 <= r <= image_size // 2)


def resolve_attention(attention_res: int, image_size: int) -> int:
  """-1: the reference's place (image_size / 2, where StudioGAN's configs put it); 0: none."""
  return image_size // 2 if attention_res < 0 else attention_res


def up2(x):
  """Nearest-neighbour 2x up-sampling, NHWC."""
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _pool2(x, reduce):
  """2x2, stride-2 pooling as a reshape and a reduction (nn.avg_pool/max_pool's function; their
  reduce_window gradients compile several times slower on CPU)."""
  n, h, w, c = x.shape
  return reduce(x.reshape(n, h // 2, 2, w // 2, 2, c), axis=(2, 4))


def down2(x):
  """2x2 average pooling."""
  return _pool2(x, jnp.mean)


def _maybe_sn(layer: nn.Module, inputs, sn: bool, update_stats: bool, eps: float):
  """`layer(inputs)`, spectrally normalised when `sn` (u and sigma live in `batch_stats`)."""
  if not sn:
    return layer(inputs)
  dtype = inputs.dtype if jnp.issubdtype(inputs.dtype, jnp.floating) else None
  # dtype: keep a bfloat16 computation in bfloat16 (the power iteration itself promotes to u's
  # float32, which would otherwise make the normalised kernel, and the layer, float32).
  return nn.SpectralNorm(layer, epsilon=eps, dtype=dtype, name="sn")(inputs,
                                                                     update_stats=update_stats)


class Conv(nn.Module):
  """k x k 'same' convolution, optionally spectrally normalised."""
  features: int
  kernel: int = 3
  use_bias: bool = True
  sn: bool = False
  sn_eps: float = 1e-12
  kernel_init: Init = orthogonal

  @nn.compact
  def __call__(self, x, update_stats: bool = True):
    k = self.kernel
    conv = nn.Conv(self.features, (k, k), padding=((k // 2, k // 2),) * 2, use_bias=self.use_bias,
                   kernel_init=self.kernel_init, name="conv")
    return _maybe_sn(conv, x, self.sn, update_stats, self.sn_eps)


class Dense(nn.Module):
  features: int
  use_bias: bool = True
  sn: bool = False
  sn_eps: float = 1e-12
  kernel_init: Init = orthogonal

  @nn.compact
  def __call__(self, x, update_stats: bool = True):
    dense = nn.Dense(self.features, use_bias=self.use_bias, kernel_init=self.kernel_init,
                     name="dense")
    return _maybe_sn(dense, x, self.sn, update_stats, self.sn_eps)


class Embed(nn.Module):
  num_embeddings: int
  features: int
  sn: bool = False
  sn_eps: float = 1e-12
  embedding_init: Init = orthogonal

  @nn.compact
  def __call__(self, labels, update_stats: bool = True):
    embed = nn.Embed(self.num_embeddings, self.features, embedding_init=self.embedding_init,
                     name="embed")
    return _maybe_sn(embed, labels, self.sn, update_stats, self.sn_eps)


def _bn(train: bool, eps: float, affine: bool, name: str) -> nn.BatchNorm:
  """PyTorch's BatchNorm2d (momentum 0.1 there is 0.9 here), gains 1, biases 0."""
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=eps, use_scale=affine,
                      use_bias=affine, name=name)


class CondBN(nn.Module):
  """BatchNorm whose gains and biases depend on the example.

  mode 'none':  the usual affine BN.
  mode 'class': per-class gains and biases from an embedding (mimicry's ConditionalBatchNorm2d;
                gains initialised N(1, 0.02), biases 0); `cond` is the labels.
  mode 'dense': gain = 1 + W_g cond, bias = W_b cond, each a dense layer without bias,
                spectrally normalised when `sn` (BigGAN / StudioGAN); `cond` is a vector.
  """
  mode: str = "none"
  num_classes: int = 0
  eps: float = 1e-5
  sn: bool = False
  sn_eps: float = 1e-12
  dense_init: Init = orthogonal

  @nn.compact
  def __call__(self, x, cond, train: bool):
    c = x.shape[-1]
    if self.mode == "none":
      return _bn(train, self.eps, True, "bn")(x)
    h = _bn(train, self.eps, False, "bn")(x)
    if self.mode == "class":
      around_one = lambda k, s, d=jnp.float32: 1 + 0.02 * jax.random.normal(k, s, d)
      gain = nn.Embed(self.num_classes, c, embedding_init=around_one, name="gain")(cond)
      bias = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros, name="bias")(cond)
    else:
      dense = lambda name: Dense(c, use_bias=False, sn=self.sn, sn_eps=self.sn_eps,
                                 kernel_init=self.dense_init, name=name)
      gain = 1 + dense("gain")(cond, train)
      bias = dense("bias")(cond, train)
    return h * gain[:, None, None, :].astype(h.dtype) + bias[:, None, None, :].astype(h.dtype)


class GBlock(nn.Module):
  """Up-sampling ResBlock: BN, ReLU, 2x up, 3x3 conv, BN, ReLU, 3x3 conv; shortcut 2x up + 1x1."""
  features: int
  cond_mode: str = "none"
  num_classes: int = 0
  bn_eps: float = 1e-5
  sn: bool = False
  sn_eps: float = 1e-12
  init3: Init = orthogonal  # the 3x3 convs'
  init1: Init = orthogonal  # the shortcut's
  bn_init: Init = orthogonal  # the conditional BN's dense layers

  @nn.compact
  def __call__(self, x, cond, train: bool):
    bn = lambda name: CondBN(self.cond_mode, self.num_classes, self.bn_eps, self.sn, self.sn_eps,
                             self.bn_init, name=name)
    conv = lambda k, init, name: Conv(self.features, k, True, self.sn, self.sn_eps, init, name=name)
    h = nn.relu(bn("bn1")(x, cond, train))
    h = conv(3, self.init3, "conv1")(up2(h), train)
    h = nn.relu(bn("bn2")(h, cond, train))
    h = conv(3, self.init3, "conv2")(h, train)
    return h + up2(conv(1, self.init1, "conv_sc")(x, train))  # 1x1 conv and nearest up commute


class DBlock(nn.Module):
  """D's ResBlock. `first`: the optimized block (conv, ReLU, conv, pool; shortcut pool + 1x1).
  Otherwise pre-activation (ReLU, conv, ReLU, conv, [pool]; shortcut [1x1, pool] when the width
  changes or it down-samples). Both convs produce `features` channels."""
  features: int
  downsample: bool = True
  first: bool = False
  sn: bool = True
  sn_eps: float = 1e-12
  init3: Init = orthogonal
  init1: Init = orthogonal

  @nn.compact
  def __call__(self, x, update_stats: bool = True):
    conv = lambda k, init, name: Conv(self.features, k, True, self.sn, self.sn_eps, init, name=name)
    if self.first:
      h = conv(3, self.init3, "conv1")(x, update_stats)
      h = conv(3, self.init3, "conv2")(nn.relu(h), update_stats)
      return down2(h) + conv(1, self.init1, "conv_sc")(down2(x), update_stats)
    h = conv(3, self.init3, "conv1")(nn.relu(x), update_stats)
    h = conv(3, self.init3, "conv2")(nn.relu(h), update_stats)
    shortcut = x
    if self.downsample or x.shape[-1] != self.features:
      shortcut = conv(1, self.init1, "conv_sc")(x, update_stats)
    if self.downsample:
      h, shortcut = down2(h), down2(shortcut)
    return h + shortcut


class SelfAttention(nn.Module):
  """SAGAN's non-local block as BigGAN/StudioGAN code it: theta, phi, g 1x1 convs (C/8, C/8, C/2,
  no bias), phi and g max-pooled 2x2, softmax attention, a 1x1 conv back to C, x + sigma * o with
  a learnt sigma initialised 0."""
  sn: bool = True
  sn_eps: float = 1e-12
  kernel_init: Init = orthogonal

  @nn.compact
  def __call__(self, x, update_stats: bool = True):
    n, h, w, c = x.shape
    conv = lambda f, name: Conv(f, 1, False, self.sn, self.sn_eps, self.kernel_init, name=name)
    pool = lambda t: _pool2(t, jnp.max)
    theta = conv(c // 8, "theta")(x, update_stats).reshape(n, h * w, c // 8)
    phi = pool(conv(c // 8, "phi")(x, update_stats)).reshape(n, h * w // 4, c // 8)
    g = pool(conv(c // 2, "g")(x, update_stats)).reshape(n, h * w // 4, c // 2)
    logits = jnp.einsum("nqc,nkc->nqk", theta, phi)
    attention = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(g.dtype)
    o = jnp.einsum("nqk,nkc->nqc", attention, g).reshape(n, h, w, c // 2)
    o = conv(c, "o")(o, update_stats)
    sigma = self.param("sigma", nn.initializers.zeros, (1,), jnp.float32)
    return x + sigma.astype(x.dtype) * o


# -- SNGAN (mimicry sngan_32 / cgan_pd_32) -------------------------------------------------------


class SNGANGenerator(nn.Module):
  image_size: int = 32
  channels: int = 3
  z_dim: int = 128
  ngf: int = 256
  num_classes: int = 0  # > 0: class-conditional BN (mimicry's cGAN-PD)

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    base = self.image_size // 8
    h = nn.Dense(base * base * self.ngf, kernel_init=xavier(), name="l1")(z)
    h = h.reshape(z.shape[0], base, base, self.ngf)
    for i in range(3):
      h = GBlock(self.ngf, "class" if self.num_classes else "none", self.num_classes, 1e-5,
                 init3=xavier(math.sqrt(2)), init1=xavier(), name=f"block{i + 2}")(h, labels, train)
    h = nn.relu(_bn(train, 1e-5, True, "b5")(h))
    h = nn.Conv(self.channels, (3, 3), padding=((1, 1), (1, 1)), kernel_init=xavier(), name="c5")(h)
    return jnp.tanh(h)


class SNGANDiscriminator(nn.Module):
  image_size: int = 32
  channels: int = 3
  ndf: int = 128
  num_classes: int = 0  # > 0: projection discriminator

  @nn.compact
  def __call__(self, x, labels=None, update_stats: bool = True):
    """Logits [N]. `update_stats`: advance the spectral-norm power iteration."""
    block = lambda down, first, name: DBlock(self.ndf, down, first, True, 1e-12,
                                             xavier(math.sqrt(2)), xavier(), name=name)
    h = block(True, True, "block1")(x, update_stats)
    h = block(True, False, "block2")(h, update_stats)
    h = block(False, False, "block3")(h, update_stats)
    h = block(False, False, "block4")(h, update_stats)
    h = jnp.sum(nn.relu(h), axis=(1, 2))
    logits = Dense(1, sn=True, kernel_init=xavier(), name="l5")(h, update_stats)[:, 0]
    if self.num_classes:
      w_y = Embed(self.num_classes, self.ndf, sn=True, embedding_init=xavier(), name="l_y")(
          labels, update_stats)
      logits = logits + jnp.sum(w_y * h, axis=-1)
    return logits


# -- BigGAN (StudioGAN big_resnet) ---------------------------------------------------------------

BIGGAN_BN_EPS = 1e-4
BIGGAN_SN_EPS = 1e-6


class BigGANGenerator(nn.Module):
  image_size: int = 32
  channels: int = 3
  z_dim: int = 80  # split into biggan_blocks(image_size) + 1 equal chunks
  ngf: int = 96
  num_classes: int = 0  # 0: the BN gains see only the z chunks (StudioGAN's "W/O")
  shared_dim: int = 128
  attention_res: int = -1  # -1: image_size / 2; 0: no self-attention

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    first, widths = BIGGAN_G[self.image_size]
    chunk = self.z_dim // (len(widths) + 1)
    zs = [z[:, i * chunk:(i + 1) * chunk] for i in range(len(widths) + 1)]
    conds = zs[1:]
    if self.num_classes:
      shared = nn.Embed(self.num_classes, self.shared_dim, embedding_init=orthogonal,
                        name="shared")(labels).astype(z.dtype)
      conds = [jnp.concatenate([shared, c], axis=-1) for c in conds]
    h = Dense(4 * 4 * first * self.ngf, sn=True, sn_eps=BIGGAN_SN_EPS, name="linear0")(zs[0], train)
    h = h.reshape(z.shape[0], 4, 4, first * self.ngf)
    attention, res = resolve_attention(self.attention_res, self.image_size), 4
    for i, width in enumerate(widths):
      h = GBlock(width * self.ngf, "dense", 0, BIGGAN_BN_EPS, True, BIGGAN_SN_EPS,
                 name=f"block{i}")(h, conds[i], train)
      res *= 2
      if res == attention:
        h = SelfAttention(True, BIGGAN_SN_EPS, name="attention")(h, train)
    h = nn.relu(_bn(train, BIGGAN_BN_EPS, True, "bn4")(h))
    h = Conv(self.channels, 3, True, True, BIGGAN_SN_EPS, name="conv2d5")(h, train)
    return jnp.tanh(h)


class BigGANDiscriminator(nn.Module):
  image_size: int = 32
  channels: int = 3
  ndf: int = 96
  num_classes: int = 0  # > 0: projection discriminator
  attention_res: int = -1

  @nn.compact
  def __call__(self, x, labels=None, update_stats: bool = True):
    """Logits [N]. `update_stats`: advance the spectral-norm power iteration."""
    widths, downs = BIGGAN_D[self.image_size]
    attention, res, attended = resolve_attention(self.attention_res, self.image_size), \
        self.image_size, False
    h = x
    for i, (width, down) in enumerate(zip(widths, downs)):
      h = DBlock(width * self.ndf, down, i == 0, True, BIGGAN_SN_EPS, name=f"block{i}")(
          h, update_stats)
      res //= 2 if down else 1
      if res == attention and not attended:
        h = SelfAttention(True, BIGGAN_SN_EPS, name="attention")(h, update_stats)
        attended = True
    h = jnp.sum(nn.relu(h), axis=(1, 2))
    logits = Dense(1, sn=True, sn_eps=BIGGAN_SN_EPS, name="linear1")(h, update_stats)[:, 0]
    if self.num_classes:
      embed = Embed(self.num_classes, h.shape[-1], sn=True, sn_eps=BIGGAN_SN_EPS,
                    name="embedding")(labels, update_stats)
      logits = logits + jnp.sum(embed.astype(h.dtype) * h, axis=-1)
    return logits


# -- settings checks (gen.models.gan builds the networks) ------------------------------------------


def _attention_widths(image_size: int, res: int, ngf: int, ndf: int) -> tuple[int, int]:
  """Channels G's and D's self-attention blocks see at resolution `res`."""
  _, g_widths = BIGGAN_G[image_size]
  g = g_widths[round(math.log2(res / 8))] * ngf
  d_widths, downs = BIGGAN_D[image_size]
  size = image_size
  for width, down in zip(d_widths, downs):
    size //= 2 if down else 1
    if size == res:
      return g, width * ndf
  raise AssertionError(res)


def check(model, image_size: int) -> None:
  """One-line UserErrors for a ResNet arch's settings (config.model) at `image_size`."""
  arch = model.arch
  if arch == "sngan" and image_size not in SNGAN_SIZES:
    raise UserError(f"model.arch='sngan' is SNGAN's 32x32 ResNet: image size {image_size} is not "
                    f"supported (--config.data.image_size=32 resizes)")
  if arch != "biggan":
    return
  if image_size not in BIGGAN_G:
    raise UserError(f"model.arch='biggan' supports image sizes {', '.join(map(str, BIGGAN_G))}, "
                    f"not {image_size} (--config.data.image_size)")
  slots = biggan_blocks(image_size) + 1
  if model.z_dim % slots:
    raise UserError(f"model.z_dim={model.z_dim} must be a multiple of {slots} for biggan at "
                    f"{image_size}x{image_size} (z splits into {slots - 1} blocks + 1 equal "
                    f"chunks)")
  if model.conditional and model.shared_dim < 1:
    raise UserError(f"model.shared_dim={model.shared_dim} must be positive")
  places = attention_resolutions(image_size)
  res = resolve_attention(model.attention_res, image_size)
  if res and res not in places:
    raise UserError(f"model.attention_res={model.attention_res} has no BigGAN block at "
                    f"{image_size}x{image_size}: use -1 ({image_size // 2}, the reference's), "
                    f"0 (none) or one of {', '.join(map(str, places))}")
  if res and min(_attention_widths(image_size, res, model.ngf, model.ndf)) < 8:
    raise UserError(f"biggan's self-attention at {res}x{res} needs at least 8 channels there "
                    f"(C/8 query channels): raise model.ngf/model.ndf or set model.attention_res=0")
