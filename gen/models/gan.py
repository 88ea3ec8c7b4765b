"""A GAN's G and D from `config.model.arch`: the one place that maps the setting to networks.

  dcgan   gen.models.dcgan (any 28 or 4*2^k size, non-square too; BN/LN/SN options in D)
  sngan   gen.models.resnet_gan, SNGAN's 32x32 ResNet
  biggan  gen.models.resnet_gan, BigGAN at 32, 64 or 128

Every G is G(z, labels, train) and every D is D(x, labels, update_stats), their spectral-norm
state (if any) in `batch_stats` beside BN's.
"""

from __future__ import annotations

from gen.configs import checks
from gen.errors import UserError
from gen.models import dcgan, resnet_gan

ARCHS = ("dcgan", "sngan", "biggan")


def check(config, image_shape: tuple[int, int, int], dataset: str) -> None:
  """One-line UserErrors for `config.model` on images of `image_shape`."""
  m = config.model
  h, w, _ = image_shape
  checks.one_of(config, "model.arch", ARCHS)
  checks.one_of(config, "model.d_norm", ("batch", "layer", "none"))
  checks.positive(config, "model.z_dim", "model.ngf", "model.ndf")
  if m.arch == "dcgan":
    dcgan.layout(h if h == w else (h, w))
  elif h != w:
    raise UserError(f"model.arch={m.arch!r} needs square images, dataset {dataset!r} has "
                    f"{h}x{w}: set --config.data.image_size (DCGAN takes non-square ones)")
  else:  # sngan: 32 only; biggan: 32/64/128, z_dim in equal chunks, attention_res
    resnet_gan.check(m, h)


def networks(model, image_shape: tuple[int, int, int], num_classes: int):
  """(G, D) for `config.model` on images of `image_shape`, class-conditional if num_classes."""
  rows, cols, channels = image_shape
  size = rows if rows == cols else (rows, cols)
  if model.arch == "dcgan":
    return (dcgan.Generator(size, channels, model.z_dim, model.ngf, num_classes),
            dcgan.Discriminator(size, channels, model.ndf, num_classes, model.d_norm,
                                model.spectral_norm))
  if model.arch == "sngan":
    return (resnet_gan.SNGANGenerator(size, channels, model.z_dim, model.ngf, num_classes),
            resnet_gan.SNGANDiscriminator(size, channels, model.ndf, num_classes))
  return (resnet_gan.BigGANGenerator(size, channels, model.z_dim, model.ngf, num_classes,
                                     model.shared_dim, model.attention_res),
          resnet_gan.BigGANDiscriminator(size, channels, model.ndf, num_classes,
                                         model.attention_res))
