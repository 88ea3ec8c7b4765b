"""The CycleGAN family (Zhu et al. 2017): two generators, two PatchGAN discriminators.

One step, as in the authors' code: G_AB and G_BA are updated on
  LSGAN adversarial (D_B(G_AB(a)) and D_A(G_BA(b)) towards 1)
  + lambda (|G_BA(G_AB(a)) - a| + |G_AB(G_BA(b)) - b|)               (cycle, L1)
  + identity * lambda (|G_AB(b) - b| + |G_BA(a) - a|)                (identity, L1)
then D_A and D_B on 0.5 (MSE(D(real), 1) + MSE(D(fake), 0)), the fakes drawn
through a 50-image history pool per domain (kept in the state). Adam(2e-4,
0.5, 0.999) with the learning rate constant, then decaying linearly to 0.

Batches are {'A': {'image': ...}, 'B': {'image': ...}}: the two domains'
splits (`trainA`, `trainB`) read independently, so unpaired.
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
from gen.families.streams import Domains
from gen.models.cyclegan import PatchDiscriminator, ResnetGenerator, check_patch_size
from gen.objectives import losses
from gen.objectives.image_pool import ImagePool
from gen.objectives.schedules import constant_then_linear
from gen.train.state import ModelState


@flax.struct.dataclass
class CycleGANState:
  step: jax.Array
  key: jax.Array  # the run's base key (raw uint32); step keys are fold_in(key, step)
  g_ab: ModelState  # A -> B
  g_ba: ModelState  # B -> A
  d_a: ModelState  # real A vs G_BA(b)
  d_b: ModelState  # real B vs G_AB(a)
  pool_a: ImagePool  # earlier fakes of domain A, for D_A
  pool_b: ImagePool


@register("cyclegan")
class CycleGAN(base.Family, base.Translator):
  value_range = (-1.0, 1.0)
  streams = Domains(("A", "B"))  # the trainer reads `<split>A` and `<split>B`
  picture_examples = 8  # test images per domain for the A -> B -> A and B -> A -> B grids
  numeric_settings = ("optim.lr", "optim.b1", "optim.b2", "loss.cycle_weight",
                      "loss.identity_weight")

  @classmethod
  def check_config(cls, config, info: DatasetInfo) -> None:
    m = config.model
    h, w, _ = info.image_shape
    if h % 4 or w % 4:
      raise UserError(f"the ResNet generator needs image sides divisible by 4, {info.name!r} has "
                      f"{h}x{w}: set --config.data.image_size")
    check_patch_size(h, w, m.d_layers)
    checks.positive(config, "model.ngf", "model.ndf", "model.d_layers", "optim.lr")
    checks.non_negative(config, "model.blocks", "loss.cycle_weight", "loss.identity_weight",
                        "pool.size", "optim.constant", "optim.decay")
    checks.in_unit_interval(config, "optim.b1", "optim.b2")
    checks.one_of(config, "optim.unit", ("steps", "epochs"))

  def __init__(self, config, info: DatasetInfo):
    super().__init__(config, info)
    m = config.model
    channels = info.image_shape[-1]
    blocks = m.blocks or (9 if min(info.image_shape[:2]) >= 256 else 6)
    self.generator = ResnetGenerator(channels, m.ngf, blocks)
    self.discriminator = PatchDiscriminator(m.ndf, m.d_layers)
    self.steps_per_epoch = max(1, info.num_examples // max(1, config.batch_size))

  def optimizer(self) -> optax.GradientTransformation:
    """Adam with the lr schedule, from the current settings (a member's, when varied)."""
    o, s = self.config.optim, self.setting
    return optax.adam(constant_then_linear(o, self.steps_per_epoch, s("optim.lr")), s("optim.b1"),
                      s("optim.b2"))

  # -- state ----------------------------------------------------------------

  def init_state(self, key: jax.Array) -> CycleGANState:
    k_ab, k_ba, k_da, k_db, kbase = jax.random.split(key, 5)
    x = jnp.zeros((1,) + self.info.image_shape)
    tx = self.optimizer()
    g = lambda k: ModelState.create(self.generator.init(k, x), tx)
    d = lambda k: ModelState.create(self.discriminator.init(k, x), tx)
    pool = ImagePool.create(self.config.pool.size, self.info.image_shape)
    return CycleGANState(step=jnp.zeros((), jnp.int32), key=jax.random.key_data(kbase),
                         g_ab=g(k_ab), g_ba=g(k_ba), d_a=d(k_da), d_b=d(k_db),
                         pool_a=pool, pool_b=pool)

  # -- training -------------------------------------------------------------

  def update(self, state: CycleGANState, batch: dict, key: jax.Array) -> tuple[CycleGANState, dict]:
    cycle_weight, identity_weight = self.setting("loss.cycle_weight"), self.setting("loss.identity_weight")
    key_a, key_b = jax.random.split(key)
    real_a, real_b = batch["A"]["image"], batch["B"]["image"]
    G = lambda params, x: self.apply(self.generator, {"params": params}, x)
    D = lambda params, x: self.apply(self.discriminator, {"params": params}, x)

    def g_loss_fn(g_params):
      p_ab, p_ba = g_params
      fake_b, fake_a = G(p_ab, real_a), G(p_ba, real_b)
      m = {"g_adv_ab": losses.translation_g_loss("lsgan", D(state.d_b.params, fake_b)),
           "g_adv_ba": losses.translation_g_loss("lsgan", D(state.d_a.params, fake_a)),
           "cycle_a": losses.l1(G(p_ba, fake_b), real_a),
           "cycle_b": losses.l1(G(p_ab, fake_a), real_b)}
      loss = m["g_adv_ab"] + m["g_adv_ba"] + cycle_weight * (m["cycle_a"] + m["cycle_b"])
      if self.active("loss.identity_weight"):
        m["idt_a"] = losses.l1(G(p_ba, real_a), real_a)  # G_BA leaves A images alone
        m["idt_b"] = losses.l1(G(p_ab, real_b), real_b)
        loss += identity_weight * cycle_weight * (m["idt_a"] + m["idt_b"])
      m["g_loss"] = loss
      return loss, (m, fake_a, fake_b)

    (_, (metrics, fake_a, fake_b)), (grad_ab, grad_ba) = jax.value_and_grad(
        g_loss_fn, has_aux=True)((state.g_ab.params, state.g_ba.params))

    pool_a, shown_a = state.pool_a.query(jax.lax.stop_gradient(fake_a), key_a)
    pool_b, shown_b = state.pool_b.query(jax.lax.stop_gradient(fake_b), key_b)

    def d_loss_fn(d_params, real, fake):
      return losses.translation_d_loss("lsgan", D(d_params, real), D(d_params, fake))

    metrics["d_a"], grad_da = jax.value_and_grad(d_loss_fn)(state.d_a.params, real_a, shown_a)
    metrics["d_b"], grad_db = jax.value_and_grad(d_loss_fn)(state.d_b.params, real_b, shown_b)
    metrics["g_grad_norm"] = optax.global_norm((grad_ab, grad_ba))
    metrics["d_grad_norm"] = optax.global_norm((grad_da, grad_db))
    tx = self.optimizer()
    return state.replace(
        g_ab=state.g_ab.apply_gradients(grad_ab, tx), g_ba=state.g_ba.apply_gradients(grad_ba, tx),
        d_a=state.d_a.apply_gradients(grad_da, tx), d_b=state.d_b.apply_gradients(grad_db, tx),
        pool_a=pool_a, pool_b=pool_b), metrics

  # -- translation ----------------------------------------------------------

  def translate_batch(self, state: CycleGANState, x: jax.Array, direction: str) -> jax.Array:
    """Images in [-1, 1] of the source domain -> the other domain."""
    g = state.g_ab if direction == "AtoB" else state.g_ba
    return self.apply(self.generator, {"params": g.params}, x)

  def pictures(self, state: CycleGANState, examples: dict) -> dict[str, np.ndarray]:
    """Rows of (real, translated, translated back): A -> B -> A and B -> A -> B."""
    out = {}
    for name, src, there, back in (("AtoBtoA", "A", "AtoB", "BtoA"), ("BtoAtoB", "B", "BtoA", "AtoB")):
      x = jnp.asarray(examples[src])
      y = self.jit_translate_batch(state, x, there)
      z = self.jit_translate_batch(state, y, back)
      rows = jnp.stack([x, y, z], axis=1).reshape((-1,) + x.shape[1:])
      out[name] = images.grid(images.to_uint8(rows, self.value_range), 3 * 4)
    return out
