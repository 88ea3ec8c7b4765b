"""Diffusion and flow objectives, and the samplers that integrate them, apart from any network.

The network is a function `net(x_in, noise_label, labels) -> F` (gen.models.unet.SongUNet); an
objective says what it feeds the network, what F is trained to predict, and how F becomes

  D(x; sigma)   EDM's denoiser, in EDM's sigma space: x = y + sigma n, y data, n ~ N(0, I),

so that EDM's samplers (Heun, Euler, stochastic) run every objective. The DDPM objective also
gives eps(x_t, t) for DDIM, and the flow objective the velocity v(x_t, t) for its ODE.

  edm   Karras et al. 2022 ("Elucidating the design space...", Table 1; NVlabs/edm
        training/networks.py EDMPrecond, training/loss.py EDMLoss): D = c_skip x + c_out F(c_in x,
        c_noise), ln sigma ~ N(P_mean, P_std^2), loss weight lambda(sigma) = 1 / c_out^2.
  ddpm  Ho et al. 2020: x_t = sqrt(abar_t) y + sqrt(1 - abar_t) eps over M = 1000 steps, F
        predicts eps, t uniform; abar from the linear beta schedule (1e-4 .. 0.02) or Nichol &
        Dhariwal 2021's cosine one. In sigma space x = x_t / sqrt(abar), sigma^2 = 1/abar - 1.
  flow  Flow matching / rectified flow (Lipman et al. 2023; Liu et al. 2023): x_t = (1 - t) y +
        t n, F predicts the velocity n - y = d x_t / dt, t uniform. sigma = t / (1 - t).

All samplers take the model as a plain function and are written with lax control flow, so one
jitted call draws a whole batch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

OBJECTIVES = ("edm", "ddpm", "flow")
DDPM_SCHEDULES = ("linear", "cosine")
SAMPLERS = ("heun", "euler", "stochastic", "ddim", "flow_euler", "flow_heun")
DDPM_STEPS = 1000  # M: Ho et al.'s number of noise levels
NOISE_LABEL_SCALE = 1000.0  # flow: the network sees 1000 t, on DDPM's label scale

Net = Callable[[jax.Array, jax.Array], jax.Array]  # (x_in [B, ...], noise_label [B]) -> F


def _per_example(v, x):
  """A [B] vector shaped to broadcast against x [B, ...]."""
  return jnp.reshape(v, (-1,) + (1,) * (x.ndim - 1))


# -- EDM ------------------------------------------------------------------------


def edm_preconditioning(sigma, sigma_data):
  """(c_skip, c_out, c_in, c_noise) of EDM's Table 1 for noise level sigma."""
  sd2, s2 = sigma_data**2, sigma**2
  return (sd2 / (s2 + sd2), sigma * sigma_data / jnp.sqrt(s2 + sd2), 1.0 / jnp.sqrt(s2 + sd2),
          jnp.log(sigma) / 4.0)


def edm_loss_weight(sigma, sigma_data):
  """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 = 1 / c_out^2: the
  weighted loss on D is the plain squared error of F against its target, whose variance is 1
  at every sigma when the data's standard deviation is sigma_data."""
  return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


# -- DDPM -------------------------------------------------------------------------


def ddpm_alpha_bars(schedule: str, steps: int = DDPM_STEPS) -> np.ndarray:
  """abar_t for t = 1..M (index 0..M-1), float64: Ho et al.'s linear betas 1e-4..0.02, or
  Nichol & Dhariwal's cosine abar(t) = f(t) / f(0), f(t) = cos^2((t/M + s) / (1 + s) pi/2),
  s = 0.008, with betas clipped at 0.999."""
  if schedule == "linear":
    betas = np.linspace(1e-4, 0.02, steps, dtype=np.float64)
  elif schedule == "cosine":
    s = 0.008
    f = np.cos((np.arange(steps + 1, dtype=np.float64) / steps + s) / (1 + s) * np.pi / 2) ** 2
    betas = np.minimum(1.0 - f[1:] / f[:-1], 0.999)
  else:
    raise ValueError(f"unknown DDPM schedule {schedule!r}")
  return np.cumprod(1.0 - betas)


# -- the objectives as one interface -----------------------------------------------


@dataclasses.dataclass(frozen=True)
class Objective:
  """One objective's training loss and its view as a denoiser. Settings that members may vary
  (sigma_data, P_mean, P_std) are passed in, not stored, so that they can be traced."""
  kind: str
  schedule: str = "linear"  # ddpm

  # sigma range of EDM's samplers for this objective
  @property
  def sigma_range(self) -> tuple[float, float]:
    if self.kind == "ddpm":
      s = self.ddpm_sigmas
      return float(s[0]), float(s[-1])
    return 0.002, 80.0

  @property
  def ddpm_sigmas(self) -> np.ndarray:
    return np.sqrt(1.0 / ddpm_alpha_bars(self.schedule) - 1.0)

  def loss(self, net: Net, y: jax.Array, key: jax.Array, sigma_data=0.5, p_mean=-1.2,
           p_std=1.2) -> jax.Array:
    """The per-example training loss (mean over dimensions) for data y [B, ...]."""
    k_level, k_noise = jax.random.split(key)
    n = jax.random.normal(k_noise, y.shape, y.dtype)
    b = y.shape[0]
    if self.kind == "edm":
      sigma = jnp.exp(p_mean + p_std * jax.random.normal(k_level, (b,), y.dtype))
      d = self.denoise(net, y + _per_example(sigma, y) * n, sigma, sigma_data)
      err = _per_example(edm_loss_weight(sigma, sigma_data), y) * (d - y) ** 2
    elif self.kind == "ddpm":
      t = jax.random.randint(k_level, (b,), 0, DDPM_STEPS)
      abar = _per_example(jnp.asarray(ddpm_alpha_bars(self.schedule), y.dtype)[t], y)
      x_t = jnp.sqrt(abar) * y + jnp.sqrt(1.0 - abar) * n
      err = (net(x_t, t.astype(y.dtype)) - n) ** 2
    elif self.kind == "flow":
      t = jax.random.uniform(k_level, (b,), y.dtype)
      x_t = (1.0 - _per_example(t, y)) * y + _per_example(t, y) * n
      err = (net(x_t, NOISE_LABEL_SCALE * t) - flow_target(y, n)) ** 2
    else:
      raise ValueError(f"unknown objective {self.kind!r}")
    return jnp.mean(err.reshape(b, -1), axis=1)

  def denoise(self, net: Net, x: jax.Array, sigma: jax.Array, sigma_data=0.5) -> jax.Array:
    """D(x; sigma) in sigma space, sigma [B] (or a scalar)."""
    sigma = jnp.broadcast_to(jnp.asarray(sigma, x.dtype), x.shape[:1])
    s = _per_example(sigma, x)
    if self.kind == "edm":
      c_skip, c_out, c_in, c_noise = edm_preconditioning(s, sigma_data)
      return c_skip * x + c_out * net(c_in * x, c_noise.reshape(-1))
    if self.kind == "ddpm":  # x_t = x / sqrt(1 + sigma^2); D = x - sigma eps
      return x - s * self.eps(net, x / jnp.sqrt(1.0 + s**2), self.ddpm_index(sigma))
    if self.kind == "flow":  # x_t = x / (1 + sigma), t = sigma / (1 + sigma); D = x_t - t v
      t = sigma / (1.0 + sigma)
      x_t = x / (1.0 + s)
      return x_t - _per_example(t, x) * self.velocity(net, x_t, t)
    raise ValueError(f"unknown objective {self.kind!r}")

  def ddpm_index(self, sigma: jax.Array) -> jax.Array:
    """The (fractional) DDPM step whose noise level is sigma: interpolated in log sigma."""
    log_s = np.log(self.ddpm_sigmas)
    return jnp.interp(jnp.log(sigma), jnp.asarray(log_s, sigma.dtype),
                      jnp.arange(DDPM_STEPS, dtype=sigma.dtype))

  def eps(self, net: Net, x_t: jax.Array, t: jax.Array) -> jax.Array:
    """DDPM: the predicted noise at step index t [B] (0..M-1, may be fractional)."""
    return net(x_t, jnp.asarray(t, x_t.dtype))

  def velocity(self, net: Net, x_t: jax.Array, t: jax.Array) -> jax.Array:
    """Flow: the predicted velocity d x_t / dt at time t [B] in [0, 1]."""
    return net(x_t, NOISE_LABEL_SCALE * jnp.asarray(t, x_t.dtype))


def flow_target(y, n):
  """The velocity of the linear interpolant x_t = (1 - t) y + t n: d x_t / dt = n - y."""
  return n - y


# -- guidance ---------------------------------------------------------------------------


def guided(conditional: jax.Array, unconditional: jax.Array, weight) -> jax.Array:
  """Classifier-free guidance (Ho & Salimans 2022): (1 + w) cond - w uncond. w = 0 is the
  conditional model; w = -1 the unconditional one. (In the 'scale' convention s = 1 + w of
  later papers, s = 1 is the conditional model.) Linear, so it applies equally to D, eps and v."""
  return conditional + weight * (conditional - unconditional)


# -- samplers ---------------------------------------------------------------------------


def edm_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> jax.Array:
  """EDM's time steps (Eq. 5): sigma_i = (smax^(1/rho) + i/(N-1) (smin^(1/rho) -
  smax^(1/rho)))^rho for i < N, and sigma_N = 0."""
  i = jnp.arange(steps, dtype=jnp.float32)
  inv = 1.0 / rho
  s = (sigma_max**inv + i / max(steps - 1, 1) * (sigma_min**inv - sigma_max**inv)) ** rho
  return jnp.concatenate([s, jnp.zeros((1,), jnp.float32)])


Denoiser = Callable[[jax.Array, jax.Array], jax.Array]  # (x, sigma scalar) -> D(x; sigma)


def euler(denoise: Denoiser, x: jax.Array, sigmas: jax.Array) -> jax.Array:
  """The probability-flow ODE dx/dsigma = (x - D(x; sigma)) / sigma by Euler steps, from
  x = sigmas[0] n to sigma = 0. NFE = len(sigmas) - 1."""
  def step(x, pair):
    s, s_next = pair
    return x + (s_next - s) * (x - denoise(x, s)) / s, None
  return jax.lax.scan(step, x, (sigmas[:-1], sigmas[1:]))[0]


def _heun_step(denoise, x_hat, s_hat, s_next):
  d = (x_hat - denoise(x_hat, s_hat)) / s_hat
  x_next = x_hat + (s_next - s_hat) * d

  def correct(x_next):
    d2 = (x_next - denoise(x_next, s_next)) / s_next
    return x_hat + (s_next - s_hat) * 0.5 * (d + d2)
  # EDM's Algorithm 1: the last step (to sigma = 0) is an Euler step.
  return jax.lax.cond(s_next > 0, correct, lambda x: x, x_next)


def heun(denoise: Denoiser, x: jax.Array, sigmas: jax.Array) -> jax.Array:
  """EDM's deterministic sampler (Algorithm 1): 2nd-order Heun steps, the last one Euler.
  NFE = 2 (len(sigmas) - 1) - 1."""
  def step(x, pair):
    s, s_next = pair
    return _heun_step(denoise, x, s, s_next), None
  return jax.lax.scan(step, x, (sigmas[:-1], sigmas[1:]))[0]


def stochastic(denoise: Denoiser, x: jax.Array, sigmas: jax.Array, key: jax.Array,
               s_churn: float = 0.0, s_min: float = 0.0, s_max: float = float("inf"),
               s_noise: float = 1.0) -> jax.Array:
  """EDM's stochastic sampler (Algorithm 2): at each sigma in [s_min, s_max] noise is added to
  raise it by gamma = min(s_churn / N, sqrt(2) - 1), then a Heun step. s_churn = 0 is `heun`."""
  n = sigmas.shape[0] - 1
  gamma = min(s_churn / n, math.sqrt(2.0) - 1.0)

  def step(x, inputs):
    s, s_next, k = inputs
    g = jnp.where((s >= s_min) & (s <= s_max), gamma, 0.0)
    s_hat = s * (1.0 + g)
    noise = jax.random.normal(k, x.shape, x.dtype) * s_noise
    x_hat = x + jnp.sqrt(jnp.maximum(s_hat**2 - s**2, 0.0)) * noise
    return _heun_step(denoise, x_hat, s_hat, s_next), None
  return jax.lax.scan(step, x, (sigmas[:-1], sigmas[1:], jax.random.split(key, n)))[0]


def ddim_steps(steps: int, total: int = DDPM_STEPS) -> np.ndarray:
  """DDIM's sub-sequence of DDPM steps, evenly spaced, from the last (M - 1) down to 0."""
  return np.round(np.linspace(total - 1, 0, steps)).astype(np.int32)


def ddim(eps: Callable[[jax.Array, jax.Array], jax.Array], x: jax.Array, alpha_bars: np.ndarray,
         steps: int) -> jax.Array:
  """DDIM (Song et al. 2021, eta = 0) from x_T ~ N(0, I) at step M - 1, for an eps-model
  eps(x_t, t): x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev) eps_hat, with abar = 1
  after the last step (so the result is x0_hat). NFE = steps."""
  ts = ddim_steps(steps, len(alpha_bars))
  abar = jnp.asarray(alpha_bars, jnp.float32)
  a_now = abar[ts]
  a_prev = jnp.concatenate([abar[ts[1:]], jnp.ones((1,), jnp.float32)])

  def step(x, inputs):
    t, a, a_p = inputs
    e = eps(x, t)
    x0 = (x - jnp.sqrt(1.0 - a) * e) / jnp.sqrt(a)
    return jnp.sqrt(a_p) * x0 + jnp.sqrt(1.0 - a_p) * e, None
  return jax.lax.scan(step, x, (jnp.asarray(ts), a_now, a_prev))[0]


def flow_ode(velocity: Callable[[jax.Array, jax.Array], jax.Array], x: jax.Array, steps: int,
             method: str = "euler") -> jax.Array:
  """The flow's ODE dx/dt = v(x, t) from x_1 ~ N(0, I) at t = 1 to t = 0 in `steps` equal
  steps, Euler (NFE = steps) or Heun (NFE = 2 steps)."""
  ts = jnp.linspace(1.0, 0.0, steps + 1, dtype=jnp.float32)

  def step(x, pair):
    t, t_next = pair
    h = t_next - t
    v = velocity(x, t)
    x_next = x + h * v
    if method == "heun":
      x_next = x + h * 0.5 * (v + velocity(x_next, t_next))
    return x_next, None
  return jax.lax.scan(step, x, (ts[:-1], ts[1:]))[0]


def nfe_to_steps(sampler: str, nfe: int) -> int:
  """The sampler's step count for `nfe` network evaluations; ValueError (with the nearest
  valid NFEs) where the sampler cannot spend exactly that many."""
  if sampler in ("heun", "stochastic"):  # 2 N - 1
    if nfe < 1 or nfe % 2 == 0:
      raise ValueError(f"{sampler} evaluates the network 2 x steps - 1 times: give an odd NFE "
                       f"(e.g. {max(nfe - 1, 1)} or {nfe + 1}), not {nfe}")
    return (nfe + 1) // 2
  if sampler == "flow_heun":  # 2 N
    if nfe < 2 or nfe % 2:
      raise ValueError(f"flow_heun evaluates the network twice per step: give an even NFE "
                       f"(e.g. {max(nfe - 1, 2)} or {nfe + 1}), not {nfe}")
    return nfe // 2
  if nfe < 1:
    raise ValueError(f"NFE must be positive, not {nfe}")
  return nfe
