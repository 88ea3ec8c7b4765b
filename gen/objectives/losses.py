"""Adversarial losses on discriminator logits, D's regularisers, and the translation losses.

Each loss is the batch mean. `D` below is the logit, `sigmoid(D)` the probability of "real"
where that reading applies.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gen.objectives import augment


@dataclasses.dataclass(frozen=True)
class AdversarialLoss:
  d: Callable[[jax.Array, jax.Array], jax.Array]  # (logits on real, logits on fake) -> D's loss
  g: Callable[[jax.Array], jax.Array]  # logits on fake -> G's loss


GAN_LOSSES = {
    # non-saturating: D: -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))); G: -log sigmoid(D(G(z)))
    "ns": AdversarialLoss(
        d=lambda real, fake: jnp.mean(jax.nn.softplus(-real)) + jnp.mean(jax.nn.softplus(fake)),
        g=lambda fake: jnp.mean(jax.nn.softplus(-fake))),
    "hinge": AdversarialLoss(
        d=lambda real, fake: jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake)),
        g=lambda fake: -jnp.mean(fake)),
    "wgan": AdversarialLoss(d=lambda real, fake: jnp.mean(fake) - jnp.mean(real),
                            g=lambda fake: -jnp.mean(fake)),
    # least squares with targets 1 (real) and 0 (fake)
    "lsgan": AdversarialLoss(
        d=lambda real, fake: 0.5 * jnp.mean((real - 1.0) ** 2) + 0.5 * jnp.mean(fake**2),
        g=lambda fake: 0.5 * jnp.mean((fake - 1.0) ** 2)),
}


def _input_grad_sq_norm(d: Callable[[jax.Array], jax.Array], x: jax.Array) -> jax.Array:
  """Per-example squared L2 norm of d(sum D)/dx."""
  grad = jax.grad(lambda x: jnp.sum(d(x)))(x)
  return jnp.sum(grad.reshape(grad.shape[0], -1) ** 2, axis=-1)


def gradient_penalty(d: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array,
                     key: jax.Array) -> jax.Array:
  """WGAN-GP (Gulrajani et al. 2017): E[(||grad D(x_hat)|| - 1)^2] on random interpolates."""
  eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
  x_hat = eps * real + (1.0 - eps) * fake
  norm = jnp.sqrt(_input_grad_sq_norm(d, x_hat) + 1e-12)
  return jnp.mean((norm - 1.0) ** 2)


def r1_penalty(d: Callable[[jax.Array], jax.Array], real: jax.Array) -> jax.Array:
  """R1 (Mescheder et al. 2018): E[||grad D(x)||^2] on real data; weight it by gamma / 2."""
  return jnp.mean(_input_grad_sq_norm(d, real))


@dataclasses.dataclass(frozen=True)
class CriticBatch:
  """What a D regulariser may look at: the critic (D's logits as a function of images, its
  collections frozen), this step's real and fake images, D's logits on them and a key.

  With augmentation on (gen.objectives.augment: DiffAugment, ADA) `real` and `fake` are the images before
  augmentation, `critic` is D after the augmentation with one draw of its own (so R1 and GP
  are taken through the augmentation, as stylegan2-ada and DiffAugment do), and the logits are
  those of D's loss, on its own augmented draws."""
  critic: Callable[[jax.Array], jax.Array]
  real: jax.Array
  fake: jax.Array
  real_logits: jax.Array
  fake_logits: jax.Array
  key: jax.Array


@dataclasses.dataclass(frozen=True)
class DRegularizer:
  """A term added to D's loss: `scale * weight * value`, weight = config.loss.<weight>.

  `penalty(batch, state, setting) -> (value, state)`, `setting(name)` the value of
  config.loss.<name> (a member's own, when varied; see gen.train.members). A regulariser with `init` keeps
  state (LeCam's averages): `init(loss_config)` is its first value, and it lives in the train
  state, so it is checkpointed and resume stays exact; without `init` the state is None.
  Active when the weight is > 0; logged as its name. A new
  regulariser is one more entry in D_REGULARIZERS: the GAN step adds every active one
  without further edits.
  """
  weight: str  # the config.loss field holding its weight
  penalty: Callable[[CriticBatch, Any, Any], tuple[jax.Array, Any]]
  scale: float = 1.0
  init: Callable[[Any], Any] | None = None


def stateless(fn: Callable[[CriticBatch], jax.Array]):
  """A penalty of the batch alone, as DRegularizer.penalty."""
  return lambda batch, state, setting: (fn(batch), state)


def lecam_penalty(batch: CriticBatch, ema: dict, decay: float) -> tuple[jax.Array, dict]:
  """LeCam (Tseng et al. 2021): mean(relu(D(x) - a_F)^2) + mean(relu(a_R - D(G(z)))^2).

  a_R, a_F are exponential moving averages (zero-debiased) of the mean logits on real and
  fake images, this step's included, as in the authors' google/lecam-gan
  (stylegan2/lecam_loss.py, decay 0.99). `ema` holds the raw averages and their count.
  """
  sg = jax.lax.stop_gradient
  count = ema["count"] + 1
  real = decay * ema["real"] + (1.0 - decay) * sg(jnp.mean(batch.real_logits))
  fake = decay * ema["fake"] + (1.0 - decay) * sg(jnp.mean(batch.fake_logits))
  debias = 1.0 - decay ** count.astype(jnp.float32)
  anchor_real, anchor_fake = real / debias, fake / debias
  value = (jnp.mean(jax.nn.relu(batch.real_logits - anchor_fake) ** 2)
           + jnp.mean(jax.nn.relu(anchor_real - batch.fake_logits) ** 2))
  return value, {"real": real, "fake": fake, "count": count}


def consistency_penalty(critic: Callable[[jax.Array], jax.Array], x: jax.Array,
                        key: jax.Array) -> jax.Array:
  """Balanced consistency regularisation's term (bCR, Zhao et al. 2021): mean over the batch
  of (D(x) - D(T(x)))^2, T = gen.objectives.augment.consistency_transform (a random x-flip and an integer
  translation within 1/8 of the size) drawn from `key`. Gradients flow through both D(x) and
  D(T(x)), as in the paper."""
  return jnp.mean((critic(x) - critic(augment.consistency_transform(x, key))) ** 2)


D_REGULARIZERS = {
    "gp": DRegularizer("gp_weight", stateless(
        lambda b: gradient_penalty(b.critic, b.real, b.fake, b.key))),
    "r1": DRegularizer("r1_gamma", stateless(lambda b: r1_penalty(b.critic, b.real)), scale=0.5),
    "lecam": DRegularizer(
        "lecam_weight", lambda b, ema, setting: lecam_penalty(b, ema, setting("lecam_decay")),
        init=lambda l: {"real": jnp.zeros(()), "fake": jnp.zeros(()),
                        "count": jnp.zeros((), jnp.int32)}),
    # bCR: lambda_real * (D(x) - D(T(x)))^2 + lambda_fake * (D(G(z)) - D(T(G(z))))^2
    "bcr_real": DRegularizer("bcr_real", stateless(
        lambda b: consistency_penalty(b.critic, b.real, jax.random.fold_in(b.key, 1)))),
    "bcr_fake": DRegularizer("bcr_fake", stateless(
        lambda b: consistency_penalty(b.critic, b.fake, jax.random.fold_in(b.key, 2)))),
}


# The translation families' GAN loss, as the authors' GANLoss (junyanz/pytorch-CycleGAN-and-pix2pix,
# models/networks.py): a criterion of D's logits against a target label, 1 (real) or 0 (fake):
# 'ns' (their 'vanilla') binary cross-entropy on the logits, 'lsgan' the mean squared error.
TRANSLATION_CRITERIA = {
    "ns": lambda logits, target: jnp.mean(jax.nn.softplus(-logits) if target else jax.nn.softplus(logits)),
    "lsgan": lambda logits, target: jnp.mean((logits - target) ** 2),
}


def translation_d_loss(kind: str, real: jax.Array, fake: jax.Array) -> jax.Array:
  """D's loss in CycleGAN and pix2pix: 0.5 (criterion(D(real), 1) + criterion(D(fake), 0))."""
  criterion = TRANSLATION_CRITERIA[kind]
  return 0.5 * (criterion(real, 1.0) + criterion(fake, 0.0))


def translation_g_loss(kind: str, fake: jax.Array) -> jax.Array:
  """G's adversarial loss in CycleGAN and pix2pix: criterion(D(G(x)), 1)."""
  return TRANSLATION_CRITERIA[kind](fake, 1.0)


def l1(a: jax.Array, b: jax.Array) -> jax.Array:
  """mean |a - b|: the cycle-consistency, identity and pix2pix L1 losses."""
  return jnp.mean(jnp.abs(a - b))
