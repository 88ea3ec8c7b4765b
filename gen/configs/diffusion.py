"""Diffusion and flow configs: EDM (Karras et al. 2022), DDPM (Ho et al. 2020) and rectified
flow (Liu et al. 2023) on EDM's DDPM++ U-Net, one family (docs/diffusion.md).

  python train_diffusion.py --workdir runs/diffusion                      # the default below
  python train_diffusion.py --workdir runs/x --config=gen/configs/diffusion.py:VARIANT
  gen sample --workdir runs/diffusion --num 64 --out s.npz [--nfe 35] [--sampler euler]

Default: EDM (sigma_data 0.5) on mnist5k (28x28x1) with ln sigma ~ N(0, 1.2^2) in training
(EDM's CIFAR-10 P_mean is -1.2: at this budget digits need the higher noise levels), an
8-channel DDPM++ U-Net at 28, 14 and 7 pixels (multipliers 1, 2, 4; attention at 7), Adam(2e-3)
warmed up over 0.5 kimg, EDM's EMA (half-life 2 kimg), batch 32, 1,400 steps (about the default
GAN's training time); samples by EDM's Heun sampler at 17 network evaluations; FID-digits of
4,000 EMA samples against the test digits at the end. Its time and FID on 2 CPU cores against
the GAN's, and how these settings were chosen: docs/diffusion.md.
"""

import ml_collections

from gen.configs.common import shrink_to_tiny, trainer_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = trainer_config(family="diffusion", batch_size=32, num_steps=1400, log_every=100,
                     sample_every=700, checkpoint_every=700, eval_every=0)

  c.model = ml_collections.ConfigDict()
  c.model.model_channels = 8  # channels at the first resolution
  c.model.channel_mult = "1,2,4"  # per resolution (each halves H and W after the first)
  c.model.num_blocks = 1  # residual blocks per resolution
  c.model.attn_resolutions = "7"  # resolutions (pixels) with self-attention
  c.model.dropout = 0.0
  c.model.embedding = "positional"  # positional (DDPM++) | fourier (NCSN++)
  c.model.conditional = False  # class labels (one-hot) into the embedding
  c.model.label_dropout = 0.0  # conditional: labels dropped this often (classifier-free guidance)
  c.model.ema_halflife_kimg = 2.0  # EDM's EMA half-life, in thousands of images (CIFAR-10: 500)
  c.model.ema_rampup = 0.05  # the half-life is at most this x the images seen (0: no ramp)

  c.objective = ml_collections.ConfigDict()
  c.objective.kind = "edm"  # edm | ddpm (eps-prediction) | flow (flow matching / rectified flow)
  c.objective.sigma_data = 0.5  # edm: the data's standard deviation
  c.objective.p_mean = 0.0  # edm: ln sigma ~ N(p_mean, p_std^2) in training
  c.objective.p_std = 1.2
  c.objective.schedule = "linear"  # ddpm: linear | cosine

  c.sample = ml_collections.ConfigDict()
  c.sample.sampler = "heun"  # heun | euler | stochastic (EDM) | ddim (ddpm) | flow_euler | flow_heun
  c.sample.nfe = 17  # network evaluations per sample (heun, stochastic: odd)
  c.sample.rho = 7.0  # EDM's sigma schedule exponent
  c.sample.s_churn = 0.0  # stochastic: EDM's S_churn, S_min, S_max, S_noise
  c.sample.s_min = 0.0
  c.sample.s_max = float("inf")
  c.sample.s_noise = 1.0
  c.sample.guidance = 0.0  # classifier-free guidance weight w: (1 + w) cond - w uncond
  c.sample.batch = 500  # samples per compiled sampler call

  c.optim = ml_collections.ConfigDict()
  c.optim.lr = 2e-3
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.eps = 1e-8
  c.optim.rampup_kimg = 0.5  # learning rate ramps linearly from 0 over this many kimg

  c.eval.metrics = "fid_digits"
  c.eval.num_samples = 4000
  # XLA:CPU compiles each step of a call (and each member's, members being a loop on CPU): a
  # U-Net's step takes tens of seconds, 10 x 3 members of it many minutes, for little gain.
  c.steps_per_call = 1

  variant = arg or "mnist5k"
  if variant not in VARIANTS:
    raise ValueError(f"unknown diffusion config variant {variant!r}: {', '.join(VARIANTS)}")
  VARIANTS[variant](c)
  return c


def mnist5k(c):
  """The default (above)."""


def tiny(c):
  """An 8-channel U-Net of one resolution (with attention), 2 steps, 3-NFE sampling: every
  moving part in seconds (tests); a second resolution would double its compile time."""
  c.model.model_channels = 8
  c.model.channel_mult = "1"
  c.model.attn_resolutions = "28"
  c.model.dropout = 0.1
  shrink_to_tiny(c, batch_size=8)
  c.steps_per_call = 1
  c.sample.nfe = 3
  c.sample.batch = 4
  c.eval.metrics = ""


def _cifar10(c, steps: int):
  c.data.name = "cifar10"
  c.data.random_flip = True
  c.batch_size = 128
  c.num_steps = steps
  c.log_every = 1000
  c.sample_every = c.checkpoint_every = c.eval_every = 20_000
  c.eval.metrics, c.eval.num_samples = "fid", 50_000
  c.sample.batch = 250


def cifar10_edm(c):
  """EDM's CIFAR-10 DDPM++ (NVlabs/edm train.py --arch=ddpmpp --precond=edm): 128 channels,
  multipliers 2,2,2, 4 blocks, attention at 16, dropout 0.13, Adam(1e-3) warmed up over 10 Mimg,
  EMA half-life 500 kimg, batch 512, 200 Mimg; Heun at 35 NFE. EDM reports FID 1.97
  (unconditional; Karras et al. 2022, Table 2; their runs also use their geometric augmentation,
  which gen has not). One GPU-week class run:
    python train_diffusion.py --workdir runs/edm --config=gen/configs/diffusion.py:cifar10_edm"""
  _cifar10(c, 200_000_000 // 512)
  c.batch_size = 512
  c.model.model_channels, c.model.channel_mult = 128, "2,2,2"
  c.model.num_blocks, c.model.attn_resolutions, c.model.dropout = 4, "16", 0.13
  c.model.ema_halflife_kimg = 500.0
  c.objective.p_mean = -1.2
  c.optim.lr, c.optim.rampup_kimg = 1e-3, 10_000.0
  c.sample.nfe = 35


def cifar10_edm_cond(c):
  """cifar10_edm, class-conditional (EDM: --cond=1): FID 1.79 (Karras et al. 2022, Table 2)."""
  cifar10_edm(c)
  c.model.conditional = True


def cifar10_ddpm(c):
  """DDPM (Ho et al. 2020) on CIFAR-10: eps-prediction, linear betas 1e-4..0.02 over 1000
  steps, their U-Net's widths (128 channels, multipliers 1,2,2,2, 2 blocks, attention at 16)
  in DDPM++ blocks, dropout 0.1, Adam(2e-4) with a 5,000-step warm-up, batch 128, 800k steps, EMA 0.9999
  (a half-life of 0.9 Mimg at batch 128). Ho et al. report FID 3.17 with the 1000-step ancestral
  sampler; here DDIM at 100 NFE (Song et al. 2021 report 4.16 for DDIM at 100 steps):
    python train_diffusion.py --workdir runs/ddpm --config=gen/configs/diffusion.py:cifar10_ddpm"""
  _cifar10(c, 800_000)
  c.objective.kind = "ddpm"
  c.model.model_channels, c.model.channel_mult = 128, "1,2,2,2"
  c.model.num_blocks, c.model.attn_resolutions, c.model.dropout = 2, "16", 0.1
  c.model.ema_halflife_kimg = 887.0  # 128 * ln 0.5 / ln 0.9999 images
  c.model.ema_rampup = 0.0
  c.optim.lr, c.optim.rampup_kimg = 2e-4, 5000 * 128 / 1000
  c.sample.sampler, c.sample.nfe = "ddim", 100


def cifar10_flow(c):
  """Rectified flow (Liu et al. 2023) on CIFAR-10 as gnobitab/RectifiedFlow's
  configs/rectified_flow/cifar10_rf_gaussian_ddpmpp.py: the linear interpolant from Gaussian
  noise, velocity target, t ~ U(0, 1); a DDPM++ U-Net (128 channels, multipliers 1,2,2,2, 4
  blocks, attention at 16, dropout 0.15); Adam(2e-4) with a 5,000-step warm-up, batch 128,
  1.3M steps, EMA 0.999999 per step (a half-life of 88.7 Mimg at batch 128). It samples with
  an adaptive RK45 solver, for which Liu et al. report FID 2.58 (1-rectified flow, ~127 NFE);
  here the flow's Heun ODE at 100 NFE:
    python train_diffusion.py --workdir runs/flow --config=gen/configs/diffusion.py:cifar10_flow"""
  _cifar10(c, 1_300_000)
  c.objective.kind = "flow"
  c.model.model_channels, c.model.channel_mult = 128, "1,2,2,2"
  c.model.num_blocks, c.model.attn_resolutions, c.model.dropout = 4, "16", 0.15
  c.model.ema_halflife_kimg = 88_723.0  # 128 * ln 0.5 / ln 0.999999 images
  c.model.ema_rampup = 0.0
  c.optim.lr, c.optim.rampup_kimg = 2e-4, 5000 * 128 / 1000
  c.sample.sampler, c.sample.nfe = "flow_heun", 100


VARIANTS = {f.__name__: f for f in (mnist5k, tiny, cifar10_edm, cifar10_edm_cond, cifar10_ddpm,
                                     cifar10_flow)}
