"""FID, KID, IS and precision/recall against closed forms; the digit network; metric wiring."""

import json
import os

import numpy as np
import pytest
from conftest import TINY_GAN, metrics_rows, run
from scipy import linalg

from gen.metrics import feature_stats as fs


def test_fid_of_a_set_against_itself_is_zero():
  f = np.random.default_rng(0).normal(size=(500, 16))
  assert abs(fs.fid(f, f)) < 1e-8


def test_frechet_distance_of_known_gaussians():
  rng = np.random.default_rng(1)
  a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
  s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
  mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
  want = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
  np.testing.assert_allclose(fs.frechet_distance(mu1, s1, mu2, s2), want, rtol=1e-9)
  # Isotropic closed form: N(0, a^2 I) vs N(m, b^2 I) in d dims: |m|^2 + d (a - b)^2.
  d = 5
  got = fs.frechet_distance(np.zeros(d), 4 * np.eye(d), np.ones(d), 9 * np.eye(d))
  np.testing.assert_allclose(got, d * 1.0 + d * (2 - 3) ** 2, rtol=1e-12)
  # Singular covariances stay real and finite.
  assert np.isfinite(fs.frechet_distance(np.zeros(3), np.diag([1.0, 0.0, 0.0]), np.zeros(3), np.eye(3)))


def test_fid_of_samples_approaches_the_closed_form():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(20000, 4))
  y = rng.normal(size=(20000, 4)) * 2.0 + 1.0
  np.testing.assert_allclose(fs.fid(x, y), 4 * 1.0 + 4 * (1 - 2) ** 2, rtol=0.03)


def test_kid_is_unbiased_and_matches_the_closed_form():
  rng = np.random.default_rng(3)
  x, y = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
  same = [fs.kid(rng.normal(size=(200, 8)), rng.normal(size=(200, 8)), subsets=20, subset_size=100)[0]
          for _ in range(5)]
  assert abs(np.mean(same)) < 0.03  # unbiased: ~0 for equal distributions (std of this mean ~0.01)
  k = lambda a, b: (a @ b.T / 8 + 1) ** 3  # the biased estimate keeps the diagonal: clearly > 0
  biased = k(x[:100], x[:100]).mean() + k(y[:100], y[:100]).mean() - 2 * k(x[:100], y[:100]).mean()
  assert biased > 0.1
  # Shifted by m in every dimension: E k(x,y) with k = (x.y/d + 1)^3 gives MMD^2 in closed form.
  d, m = 8, 1.0
  x, y = rng.normal(size=(4000, d)), rng.normal(size=(4000, d)) + m
  # For independent Gaussians: E(x.y/d+1)^3 terms; computed exactly by moment expansion below.
  def e_k(mx, my):  # E[(u + 1)^3], u = x.y/d, x ~ N(mx 1, I), y ~ N(my 1, I) (y independent copy)
    mean = mx * my
    var = (1 + mx * mx + my * my) / d  # Var(x.y)/d^2 for independent isotropic Gaussians
    third = 6 * mx * my / (d * d)  # E[(u - mean)^3]
    return (mean + 1) ** 3 + 3 * (mean + 1) * var + third
  want = e_k(0, 0) + e_k(m, m) - 2 * e_k(0, m)
  got = fs.kid(x, y, subsets=10, subset_size=1000)[0]
  np.testing.assert_allclose(got, want, rtol=0.1)


def test_inception_score_of_uniform_and_one_hot_predictions():
  uniform = np.zeros((1000, 10))
  np.testing.assert_allclose(fs.inception_score(uniform)[0], 1.0, rtol=1e-9)
  one_hot = np.full((1000, 10), -1e4)
  one_hot[np.arange(1000), np.arange(1000) % 10] = 0.0  # confident and balanced: IS = #classes
  mean, std = fs.inception_score(one_hot)
  np.testing.assert_allclose(mean, 10.0, rtol=1e-6)
  assert std < 1e-6


def test_precision_recall():
  rng = np.random.default_rng(4)
  real = rng.normal(size=(1000, 2))
  p, r = fs.precision_recall(real, rng.normal(size=(1000, 2)))
  assert p > 0.9 and r > 0.9
  p, r = fs.precision_recall(real, rng.normal(size=(1000, 2)) * 0.1)  # collapsed on the mode
  assert p > 0.95 and r < 0.3
  p, r = fs.precision_recall(real, rng.normal(size=(1000, 2)) + 20.0)  # elsewhere
  assert p == 0.0 and r == 0.0


def test_density_and_coverage_by_hand_and_on_equal_distributions():
  real = np.arange(10.0)[:, None]  # k = 1: every ball has radius 1 (strict, as prdc)
  fake = np.array([[0.5], [0.0], [100.0]])  # in 2, 1 and 0 balls
  density, coverage = fs.density_coverage(real, fake, k=1)
  assert density == pytest.approx(3 / 3) and coverage == pytest.approx(2 / 10)
  rng = np.random.default_rng(5)
  density, coverage = fs.density_coverage(rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4)))
  # Equal distributions: E density = 1, E coverage = 1 - 2^-k = 0.969 for k = 5 (Naeem et al.)
  assert abs(density - 1.0) < 0.06 and abs(coverage - (1 - 0.5**5)) < 0.02
  density, coverage = fs.density_coverage(rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4)) + 5)
  assert density < 0.01 and coverage < 0.01


def test_clean_resize_is_pil_bicubic_on_float_channels():
  from PIL import Image

  from gen.metrics.quality import clean_resize
  images = np.random.default_rng(6).integers(0, 256, (2, 28, 28, 3), dtype=np.uint8)
  got = clean_resize(images, 299)
  want = np.asarray(Image.fromarray(images[1, :, :, 2].astype(np.float32), mode="F").resize(
      (299, 299), Image.BICUBIC)).clip(0, 255)
  np.testing.assert_array_equal(got[1, :, :, 2], want)
  assert got.dtype == np.float32 and got.shape == (2, 299, 299, 3)
  assert np.all(clean_resize(np.full((1, 28, 28, 1), 77, np.uint8), 299) == np.float32(77))
  board = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)[None, :, :, None]
  np.testing.assert_allclose(clean_resize(board, 8), 127.5, atol=1.0)  # antialiased when shrinking


def test_digit_network_is_the_shipped_one_accurate_and_its_features_deterministic(optimized_jax):
  import hashlib

  from gen.data import split_images
  from gen.metrics import digits
  with open(digits.WEIGHTS, "rb") as f:
    assert hashlib.sha256(f.read()).hexdigest() == digits.WEIGHTS_SHA256
  net = digits.DigitFeatures()
  assert net.accuracy >= digits.MIN_ACCURACY
  test, labels = split_images("mnist5k:test")
  measured = float(np.mean(np.argmax(net(test)[1], axis=1) == labels))
  assert measured == pytest.approx(net.accuracy, abs=1e-3)  # what it says of itself
  images = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
  a, b = net(images), net(images)
  np.testing.assert_array_equal(a[0], b[0])
  assert a[0].shape == (5, 128) and a[1].shape == (5, 10)


def test_the_digit_network_trains(optimized_jax):
  """train() is how the shipped weights were made (its defaults: 12 epochs); one epoch of it
  already classifies most test digits."""
  from gen.metrics import digits
  params, accuracy = digits.train(epochs=1)
  assert accuracy > 0.85 and params["Dense_1"]["kernel"].shape == (128, 10)


def test_evaluate_images_against_a_split_and_the_floor(tmp_path, mnist5k_builder):
  result = run(["-m", "gen", "evaluate", "--images=mnist5k:test", "--ref=mnist5k:test",
                "--metrics=fid_digits,pr_digits,is_digits,dc_digits"])
  assert result.returncode == 0, result.stderr[-3000:]
  same = json.loads(result.stdout)
  assert same["coverage_digits"] == 1.0 and same["density_digits"] >= 1.0
  assert same["protocol"]["fid_digits"] == (
      "1000 samples vs mnist5k:test (1000 images), digits-v1, resize none")
  assert abs(same["fid_digits"]) < 1e-4  # a set against itself (float64 rounding of ~1e3 traces)
  assert same["precision_digits"] == same["recall_digits"] == 1.0
  assert same["is_digits"] > 8.0  # confident, balanced predictions on real digits
  noise = str(tmp_path / "noise.npz")
  np.savez(noise, images=np.random.default_rng(0).integers(0, 256, (200, 28, 28, 1), dtype=np.uint8))
  result = run(["-m", "gen", "evaluate", f"--images={noise}", "--ref=mnist5k:test", "--metrics=fid_digits"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads(result.stdout)["fid_digits"] > 100 * max(same["fid_digits"], 1.0)


def test_gan_run_logs_digit_metrics_and_keeps_the_best_checkpoint(tmp_path):
  workdir = str(tmp_path / "gan")
  args = [*TINY_GAN, "--config.num_steps=4", "--config.eval_every=2", "--config.checkpoint_every=2",
          "--config.eval.num_samples=100", "--config.keep_checkpoints=1",
          "--config.eval.metrics=fid_digits,kid_digits", "--config.eval.best_metric=fid_digits"]
  result = run(["train_gan.py", f"--workdir={workdir}", *args])
  assert result.returncode == 0, result.stderr[-3000:]
  evals = [r for r in metrics_rows(workdir) if "test_fid_digits" in r]
  assert [e["step"] for e in evals] == [2, 4]
  best = min(evals, key=lambda e: e["test_fid_digits"])["step"]
  assert os.listdir(os.path.join(workdir, "checkpoints_best")) == [str(best)]
  assert os.listdir(os.path.join(workdir, "checkpoints")) == ["4"]
  result = run(["-m", "gen", "evaluate", f"--workdir={workdir}", "--metrics=fid_digits,kid_digits",
                "--num_samples=100"])
  assert result.returncode == 0, result.stderr[-3000:]
  printed = json.loads(result.stdout)
  np.testing.assert_allclose(printed["fid_digits"], evals[-1]["test_fid_digits"], rtol=1e-6)
  # Each eval row and evaluate's output say how the numbers were measured.
  measured = "100 samples vs mnist5k:test (1000 images), digits-v1, resize none"
  assert evals[-1]["protocol"] == {"fid_digits": measured, "kid_digits": measured,
                                   "kid_std_digits": measured}
  assert printed["protocol"]["kid_digits"] == measured


@pytest.mark.parametrize("args,message", [
    (["--metrics=fid"], "no Inception weights at"),
    (["--metrics=nll"], "only sample-quality metrics apply"),
    (["--metrics=bogus"], "unknown metric 'bogus'"),
])
def test_evaluate_image_errors(tmp_path, args, message, monkeypatch):
  env_missing = str(tmp_path / "none.msgpack")
  monkeypatch.setenv("GEN_INCEPTION_WEIGHTS", env_missing)
  result = run(["-m", "gen", "evaluate", "--images=mnist5k:test", "--ref=mnist5k:test", *args])
  assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
