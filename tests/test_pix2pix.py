"""The pix2pix family: U-Net and PatchGAN sizes, paired data, the step's order, end to end."""

import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import metrics_rows, run
from PIL import Image

from gen.configs.pix2pix import get_config
from gen.data import DatasetInfo, Pipeline, open_builder
from gen.data.digits2bold import bold_inverse
from gen.data.mnist5k import load_rows, split_indices
from gen.errors import UserError
from gen.families.pix2pix import Pix2pix
from gen.models.cyclegan import PatchDiscriminator
from gen.models.pix2pix import UnetGenerator, auto_downs
from gen.objectives import losses
from gen.runs.run_dir import restore_for_inference
from gen.train import train

TINY = ["--config=gen/configs/pix2pix.py:tiny"]


def _count(module, shape, **rngs):
  keys = {"params": jax.random.key(0), **{k: jax.random.key(1) for k in rngs}}
  variables = jax.eval_shape(lambda: module.init(keys, jnp.zeros(shape)))
  return sum(x.size for x in jax.tree.leaves(variables["params"]))


def test_networks_have_the_authors_parameter_counts():
  # junyanz/pytorch-CycleGAN-and-pix2pix issue #1152 prints, for greyscale pix2pix with batch
  # norm: unet_256 (num_downs 8) 54.408 M and its 70x70 PatchGAN (input 1 + output 1
  # channels) 2.765 M; unet_64 (num_downs 6) 29.238 M and a 2-layer PatchGAN 0.662 M.
  assert round(_count(UnetGenerator(1, 8), (1, 256, 256, 1), dropout=1) / 1e6, 3) == 54.408
  assert round(_count(PatchDiscriminator(64, 3, "batch"), (1, 256, 256, 2)) / 1e6, 3) == 2.765
  assert round(_count(UnetGenerator(1, 6), (1, 64, 64, 1), dropout=1) / 1e6, 3) == 29.238
  assert round(_count(PatchDiscriminator(64, 2, "batch"), (1, 64, 64, 2)) / 1e6, 3) == 0.662
  # RGB (facades): the layer sizes of issue #1614's torchsummary, 54,413,955 in all.
  assert _count(UnetGenerator(3, 8), (1, 256, 256, 3), dropout=1) == 54_413_955
  # CycleGAN's instance-norm PatchGAN is unchanged by the batch-norm option.
  assert _count(PatchDiscriminator(64, 3), (1, 256, 256, 3)) == 2_764_737
  assert auto_downs(256, 256) == 8 and auto_downs(128, 128) == 7 and auto_downs(28, 28) == 5


def test_unet_pads_to_its_depth_and_drops_out_only_where_the_authors_do():
  x = jax.random.uniform(jax.random.key(0), (2, 28, 36, 1), minval=-1, maxval=1)
  for downs, dropout_layers in ((5, False), (6, True)):
    g = UnetGenerator(1, downs, ngf=4)
    # Jitted: op by op, these few calls compile ~280 small programs.
    v = jax.jit(lambda x: g.init({"params": jax.random.key(1), "dropout": jax.random.key(2)},
                                 x, train=False))(x)
    infer = jax.jit(lambda v, x: g.apply(v, x, train=False))
    y = infer(v, x)
    assert y.shape == x.shape and float(jnp.abs(y).max()) <= 1.0
    train = jax.jit(lambda k: g.apply(v, x, train=True, rngs={"dropout": jax.random.key(k)},
                                      mutable=["batch_stats"])[0])
    assert bool(jnp.any(train(3) != train(4))) == dropout_layers
    np.testing.assert_array_equal(infer(v, x), y)  # inference: deterministic


def test_paired_digits_are_x_beside_t_x_and_crops_and_flips_move_both_halves():
  builder = open_builder("digits2bold_pairs")
  images, labels = load_rows()
  test = split_indices(labels, "test")
  test = test[np.argsort(np.arange(len(test)) % 100, kind="stable")]
  batch = next(iter(Pipeline(builder, "test", batch_size=10, repeat=False, paired=True,
                             value_range=(0.0, 255.0))))
  assert batch["image"].shape == (10, 28, 28, 2)
  a, b = batch["image"][..., :1].astype(np.uint8), batch["image"][..., 1:].astype(np.uint8)
  np.testing.assert_array_equal(a, images[test[:10]])
  np.testing.assert_array_equal(b, bold_inverse(images[test[:10]]))
  # T commutes with a flip, so flipped (and cropped alike) halves still satisfy B = T(A).
  flipped = next(iter(Pipeline(builder, "train", batch_size=64, seed=1, paired=True,
                               random_flip=True, value_range=(0.0, 255.0))))["image"]
  a, b = flipped[..., :1].astype(np.uint8), flipped[..., 1:].astype(np.uint8)
  np.testing.assert_array_equal(b, bold_inverse(a))


def one_step(c):
  """A tiny pix2pix on random 32x32 pairs: (family, state, batch, key) and its step's output."""
  family = Pix2pix(c, DatasetInfo("d", (32, 32, 2), 0, 100))
  state = jax.jit(family.init_state)(jax.random.key(0))
  k = jax.random.split(jax.random.key(1), 2)
  batch = {"A": {"image": jax.random.uniform(k[0], (4, 32, 32, 1), minval=-1, maxval=1)},
           "B": {"image": jax.random.uniform(k[1], (4, 32, 32, 1), minval=-1, maxval=1)}}
  key = jax.random.key(2)
  return (family, state, batch, key, *jax.jit(family.update)(state, batch, key))


def test_step_updates_d_first_then_g_against_the_new_d():
  c = get_config("tiny")
  family, state, batch, key, new, metrics = one_step(c)

  @jax.jit
  def by_hand(state, new_d, batch, key):
    """D's step on (real, fake), then G's loss against the updated D, G's gradient straight
    through G (not by the step's pull-back)."""
    x, y = batch["A"]["image"], batch["B"]["image"]
    fake, _ = family._g(state.g.params, state.g.batch_stats, x, True, key)
    real_logits, s = family._d(state.d.params, state.d.batch_stats, x, y)
    fake_logits, s = family._d(state.d.params, s, x, fake)
    # the authors' 'vanilla' GANLoss: 0.5 (BCE(D(x, y), 1) + BCE(D(x, y'), 0))
    d_loss = 0.5 * (jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits)))

    def g_loss(p):
      out, _ = family._g(p, state.g.batch_stats, x, True, key)
      logits, _ = family._d(new_d.params, new_d.batch_stats, x, out)
      return jnp.mean(jax.nn.softplus(-logits)) + 100.0 * jnp.mean(jnp.abs(out - y))

    value, grads = jax.value_and_grad(g_loss)(state.g.params)
    grad_norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree.leaves(grads)))
    return d_loss, value, grad_norm, losses.l1(fake, y)

  d_loss, g_loss, g_grad_norm, l1 = by_hand(state, new.d, batch, key)
  assert float(metrics["d_loss"]) == pytest.approx(float(d_loss), rel=1e-6)
  assert float(metrics["g_loss"]) == pytest.approx(float(g_loss), rel=1e-5)
  assert float(metrics["g_grad_norm"]) == pytest.approx(float(g_grad_norm), rel=1e-4)
  assert float(metrics["l1"]) == pytest.approx(float(l1), rel=1e-6)


def test_lsgan_is_the_authors_mse():
  """loss.kind=lsgan as the authors' GANLoss('lsgan'): D on 0.5 (MSE(D(x, y), 1) + MSE(D(x, y'), 0)),
  G's adversarial term MSE(D(x, y'), 1) against the updated D, beside 100 L1."""
  c = get_config("tiny")
  c.loss.kind = "lsgan"
  family, state, batch, key, new, metrics = one_step(c)

  @jax.jit
  def by_hand(state, new_d, batch, key):
    x, y = batch["A"]["image"], batch["B"]["image"]
    fake, _ = family._g(state.g.params, state.g.batch_stats, x, True, key)
    real_logits, s = family._d(state.d.params, state.d.batch_stats, x, y)
    fake_logits, _ = family._d(state.d.params, s, x, fake)
    d_loss = 0.5 * (jnp.mean((real_logits - 1.0) ** 2) + jnp.mean(fake_logits**2))
    logits, _ = family._d(new_d.params, new_d.batch_stats, x, fake)
    return d_loss, jnp.mean((logits - 1.0) ** 2), jnp.mean(jnp.abs(fake - y))

  d_loss, g_adv, l1 = by_hand(state, new.d, batch, key)
  assert float(metrics["d_loss"]) == pytest.approx(float(d_loss), rel=1e-6)
  assert float(metrics["g_adv"]) == pytest.approx(float(g_adv), rel=1e-6)
  assert float(metrics["g_loss"]) == pytest.approx(float(metrics["g_adv"] + 100.0 * l1), rel=1e-6)


def test_bad_values_are_one_line():
  info = DatasetInfo("d", (28, 28, 2), 10, 100)
  for key, value, message in (("model.norm", "group", "model.norm='group'"),
                              ("direction", "AtoC", "direction='AtoC'"),
                              ("loss.kind", "hinge", "loss.kind='hinge'")):
    c = get_config("tiny")
    c.unlock()
    if "." in key:
      section, name = key.split(".")
      c[section][name] = value
    else:
      c[key] = value
    with pytest.raises(UserError, match=message):
      Pix2pix(c, info)
  c = get_config("tiny")
  c.model.d_layers = 3
  with pytest.raises(UserError, match=r"^a 3-layer PatchGAN needs images of at least 24x24, not 16x16"):
    Pix2pix(c, DatasetInfo("d", (16, 16, 2), 10, 100))


def test_resume_is_bitwise_identical(tmp_path):
  def config(num_steps):
    c = get_config("tiny")
    c.num_steps, c.eval.metrics = num_steps, ""
    return c

  straight, resumed = str(tmp_path / "a"), str(tmp_path / "b")
  train(config(4), straight)
  train(config(2), resumed)
  train(config(4), resumed)
  a, b = restore_for_inference(straight)[2], restore_for_inference(resumed)[2]
  assert int(a.step) == int(b.step) == 4
  chex.assert_trees_all_equal(a, b)
  assert metrics_rows(straight) == metrics_rows(resumed)


def test_train_pix2pix_cli_end_to_end_translate_and_mistakes(tmp_path):
  workdir = str(tmp_path / "run")
  result = run(["train_pix2pix.py", f"--workdir={workdir}", *TINY])
  assert result.returncode == 0, result.stderr[-3000:]
  assert os.path.exists(os.path.join(workdir, "samples", "AtoB_0000002.png"))
  final = metrics_rows(workdir)[-1]
  # digits2bold's test baselines (as CycleGAN's), and no BtoA: pix2pix translates one way.
  assert final["test_mae_identity"] == pytest.approx(0.8649, abs=1e-3)
  assert final["test_mae_AtoB_meanB"] == pytest.approx(0.2043, abs=1e-3)
  assert 0 < final["test_mae_AtoB"] < 1 and "test_mae_BtoA" not in final

  digits = load_rows()[0][:3]
  src, out = str(tmp_path / "in.npz"), str(tmp_path / "out.npz")
  np.savez(src, images=digits)
  result = run(["-m", "gen", "translate", f"--workdir={workdir}", "--direction=AtoB",
                f"--input={src}", f"--out={out}"])
  assert result.returncode == 0, result.stderr[-3000:]
  with np.load(out) as f:
    assert f["images"].shape == (3, 28, 28, 1) and f["images"].dtype == np.uint8
  result = run(["-m", "gen", "translate", f"--workdir={workdir}", "--direction=BtoA",
                f"--input={src}", f"--out={out}"])
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-1] == \
      "error: direction 'BtoA' is not one of AtoB for this model"
  result = run(["train_pix2pix.py", f"--workdir={tmp_path / 'x'}", *TINY,
                "--config.eval.metrics=fid_BtoA_digits"])
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert "translates AtoB only" in result.stderr.strip().splitlines()[-1]


def test_pix2pix_from_a_folder_of_side_by_side_pairs(tmp_path):
  """pix2pix's own dataset layout: train/ and val/ of A|B images, any (even) width."""
  images, _ = load_rows()
  root = tmp_path / "pairs"
  for split, lo, hi in (("train", 0, 12), ("val", 12, 16)):
    (root / split).mkdir(parents=True)
    for i in range(lo, hi):
      x = images[i, :, :, 0]
      Image.fromarray(np.concatenate([x, 255 - x], axis=1)).save(root / split / f"{i}.png")
  workdir = str(tmp_path / "run")
  result = run(["train_pix2pix.py", f"--workdir={workdir}", *TINY,
                f"--config.data.name=folder:{root}", "--config.eval.split=val",
                f"--config.data.data_dir={tmp_path / 'tfds'}"])
  assert result.returncode == 0, result.stderr[-3000:]
  final = metrics_rows(workdir)[-1]
  # mae_identity = mean |x - (255 - x)| / 255 over the 4 val digits, computed from the files.
  val = images[12:16].astype(np.float64)
  assert final["val_mae_identity"] == pytest.approx(np.mean(np.abs(2 * val - 255)) / 255, abs=1e-5)
