"""Log-likelihood and KL terms against closed forms and numerical integration (float64 SciPy)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from gen.objectives import distributions as dist


def test_normal_log_prob_matches_scipy():
  rng = np.random.default_rng(0)
  x, mean, log_scale = rng.normal(size=(3, 4, 5))
  got = dist.normal_log_prob(jnp.asarray(x), jnp.asarray(mean), jnp.asarray(log_scale))
  want = stats.norm.logpdf(x, mean, np.exp(log_scale)).sum(axis=1)
  np.testing.assert_allclose(got, want, rtol=1e-5)
  np.testing.assert_allclose(dist.standard_normal_log_prob(jnp.asarray(x)),
                             stats.norm.logpdf(x).sum(axis=1), rtol=1e-5)


def test_kl_to_standard_normal_matches_numerical_integration():
  mean = np.array([[0.0, 1.5, -0.7]])
  log_scale = np.array([[0.0, -1.0, 0.6]])
  got = float(dist.kl_normal_standard(jnp.asarray(mean), jnp.asarray(log_scale))[0])
  want = 0.0
  for m, s in zip(mean[0], np.exp(log_scale[0])):
    q = stats.norm(m, s)
    want += integrate.quad(lambda z: q.pdf(z) * (q.logpdf(z) - stats.norm.logpdf(z)), -30, 30)[0]
  np.testing.assert_allclose(got, want, rtol=1e-5)
  assert float(dist.kl_normal_standard(jnp.zeros((1, 4)), jnp.zeros((1, 4)))[0]) == 0.0


def test_bernoulli_log_prob_is_the_log_of_the_probabilities():
  x = np.array([[1.0, 0.0, 1.0, 0.0]])
  logits = np.array([[2.0, 2.0, -30.0, 30.0]])
  log_p, log_1mp = -np.logaddexp(0.0, -logits), -np.logaddexp(0.0, logits)  # log p, log(1 - p)
  want = np.where(x == 1, log_p, log_1mp).sum()
  got = float(dist.bernoulli_log_prob(jnp.asarray(x), jnp.asarray(logits))[0])
  np.testing.assert_allclose(got, want, rtol=1e-6)
  np.testing.assert_allclose(want, np.log(1 / (1 + np.exp(-2.0))) + np.log(1 / (1 + np.exp(2.0)))
                             - 30.0 - 30.0, rtol=1e-9)


@pytest.mark.parametrize("mean,log_scale", [
    (0.3, -2.0), (0.5, -6.0), (0.0, 0.0), (1.2, -3.0), (0.5, 3.0), (-0.5, -5.0), (0.7, -7.0)])
def test_discretized_normal_is_the_mass_of_each_bin(mean, log_scale):
  k = np.arange(256) / 255.0
  got = np.asarray(dist.discretized_normal_log_prob(jnp.asarray(k, jnp.float32)[:, None], mean,
                                                    log_scale), np.float64)
  np.testing.assert_allclose(np.exp(got).sum(), 1.0, atol=2e-5)  # a distribution over 256 values
  s, h = np.exp(log_scale), 0.5 / 255
  upper, lower = (k + h - mean) / s, (k - h - mean) / s
  # log(Phi(upper) - Phi(lower)) in float64, from whichever tail is accurate.
  with np.errstate(divide="ignore"):  # the unused side of np.where may be log(0)
    left = stats.norm.logcdf(upper) + np.log1p(-np.exp(stats.norm.logcdf(lower) - stats.norm.logcdf(upper)))
    right = stats.norm.logsf(lower) + np.log1p(-np.exp(stats.norm.logsf(upper) - stats.norm.logsf(lower)))
  want = np.where(lower > 0, right, left)
  want[0], want[-1] = stats.norm.logcdf(upper[0]), stats.norm.logsf(lower[-1])
  seen = want > -60  # float32 cannot hold the far tails; they only need to be tiny
  np.testing.assert_allclose(got[seen], want[seen], rtol=1e-4, atol=1e-4)
  assert np.all(got[~seen] < -50)


def test_discretized_normal_gradients_are_finite():
  x = jnp.asarray(np.arange(256) / 255.0, jnp.float32)[:, None]
  for log_scale in (-7.0, -3.0, 2.0):
    g = jax.grad(lambda m, s: dist.discretized_normal_log_prob(x, m, s).sum(), argnums=(0, 1))(
        jnp.float32(0.4), jnp.float32(log_scale))
    assert all(np.isfinite(v) for v in g)


def test_log_mean_exp():
  x = jnp.asarray([[1000.0, -5.0], [1000.0, -7.0]])
  np.testing.assert_allclose(dist.log_mean_exp(x, axis=0),
                             [1000.0, np.log((np.exp(-5.0) + np.exp(-7.0)) / 2)], rtol=1e-6)
