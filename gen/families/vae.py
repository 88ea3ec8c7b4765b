"""The VAE family: Gaussian encoder, Bernoulli or Gaussian decoder, ELBO or IWAE training.

Objective (config section `objective`), for k = `train_k` samples z_i ~ q(z|x) (reparameterised):
  k = 1: the ELBO, E_q[log p(x|z)] - w KL(q(z|x) || p(z)), KL in closed form;
  k > 1: the IWAE bound, log (1/k) sum_i p(x|z_i) (p(z_i) / q(z_i|x))^w.
w = beta * min(1, step / kl_warmup_steps) is the beta-VAE weight with warm-up
(w = 1 gives the true bounds). Evaluation (`gen.metrics.likelihood`) always
uses w = 1.

Inputs: Bernoulli decoders see x dynamically binarised (x ~ Bernoulli(pixel
intensity), resampled every step from the step key); the continuous Gaussian
sees x dequantised, (k + u) / 256 with u ~ U[0, 1), and its nats are reported
on the 8-bit scale (+ log 256 per dimension), so all likelihoods compare.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

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
from gen.models.dcgan import layout
from gen.models.vae import ConvDecoder, ConvEncoder, EncoderDecoder, MLPDecoder, MLPEncoder
from gen.objectives import distributions as dist
from gen.train.state import ModelState


@dataclasses.dataclass(frozen=True)
class Likelihood:
  params_per_pixel: int
  log_prob: Callable[..., jax.Array]  # (x, decoder output, batch_dims) -> nats per example
  mean: Callable[[jax.Array], jax.Array]  # decoder output -> E[x | z], for pictures
  nats_per_dim: float = 0.0  # added to continuous densities to bound the 8-bit NLL


def _gaussian_params(out):
  mean, raw = jnp.split(out, 2, axis=-1)
  return mean, dist.MIN_LOG_SCALE + jax.nn.softplus(raw - dist.MIN_LOG_SCALE)


LIKELIHOODS = {
    "bernoulli": Likelihood(1, dist.bernoulli_log_prob, jax.nn.sigmoid),
    "discretized_gaussian": Likelihood(
        2, lambda x, out, bd: dist.discretized_normal_log_prob(x, *_gaussian_params(out), batch_dims=bd),
        lambda out: _gaussian_params(out)[0]),
    "gaussian": Likelihood(
        2, lambda x, out, bd: dist.normal_log_prob(x, *_gaussian_params(out), batch_dims=bd),
        lambda out: _gaussian_params(out)[0], nats_per_dim=math.log(256.0)),
}
MODELS = ("mlp", "conv")
SCHEDULES = ("constant", "iwae")


@flax.struct.dataclass
class VAEState:
  step: jax.Array
  key: jax.Array  # the run's base key (raw uint32); step keys are fold_in(key, step)
  vae: ModelState


def learning_rate(o, lr):
  """Constant `lr`, or the IWAE paper's: stage i = 0..stages-1 runs 3^i * stage_steps steps at
  lr * 10^(-i/7) (with stage_steps one epoch and 8 stages: 3,280 epochs)."""
  if o.schedule == "constant":
    return lr
  boundaries, end = {}, 0
  for i in range(o.stages - 1):
    end += 3**i * o.stage_steps
    boundaries[end] = 10.0**(-1.0 / 7.0)
  return optax.piecewise_constant_schedule(lr, boundaries)


@register("vae")
class VAE(base.Family, base.LatentSampler, base.LikelihoodModel):
  value_range = (0.0, 1.0)
  picture_examples = 32  # test images for reconstructions, interpolations and traversals
  latent_batch = 1000  # latents per compiled decoder call
  numeric_settings = ("optim.lr", "optim.b1", "optim.b2", "optim.eps", "objective.beta",
                      "objective.kl_warmup_steps")

  @classmethod
  def check_config(cls, config, info: DatasetInfo) -> None:
    m = config.model
    checks.one_of(config, "model.kind", MODELS)
    checks.one_of(config, "model.likelihood", LIKELIHOODS)
    if m.binarize and m.likelihood != "bernoulli":
      raise UserError(f"model.binarize=True needs model.likelihood='bernoulli', not {m.likelihood!r}")
    if m.kind == "conv":
      h, w, _ = info.image_shape
      layout(h if h == w else (h, w))
    checks.positive(config, "model.latents", "model.hidden_units", "model.hidden_layers",
                    "model.nf", "objective.train_k", "optim.lr", "optim.eps", "optim.stage_steps",
                    "optim.stages")
    checks.non_negative(config, "objective.beta", "objective.kl_warmup_steps")
    checks.in_unit_interval(config, "optim.b1", "optim.b2")
    checks.one_of(config, "optim.schedule", SCHEDULES)

  def __init__(self, config, info: DatasetInfo):
    super().__init__(config, info)
    m = config.model
    self.likelihood = LIKELIHOODS[m.likelihood]
    self.latent_dim = m.latents
    self.num_dims = int(np.prod(info.image_shape))
    n = self.likelihood.params_per_pixel
    if m.kind == "mlp":
      hidden = (m.hidden_units,) * m.hidden_layers
      self.model = EncoderDecoder(MLPEncoder(m.latents, hidden),
                                  MLPDecoder(info.image_shape, n, hidden))
    else:
      self.model = EncoderDecoder(ConvEncoder(m.latents, m.nf),
                                  ConvDecoder(info.image_shape, n, m.nf))
    self._encode = jax.jit(self.encode)
    self._decode_mean = jax.jit(lambda params, z: self.likelihood.mean(self.decode(params, z)))

  def optimizer(self) -> optax.GradientTransformation:
    """Adam from the current settings (a member's, when varied)."""
    o, s = self.config.optim, self.setting
    return optax.adam(learning_rate(o, s("optim.lr")), s("optim.b1"), s("optim.b2"), s("optim.eps"))

  # -- model ----------------------------------------------------------------

  def init_state(self, key: jax.Array) -> VAEState:
    kinit, kbase = jax.random.split(key)
    x = jnp.zeros((2,) + self.info.image_shape)
    variables = self.model.init(kinit, x, jnp.zeros((2, self.latent_dim)))
    return VAEState(step=jnp.zeros((), jnp.int32), key=jax.random.key_data(kbase),
                    vae=ModelState.create(variables, self.optimizer()))

  def encode(self, params, x):
    """q(z|x): (mean, log sigma), each [B, latents]."""
    return self.apply(self.model, {"params": params}, x, method=EncoderDecoder.encode)

  def decode(self, params, z):
    return self.apply(self.model, {"params": params}, z, method=EncoderDecoder.decode)

  def model_inputs(self, x: jax.Array, key: jax.Array) -> jax.Array:
    """Data in [0, 1] -> what the likelihood models: binarised, dequantised or as is."""
    if self.config.model.binarize:
      return jax.random.bernoulli(key, x).astype(x.dtype)
    if self.config.model.likelihood == "gaussian":
      return (jnp.round(x * 255.0) + jax.random.uniform(key, x.shape, x.dtype)) / 256.0
    return x

  def log_weights(self, params, x, key, k: int):
    """For k posterior samples per example: log p(x|z) and log q(z|x) - log p(z), each [k, B],
    plus q's (mean, log sigma). log p(x|z) is on the 8-bit scale (see module docstring)."""
    mean, log_scale = self.encode(params, x)
    z = mean + jnp.exp(log_scale) * jax.random.normal(key, (k,) + mean.shape, mean.dtype)
    out = self.decode(params, z.reshape((-1, self.latent_dim)))
    out = out.reshape((k, x.shape[0]) + out.shape[1:])
    log_px = (self.likelihood.log_prob(x[None], out, 2)
              - self.likelihood.nats_per_dim * self.num_dims)
    log_q_over_p = (dist.normal_log_prob(z, mean[None], log_scale[None], batch_dims=2)
                    - dist.standard_normal_log_prob(z, batch_dims=2))
    return log_px, log_q_over_p, (mean, log_scale)

  def log_importance_weights(self, state: VAEState, x, key, k: int) -> jax.Array:
    """log p(x, z_i) / q(z_i|x) for k samples z_i ~ q(z|x): [k, B]. x as from model_inputs."""
    log_px, log_q_over_p, _ = self.log_weights(state.vae.params, x, key, k)
    return log_px - log_q_over_p

  # -- training -------------------------------------------------------------

  def kl_weight(self, step):
    ramp = 1.0
    if self.active("objective.kl_warmup_steps"):  # 0 (no warm-up) in some member is allowed
      warm = self.setting("objective.kl_warmup_steps")
      ramp = jnp.where(warm > 0, jnp.minimum(1.0, step.astype(jnp.float32) / jnp.maximum(warm, 1)),
                       1.0)
    return self.setting("objective.beta") * ramp

  def update(self, state: VAEState, batch: dict, key: jax.Array) -> tuple[VAEState, dict]:
    k = self.config.objective.train_k
    key_x, key_z = jax.random.split(key)
    x = self.model_inputs(batch["image"], key_x)
    w = self.kl_weight(state.step)

    def loss_fn(params):
      log_px, log_q_over_p, (mean, log_scale) = self.log_weights(params, x, key_z, k)
      kl = dist.kl_normal_standard(mean, log_scale)
      if k == 1:  # the ELBO, with the KL in closed form
        neg_elbo = -log_px[0] + kl
        loss = jnp.mean(-log_px[0] + w * kl)
        metrics = {}
      else:
        neg_elbo = jnp.mean(log_q_over_p - log_px, axis=0)
        loss = -jnp.mean(dist.log_mean_exp(log_px - w * log_q_over_p))
        metrics = {"neg_iwae": -jnp.mean(dist.log_mean_exp(log_px - log_q_over_p))}
      metrics.update(loss=loss, neg_elbo=jnp.mean(neg_elbo), recon=-jnp.mean(log_px),
                     kl=jnp.mean(kl), kl_weight=jnp.asarray(w, jnp.float32))
      return loss, metrics

    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.vae.params)
    metrics["grad_norm"] = optax.global_norm(grads)
    return state.replace(vae=state.vae.apply_gradients(grads, tx=self.optimizer())), metrics

  # -- pictures and samples -------------------------------------------------

  def _fixed_key(self, salt: int) -> jax.Array:
    """The same key at every call (from the seed, not the run's key): comparable pictures."""
    return jax.random.fold_in(jax.random.key(self.config.seed), salt)

  def generate(self, state: VAEState, z: jax.Array, labels=None) -> jax.Array:
    """Decoder means E[x|z]: `sample` draws z ~ p(z) = N(0, I) (base.LatentSampler)."""
    return self.likelihood.mean(self.decode(state.vae.params, z))

  def pictures(self, state: VAEState, examples: np.ndarray) -> dict[str, np.ndarray]:
    """Reconstructions, prior samples, interpolations and latent traversals, as uint8 grids."""
    params = state.vae.params
    u8 = lambda x: images.to_uint8(x, self.value_range)
    x = self.model_inputs(jnp.asarray(examples), self._fixed_key(1))
    mean, log_scale = self._encode(params, x)
    recon = self._decode_mean(params, mean)
    n, cols = x.shape[0], 8
    rows = [u8(part[r:r + cols]) for r in range(0, n - n % cols, cols) for part in (x, recon)]
    out = {"reconstructions": images.grid(np.concatenate(rows), cols)}  # input row, output row

    out["samples"] = images.grid(self.sample(state, self._fixed_key(2), self.config.sample_grid)["images"])

    pairs, steps = max(1, min(8, n // 2)), 10  # rows: x_a, 10 points on the line from z_a to z_b, x_b
    t = jnp.linspace(0.0, 1.0, steps)[None, :, None]
    za, zb = mean[:pairs, None], mean[n - pairs:, None]
    line = self._decode_mean(params, (za + t * (zb - za)).reshape(-1, self.latent_dim))
    line = line.reshape((pairs, steps) + line.shape[1:])
    rows = jnp.concatenate([x[:pairs, None], line, x[n - pairs:, None]], axis=1)
    out["interpolations"] = images.grid(u8(rows.reshape((-1,) + rows.shape[2:])), steps + 2)

    # Rows: the latents the encoder uses most (largest mean KL over the examples); columns:
    # that latent set to -3..3 in the first example's posterior mean.
    m, s = np.asarray(mean, np.float64), np.asarray(log_scale, np.float64)
    kl = (0.5 * (m * m + np.exp(2.0 * s) - 1.0) - s).mean(axis=0)
    dims = np.argsort(-kl)[:min(8, self.latent_dim)]
    values = np.linspace(-3.0, 3.0, 9)
    z = np.repeat(np.asarray(mean[:1]), len(dims) * len(values), axis=0).reshape(len(dims), len(values), -1)
    z[np.arange(len(dims)), :, dims] = values
    out["traversals"] = images.grid(u8(self._decode_mean(params, z.reshape(-1, self.latent_dim))),
                                    len(values))
    return out
