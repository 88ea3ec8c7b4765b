"""The GAN family: DCGAN, SNGAN or BigGAN G and D (model.arch), adversarial losses (a table),
EMA of G, n_critic, D regularisers and D-side augmentation (DiffAugment, ADA)."""

from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gen import images
from gen.configs import checks
from gen.data import DatasetInfo
from gen.errors import UserError
from gen.families import base, register
from gen.models import gan as networks
from gen.objectives import augment, losses
from gen.train.state import ModelState, ema_update


@flax.struct.dataclass
class GANState:
  step: jax.Array  # D updates done; G is updated every n_critic-th step
  key: jax.Array  # the run's base key (raw uint32); step keys are fold_in(key, step)
  g: ModelState
  d: ModelState
  ema_params: Any  # EMA of G's params: what samples and evaluation use
  # Optional parts (None when the config does not use them; then not in the checkpoint):
  d_reg: Any = None  # {name: state} of the active D regularisers that keep state (LeCam)
  ada: Any = None  # ADA's p and the sums behind r_t (gen.objectives.augment.ada_init)


@register("gan")
class GAN(base.Family, base.LatentSampler):
  value_range = (-1.0, 1.0)
  picture_examples = 0  # pictures need no data
  numeric_settings = ("optim.g_lr", "optim.d_lr", "optim.b1", "optim.b2", "model.ema_decay",
                      *(f"loss.{r.weight}" for r in losses.D_REGULARIZERS.values()),
                      "loss.lecam_decay", "augment.ada_target", "augment.ada_kimg")

  @classmethod
  def check_config(cls, config, info: DatasetInfo) -> None:
    networks.check(config, info.image_shape, info.name)
    if config.model.conditional and not info.num_classes:
      raise UserError(f"model.conditional=True needs class labels, dataset {info.name!r} has none")
    checks.one_of(config, "loss.kind", losses.GAN_LOSSES)
    checks.positive(config, "optim.g_lr", "optim.d_lr", "loss.n_critic")
    checks.in_unit_interval(config, "optim.b1", "optim.b2", "model.ema_decay", "loss.lecam_decay")
    checks.non_negative(config, *(f"loss.{r.weight}" for r in losses.D_REGULARIZERS.values()))
    augment.check_config(config, info)

  def __init__(self, config, info: DatasetInfo):
    super().__init__(config, info)
    self.num_classes = info.num_classes if config.model.conditional else 0
    self.latent_dim = config.model.z_dim
    # Spectral-norm state sits in batch_stats beside BN's: G's advances in training steps
    # (train=True, mutable) and stays put in `generate` (train=False), D's as update_stats says.
    self.generator, self.discriminator = networks.networks(config.model, info.image_shape,
                                                           self.num_classes)
    # The D regularisers this config turns on (weight > 0, or varied over members).
    self.regularizers = {name: r for name, r in losses.D_REGULARIZERS.items()
                         if self.active(f"loss.{r.weight}")}
    self.stateful = tuple(name for name, r in self.regularizers.items() if r.init)

  def optimizer(self, net: str) -> optax.GradientTransformation:
    """Adam for `net` ('g' or 'd'), from the current settings (a member's, when varied)."""
    return optax.adam(self.setting(f"optim.{net}_lr"), self.setting("optim.b1"),
                      self.setting("optim.b2"))

  # -- state ----------------------------------------------------------------

  def _labels(self, num: int):
    return jnp.arange(num, dtype=jnp.int32) % self.num_classes if self.num_classes else None

  def init_state(self, key: jax.Array) -> GANState:
    kg, kd, kbase = jax.random.split(key, 3)
    z = jnp.zeros((2, self.latent_dim))
    x = jnp.zeros((2,) + self.info.image_shape)
    g_vars = self.generator.init(kg, z, self._labels(2))
    d_vars = self.discriminator.init(kd, x, self._labels(2))
    d_reg = ({name: self.regularizers[name].init(self.config.loss) for name in self.stateful}
             if self.stateful else None)
    return GANState(step=jnp.zeros((), jnp.int32), key=jax.random.key_data(kbase),
                    g=ModelState.create(g_vars, self.optimizer("g")),
                    d=ModelState.create(d_vars, self.optimizer("d")),
                    ema_params=g_vars["params"], d_reg=d_reg,
                    ada=augment.ada_init(self.config.augment.ada_p) if self.augmentation.ada else None)

  # -- training -------------------------------------------------------------

  @functools.cached_property
  def augmentation(self) -> augment.DiscriminatorAugment:
    """What D sees: DiffAugment and ADA as config.augment turns them on (identity if off)."""
    return augment.DiscriminatorAugment.from_config(self.config)

  def _d(self, d_params, batch_stats, x, labels, update_stats=True):
    """D's logits and updated collections; BN in D always normalises with batch statistics."""
    return self.apply(self.discriminator, {"params": d_params, "batch_stats": batch_stats}, x,
                      labels, update_stats=update_stats, mutable=["batch_stats"])

  def update(self, state: GANState, batch: dict, key: jax.Array) -> tuple[GANState, dict]:
    l = self.config.loss
    adversarial_loss = losses.GAN_LOSSES[l.kind]
    loss_setting = lambda name: self.setting(f"loss.{name}")
    key_z, key_reg = jax.random.split(key)
    real = batch["image"]
    labels = batch.get("label") if self.num_classes else None
    z = jax.random.normal(key_z, (real.shape[0], self.latent_dim), real.dtype)
    # Augmentation of everything D sees, each call its own draw (keys folded in, so that the
    # other keys stay what they are without augmentation): D's loss on real, on fake, G's loss,
    # and the regularisers' critic.
    aug = self.augmentation
    p = state.ada["p"] if aug.ada else None
    aug_keys = (jax.random.split(jax.random.fold_in(key, 0xA06), 4) if aug.active
                else (None,) * 4)
    seen_as = lambda x, k: aug(x, k, p) if aug.active else x

    # One G forward serves both updates: D trains on `fake`, G's gradient flows back through g_vjp.
    def generate(g_params):
      fake, new = self.apply(self.generator, {"params": g_params,
                                              "batch_stats": state.g.batch_stats},
                             z, labels, train=True, mutable=["batch_stats"])
      return fake, new["batch_stats"]

    fake, g_vjp, g_stats = jax.vjp(generate, state.g.params, has_aux=True)

    def d_loss_fn(d_params):
      real_logits, new = self._d(d_params, state.d.batch_stats, seen_as(real, aug_keys[0]), labels)
      fake_logits, new = self._d(d_params, new["batch_stats"], seen_as(fake, aug_keys[1]), labels)
      loss = adversarial_loss.d(real_logits, fake_logits)
      metrics = {"d_loss": loss, "d_real": jnp.mean(real_logits), "d_fake": jnp.mean(fake_logits)}
      critic = lambda x: self._d(d_params, new["batch_stats"], seen_as(x, aug_keys[3]), labels,
                                 update_stats=False)[0]
      seen = losses.CriticBatch(critic, real, fake, real_logits, fake_logits, key_reg)
      reg_states = {}
      for name, reg in self.regularizers.items():
        metrics[name], reg_state = reg.penalty(
            seen, state.d_reg[name] if name in self.stateful else None, loss_setting)
        if name in self.stateful:
          reg_states[name] = reg_state
        loss += reg.scale * self.setting(f"loss.{reg.weight}") * metrics[name]
      return loss, (new["batch_stats"], metrics, reg_states, real_logits)

    (_, (d_stats, metrics, d_reg, real_logits)), d_grads = jax.value_and_grad(
        d_loss_fn, has_aux=True)(state.d.params)
    d = state.d.apply_gradients(d_grads, tx=self.optimizer("d"), batch_stats=d_stats)
    metrics["d_grad_norm"] = optax.global_norm(d_grads)

    def g_update(_):
      def adversarial(fake):
        logits, _ = self._d(d.params, d.batch_stats, seen_as(fake, aug_keys[2]), labels,
                            update_stats=False)
        return adversarial_loss.g(logits)
      g_loss, d_fake = jax.value_and_grad(adversarial)(fake)
      (g_grads,) = g_vjp(d_fake)
      g = state.g.apply_gradients(g_grads, tx=self.optimizer("g"), batch_stats=g_stats)
      ema = ema_update(state.ema_params, g.params, self.setting("model.ema_decay"),
                       state.step // l.n_critic)
      return g, ema, g_loss, optax.global_norm(g_grads)

    if l.n_critic == 1:
      g, ema, g_loss, g_norm = g_update(None)
      metrics.update(g_loss=g_loss, g_grad_norm=g_norm)
    else:  # G is updated on every n_critic-th step only: its metrics exist on those steps
      g_step = (state.step + 1) % l.n_critic == 0
      zero = jnp.zeros((), real.dtype)
      g, ema, g_loss, g_norm = jax.lax.cond(
          g_step, g_update, lambda _: (state.g, state.ema_params, zero, zero), None)
      metrics.update(g_loss=base.Sometimes(g_loss, g_step),
                     g_grad_norm=base.Sometimes(g_norm, g_step))
    new = state.replace(g=g, d=d, ema_params=ema, d_reg=d_reg if self.stateful else None)
    if aug.ada:  # ADA's heuristic: p follows r_t = E[sign(D(augmented real))] to its target
      interval = self.config.augment.ada_interval
      ada, r_t, adjusted = augment.ada_adjust(
          state.ada, real_logits, state.step, interval, self.setting("augment.ada_target"),
          self.setting("augment.ada_kimg"))
      new = new.replace(ada=ada)
      metrics["ada_p"] = ada["p"]  # after this step's adjustment
      if interval:
        metrics["ada_rt"] = base.Sometimes(r_t, adjusted)
    return new, metrics

  # -- sampling -------------------------------------------------------------

  def generate(self, state: GANState, z: jax.Array, labels=None) -> jax.Array:
    """The EMA generator in inference mode; images in [-1, 1]."""
    return self.apply(self.generator, {"params": state.ema_params,
                                       "batch_stats": state.g.batch_stats},
                      z, labels, train=False)

  def pictures(self, state: GANState, examples=None) -> dict[str, np.ndarray]:
    """PNG grids to log. The same noise every time (from the seed, not the run's key)."""
    key = jax.random.fold_in(jax.random.key(self.config.seed), 0x5A3)
    return {"samples": images.grid(self.sample(state, key, self.config.sample_grid)["images"])}
