"""The diffusion family: EDM, DDPM (eps-prediction) and flow matching on a DDPM++ U-Net, with
EDM's EMA, classifier-free guidance and five samplers (gen.objectives.diffusion).

Sampling is deterministic in the initial noise for every sampler but `stochastic`, whose churn
noise is drawn from that noise too: the family is a LatentSampler whose latents are the
initial noise (flattened), so `gen sample` and `gen interpolate` (a walk between two initial
noises) and every quality metric work as for the GAN. The truncation trick has no meaning here.
"""

from __future__ import annotations

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
from gen.models.unet import SongUNet
from gen.objectives import diffusion as obj
from gen.train.state import ModelState

SAMPLER_OBJECTIVES = {"heun": obj.OBJECTIVES, "euler": obj.OBJECTIVES,
                      "stochastic": obj.OBJECTIVES, "ddim": ("ddpm",),
                      "flow_euler": ("flow",), "flow_heun": ("flow",)}


@flax.struct.dataclass
class DiffusionState:
  step: jax.Array
  key: jax.Array  # the run's base key (raw uint32); step keys are fold_in(key, step)
  net: ModelState
  ema_params: Any  # EDM's EMA of the network (half-life in images): samples and evaluation


def parse_ints(text: str, what: str) -> tuple[int, ...]:
  try:
    return tuple(int(v) for v in str(text).split(",") if v.strip())
  except ValueError:
    raise UserError(f"{what}={text!r} must be comma-separated whole numbers, e.g. '1,2,2'") from None


def edm_ema(ema, params, halflife_kimg, rampup, batch_size: int, step: jax.Array):
  """EDM's EMA (training/training_loop.py): decay 0.5^(batch / half-life in images), the
  half-life ramped up to `rampup` x the images seen so far (0: no ramp)."""
  nimg = jnp.asarray(step, jnp.float32) * batch_size
  halflife = halflife_kimg * 1000.0
  if rampup:
    halflife = jnp.minimum(halflife, nimg * rampup)
  beta = 0.5 ** (batch_size / jnp.maximum(halflife, 1e-8))
  return optax.incremental_update(params, ema, 1.0 - beta)


@register("diffusion")
class Diffusion(base.Family, base.LatentSampler):
  value_range = (-1.0, 1.0)
  numeric_settings = ("optim.lr", "model.ema_halflife_kimg", "objective.sigma_data",
                      "objective.p_mean", "objective.p_std")
  sampling_settings = ("sample.guidance",)

  @classmethod
  def check_config(cls, config, info: DatasetInfo) -> None:
    m, o, s = config.model, config.objective, config.sample
    checks.one_of(config, "objective.kind", obj.OBJECTIVES)
    checks.one_of(config, "objective.schedule", obj.DDPM_SCHEDULES)
    checks.one_of(config, "sample.sampler", obj.SAMPLERS)
    checks.one_of(config, "model.embedding", ("positional", "fourier"))
    checks.positive(config, "optim.lr", "model.model_channels", "model.num_blocks",
                    "objective.sigma_data", "objective.p_std", "sample.nfe", "sample.rho",
                    "sample.batch")
    checks.non_negative(config, "model.ema_halflife_kimg", "model.ema_rampup",
                        "optim.rampup_kimg", "sample.s_churn", "sample.s_noise")
    checks.in_unit_interval(config, "model.dropout", "model.label_dropout", "optim.b1", "optim.b2")
    if o.kind not in SAMPLER_OBJECTIVES[s.sampler]:
      raise UserError(f"sample.sampler={s.sampler} needs objective.kind="
                      f"{' or '.join(SAMPLER_OBJECTIVES[s.sampler])}, not {o.kind}")
    try:
      obj.nfe_to_steps(s.sampler, s.nfe)
    except ValueError as e:
      raise UserError(f"sample.nfe: {e}") from None
    mult = parse_ints(m.channel_mult, "model.channel_mult")
    parse_ints(m.attn_resolutions, "model.attn_resolutions")
    h, w, _ = info.image_shape
    factor = 2 ** (len(mult) - 1)
    if not mult or h % factor or w % factor or h != w:
      raise UserError(f"model.channel_mult={m.channel_mult!r} halves the image {len(mult) - 1} "
                      f"times: a square image whose side divides by {factor} (data is {h}x{w})")
    if m.conditional and not info.num_classes:
      raise UserError(f"model.conditional=True needs class labels, dataset {info.name!r} has none")
    if s.guidance and not m.conditional:
      raise UserError("sample.guidance needs a class-conditional model (model.conditional=True)")
    if s.guidance and not m.label_dropout:
      raise UserError("sample.guidance needs an unconditional model too: train with "
                      "model.label_dropout > 0 (EDM/Ho & Salimans: 0.1)")

  def __init__(self, config, info: DatasetInfo):
    super().__init__(config, info)
    m = config.model
    self.num_classes = info.num_classes if m.conditional else 0
    self.latent_dim = int(np.prod(info.image_shape))
    self.objective = obj.Objective(config.objective.kind, config.objective.schedule)
    self.network = SongUNet(
        out_channels=info.image_shape[-1], label_dim=self.num_classes,
        model_channels=m.model_channels, channel_mult=parse_ints(m.channel_mult, "channel_mult"),
        num_blocks=m.num_blocks, attn_resolutions=parse_ints(m.attn_resolutions, "attn"),
        dropout=m.dropout, embedding=m.embedding)
    self.latent_batch = config.sample.batch

  # -- the network ----------------------------------------------------------

  def _one_hot(self, labels):
    return jax.nn.one_hot(labels, self.num_classes) if self.num_classes else None

  def net(self, params, labels=None, dropout_key=None):
    """(x_in, noise_label) -> F, for the objective; `labels` one-hot or None."""
    train = dropout_key is not None

    def f(x, noise_label):
      return self.apply(self.network, {"params": params}, x, noise_label, labels, train=train,
                        rngs={"dropout": dropout_key} if train else None)
    return f

  def objective_settings(self) -> dict:
    if self.objective.kind != "edm":
      return {}
    return {"sigma_data": self.setting("objective.sigma_data"),
            "p_mean": self.setting("objective.p_mean"), "p_std": self.setting("objective.p_std")}

  # -- state and step -------------------------------------------------------

  def init_state(self, key: jax.Array) -> DiffusionState:
    k_init, k_base = jax.random.split(key)
    x = jnp.zeros((1,) + self.info.image_shape)
    labels = self._one_hot(jnp.zeros((1,), jnp.int32))
    variables = self.network.init({"params": k_init}, x, jnp.zeros((1,)), labels)
    return DiffusionState(step=jnp.zeros((), jnp.int32), key=jax.random.key_data(k_base),
                          net=ModelState.create(variables, self.optimizer(jnp.zeros((), jnp.int32))),
                          ema_params=variables["params"])

  def optimizer(self, step) -> optax.GradientTransformation:
    """Adam with EDM's linear learning-rate warm-up over optim.rampup_kimg thousand images."""
    o = self.config.optim
    lr = self.setting("optim.lr")
    if o.rampup_kimg:
      nimg = jnp.asarray(step, jnp.float32) * self.config.batch_size
      lr = lr * jnp.minimum(nimg / (o.rampup_kimg * 1000.0), 1.0)
    return optax.adam(lr, o.b1, o.b2, eps=o.eps)

  def update(self, state: DiffusionState, batch: dict, key: jax.Array):
    k_loss, k_drop, k_label = jax.random.split(key, 3)
    y = batch["image"]
    labels = self._one_hot(batch["label"]) if self.num_classes else None
    if labels is not None and self.config.model.label_dropout:  # the unconditional model (CFG)
      keep = jax.random.bernoulli(k_label, 1.0 - self.config.model.label_dropout, (y.shape[0], 1))
      labels = labels * keep
    settings = self.objective_settings()

    def loss_fn(params):
      return jnp.mean(self.objective.loss(self.net(params, labels, k_drop), y, k_loss, **settings))

    loss, grads = jax.value_and_grad(loss_fn)(state.net.params)
    net = state.net.apply_gradients(grads, self.optimizer(state.step))
    ema = edm_ema(state.ema_params, net.params, self.setting("model.ema_halflife_kimg"),
                  self.config.model.ema_rampup, self.config.batch_size, state.step)
    return state.replace(net=net, ema_params=ema), {"loss": loss, "grad_norm": optax.global_norm(grads)}

  # -- sampling -------------------------------------------------------------

  def model_fn(self, params, labels, guidance):
    """The network as the objective's F with guidance folded in: (x_in, noise_label) -> F."""
    cond = self.net(params, labels)
    if not self.num_classes or (isinstance(guidance, (int, float)) and guidance == 0):
      return cond  # no unconditional pass to pay for
    uncond = self.net(params, jnp.zeros_like(labels))
    return lambda x, c: obj.guided(cond(x, c), uncond(x, c), guidance)

  def run_sampler(self, params, noise, labels, sampler: str, nfe: int, guidance=0.0,
                  key=None) -> jax.Array:
    """Images in [-1, 1] from unit Gaussian noise [B, H, W, C] with `sampler` at `nfe`
    network evaluations (one evaluation of a guided model runs the network twice)."""
    s = self.config.sample
    f = self.model_fn(params, labels, guidance)
    steps = obj.nfe_to_steps(sampler, nfe)
    settings = self.objective_settings()
    sigma_data = settings.get("sigma_data", 0.5)
    if sampler == "ddim":
      return obj.ddim(lambda x, t: self.objective.eps(f, x, jnp.full(x.shape[:1], t)), noise,
                      obj.ddpm_alpha_bars(self.objective.schedule), steps)
    if sampler in ("flow_euler", "flow_heun"):
      return obj.flow_ode(lambda x, t: self.objective.velocity(f, x, jnp.full(x.shape[:1], t)),
                          noise, steps, sampler.removeprefix("flow_"))
    lo, hi = self.objective.sigma_range
    sigmas = obj.edm_sigmas(steps, lo, hi, s.rho)
    denoise = lambda x, sigma: self.objective.denoise(f, x, sigma, sigma_data)
    x = noise * sigmas[0]
    if sampler == "euler":
      return obj.euler(denoise, x, sigmas)
    if sampler == "heun":
      return obj.heun(denoise, x, sigmas)
    return obj.stochastic(denoise, x, sigmas, key, s.s_churn, s.s_min, s.s_max, s.s_noise)

  def draw_latents(self, key, num, truncation=None):
    if truncation is not None:
      raise UserError("--truncation is a GAN's latent trick; diffusion samples start from "
                      "unit Gaussian noise (leave --truncation out)")
    return super().draw_latents(key, num)

  def generate(self, state: DiffusionState, z: jax.Array, labels=None) -> jax.Array:
    """The configured sampler from initial noise z [B, latent_dim] with the EMA network."""
    s = self.config.sample
    noise = z.reshape((-1,) + self.info.image_shape)
    # The stochastic sampler's churn noise is a function of the initial noise, so that a
    # latent gives one image.
    key = jax.random.fold_in(jax.random.key(self.config.eval.seed),
                             jax.lax.bitcast_convert_type(jnp.sum(z), jnp.uint32))
    out = self.run_sampler(state.ema_params, noise, self._one_hot(labels), s.sampler, s.nfe,
                           s.guidance, key)
    return jnp.clip(out, -1.0, 1.0)

  def pictures(self, state: DiffusionState, examples=None) -> dict[str, np.ndarray]:
    key = jax.random.fold_in(jax.random.key(self.config.seed), 0x5A3)
    return {"samples": images.grid(self.sample(state, key, self.config.sample_grid)["images"])}
