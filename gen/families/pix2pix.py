"""The pix2pix family (Isola et al. 2017): paired translation with a conditional GAN.

One step, as the authors' pix2pix_model.py does it: G (a U-Net) translates the input x
into fake y'; D (a 70x70 PatchGAN fed [x, y] stacked on channels) is updated on
  0.5 (c(D(x, y), 1) + c(D(x, y'), 0))
then G, against the updated D, on
  c(D(x, y'), 1) + lambda |y' - y|_1               (lambda = 100)
where the criterion c is binary cross-entropy on the logits (loss.kind='ns', their 'vanilla')
or the mean squared error (loss.kind='lsgan'), as their GANLoss (gen.objectives.losses),
with Adam(2e-4, 0.5, 0.999) each, the learning rate constant then linearly decaying to 0
(the paper: 100 + 100 epochs). Dropout in G is its noise; batch norm uses batch statistics
in training and the running averages in `translate` (deterministic translations).

Batches are pairs stored side by side (A|B, pix2pix's format; see gen.families.streams.Paired):
{'A': {'image'}, 'B': {'image'}}; `direction` says which side is the input.
"""

from __future__ import annotations

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
from gen.families.streams import Paired
from gen.models.cyclegan import PatchDiscriminator, check_patch_size
from gen.models.pix2pix import UnetGenerator, auto_downs
from gen.objectives import losses
from gen.objectives.schedules import constant_then_linear
from gen.train.state import ModelState


@flax.struct.dataclass
class Pix2pixState:
  step: jax.Array
  key: jax.Array  # the run's base key (raw uint32); step keys are fold_in(key, step)
  g: ModelState  # input -> output
  d: ModelState  # (input, output) -> per-patch logits


@register("pix2pix")
class Pix2pix(base.Family, base.Translator):
  value_range = (-1.0, 1.0)
  streams = Paired()
  picture_examples = 8  # test pairs: input, translation, target
  numeric_settings = ("optim.lr", "optim.b1", "optim.b2", "loss.l1_weight")

  @classmethod
  def check_config(cls, config, info: DatasetInfo) -> None:
    checks.positive(config, "model.ngf", "model.ndf", "model.d_layers", "optim.lr")
    checks.non_negative(config, "model.num_downs", "model.dropout", "loss.l1_weight",
                        "optim.constant", "optim.decay")
    checks.in_unit_interval(config, "optim.b1", "optim.b2")
    checks.one_of(config, "optim.unit", ("steps", "epochs"))
    checks.one_of(config, "model.norm", ("batch", "instance"))
    checks.one_of(config, "loss.kind", ("ns", "lsgan"))
    checks.one_of(config, "direction", ("AtoB", "BtoA"))
    h, w, _ = info.image_shape
    check_patch_size(h, w, config.model.d_layers)
    if not config.model.dropout < 1:
      raise UserError(f"model.dropout={config.model.dropout} must be < 1")

  def __init__(self, config, info: DatasetInfo):
    super().__init__(config, info)
    m = config.model
    h, w, c2 = info.image_shape
    self.channels = c2 // 2
    self.directions = (config.direction,)
    self.source, self.target = ("A", "B") if config.direction == "AtoB" else ("B", "A")
    self.generator = UnetGenerator(self.channels, m.num_downs or auto_downs(h, w), m.ngf, m.norm,
                                   m.dropout)
    self.discriminator = PatchDiscriminator(m.ndf, m.d_layers, m.norm)
    self.steps_per_epoch = max(1, info.num_examples // max(1, config.batch_size))

  @property
  def domain_shape(self) -> tuple[int, int, int]:
    h, w, _ = self.info.image_shape
    return (h, w, self.channels)

  def optimizer(self) -> optax.GradientTransformation:
    o, s = self.config.optim, self.setting
    return optax.adam(constant_then_linear(o, self.steps_per_epoch, s("optim.lr")),
                      s("optim.b1"), s("optim.b2"))

  def init_state(self, key: jax.Array) -> Pix2pixState:
    k_g, k_d, k_drop, kbase = jax.random.split(key, 4)
    x = jnp.zeros((1,) + self.domain_shape)
    tx = self.optimizer()
    g = self.generator.init({"params": k_g, "dropout": k_drop}, x, train=False)
    d = self.discriminator.init(k_d, jnp.concatenate([x, x], -1), train=False)
    return Pix2pixState(step=jnp.zeros((), jnp.int32), key=jax.random.key_data(kbase),
                        g=ModelState.create(g, tx), d=ModelState.create(d, tx))

  def _g(self, params, batch_stats, x, train: bool, key=None):
    """(translation, new batch_stats) in training; the translation alone otherwise."""
    variables = {"params": params, "batch_stats": batch_stats}
    if not train:
      return self.apply(self.generator, variables, x, train=False)
    y, new = self.apply(self.generator, variables, x, train=True, rngs={"dropout": key},
                        mutable=["batch_stats"])
    return y, new["batch_stats"]

  def _d(self, params, batch_stats, x, y):
    logits, new = self.apply(self.discriminator, {"params": params, "batch_stats": batch_stats},
                             jnp.concatenate([x, y], -1), train=True, mutable=["batch_stats"])
    return logits, new["batch_stats"]

  def update(self, state: Pix2pixState, batch: dict, key: jax.Array):
    kind, l1_weight = self.config.loss.kind, self.setting("loss.l1_weight")
    x, y = batch[self.source]["image"], batch[self.target]["image"]
    tx = self.optimizer()

    # G's forward pass once; its gradient later through the pull-back, against the new D.
    fake, pull_back, g_stats = jax.vjp(
        lambda p: self._g(p, state.g.batch_stats, x, True, key), state.g.params, has_aux=True)

    def d_loss_fn(d_params):
      real_logits, stats = self._d(d_params, state.d.batch_stats, x, y)
      fake_logits, stats = self._d(d_params, stats, x, jax.lax.stop_gradient(fake))
      return losses.translation_d_loss(kind, real_logits, fake_logits), stats

    (d_loss, d_stats), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(state.d.params)
    d = state.d.apply_gradients(d_grads, tx, batch_stats=d_stats)

    def g_loss_fn(fake):
      logits, _ = self._d(d.params, d.batch_stats, x, fake)
      adv, l1 = losses.translation_g_loss(kind, logits), losses.l1(fake, y)
      return adv + l1_weight * l1, (adv, l1)

    (g_loss, (adv, l1)), d_fake = jax.value_and_grad(g_loss_fn, has_aux=True)(fake)
    (g_grads,) = pull_back(d_fake)
    g = state.g.apply_gradients(g_grads, tx, batch_stats=g_stats)
    metrics = {"d_loss": d_loss, "g_loss": g_loss, "g_adv": adv, "l1": l1,
               "g_grad_norm": optax.global_norm(g_grads),
               "d_grad_norm": optax.global_norm(d_grads)}
    return state.replace(g=g, d=d), metrics

  def translate_batch(self, state: Pix2pixState, x: jax.Array, direction: str) -> jax.Array:
    """Images in [-1, 1] of the input domain -> the output domain (no dropout, BN averages)."""
    if direction != self.config.direction:
      raise UserError(f"this pix2pix model translates {self.config.direction}, "
                             f"not {direction}")
    return self._g(state.g.params, state.g.batch_stats, x, False)

  def pictures(self, state: Pix2pixState, examples: dict) -> dict[str, np.ndarray]:
    """Rows of (input, translation, target) for the first test pairs."""
    x, y = jnp.asarray(examples[self.source]), jnp.asarray(examples[self.target])
    fake = self.jit_translate_batch(state, x, self.config.direction)
    rows = jnp.stack([x, fake, y], axis=1).reshape((-1,) + x.shape[1:])
    return {self.config.direction: images.grid(images.to_uint8(rows, self.value_range), 3 * 4)}
