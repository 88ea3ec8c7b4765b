"""The CycleGAN family: networks, history pool, losses, schedule, digits2bold; end to end and resume."""

import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import TINY_CYCLEGAN, metrics_rows, run
from PIL import Image

from gen.configs.cyclegan import get_config
from gen.data import DatasetInfo, open_builder, splits_info
from gen.data.digits2bold import bold_inverse
from gen.errors import UserError
from gen.families.cyclegan import CycleGAN
from gen.images import read_images
from gen.objectives import losses
from gen.objectives.image_pool import ImagePool
from gen.objectives.schedules import constant_then_linear as learning_rate
from gen.runs.run_dir import restore_for_inference
from gen.train import evaluation, train

TINY = TINY_CYCLEGAN


def count(tree):
  return sum(x.size for x in jax.tree.leaves(tree))


def test_networks_match_the_reference_sizes():
  """pytorch-CycleGAN at 256x256x3: ResnetGenerator (9 blocks) 11,378,179, NLayerDiscriminator 2,764,737."""
  family = CycleGAN(get_config("horse2zebra"), DatasetInfo("h2z", (256, 256, 3), 2, 1334))
  state = jax.eval_shape(family.init_state, jax.random.key(0))
  assert count(state.g_ab.params) == 11_378_179
  assert count(state.d_a.params) == 2_764_737
  assert len([k for k in state.g_ab.params if k.startswith("ResidualBlock")]) == 9
  x = jnp.zeros((1, 256, 256, 3))
  patches = jax.eval_shape(lambda p: family.discriminator.apply({"params": p}, x), state.d_a.params)
  assert patches.shape == (1, 30, 30, 1)  # 70x70 receptive fields


def test_generator_output_range_and_six_blocks_below_256():
  c = get_config()
  c.model.blocks = 0  # the paper's choice by size
  shapes = jax.eval_shape(CycleGAN(c, DatasetInfo("d", (128, 128, 3), 2, 100)).init_state,
                          jax.random.key(0))
  assert len([k for k in shapes.g_ab.params if k.startswith("ResidualBlock")]) == 6
  c.model.ngf, c.model.blocks = 4, 1
  family = CycleGAN(c, DatasetInfo("d", (28, 28, 1), 10, 2000))
  state = jax.jit(family.init_state)(jax.random.key(0))
  x = jax.random.uniform(jax.random.key(1), (2, 28, 28, 1), minval=-1, maxval=1)
  y = family.jit_translate_batch(state, x, "AtoB")
  assert y.shape == x.shape and float(jnp.abs(y).max()) <= 1.0


def test_pool_fills_then_swaps_half_the_time():
  pool = ImagePool.create(3, (1, 1, 1))
  key = jax.random.key(0)
  # Filling: every image is stored and returned unchanged.
  for i in range(3):
    pool, out = pool.query(jnp.full((1, 1, 1, 1), float(i)), jax.random.fold_in(key, i))
    assert float(out[0, 0, 0, 0]) == i
  assert int(pool.count) == 3
  np.testing.assert_array_equal(pool.images.ravel(), [0.0, 1.0, 2.0])
  # Full: each query returns the new image, or a stored one that the new image then replaces.
  swaps = 0
  for i in range(3, 403):
    before = np.asarray(pool.images).ravel()
    pool, out = pool.query(jnp.full((1, 1, 1, 1), float(i)), jax.random.fold_in(key, i))
    after, got = np.asarray(pool.images).ravel(), float(out[0, 0, 0, 0])
    if got == i:
      np.testing.assert_array_equal(after, before)
    else:
      swaps += 1
      slot = int(np.flatnonzero(before == got)[0])
      assert after[slot] == i and np.array_equal(np.delete(after, slot), np.delete(before, slot))
  assert int(pool.count) == 3
  assert 160 <= swaps <= 240  # ~Binomial(400, 0.5)


def test_pool_handles_batches_in_order_and_size_zero_passes_through():
  pool = ImagePool.create(2, (1, 1, 1))
  batch = jnp.arange(3.0).reshape(3, 1, 1, 1)
  pool, out = pool.query(batch, jax.random.key(0))
  # The first two fill the pool and come back; the third meets a full pool: it comes back, or
  # a stored image does and the third takes its slot.
  assert int(pool.count) == 2
  assert float(out[0, 0, 0, 0]) == 0 and float(out[1, 0, 0, 0]) == 1
  assert sorted([*np.asarray(pool.images).ravel(), float(out[2, 0, 0, 0])]) == [0, 1, 2]
  empty = ImagePool.create(0, (1, 1, 1))
  _, out = empty.query(batch, jax.random.key(0))
  np.testing.assert_array_equal(out, batch)


def test_losses_by_hand():
  d_real, d_fake = jnp.asarray([0.5, 1.5]), jnp.asarray([0.2, -0.4])
  # D: 0.5 * (MSE(D(real), 1) + MSE(D(fake), 0)) = 0.5 * (0.25 + 0.1) = 0.175
  np.testing.assert_allclose(losses.translation_d_loss("lsgan", d_real, d_fake), 0.175, rtol=1e-6)
  # G: MSE(D(G(x)), 1) = ((0.8)^2 + (1.4)^2) / 2 = 1.3
  np.testing.assert_allclose(losses.translation_g_loss("lsgan", d_fake), 1.3, rtol=1e-6)
  np.testing.assert_allclose(losses.l1(jnp.asarray([1.0, -1.0]), jnp.asarray([0.5, 0.0])), 0.75)


@pytest.mark.slow
def test_step_combines_the_losses_with_the_papers_weights():
  family = CycleGAN(get_config("tiny"), DatasetInfo("d", (28, 28, 1), 10, 2000))
  state = jax.jit(family.init_state)(jax.random.key(0))
  rng = np.random.default_rng(0)
  batch = {d: {"image": jnp.asarray(rng.uniform(-1, 1, (2, 28, 28, 1)), jnp.float32)} for d in "AB"}
  new, (m, _, finite) = jax.jit(family.train_step)(state, batch)
  assert finite
  m = {k: float(v) for k, v in m.items()}
  want = (m["g_adv_ab"] + m["g_adv_ba"] + 10 * (m["cycle_a"] + m["cycle_b"])
          + 5 * (m["idt_a"] + m["idt_b"]))
  np.testing.assert_allclose(m["g_loss"], want, rtol=1e-5)
  # The cycle loss by hand: |G_BA(G_AB(a)) - a|.
  translate = jax.jit(family.translate_batch, static_argnums=2)
  rec = translate(state, translate(state, batch["A"]["image"], "AtoB"), "BtoA")
  np.testing.assert_allclose(m["cycle_a"], float(jnp.mean(jnp.abs(rec - batch["A"]["image"]))), rtol=1e-5)
  assert int(new.pool_a.count) == int(new.pool_b.count) == 2  # this batch's fakes entered the pools
  assert m["g_grad_norm"] > 0 and m["d_grad_norm"] > 0
  for name in ("g_ab", "g_ba", "d_a", "d_b"):
    assert not np.array_equal(jax.tree.leaves(getattr(new, name).params)[0],
                              jax.tree.leaves(getattr(state, name).params)[0]), name


@pytest.mark.parametrize("unit,per_epoch", [("steps", 1), ("epochs", 10)])
def test_learning_rate_is_constant_then_linear_to_zero(unit, per_epoch):
  c = get_config().optim
  c.unit, c.constant, c.decay = unit, 100, 100
  schedule = learning_rate(c, per_epoch, c.lr)
  at = lambda step: float(schedule(step * per_epoch))
  assert at(0) == at(99) == pytest.approx(2e-4)
  assert at(150) == pytest.approx(1e-4)
  assert at(200) == pytest.approx(0.0, abs=1e-12)


def test_digits2bold_is_unpaired_for_training_and_exact_for_testing():
  builder = open_builder("digits2bold")
  read = lambda split: np.stack([x["image"] for x in tfds.as_numpy(builder.as_dataset(split=split))])
  train_a, train_b, test_a, test_b = (read(s) for s in ("trainA", "trainB", "testA", "testB"))
  assert len(train_a) == len(train_b) == 2000 and len(test_a) == len(test_b) == 1000
  np.testing.assert_array_equal(test_b, bold_inverse(test_a))
  assert not any(np.array_equal(bold_inverse(train_a[:50]), train_b[i:i + 50]) for i in (0, 1))
  # T by hand on one pixel: 1 - max over the 3x3 neighbourhood, zero beyond the border.
  x = np.zeros((1, 5, 5, 1), np.uint8)
  x[0, 0, 0, 0], x[0, 2, 2, 0] = 200, 100
  t = bold_inverse(x)[0, :, :, 0]
  assert t[0, 0] == t[1, 1] == 55 and t[2, 2] == t[3, 3] == 155 and t[4, 4] == 255 and t[1, 2] == 155


@pytest.mark.slow
def test_train_cyclegan_cli_end_to_end_and_translate(tmp_path):
  workdir = str(tmp_path / "run")
  result = run(["train_cyclegan.py", f"--workdir={workdir}", *TINY])
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  assert os.listdir(os.path.join(workdir, "checkpoints")) == ["2"]
  for name in ("AtoBtoA", "BtoAtoB"):
    assert os.path.exists(os.path.join(workdir, "samples", f"{name}_0000002.png"))
  rows = metrics_rows(workdir)
  assert [r["step"] for r in rows] == [1, 2, 2]
  final = rows[-1]
  # The trivial baselines on digits2bold's test set, from the data alone.
  assert final["test_mae_identity"] == pytest.approx(0.8649, abs=1e-3)
  assert final["test_mae_AtoB_meanB"] == pytest.approx(0.2043, abs=1e-3)
  assert 0 < final["test_mae_AtoB"] < 1 and 0 < final["test_mae_BtoA"] < 1

  # .npz in, .npz out; then a folder of PNGs.
  digits = np.asarray(Image.new("L", (28, 28)))[None, :, :, None].repeat(3, axis=0)
  src, out = str(tmp_path / "in.npz"), str(tmp_path / "out.npz")
  np.savez(src, images=digits)
  result = run(["-m", "gen", "translate", f"--workdir={workdir}", "--direction=AtoB",
                f"--input={src}", f"--out={out}"])
  assert result.returncode == 0, result.stderr[-3000:]
  with np.load(out) as f:
    assert f["images"].shape == (3, 28, 28, 1) and f["images"].dtype == np.uint8
    from_npz = f["images"]
  folder = tmp_path / "pngs"
  folder.mkdir()
  for i in range(3):
    Image.fromarray(digits[i, :, :, 0]).save(folder / f"{i}.png")
  result = run(["-m", "gen", "translate", f"--workdir={workdir}", "--direction=AtoB",
                f"--input={folder}", f"--out={out}"])
  assert result.returncode == 0, result.stderr[-3000:]
  with np.load(out) as f:
    np.testing.assert_array_equal(f["images"], from_npz)
    assert list(f["names"]) == ["0.png", "1.png", "2.png"]

  result = run(["-m", "gen", "sample", f"--workdir={workdir}", f"--out={out}"])
  assert result.returncode == 2 and "use gen translate" in result.stderr

  # Wrong size, wrong channels, no images key: one line each (gen translate prints these).
  _, family, state = restore_for_inference(workdir)
  for bad, message in ((np.zeros((2, 32, 32, 1), np.uint8), "input images are 32x32x1; this model "
                                                            "translates 28x28x1"),
                       (np.zeros((2, 28, 28, 3), np.uint8), "input images are 28x28x3")):
    with pytest.raises(UserError, match=f"^{message}"):
      family.translate(state, bad, "AtoB")
  np.savez(src, pictures=digits)
  with pytest.raises(UserError, match="has no 'images' array"):
    read_images(src)

  # Translation FID: a translator that changes nothing scores exactly FID(testA, testB).
  from gen.data import split_images
  from gen.metrics import quality
  from gen.train import sharding
  config, family, state = restore_for_inference(workdir)
  family.translate_batch = lambda state, x, direction: x
  protocol = {}
  got = evaluation.evaluate(config, family, state, open_builder("digits2bold"), sharding.make_mesh(),
                         ["fid_AtoB_digits", "fid_BtoA_digits"], protocol)
  test_a, test_b = split_images("digits2bold:testA")[0], split_images("digits2bold:testB")[0]
  want = quality.quality(["fid_digits"], test_a, None, test_b, config, {})["fid_digits"]
  assert got["fid_AtoB_digits"] == pytest.approx(want, rel=1e-6) and want > 10
  assert got["fid_BtoA_digits"] == pytest.approx(
      quality.quality(["fid_digits"], test_b, None, test_a, config, {})["fid_digits"], rel=1e-6)
  assert protocol["fid_AtoB_digits"] == (
      "1000 testA translated vs digits2bold:testB (1000 images), digits-v1, resize none")


@pytest.mark.slow
def test_cyclegan_resume_is_bitwise_identical_including_the_pool(tmp_path):
  def config(num_steps):
    c = get_config("tiny")
    c.num_steps = num_steps
    c.eval.metrics = ""
    return c

  straight, resumed = str(tmp_path / "a"), str(tmp_path / "b")
  train(config(6), straight)
  train(config(4), resumed)
  train(config(6), resumed)
  a = restore_for_inference(straight)[2]
  b = restore_for_inference(resumed)[2]
  assert int(a.step) == int(b.step) == 6
  assert int(b.pool_a.count) == 3 and float(jnp.abs(b.pool_b.images).sum()) > 0  # full, swapping
  chex.assert_trees_all_equal(a, b)
  assert metrics_rows(straight) == metrics_rows(resumed)


def test_bad_values():
  info = DatasetInfo("d", (28, 28, 1), 10, 2000)
  c = get_config()
  c.optim.unit = "hours"
  with pytest.raises(UserError, match="optim.unit='hours'"):
    CycleGAN(c, info)
  with pytest.raises(UserError, match="divisible by 4"):
    CycleGAN(get_config(), DatasetInfo("d", (30, 30, 1), 10, 2000))


def test_an_epoch_is_the_whole_split_on_any_number_of_processes(monkeypatch):
  """Each process reads a slice of trainA/trainB, but the lr schedule's epoch is the whole split
  over the global batch: on N hosts the decay must not start N times too early."""
  builder = open_builder("digits2bold")
  c = get_config("tiny")
  one = splits_info(builder, ("trainA", "trainB"), c.data.image_size)
  monkeypatch.setattr(jax, "process_count", lambda: 2)
  two = splits_info(builder, ("trainA", "trainB"), c.data.image_size)
  assert one == two and one.num_examples == max(
      builder.info.splits[s].num_examples for s in ("trainA", "trainB"))
