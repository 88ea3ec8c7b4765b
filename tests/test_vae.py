"""The VAE family: architecture, objective, bounds, pictures; trained and evaluated end to end."""

import json
import math
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY_VAE, assert_same_training, metrics_rows, run, shared_run

from gen.configs.vae import get_config
from gen.data import DatasetInfo, open_builder
from gen.errors import UserError
from gen.families.vae import VAE, learning_rate
from gen.objectives import distributions as dist
from gen.runs.run_dir import restore_for_inference
from gen.train import evaluation, sharding, train

INFO = DatasetInfo("toy", (28, 28, 1), 10, 100)



def config(**top):
  """The default config with a small model; objective settings go to their section."""
  c = get_config()
  c.model.hidden_units, c.model.latents = 32, 4
  for name in ("train_k", "beta", "kl_warmup_steps"):
    if name in top:
      c.objective[name] = top.pop(name)
  c.update(top)
  return c


def images(n=8, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(0, 1, (n, 28, 28, 1)), jnp.float32)


def count(tree):
  return sum(x.size for x in jax.tree.leaves(tree))


def test_mlp_is_the_iwae_papers_architecture():
  family = VAE(get_config(), INFO)
  params = jax.jit(family.init_state)(jax.random.key(0)).vae.params
  shapes = jax.tree.map(lambda x: x.shape, params)
  assert [shapes["encoder"][f"Dense_{i}"]["kernel"] for i in range(3)] == [(784, 200), (200, 200), (200, 100)]
  assert [shapes["decoder"][f"Dense_{i}"]["kernel"] for i in range(3)] == [(50, 200), (200, 200), (200, 784)]
  assert count(params) == 425_284
  # Glorot-uniform weights: bound sqrt(6 / (fan_in + fan_out)); zero biases.
  w = np.asarray(params["encoder"]["Dense_0"]["kernel"])
  assert np.abs(w).max() <= math.sqrt(6 / (784 + 200)) and np.abs(w).max() > 0.9 * math.sqrt(6 / 984)
  assert not np.any(np.asarray(params["encoder"]["Dense_0"]["bias"]))


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 3)])
def test_conv_vae_shapes(size, channels):
  c = get_config("conv")
  c.model.nf = 8
  c.model.likelihood, c.model.binarize = "discretized_gaussian", False
  family = VAE(c, DatasetInfo("toy", (size, size, channels), 0, 10))
  params = jax.jit(family.init_state)(jax.random.key(0)).vae.params
  x = jnp.zeros((3, size, size, channels))
  mean, log_scale = jax.jit(family.encode)(params, x)
  assert mean.shape == log_scale.shape == (3, 32)
  assert jax.jit(family.decode)(params, mean).shape == (3, size, size, 2 * channels)


def test_dynamic_binarisation_is_bernoulli_of_the_intensity_and_changes_every_step():
  family = VAE(config(), INFO)
  x = jnp.full((64, 28, 28, 1), 0.3)
  a = family.model_inputs(x, jax.random.key(1))
  b = family.model_inputs(x, jax.random.key(2))
  assert set(np.unique(a)) == {0.0, 1.0}
  assert abs(float(a.mean()) - 0.3) < 0.01
  assert not np.array_equal(a, b)


def test_dequantisation_stays_in_its_bin():
  c = config()
  c.model.likelihood, c.model.binarize = "gaussian", False
  family = VAE(c, INFO)
  k = jnp.arange(256, dtype=jnp.float32).reshape(1, 16, 16, 1)
  y = family.model_inputs(k / 255.0, jax.random.key(0))
  assert np.all((y * 256 >= k) & (y * 256 < k + 1))


def test_elbo_step_metrics_add_up_and_the_kl_warms_up():
  family = VAE(config(kl_warmup_steps=4, beta=2.0), INFO)
  state = jax.jit(family.init_state)(jax.random.key(0))
  step = jax.jit(family.train_step)
  weights = []
  for _ in range(6):
    state, (m, _, finite) = step(state, {"image": images()})
    assert finite
    weights.append(float(m["kl_weight"]))
    np.testing.assert_allclose(m["neg_elbo"], m["recon"] + m["kl"], rtol=1e-5)
    np.testing.assert_allclose(m["loss"], m["recon"] + m["kl_weight"] * m["kl"], rtol=1e-5)
  np.testing.assert_allclose(weights, [0.0, 0.5, 1.0, 1.5, 2.0, 2.0])
  assert int(state.step) == 6


def test_iwae_objective_is_tighter_than_the_elbo():
  family = VAE(config(train_k=16), INFO)
  state = jax.jit(family.init_state)(jax.random.key(0))
  _, (m, _, _) = jax.jit(family.train_step)(state, {"image": images(32)})
  assert float(m["neg_iwae"]) < float(m["neg_elbo"])
  np.testing.assert_allclose(m["loss"], m["neg_iwae"], rtol=1e-6)  # beta = 1, no warm-up


def test_log_importance_weights_are_log_joint_minus_log_posterior():
  family = VAE(config(), INFO)
  state = jax.jit(family.init_state)(jax.random.key(0))
  x = family.model_inputs(images(3), jax.random.key(5))
  key = jax.random.key(7)
  lw = family.log_importance_weights(state, x, key, 5)
  # Recompute by hand from the same samples.
  params = state.vae.params
  mean, log_scale = family.encode(params, x)
  z = mean + jnp.exp(log_scale) * jax.random.normal(key, (5,) + mean.shape)
  logits = jax.vmap(lambda zz: family.decode(params, zz))(z)
  want = (jax.vmap(lambda l: dist.bernoulli_log_prob(x, l))(logits)
          + dist.standard_normal_log_prob(z, 2) - dist.normal_log_prob(z, mean, log_scale, 2))
  np.testing.assert_allclose(lw, want, rtol=1e-5)


def test_iwae_learning_rate_schedule():
  c = get_config("mnist")
  schedule = learning_rate(c.optim, c.optim.lr)
  steps = 3000
  assert float(schedule(0)) == pytest.approx(1e-3)
  assert float(schedule(steps - 1)) == pytest.approx(1e-3)
  assert float(schedule(steps)) == pytest.approx(1e-3 * 10 ** (-1 / 7))
  assert float(schedule(4 * steps)) == pytest.approx(1e-3 * 10 ** (-2 / 7))  # after 1 + 3 epochs
  assert float(schedule(c.num_steps - 1)) == pytest.approx(1e-4)  # stage 7 of 0..7
  assert c.num_steps == 3280 * steps


@pytest.mark.parametrize("change,message", [
    (dict(train_k=0), "train_k=0 must be positive"),
    (dict(beta=-1.0), r"objective.beta=-1.0 must be >= 0"),
])
def test_bad_values(change, message):
  with pytest.raises(UserError, match=message):
    VAE(config(**change), INFO)
  c = config()
  c.model.likelihood = "gaussian"  # binarize=True is for Bernoulli decoders only
  with pytest.raises(UserError, match="binarize=True needs"):
    VAE(c, INFO)


@pytest.fixture(scope="session")
def trained():
  """The default MLP VAE trained for 600 steps on mnist5k (about 15 s), once per test run."""
  c = get_config()
  c.update(dict(num_steps=600, log_every=300, sample_every=600, checkpoint_every=600))
  c.eval.metrics = ""
  return shared_run("vae600", lambda workdir: train(c, workdir))


def evaluate(workdir, k, split="test"):
  c, family, state = restore_for_inference(workdir)
  c.eval.num_importance, c.eval.split = k, split
  return evaluation.evaluate(c, family, state, open_builder("mnist5k"), sharding.make_mesh(), ["nll"])


@pytest.mark.slow
def test_importance_sampled_nll_is_below_the_elbo_and_falls_with_k(trained):
  results = [evaluate(trained, k) for k in (1, 10, 100)]
  # K = 1: the estimate is the ELBO itself.
  np.testing.assert_allclose(results[0]["nll_nats"], results[0]["elbo_nats"], rtol=1e-6)
  nll = [r["nll_nats"] for r in results]
  assert nll[0] > nll[1] > nll[2]
  assert all(r["nll_nats"] <= r["elbo_nats"] for r in results)
  assert nll[0] - nll[2] > 1.0  # nats: the bound tightens visibly on a trained model
  # The ELBO estimate does not depend on K (up to sampling noise), and bits/dim is nats / (D ln 2).
  np.testing.assert_allclose(results[2]["elbo_nats"], results[0]["elbo_nats"], rtol=0.02)
  np.testing.assert_allclose(results[2]["bits_per_dim"], nll[2] / (784 * math.log(2)), rtol=1e-9)
  assert 90 < nll[2] < 250  # a 600-step model: far better than uniform (543 nats), not yet good
  assert evaluate(trained, 10) == results[1]  # deterministic


def test_pictures_of_a_trained_model(trained):
  c, family, state = restore_for_inference(trained)
  examples = evaluation.picture_examples(c, open_builder("mnist5k"), family)
  pictures = family.pictures(state, examples)
  assert sorted(pictures) == ["interpolations", "reconstructions", "samples", "traversals"]
  for name, grid in pictures.items():
    assert grid.dtype == np.uint8 and grid.ndim == 3, name
  grid = pictures["reconstructions"]  # rows of 8 inputs, then their 8 reconstructions
  assert grid.shape == (8 * 30 + 2, 8 * 30 + 2, 1)
  inputs, outputs = grid[2:30, 2:240].astype(float), grid[32:60, 2:240].astype(float)
  assert np.corrcoef(inputs.ravel(), outputs.ravel())[0, 1] > 0.6  # the digits come back
  assert pictures["interpolations"].shape == (8 * 30 + 2, 12 * 30 + 2, 1)
  assert pictures["traversals"].shape == (8 * 30 + 2, 9 * 30 + 2, 1)


@pytest.mark.slow
def test_train_vae_cli_end_to_end_evaluate_and_sample(tmp_path):
  workdir = str(tmp_path / "run")
  result = run(["train_vae.py", f"--workdir={workdir}", *TINY_VAE])
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  assert os.listdir(os.path.join(workdir, "checkpoints")) == ["2"]
  for name in ("reconstructions", "samples", "interpolations", "traversals"):
    assert os.path.exists(os.path.join(workdir, "samples", f"{name}_0000002.png")), name
  rows = metrics_rows(workdir)
  assert [r["step"] for r in rows] == [1, 2, 2]
  assert rows[0]["neg_elbo"] > 0 and np.isfinite(rows[1]["grad_norm"])
  final = rows[2]  # the evaluation at the end: test split, K = 4
  assert set(final) == {"step", "test_elbo_nats", "test_nll_nats", "test_bits_per_dim"}
  assert 0 < final["test_nll_nats"] <= final["test_elbo_nats"]

  result = run(["-m", "gen", "evaluate", f"--workdir={workdir}", "--metrics=nll", "--num_importance=4"])
  assert result.returncode == 0, result.stderr[-3000:]
  printed = json.loads(result.stdout)
  assert printed["step"] == 2
  for k in ("elbo_nats", "nll_nats", "bits_per_dim"):
    np.testing.assert_allclose(printed[k], final[f"test_{k}"], rtol=1e-6)

  # Data parallel over 4 devices: the same training and evaluation numbers.
  four = str(tmp_path / "four")
  result = run(["train_vae.py", f"--workdir={four}", *TINY_VAE], devices=4)
  assert result.returncode == 0, result.stderr[-3000:]
  assert_same_training(rows, metrics_rows(four), "vae")

  out = str(tmp_path / "s.npz")
  result = run(["-m", "gen", "sample", f"--workdir={workdir}", "--num=5", f"--out={out}"])
  assert result.returncode == 0, result.stderr[-3000:]
  with np.load(out) as f:
    assert f["images"].shape == (5, 28, 28, 1) and f["images"].dtype == np.uint8


def test_vae_resume_is_bitwise_identical(tmp_path):
  def c(num_steps):
    cfg = config(num_steps=num_steps, steps_per_call=2, log_every=1, sample_every=2,
                 checkpoint_every=2, batch_size=20, train_k=2, kl_warmup_steps=3)
    cfg.eval.num_importance = 4
    return cfg

  straight, resumed = str(tmp_path / "a"), str(tmp_path / "b")
  train(c(6), straight)
  train(c(4), resumed)  # ends with an evaluation at step 4 ...
  train(c(6), resumed)  # ... resumes there
  a = restore_for_inference(straight)[2]
  b = restore_for_inference(resumed)[2]
  assert int(a.step) == int(b.step) == 6
  chex.assert_trees_all_equal(a, b)
  rows = metrics_rows
  training = lambda rs: [r for r in rs if "loss" in r]
  assert training(rows(straight)) == training(rows(resumed))
  assert [r["step"] for r in training(rows(resumed))] == [1, 2, 3, 4, 5, 6]
  assert rows(straight)[-1] == rows(resumed)[-1]  # the final evaluation


@pytest.mark.slow
def test_evaluate_errors(tmp_path, trained):
  result = run(["-m", "gen", "evaluate", f"--workdir={trained}", "--metrics=nope"])
  assert result.returncode == 2 and "error: unknown metric 'nope'" in result.stderr
  result = run(["-m", "gen", "evaluate", f"--workdir={tmp_path / 'missing'}"])
  assert result.returncode == 2 and "does not exist" in result.stderr
  assert "Traceback" not in result.stderr
