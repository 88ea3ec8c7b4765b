"""The GAN family's state and step, in process, on tiny models."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen.configs.gan import get_config
from gen.data import DatasetInfo
from gen.errors import UserError
from gen.families.gan import GAN

INFO = DatasetInfo("toy", (28, 28, 1), 10, 100)


def tiny(**overrides):
  c = get_config("tiny")
  for k, v in overrides.items():
    section, name = k.split("__")
    c[section][name] = v
  return c


def batch(n=8, seed=0):
  rng = np.random.default_rng(seed)
  return {"image": jnp.asarray(rng.uniform(-1, 1, (n, 28, 28, 1)), jnp.float32),
          "label": jnp.asarray(rng.integers(0, 10, n), jnp.int32)}


def leaves_equal(a, b):
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def run_steps(family, n, seed=0):
  state = jax.jit(family.init_state)(jax.random.key(seed))
  step = jax.jit(family.train_step)
  history = []
  for i in range(n):
    state, (metrics, _, finite) = step(state, batch(seed=i))
    assert finite
    history.append(jax.device_get(metrics))
  return state, history


def test_one_step_updates_both_networks_and_ema():
  family = GAN(tiny(), INFO)
  state0 = jax.jit(family.init_state)(jax.random.key(0))
  state1, (metrics, _, finite) = jax.jit(family.train_step)(state0, batch())
  assert finite
  assert int(state1.step) == 1
  assert not leaves_equal(state0.g.params, state1.g.params)
  assert not leaves_equal(state0.d.params, state1.d.params)
  assert not leaves_equal(state0.g.batch_stats, state1.g.batch_stats)
  # EMA after the first update: decay min(0.999, 1/10) = 0.1 -> 0.1*old + 0.9*new.
  expected = jax.tree.map(lambda e, p: 0.1 * e + 0.9 * p, state0.ema_params, state1.g.params)
  chex.assert_trees_all_close(state1.ema_params, expected, rtol=1e-5, atol=1e-7)
  for k in ("d_loss", "g_loss", "d_real", "d_fake"):
    assert np.isfinite(metrics[k])
  # At init D outputs ~0 logits: the non-saturating D loss starts near 2 log 2.
  assert abs(float(metrics["d_loss"]) - 2 * np.log(2)) < 0.3


def test_step_is_deterministic_and_seeded():
  a, ha = run_steps(GAN(tiny(), INFO), 3)
  b, hb = run_steps(GAN(tiny(), INFO), 3)
  c, _ = run_steps(GAN(tiny(), INFO), 3, seed=1)
  assert leaves_equal(a, b) and ha == hb
  assert not leaves_equal(a.g.params, c.g.params)


def test_n_critic_updates_g_every_nth_step():
  family = GAN(tiny(loss__n_critic=2), INFO)
  state0 = jax.jit(family.init_state)(jax.random.key(0))
  step = jax.jit(family.train_step)
  state1, (m1, valid1, _) = step(state0, batch(seed=1))
  assert leaves_equal(state0.g.params, state1.g.params)
  assert leaves_equal(state0.ema_params, state1.ema_params)
  assert not leaves_equal(state0.d.params, state1.d.params)
  # No G update: G's loss and gradient norm do not exist on this step (not a NaN placeholder).
  assert not valid1["g_loss"] and not valid1["g_grad_norm"] and valid1["d_loss"]
  assert np.isfinite(m1["g_loss"])
  state2, (m2, valid2, _) = step(state1, batch(seed=2))
  assert not leaves_equal(state1.g.params, state2.g.params)
  assert valid2["g_loss"] and np.isfinite(m2["g_loss"]) and m2["g_grad_norm"] > 0


@pytest.mark.parametrize("overrides", [
    dict(loss__kind="wgan", loss__gp_weight=10.0, model__d_norm="none"),
    dict(loss__kind="hinge", model__spectral_norm=True, model__d_norm="none",
         model__conditional=True),
    dict(loss__kind="lsgan", loss__r1_gamma=1.0, model__d_norm="layer"),
])
def test_variants_train(overrides):
  _, history = run_steps(GAN(tiny(**overrides), INFO), 2)
  for metrics in history:
    assert all(np.isfinite(v) for v in metrics.values())
  if "loss__gp_weight" in overrides:
    assert history[0]["gp"] > 0
  if "loss__r1_gamma" in overrides:
    assert history[0]["r1"] > 0


def test_sample_is_uint8_and_balanced_for_conditional_models():
  family = GAN(tiny(model__conditional=True), INFO)
  state = jax.jit(family.init_state)(jax.random.key(0))
  out = family.sample(state, jax.random.key(1), 25, batch=10)
  assert out["images"].shape == (25, 28, 28, 1) and out["images"].dtype == np.uint8
  assert out["labels"].tolist() == [i % 10 for i in range(25)]
  again = family.sample(state, jax.random.key(1), 25, batch=7)
  np.testing.assert_array_equal(out["images"], again["images"])


@pytest.mark.parametrize("overrides,message", [
    (dict(loss__kind="bogus"), "loss.kind='bogus'"),
    (dict(optim__g_lr=-1.0), "optim.g_lr=-1.0 must be positive"),
    (dict(model__d_norm="group"), "model.d_norm='group'"),
    (dict(optim__b1=1.0), "optim.b1=1.0 must be in"),
])
def test_bad_config_values(overrides, message):
  with pytest.raises(UserError, match=message.replace("(", r"\(").replace(".", r"\.")):
    GAN(tiny(**overrides), INFO)


def test_conditional_needs_labels_and_sizes_must_be_supported():
  with pytest.raises(UserError, match="needs class labels"):
    GAN(tiny(model__conditional=True), DatasetInfo("toy", (28, 28, 1), 0, 100))
  with pytest.raises(UserError, match="do not support image size 48"):
    GAN(tiny(), DatasetInfo("toy", (48, 48, 3), 0, 100))


def test_lecam_keeps_its_averages_in_the_state_and_others_leave_it_out():
  family = GAN(tiny(loss__lecam_weight=0.3, loss__lecam_decay=0.9), INFO)
  state, history = run_steps(family, 2)
  assert history[0]["lecam"] >= 0 and np.isfinite(history[1]["lecam"])
  ema = state.d_reg["lecam"]
  assert int(ema["count"]) == 2
  # raw EMA after two steps: 0.9 * (0.1 d_real_1) + 0.1 d_real_2 (d_real is the batch mean logit)
  np.testing.assert_allclose(ema["real"], 0.09 * history[0]["d_real"] + 0.1 * history[1]["d_real"],
                             rtol=1e-4, atol=1e-7)
  # Without a stateful regulariser the optional part is None, left out of checkpoints: their
  # tree is the plain GAN's (tests/test_old_runs.py restores such checkpoints).
  for overrides in ({}, dict(loss__gp_weight=1.0, loss__r1_gamma=1.0)):
    plain = jax.eval_shape(GAN(tiny(**overrides), INFO).init_state, jax.random.key(0))
    assert plain.d_reg is None and plain.ada is None


def test_a_new_d_regularizer_plugs_in_without_editing_the_step(monkeypatch):
  from gen.objectives import losses
  monkeypatch.setitem(losses.D_REGULARIZERS, "logit_l2", losses.DRegularizer(
      "logit_l2_weight", losses.stateless(
          lambda b: jnp.mean(b.real_logits ** 2) + jnp.mean(b.fake_logits ** 2))))
  c = tiny()
  with c.unlocked():
    c.loss.logit_l2_weight = 0.0
  _, off = run_steps(GAN(c, INFO), 1)
  c.loss.logit_l2_weight = 10.0
  _, on = run_steps(GAN(c, INFO), 1)
  assert "logit_l2" not in off[0] and on[0]["logit_l2"] > 0
  # Same batch and init: D's adversarial loss is the same, the penalty moved D elsewhere.
  np.testing.assert_allclose(on[0]["d_loss"], off[0]["d_loss"], rtol=1e-6)
  assert on[0]["d_grad_norm"] != off[0]["d_grad_norm"]
