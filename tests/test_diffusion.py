"""The diffusion family: EDM's preconditioning and loss weight, the samplers driven by the exact
denoiser of Gaussian data, the flow target, guidance, the U-Net's parameter count against EDM's,
and the family through the trainer and the tools."""

import functools
import itertools
import json
import os
import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_same_training, metrics_rows, run

from gen.configs import diffusion as configs
from gen.data import DatasetInfo
from gen.families.diffusion import Diffusion
from gen.models.unet import SongUNet, num_params
from gen.objectives import diffusion as obj
from gen.runs import run_dir
from gen.train import train

TINY = ["--config=gen/configs/diffusion.py:tiny"]
INFO = DatasetInfo(name="mnist5k", image_shape=(28, 28, 1), num_classes=10, num_examples=4000)

# -- EDM's preconditioning and loss weight ------------------------------------------------


def test_edm_preconditioning_is_the_papers_table_1():
  sigma = np.array([0.002, 0.05, 0.5, 1.0, 7.0, 80.0])
  for sd in (0.5, 1.0):
    c_skip, c_out, c_in, c_noise = map(np.asarray, obj.edm_preconditioning(jnp.asarray(sigma), sd))
    np.testing.assert_allclose(c_skip, sd**2 / (sigma**2 + sd**2), rtol=1e-6)
    np.testing.assert_allclose(c_out, sigma * sd / np.sqrt(sd**2 + sigma**2), rtol=1e-6)
    np.testing.assert_allclose(c_in, 1 / np.sqrt(sigma**2 + sd**2), rtol=1e-6)
    np.testing.assert_allclose(c_noise, np.log(sigma) / 4, rtol=1e-6)
    np.testing.assert_allclose(obj.edm_loss_weight(sigma, sd), (sigma**2 + sd**2) / (sigma * sd)**2,
                               rtol=1e-6)


def test_edm_loss_weight_gives_every_noise_level_unit_expected_loss():
  """EDM's point (Sec. 5, 'Loss weighting'): with lambda = 1/c_out^2, the untrained network
  (F = 0, D = c_skip x) has expected weighted loss 1 per dimension at every sigma, for data of
  standard deviation sigma_data: E[lambda (c_skip (y + sigma n) - y)^2] = lambda (sigma^2
  sigma_data^2 / (sigma^2 + sigma_data^2)) = 1. Each mean is over N squared Gaussians (variance
  2 per term): 6 standard errors is 6 sqrt(2 / N)."""
  sd, n = 0.5, 200_000
  zero = lambda x, c: jnp.zeros_like(x)
  edm = obj.Objective("edm")
  ky, kn = jax.random.split(jax.random.key(0))
  y = sd * jax.random.normal(ky, (n, 1))
  noise = jax.random.normal(kn, (n, 1))
  for sigma in (0.002, 0.1, 0.5, 3.0, 80.0):
    d = edm.denoise(zero, y + sigma * noise, jnp.float32(sigma), sd)
    loss = float(jnp.mean(obj.edm_loss_weight(sigma, sd) * (d - y) ** 2))
    assert abs(loss - 1.0) < 6 * np.sqrt(2 / n), (sigma, loss)
  # The training loss, over its log-normal sigmas, has the same expectation.
  per_example = edm.loss(zero, y.reshape(-1, 4, 1, 1)[:40_000], jax.random.key(1), sigma_data=sd)
  assert abs(float(jnp.mean(per_example)) - 1.0) < 6 * np.sqrt(2 / 160_000)


def test_flow_target_is_the_interpolants_derivative():
  ky, kn, kt = jax.random.split(jax.random.key(0), 3)
  y, n = jax.random.normal(ky, (5, 4, 4, 1)), jax.random.normal(kn, (5, 4, 4, 1))
  t = jax.random.uniform(kt, ())
  _, dxdt = jax.jvp(lambda t: (1 - t) * y + t * n, (t,), (jnp.ones(()),))
  np.testing.assert_allclose(obj.flow_target(y, n), dxdt, rtol=1e-6, atol=1e-6)


def test_ddpm_schedules():
  linear, cosine = obj.ddpm_alpha_bars("linear"), obj.ddpm_alpha_bars("cosine")
  np.testing.assert_allclose(linear[0], 1 - 1e-4)  # Ho et al.: beta_1 = 1e-4, beta_T = 0.02
  np.testing.assert_allclose(linear[-1] / linear[-2], 1 - 0.02)
  assert linear[-1] < 1e-4 and np.all(np.diff(linear) < 0) and np.all(np.diff(cosine) < 0)
  s = 0.008  # Nichol & Dhariwal's abar(t) = f(t) / f(0) where no beta is clipped
  f = lambda t: np.cos((t / 1000 + s) / (1 + s) * np.pi / 2) ** 2
  np.testing.assert_allclose(cosine[:900], f(np.arange(1, 901)) / f(0), rtol=1e-9)


# -- samplers on Gaussian data, with the exact model -----------------------------------------
#
# Data y ~ N(mu, Sigma) in 3 dimensions, Sigma = Q diag(lam) Q^T. The exact models are affine in
# x, so every deterministic sampler is an affine map of its initial noise, and along each
# eigenvector q_k it multiplies the centred state by a factor g_k that a scalar recursion gives
# (`_factors`, float64, written here from the update rules, apart from gen's code). Expected
# output: mean mu - Q diag(g) Q^T m0 and covariance Q diag(g^2 v0) Q^T, where m0 and v0 are the
# initial state's offset and variance. The tolerance is then only Monte Carlo: over N samples, 6
# standard errors of a mean (sqrt(Sigma_ii / N)) and of a covariance entry (sqrt((Sigma_ii
# Sigma_jj + Sigma_ij^2) / N)), plus 1e-4 for float32. That the expected statistics are the
# data's within the discretisation and start-up error is checked in float64 beside it.

MU = np.array([0.5, -1.0, 0.25])
LAM = np.array([0.04, 0.25, 1.0])
Q = np.linalg.qr(np.array([[1.0, 0.3, -0.2], [0.1, 1.0, 0.4], [-0.3, 0.2, 1.0]]))[0]
SIGMA = Q @ np.diag(LAM) @ Q.T
N = 1 << 16


def _exact_denoiser(x, sigma):
  s = jnp.asarray(SIGMA, jnp.float32)
  a = s @ jnp.linalg.inv(s + sigma**2 * jnp.eye(3))
  return MU + (x - MU) @ a.T


def _exact_eps(x, t):
  a = jnp.asarray(obj.ddpm_alpha_bars("linear"), jnp.float32)[t]
  cov = a * SIGMA + (1 - a) * np.eye(3)
  return jnp.sqrt(1 - a) * (x - jnp.sqrt(a) * MU) @ jnp.linalg.inv(cov).T


def _exact_velocity(x, t):
  cov = (1 - t) ** 2 * SIGMA + t**2 * np.eye(3)
  c = x - (1 - t) * MU
  return -MU + c @ (jnp.linalg.inv(cov) @ (t * np.eye(3) - (1 - t) * SIGMA)).T


def _factors(sampler: str, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(g [3], m0 [3], v0) of the sampler at `steps` steps on the eigen-directions (float64)."""
  g = np.ones(3)
  if sampler in ("heun", "euler"):
    s = np.asarray(obj.edm_sigmas(steps, 0.002, 80.0), np.float64)
    for a, b in itertools.pairwise(s):
      k1 = a / (LAM + a**2)  # d(u)/d(sigma) = k u
      if sampler == "euler" or b == 0:
        g *= 1 + (b - a) * k1
      else:
        k2 = b / (LAM + b**2)
        g *= 1 + (b - a) * 0.5 * (k1 + k2 * (1 + (b - a) * k1))
    return g, Q.T @ MU, 80.0**2  # x_T = 80 n: offset -mu from the centre
  if sampler == "ddim":
    abar = obj.ddpm_alpha_bars("linear")
    ts = obj.ddim_steps(steps)
    for i, t in enumerate(ts):
      a, a_prev = abar[t], (abar[ts[i + 1]] if i + 1 < len(ts) else 1.0)
      g *= (np.sqrt(a_prev * a) * LAM + np.sqrt((1 - a_prev) * (1 - a))) / (a * LAM + 1 - a)
    return g, np.sqrt(abar[-1]) * (Q.T @ MU), 1.0
  t = np.linspace(1.0, 0.0, steps + 1)
  k = lambda t: (t - (1 - t) * LAM) / ((1 - t) ** 2 * LAM + t**2)
  for a, b in itertools.pairwise(t):
    h = b - a
    g *= 1 + h * k(a) if sampler == "flow_euler" else 1 + h / 2 * (k(a) + k(b) * (1 + h * k(a)))
  return g, np.zeros(3), 1.0


@functools.partial(jax.jit, static_argnames=("sampler", "steps"))
def _sample(sampler: str, steps: int, key):
  k_noise, k_churn = jax.random.split(key)
  noise = jax.random.normal(k_noise, (N, 3))
  if sampler == "ddim":
    return obj.ddim(_exact_eps, noise, obj.ddpm_alpha_bars("linear"), steps)
  if sampler.startswith("flow_"):
    return obj.flow_ode(_exact_velocity, noise, steps, sampler.removeprefix("flow_"))
  sigmas = obj.edm_sigmas(steps, 0.002, 80.0)
  if sampler == "stochastic":
    return obj.stochastic(_exact_denoiser, noise * 80.0, sigmas, k_churn, s_churn=20.0,
                          s_min=0.01, s_max=50.0, s_noise=1.0)
  return getattr(obj, sampler)(_exact_denoiser, noise * 80.0, sigmas)


def _mc_tolerance():
  d = np.sqrt(np.diag(SIGMA))
  return 6 * d / np.sqrt(N) + 1e-4, 6 * np.sqrt((np.outer(d**2, d**2) + SIGMA**2) / N) + 1e-4


# Per sampler: steps, and what separates its output from the data beside Monte Carlo (from
# `_factors` at those steps): the start-up offset of the mean (EDM's samplers start at 80 n,
# not mu + 80 n: |mu| sqrt(lam) / 80 <= 0.0125; DDIM at N(0, I), not sqrt(abar_T) mu + ...:
# |mu| sqrt(abar_T) <= 0.0064; the flows start exactly at the noise), and the discretisation
# error of the covariance (first-order methods: ~1/steps; Heun: ~1/steps^2), as computed:
# heun 0.0051, euler 0.017, ddim 0.013, flow_euler 0.0086, flow_heun 0.0002.
SAMPLER_CASES = [("heun", 64, 0.0125, 0.006), ("euler", 256, 0.0125, 0.02),
                 ("ddim", 250, 0.0064, 0.015), ("flow_euler", 256, 0.0, 0.01),
                 ("flow_heun", 32, 0.0, 0.001)]


@pytest.mark.parametrize("sampler,steps,start_offset,discretisation", SAMPLER_CASES)
def test_samplers_with_the_exact_model_give_the_datas_mean_and_covariance(
    sampler, steps, start_offset, discretisation):
  x = np.asarray(_sample(sampler, steps, jax.random.key(0)), np.float64)
  mean_tol, cov_tol = _mc_tolerance()
  # The data's statistics, within the sampler's own error and Monte Carlo.
  np.testing.assert_array_less(np.abs(x.mean(0) - MU), mean_tol + start_offset)
  np.testing.assert_array_less(np.abs(np.cov(x.T) - SIGMA), cov_tol + discretisation)
  # Sharper: exactly what the update rules predict at these steps, within Monte Carlo.
  g, m0, v0 = _factors(sampler, steps)
  np.testing.assert_array_less(np.abs(x.mean(0) - (MU - Q @ (g * m0))), mean_tol)
  np.testing.assert_array_less(np.abs(np.cov(x.T) - Q @ np.diag(g**2 * v0) @ Q.T), cov_tol)


def test_heun_is_second_order_and_euler_first():
  """Quadrupling the steps divides Heun's error by ~16 and Euler's by ~4 (float64 recursion;
  the sampler follows it, above)."""
  err = lambda sampler, n: np.abs(_factors(sampler, n)[0] / (np.sqrt(LAM) / np.sqrt(LAM + 80**2)) - 1).max()
  assert 12 < err("heun", 32) / err("heun", 128) < 20
  assert 3 < err("euler", 64) / err("euler", 256) < 5


def _stochastic_moments(steps: int, s_churn=20.0, s_min=0.01, s_max=50.0):
  """Mean and covariance of EDM's stochastic sampler on the exact model (float64): churn adds
  independent noise of variance s_hat^2 - s^2 (raising each eigen-direction's variance by it),
  then a Heun step multiplies the centred state by its factor, as in `_factors`."""
  s = np.asarray(obj.edm_sigmas(steps, 0.002, 80.0), np.float64)
  gamma = min(s_churn / steps, np.sqrt(2) - 1)
  c, v = -(Q.T @ MU), np.full(3, 80.0**2)  # x_T = 80 n, centred on mu
  for a, b in itertools.pairwise(s):
    a_hat = a * (1 + (gamma if s_min <= a <= s_max else 0.0))
    v = v + a_hat**2 - a**2
    k1 = a_hat / (LAM + a_hat**2)
    f = 1 + (b - a_hat) * k1
    if b > 0:
      f = 1 + (b - a_hat) * 0.5 * (k1 + b / (LAM + b**2) * (1 + (b - a_hat) * k1))
    c, v = c * f, v * f**2
  return MU + Q @ c, Q @ np.diag(v) @ Q.T


def test_stochastic_sampler_with_the_exact_model_gives_the_datas_mean_and_covariance():
  """With churn the map is affine plus independent noise, so its moments follow a recursion
  too (`_stochastic_moments`): the samples match it within Monte Carlo error, and it is the
  data's within the start-up offset (at most 0.0125, as for heun; the churn noise all but
  removes it: computed 1e-6) and its discretisation error at 64 steps (computed: 0.025 in the
  covariance, twice deterministic Heun's: churn lengthens each step by gamma = 0.31)."""
  mean, cov = _stochastic_moments(64)
  np.testing.assert_array_less(np.abs(mean - MU), 0.0125)
  np.testing.assert_array_less(np.abs(cov - SIGMA), 0.03)
  x = np.asarray(_sample("stochastic", 64, jax.random.key(1)), np.float64)
  mean_tol, cov_tol = _mc_tolerance()
  np.testing.assert_array_less(np.abs(x.mean(0) - mean), mean_tol)
  np.testing.assert_array_less(np.abs(np.cov(x.T) - cov), cov_tol)


def test_nfe_maps_to_steps_or_says_which_to_give():
  assert obj.nfe_to_steps("heun", 35) == 18 and obj.nfe_to_steps("euler", 10) == 10
  assert obj.nfe_to_steps("flow_heun", 10) == 5 and obj.nfe_to_steps("ddim", 7) == 7
  with pytest.raises(ValueError, match="give an odd NFE"):
    obj.nfe_to_steps("heun", 10)


# -- the network, guidance ----------------------------------------------------------------


def test_unet_parameter_count_equals_edms_cifar10_ddpmpp():
  """EDM's CIFAR-10 DDPM++ (NVlabs/edm train.py --arch=ddpmpp: SongUNet with model_channels
  128, channel_mult [2, 2, 2], 4 blocks, attention at 16, positional embedding): the reference
  code (training/networks.py at commit 008a4e5, torch) counts 55,732,739 parameters, and
  55,734,147 with 10 class labels. (Its CIFAR-10 runs add 1,152 more for the labels of its
  augmentation pipeline, augment_dim 9, which gen does not have.)"""
  c = configs.get_config("cifar10_edm").model
  for label_dim, reference in ((0, 55_732_739), (10, 55_734_147)):
    net = SongUNet(out_channels=3, label_dim=label_dim, model_channels=c.model_channels,
                   channel_mult=(2, 2, 2), num_blocks=c.num_blocks, attn_resolutions=(16,),
                   dropout=c.dropout)
    shapes = jax.eval_shape(lambda net=net, ld=label_dim: net.init(
        jax.random.key(0), jnp.zeros((1, 32, 32, 3)), jnp.zeros((1,)),
        jnp.zeros((1, ld)) if ld else None))
    assert num_params(shapes["params"]) == reference


def _conditional_family(**sample):
  c = configs.get_config("tiny")
  c.model.conditional, c.model.label_dropout = True, 0.1
  c.sample.update(sample)
  return Diffusion(c, INFO)


def test_guidance_weights():
  """w = 0 is the conditional model (its output, bitwise); the guided denoiser is D_u + (1 + w)
  (D_c - D_u), so the 'scale' 1 + w = 1 is the conditional model and w = -1 the unconditional."""
  family = _conditional_family()
  params = jax.jit(family.init_state)(jax.random.key(0)).ema_params
  # Trained-like weights: at initialisation the output layer is ~0 (scaled by 1e-5).
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(2), len(leaves))
  params = tree.unflatten([p + 0.2 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)])
  labels = jax.nn.one_hot(jnp.arange(4) % 10, 10)
  x = jax.random.normal(jax.random.key(1), (4, 28, 28, 1))
  sigma = jnp.full((4,), 1.5)

  @jax.jit
  def denoisers(params, w):
    d = lambda f: family.objective.denoise(f, x, sigma)
    return (d(family.net(params, labels)), d(family.net(params, jnp.zeros_like(labels))),
            d(family.model_fn(params, labels, w)))

  d_c, d_u, d_0 = denoisers(params, 0.0)
  assert np.abs(d_c - d_u).max() > 1e-2  # the labels reach the network
  chex.assert_trees_all_equal(d_0, d_c)  # w = 0: the conditional model's output, bitwise
  for w in (-1.0, 1.0, 3.0):
    d_w = denoisers(params, w)[2]
    np.testing.assert_allclose(d_w, d_u + (1 + w) * (d_c - d_u), rtol=1e-5, atol=1e-5)
    if w == -1.0:
      np.testing.assert_allclose(d_w, d_u, rtol=1e-5, atol=1e-5)


# -- the family through the trainer and the tools ---------------------------------------------


@pytest.mark.slow
def test_train_diffusion_cli_sample_interpolate_and_resume(tmp_path):
  workdir = str(tmp_path / "run")
  result = run(["train_diffusion.py", f"--workdir={workdir}", *TINY])
  assert result.returncode == 0, result.stderr[-3000:]
  rows = metrics_rows(workdir)
  assert [r["step"] for r in rows] == [1, 2] and all(np.isfinite(r["loss"]) for r in rows)
  assert os.path.exists(os.path.join(workdir, "samples", "samples_0000002.png"))

  out = str(tmp_path / "s.npz")
  for flags in ([], ["--sampler=euler", "--nfe=2"]):  # the config's heun, and the flags
    result = run(["-m", "gen", "sample", f"--workdir={workdir}", "--num=4", f"--out={out}", *flags])
    assert result.returncode == 0, result.stderr[-3000:]
    with np.load(out) as f:
      assert f["images"].shape == (4, 28, 28, 1) and f["images"].dtype == np.uint8
  result = run(["-m", "gen", "sample", f"--workdir={workdir}", "--num=4", f"--out={out}",
                "--nfe=4"])
  assert result.returncode != 0 and "give an odd NFE" in result.stderr
  result = run(["-m", "gen", "sample", f"--workdir={workdir}", "--num=4", f"--out={out}",
                "--truncation=0.5"])
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert "--truncation" in result.stderr.strip().splitlines()[-1]
  walk = str(tmp_path / "walk.gif")
  result = run(["-m", "gen", "interpolate", f"--workdir={workdir}", "--steps=3", f"--out={walk}"])
  assert result.returncode == 0, result.stderr[-3000:]

  # Resume: 2 more steps after the first 2 equal 4 straight, bitwise.
  straight = str(tmp_path / "straight")
  assert run(["train_diffusion.py", f"--workdir={straight}", *TINY,
              "--config.num_steps=4"]).returncode == 0
  assert run(["train_diffusion.py", f"--workdir={workdir}", *TINY,
              "--config.num_steps=4"]).returncode == 0
  chex.assert_trees_all_equal(run_dir.restore_run(straight)[2], run_dir.restore_run(workdir)[2])
  with open(os.path.join(workdir, "config.json")) as f:
    assert json.load(f)["family"] == "diffusion"


@pytest.mark.parametrize("overrides,message", [
    (["--config.sample.sampler=ddim"], "sample.sampler=ddim needs objective.kind=ddpm"),
    (["--config.sample.nfe=4"], "give an odd NFE"),
    (["--config.sample.guidance=2"], "needs a class-conditional model"),
    (["--config.model.channel_mult=1,2,2,2"], "a square image whose side divides by 8"),
    (["--config.vary=objective.p_mean=-1,-1.2", "--config.objective.kind=flow"], "p_mean"),
])
def test_bad_settings_are_one_line(tmp_path, overrides, message):
  result = run(["train_diffusion.py", f"--workdir={tmp_path / 'w'}", *TINY, *overrides])
  assert result.returncode != 0
  assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_members_follow_their_separate_runs_and_sample_with_their_own_guidance(tmp_path):
  """4 members: 2 learning rates x 2 guidance weights, one seed. Each learning rate's members
  equal a separate run with it (within float32 reassociation: conftest.RTOL); the guidance
  weight, a sampling setting, leaves training alone (its two members are bitwise alike) and
  gives each member its own pictures."""
  def tiny(**changes):
    c = configs.get_config("tiny")
    c.num_steps, c.checkpoint_every, c.sample_every = 3, 3, 3
    c.model.conditional, c.model.label_dropout = True, 0.5
    c.optim.rampup_kimg = 0.0  # full steps: in 3 ramped ones the labels barely reach the pixels
    c.update(changes)
    return c
  workdir = str(tmp_path / "members")
  # vmap: one compiled step for the 4 members (CPU's default, a loop, compiles each).
  train(tiny(vary="optim.lr=1e-3,3e-3;sample.guidance=0,4", member_map="vmap"), workdir)
  rows = metrics_rows(workdir)
  member = lambda m: [{k: v for k, v in r.items() if k not in ("member", "seed", "optim.lr",
                                                               "sample.guidance")}
                      for r in rows if r.get("member") == m]
  for lr, (a, b) in zip((1e-3, 3e-3), ((0, 1), (2, 3))):
    assert member(a) == member(b) and len(member(a)) == 3
    chex.assert_trees_all_equal(*(run_dir.restore_for_inference(workdir, m)[2] for m in (a, b)))
    picture = lambda m: os.path.join(workdir, "samples", f"member_{m:02d}", "samples_0000003.png")
    assert pathlib.Path(picture(a)).read_bytes() != pathlib.Path(picture(b)).read_bytes()
    alone = str(tmp_path / f"alone{lr:g}")
    c = tiny()
    c.optim.lr = lr
    train(c, alone)
    assert_same_training(member(a), metrics_rows(alone), "diffusion", names=("loss", "grad_norm"))
