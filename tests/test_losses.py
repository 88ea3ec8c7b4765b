import math

import jax.numpy as jnp
import numpy as np
import pytest

from gen.objectives import losses

REAL = jnp.array([0.0, 2.0])
FAKE = jnp.array([-1.0, 1.0])
sp = lambda x: math.log1p(math.exp(x))  # softplus


@pytest.mark.parametrize("kind,expected", [
    ("ns", (sp(0) + sp(-2)) / 2 + (sp(-1) + sp(1)) / 2),
    ("hinge", (1 + 0) / 2 + (0 + 2) / 2),
    ("wgan", 0.0 - 1.0),
    ("lsgan", 0.5 * (1 + 1) / 2 + 0.5 * (1 + 1) / 2),
])
def test_d_loss(kind, expected):
  assert float(losses.GAN_LOSSES[kind].d(REAL, FAKE)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("kind,expected", [
    ("ns", (sp(1) + sp(-1)) / 2),
    ("hinge", 0.0),
    ("wgan", 0.0),
    ("lsgan", 0.5 * (4 + 0) / 2),
])
def test_g_loss(kind, expected):
  assert float(losses.GAN_LOSSES[kind].g(FAKE)) == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_unknown_loss_kind_is_a_config_error():
  from gen.configs.gan import get_config
  from gen.data import DatasetInfo
  from gen.errors import UserError
  from gen.families.gan import GAN
  c = get_config("tiny")
  c.loss.kind = "bogus"
  with pytest.raises(UserError, match="^loss.kind='bogus' is not one of ns, hinge, wgan, lsgan$"):
    GAN(c, DatasetInfo("toy", (28, 28, 1), 0, 100))


@pytest.mark.parametrize("kind,d,g", [
    # junyanz/pytorch-CycleGAN-and-pix2pix GANLoss: 'vanilla' BCEWithLogits, 'lsgan' MSELoss;
    # D's loss 0.5 (c(real, 1) + c(fake, 0)), G's c(fake, 1).
    ("ns", 0.5 * ((sp(0) + sp(-2)) / 2 + (sp(-1) + sp(1)) / 2), (sp(1) + sp(-1)) / 2),
    ("lsgan", 0.5 * ((1 + 1) / 2 + (1 + 1) / 2), (4 + 0) / 2),
])
def test_translation_losses_are_the_authors(kind, d, g):
  assert float(losses.translation_d_loss(kind, REAL, FAKE)) == pytest.approx(d, rel=1e-6)
  assert float(losses.translation_g_loss(kind, FAKE)) == pytest.approx(g, rel=1e-6)
  if kind == "lsgan":  # the authors' G term is the full MSE, twice the LSGAN paper's 1/2 MSE
    assert float(losses.translation_g_loss(kind, FAKE)) == pytest.approx(
        2 * float(losses.GAN_LOSSES["lsgan"].g(FAKE)), rel=1e-6)


def test_penalties_on_a_linear_critic():
  # D(x) = <a, x> has gradient a everywhere: GP = (||a|| - 1)^2, R1 = ||a||^2.
  a = jnp.array([[[3.0]], [[4.0]]])  # per-example shape (2, 1, 1), ||a|| = 5
  critic = lambda x: jnp.sum(x * a, axis=(1, 2, 3))
  real = jnp.ones((3, 2, 1, 1))
  fake = jnp.zeros((3, 2, 1, 1))
  import jax
  assert float(losses.gradient_penalty(critic, real, fake, jax.random.key(0))) == pytest.approx(16.0)
  assert float(losses.r1_penalty(critic, real)) == pytest.approx(25.0)
  np.testing.assert_allclose(losses.GAN_LOSSES["wgan"].d(critic(real), critic(fake)), -7.0)


def test_lecam_penalty_by_hand():
  """google/lecam-gan: EMAs (zero-debiased) of the mean logits; penalty on the far side of them."""
  import jax
  batch = losses.CriticBatch(critic=None, real=None, fake=None, real_logits=REAL, fake_logits=FAKE,
                             key=jax.random.key(0))
  ema = {"real": jnp.zeros(()), "fake": jnp.zeros(()), "count": jnp.zeros((), jnp.int32)}
  value, ema = losses.lecam_penalty(batch, ema, decay=0.9)
  # Step 1, debiased: the anchors are this batch's means, a_R = 1, a_F = 0.
  # relu(D(x) - 0)^2 = [0, 4] -> 2; relu(1 - D(G(z)))^2 = [4, 0] -> 2.
  np.testing.assert_allclose(value, 4.0, rtol=1e-6)
  np.testing.assert_allclose([ema["real"], ema["fake"]], [0.1, 0.0], atol=1e-7)
  assert int(ema["count"]) == 1
  # Step 2 with logits shifted by +1: raw EMA a = 0.9 a + 0.1 mean, debiased by 1 - 0.9^2.
  batch = batch.__class__(**{**batch.__dict__, "real_logits": REAL + 1, "fake_logits": FAKE + 1})
  value, ema = losses.lecam_penalty(batch, ema, decay=0.9)
  a_r, a_f = (0.9 * 0.1 + 0.1 * 2.0) / 0.19, (0.0 + 0.1 * 1.0) / 0.19
  want = np.mean(np.maximum(np.array([1.0, 3.0]) - a_f, 0) ** 2) + np.mean(
      np.maximum(a_r - np.array([0.0, 2.0]), 0) ** 2)
  np.testing.assert_allclose(value, want, rtol=1e-5)
