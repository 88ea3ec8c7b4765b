"""GAN configs: DCGAN (Radford et al. 2016), SNGAN and BigGAN ResNets, on one family.

  python train_gan.py --workdir runs/gan                                  # the default below
  python train_gan.py --workdir runs/x --config=gen/configs/gan.py:VARIANT [--config.a.b=v]

Default: DCGAN on the offline mnist5k digits (28x28x1), batch 32, 4,000 steps, non-saturating
loss, Adam(2e-4, 0.5, 0.999), EMA of G; FID/KID/precision/recall/density/coverage on the digit
classifier's features at steps 2,000 and 4,000, the best checkpoint by FID-digits kept. Its
time and scores on 2 CPU cores: docs/families.md (GAN). Variants are the functions below (each
docstring says what it is); reproductions and their published numbers: docs/reproductions.md.
"""

import ml_collections

from gen.configs.common import shrink_to_tiny, trainer_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = trainer_config(family="gan", batch_size=32, num_steps=4000, log_every=100,
                     sample_every=500, checkpoint_every=1000, eval_every=2000)

  c.model = ml_collections.ConfigDict()
  c.model.arch = "dcgan"  # dcgan | sngan (ResNet, 32x32) | biggan (32, 64, 128): gen/models/gan.py
  c.model.z_dim = 100
  c.model.ngf = 64  # G's width (the ResNets': SNGAN's block channels, BigGAN's ch)
  c.model.ndf = 64  # D's width
  c.model.d_norm = "batch"  # dcgan: batch | layer | none (the ResNet Ds have none)
  c.model.spectral_norm = False  # dcgan: in D (the ResNet Ds always have it)
  c.model.conditional = False  # class-conditional: one-hot label into G, projection D
  c.model.shared_dim = 128  # biggan: the shared class embedding that conditions G's BNs
  c.model.attention_res = -1  # biggan: self-attention at this resolution; -1 size/2, 0 none
  c.model.ema_decay = 0.999  # of G's weights; samples and evaluation use the EMA

  c.loss = ml_collections.ConfigDict()
  c.loss.kind = "ns"  # ns (non-saturating) | hinge | wgan | lsgan
  c.loss.n_critic = 1  # D updates per G update
  c.loss.gp_weight = 0.0  # WGAN-GP lambda; > 0 adds the penalty to D's loss
  c.loss.r1_gamma = 0.0  # R1 weight gamma; the penalty is gamma/2 * E||grad D(x)||^2
  c.loss.lecam_weight = 0.0  # LeCam (Tseng et al. 2021) lambda
  c.loss.lecam_decay = 0.99  # of LeCam's moving averages of D's mean outputs
  c.loss.bcr_real = 0.0  # bCR (Zhao et al. 2021) lambda_real on (D(x) - D(T(x)))^2; paper: 10
  c.loss.bcr_fake = 0.0  # bCR lambda_fake on (D(G(z)) - D(T(G(z))))^2; paper: 10

  # What D sees is augmented (gen/objectives/augment.py): its loss on real and fake images,
  # G's loss on fakes (each its own draw) and, through the critic, R1/GP/bCR. Off by default.
  c.augment = ml_collections.ConfigDict()
  c.augment.diffaugment = ""  # DiffAugment policies, e.g. "color,translation,cutout"
  c.augment.ada = ""  # ADA transforms: "bgc" (all), "blit", "geom", "color" or names
  c.augment.ada_p = 0.0  # ADA's initial probability p, in [0, 1]
  c.augment.ada_target = 0.6  # p rises while r_t = E[sign(D(real))] is above this, else falls
  c.augment.ada_interval = 4  # D steps between adjustments of p; 0 keeps p at ada_p
  c.augment.ada_kimg = 500.0  # thousands of real images for p to go 0 -> 1 (short runs: less)

  c.optim = ml_collections.ConfigDict()
  c.optim.g_lr = 2e-4
  c.optim.d_lr = 2e-4
  c.optim.b1 = 0.5
  c.optim.b2 = 0.999

  c.eval.metrics = "fid_digits,kid_digits,pr_digits,dc_digits"
  c.eval.num_samples = 4000
  c.eval.best_metric = "fid_digits"

  variant = arg or "mnist5k"
  if variant not in VARIANTS:
    raise ValueError(f"unknown gan config variant {variant!r}: {', '.join(VARIANTS)}")
  VARIANTS[variant](c)
  return c


def mnist5k(c):
  """The default (above)."""


def tiny(c):
  """Every moving part in seconds, on mnist5k: tests and smoke runs."""
  c.model.ngf = c.model.ndf = 8
  c.model.z_dim = 16
  shrink_to_tiny(c, batch_size=8)
  c.steps_per_call = 1  # compiling dominates a tiny run; k > 1 is compiled k times on CPU
  c.eval.metrics = c.eval.best_metric = ""


def _resnet_tiny(c, arch: str):
  c.data.image_size = "32"  # mnist5k's 28x28 resized
  c.model.arch = arch
  c.model.z_dim = 16
  c.loss.kind = "hinge"
  c.loss.n_critic = 2
  shrink_to_tiny(c, batch_size=8)
  c.steps_per_call = 1  # compiling dominates a tiny run; k > 1 is compiled k times on CPU
  c.eval.metrics = c.eval.best_metric = ""


def sngan_resnet_tiny(c):
  """SNGAN's ResNet with 8 channels on mnist5k at 32x32, n_critic 2, 2 steps."""
  _resnet_tiny(c, "sngan")
  c.model.ngf = c.model.ndf = 8


def biggan_tiny(c):
  """Conditional BigGAN with 8-channel blocks on mnist5k at 32x32, n_critic 2, 2 steps."""
  _resnet_tiny(c, "biggan")
  c.model.conditional = True
  c.model.ngf, c.model.ndf = 2, 4  # G blocks 8 channels, D blocks 8
  c.model.shared_dim = 8


def mnist(c):
  """The full 60k MNIST, 10k steps (needs the TFDS dataset prepared or downloadable)."""
  c.data.name = "mnist"
  c.batch_size = 64
  c.num_steps = 10_000
  c.sample_every = c.checkpoint_every = c.eval_every = 1000
  c.eval.num_samples = 10_000


def _inception_eval(c, num_steps: int):
  """The reproductions' protocol: FID/KID on the FID Inception, 10k EMA samples vs the test set."""
  c.batch_size = 64
  c.num_steps = num_steps
  c.sample_every = c.checkpoint_every = c.eval_every = 5000
  c.eval.metrics, c.eval.best_metric, c.eval.num_samples = "fid,kid", "fid", 10_000


def cifar10(c):
  """DCGAN on CIFAR-10 (32x32x3), 50k steps, random flips."""
  c.data.name = "cifar10"
  c.data.random_flip = True
  _inception_eval(c, 50_000)


def celeb_a(c):
  """DCGAN on CelebA at 64x64 (central crop, resize), 50k steps: the pytorch/examples setup."""
  c.data.name = "celeb_a"
  c.data.image_size = "64"
  _inception_eval(c, 50_000)


def sngan(c):
  """CIFAR-10, DCGAN's network with SNGAN's spectral norm (no BN in D) and hinge loss: the
  SNGAN paper's "standard CNN" setting."""
  cifar10(c)
  c.model.spectral_norm = True
  c.model.d_norm = "none"
  c.loss.kind = "hinge"


def wgan_gp(c):
  """CIFAR-10, WGAN-GP: lambda 10, n_critic 5, Adam(1e-4, 0.5, 0.9), no BN in D."""
  cifar10(c)
  c.model.d_norm = "none"
  c.loss.kind = "wgan"
  c.loss.gp_weight = 10.0
  c.loss.n_critic = 5
  c.optim.g_lr = c.optim.d_lr = 1e-4
  c.optim.b2 = 0.9


def sngan_resnet(c):
  """CIFAR-10, SNGAN's ResNet as kwotsin/mimicry trains it: hinge, n_critic 5, Adam(2e-4, 0,
  0.9), batch 64, 100k G steps (500k D steps), no flips, no EMA (mimicry samples the raw G)."""
  c.data.name = "cifar10"
  _inception_eval(c, 500_000)
  c.model.arch = "sngan"
  c.model.z_dim, c.model.ngf, c.model.ndf = 128, 256, 128
  c.model.ema_decay = 0.0
  c.loss.kind = "hinge"
  c.loss.n_critic = 5
  c.optim.b1, c.optim.b2 = 0.0, 0.9


def biggan(c):
  """CIFAR-10, class-conditional BigGAN as PyTorch-StudioGAN's src/configs/CIFAR10/BigGAN.yaml:
  z 80 (4 chunks of 20), shared embedding 128, ngf = ndf = 96, self-attention at 16x16, hinge,
  n_critic 5, Adam(2e-4, 0.5, 0.999), batch 64, EMA 0.9999, flips, 100k G steps."""
  cifar10(c)
  c.num_steps = 500_000  # D steps
  c.model.arch = "biggan"
  c.model.conditional = True
  c.model.z_dim, c.model.ngf, c.model.ndf, c.model.shared_dim = 80, 96, 96, 128
  c.model.attention_res = 16
  c.model.ema_decay = 0.9999
  c.loss.kind = "hinge"
  c.loss.n_critic = 5


def biggan_diffaugment(c):
  """`biggan` with DiffAugment (color, translation, cutout); with `data.split='train[:20%]'`
  or `'train[:10%]'` the DiffAugment paper's data-limited settings."""
  biggan(c)
  c.augment.diffaugment = "color,translation,cutout"


VARIANTS = {f.__name__: f for f in (mnist5k, tiny, sngan_resnet_tiny, biggan_tiny, mnist, cifar10,
                                     celeb_a, sngan, wgan_gp, sngan_resnet, biggan,
                                     biggan_diffaugment)}
