"""VAE configs (Kingma & Welling 2014; the IWAE bound: Burda et al. 2016).

  python train_vae.py --workdir runs/vae
  gen evaluate --workdir runs/vae --metrics nll --num_importance 1000

Default: the IWAE paper's one-stochastic-layer MLP VAE (784-200-200-50, tanh, Bernoulli
decoder) on dynamically binarised mnist5k, the ELBO (k = 1), Adam(1e-3), batch 100, 12,000
steps; the test split's negative ELBO and importance-sampled NLL (K = 1000) at the end. Its
time and NLL on 2 CPU cores: docs/families.md (VAE). Variants are the functions below.
"""

import ml_collections

from gen.configs.common import shrink_to_tiny, trainer_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  # 12,000 steps: 300 epochs of mnist5k's 4,000 training digits; later, it overfits.
  c = trainer_config(family="vae", batch_size=100, num_steps=12_000, log_every=500,
                     sample_every=2000, checkpoint_every=2000, eval_every=4000)
  c.eval.metrics = "nll"

  c.model = ml_collections.ConfigDict()
  c.model.kind = "mlp"  # mlp (IWAE paper) | conv
  c.model.latents = 50
  c.model.hidden_units = 200  # mlp: units in each deterministic layer
  c.model.hidden_layers = 2  # mlp: deterministic layers in the encoder and in the decoder
  c.model.nf = 32  # conv: channels of the first conv; doubled at each stride-2 stage
  c.model.likelihood = "bernoulli"  # bernoulli | discretized_gaussian | gaussian
  c.model.binarize = True  # dynamic binarisation (bernoulli only): x ~ Bernoulli(intensity)

  # k = 1 is the ELBO, k > 1 the IWAE bound; beta and the warm-up weight the KL.
  c.objective = ml_collections.ConfigDict()
  c.objective.train_k = 1
  c.objective.beta = 1.0
  c.objective.kl_warmup_steps = 0  # KL weight ramps linearly from 0 to beta over this many steps

  c.optim = ml_collections.ConfigDict()
  c.optim.lr = 1e-3
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.eps = 1e-4  # the IWAE paper's Adam epsilon
  c.optim.schedule = "constant"  # constant | iwae (see learning_rate in gen/families/vae.py)
  c.optim.stage_steps = 3000  # iwae: steps in one epoch (60,000 / 20)
  c.optim.stages = 8  # iwae: stage i lasts 3^i epochs at lr * 10^(-i/7)

  variant = arg or "mnist5k"
  if variant not in VARIANTS:
    raise ValueError(f"unknown vae config variant {variant!r}: {', '.join(VARIANTS)}")
  VARIANTS[variant](c)
  return c


def mnist5k(c):
  """The default (above)."""


def tiny(c):
  """A 32-unit MLP VAE, 2 steps, K = 4: every moving part in seconds (tests, smoke runs)."""
  c.model.hidden_units, c.model.latents = 32, 4
  shrink_to_tiny(c, batch_size=20)
  c.steps_per_call = 1  # compiling dominates a tiny run; k > 1 is compiled k times on CPU
  c.eval.num_importance = 4
  c.eval.batch_size = 300  # 1,000 test digits: the last batch is padded


def conv(c):
  """The convolutional VAE on mnist5k."""
  c.model.kind = "conv"
  c.model.latents = 32


def mnist(c):
  """The IWAE paper's binarised-MNIST run: 60k MNIST, batch 20, Adam(0.9, 0.999, eps 1e-4),
  8 stages (stage i runs 3^i epochs at lr 1e-3 * 10^(-i/7): 3,280 epochs); the IWAE is
  objective.train_k=50. Burda et al.'s test NLL to expect: docs/reproductions.md."""
  c.data.name = "mnist"
  c.batch_size = 20
  c.optim.schedule = "iwae"
  c.num_steps = 3280 * c.optim.stage_steps
  c.log_every = 3000
  c.sample_every = c.checkpoint_every = c.eval_every = 300_000


def cifar10(c):
  """The convolutional VAE on CIFAR-10 (32x32x3), discretised Gaussian decoder; bits/dim is
  the figure to compare."""
  c.data.name = "cifar10"
  c.data.random_flip = True
  c.model.kind = "conv"
  c.model.latents = 128
  c.model.nf = 64
  c.model.likelihood = "discretized_gaussian"
  c.model.binarize = False
  c.batch_size = 64
  c.num_steps = 100_000
  c.sample_every = c.checkpoint_every = c.eval_every = 10_000
  c.eval.num_importance = 100


def celeb_a(c):
  """`cifar10`'s model on CelebA at 64x64."""
  cifar10(c)
  c.data.name = "celeb_a"
  c.data.image_size = "64"


VARIANTS = {f.__name__: f for f in (mnist5k, tiny, conv, mnist, cifar10, celeb_a)}
