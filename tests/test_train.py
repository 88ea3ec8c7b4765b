"""The shared trainer end to end: CLI runs, checkpoints, exact resume, data parallelism, errors."""

import json
import os

import chex
import jax
import numpy as np
import pytest
from conftest import TINY_GAN, assert_same_training, metrics_rows, run

from gen.configs.gan import get_config
from gen.data.builders import tf_and_tfds
from gen.errors import UserError
from gen.runs import run_dir
from gen.runs.checkpointing import Checkpointer, abstract_like
from gen.train import sharding, train


def tiny_config(**top):
  c = get_config("tiny")  # no evaluation: it has its own tests (test_metrics.py)
  c.update(top)
  return c


def restore(workdir, config, step=None):
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), read_only=True)
  family = run_dir.restore_run(workdir)[1]
  shapes = jax.eval_shape(family.init_state, jax.random.key(config.seed))
  return ckpt.restore(abstract_like(shapes, sharding.replicated(sharding.make_mesh())), step)


metrics = metrics_rows


def test_resume_is_bitwise_identical_to_an_uninterrupted_run(tmp_path):
  # 3 steps per call, cut at every checkpoint (2, 4, 6): calls of 2 and of 1 steps.
  config = lambda n: tiny_config(num_steps=n, steps_per_call=3)
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  train(config(6), straight)
  train(config(4), resumed)  # stops at 4 ...
  train(config(6), resumed)  # ... and resumes to 6
  a, meta_a = restore(straight, tiny_config())
  b, meta_b = restore(resumed, tiny_config())
  assert int(a.step) == int(b.step) == 6
  assert meta_a["data_position"] == meta_b["data_position"] == 6 * 8
  chex.assert_trees_all_equal(a, b)
  assert metrics(straight) == metrics(resumed)
  assert [r["step"] for r in metrics(resumed)] == [1, 2, 3, 4, 5, 6]
  # keep_checkpoints=3 keeps the latest three.
  assert sorted(os.listdir(os.path.join(resumed, "checkpoints"))) == ["2", "4", "6"]


def test_resume_is_exact_with_a_stateful_d_regularizer(tmp_path):
  """LeCam's moving averages are part of the checkpoint: a resumed run continues them exactly."""
  config = lambda n: tiny_config(num_steps=n, loss=dict(kind="hinge", lecam_weight=0.3, lecam_decay=0.99))
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  train(config(4), straight)
  train(config(2), resumed)
  train(config(4), resumed)
  a, _ = restore(straight, config(4))
  b, _ = restore(resumed, config(4))
  assert int(b.d_reg["lecam"]["count"]) == 4
  chex.assert_trees_all_equal(a, b)
  assert metrics(straight) == metrics(resumed) and "lecam" in metrics(straight)[0]


def test_train_gan_cli_end_to_end_and_sample(tmp_path):
  workdir = str(tmp_path / "run")
  result = run(["train_gan.py", f"--workdir={workdir}", *TINY_GAN])
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  assert os.listdir(os.path.join(workdir, "checkpoints")) == ["2"]
  assert os.path.exists(os.path.join(workdir, "samples", "samples_0000002.png"))
  rows = metrics(workdir)
  # TensorBoard holds the same scalars as metrics.jsonl.
  tf = tf_and_tfds()[0]
  board = os.path.join(workdir, "tensorboard")
  (events,) = [os.path.join(board, f) for f in os.listdir(board)]
  logged = {(e.step, v.tag): float(tf.make_ndarray(v.tensor))
            for e in map(tf.compat.v1.Event.FromString, tf.data.TFRecordDataset(events).as_numpy_iterator())
            for v in e.summary.value}
  assert logged[(2, "d_loss")] == pytest.approx(rows[1]["d_loss"], rel=1e-6)
  assert [r["step"] for r in rows] == [1, 2]
  assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in rows)
  with open(os.path.join(workdir, "config.json")) as f:
    config = json.load(f)
  assert config["family"] == "gan" and config["model"]["ngf"] == 8 and config["data"]["name"] == "mnist5k"

  out = str(tmp_path / "s.npz")
  result = run(["-m", "gen", "sample", f"--workdir={workdir}", "--num=10", f"--out={out}", "--seed=3"])
  assert result.returncode == 0, result.stderr[-3000:]
  with np.load(out) as f:
    images = f["images"]
    assert images.shape == (10, 28, 28, 1) and images.dtype == np.uint8
    assert "labels" not in f
  assert images.std() > 0
  again = str(tmp_path / "t.npz")
  assert run(["-m", "gen", "sample", f"--workdir={workdir}", "--num=10", f"--out={again}",
              "--seed=3"]).returncode == 0
  np.testing.assert_array_equal(images, np.load(again)["images"])


@pytest.mark.slow
def test_four_devices_match_one_device(tmp_path):
  args = [*TINY_GAN, "--config.num_steps=4", "--config.checkpoint_every=4", "--config.sample_every=4"]
  one, four = str(tmp_path / "one"), str(tmp_path / "four")
  r1 = run(["train_gan.py", f"--workdir={one}", *args], devices=1)
  r4 = run(["train_gan.py", f"--workdir={four}", *args], devices=4)
  assert r1.returncode == 0, r1.stderr[-3000:]
  assert r4.returncode == 0, r4.stderr[-3000:]
  m1, m4 = metrics(one), metrics(four)
  assert len(m1) == len(m4) == 4
  assert_same_training(m1, m4, "gan", names=("d_loss", "g_loss", "d_real", "d_fake"))


@pytest.mark.parametrize("args,devices,message", [
    (["--config.model.no_such_key=1"], 1, "no_such_key"),
    (["--config.optim.g_lr=fast"], 1, "fast"),
    (["--config.batch_size=6"], 4, "error: batch_size=6 must be a positive multiple of the device count (4)"),
    (["--config=gen/configs/gan.py:nope"], 1, "unknown gan config variant 'nope'"),
])
def test_bad_input_is_one_clear_line(tmp_path, args, devices, message):
  result = run(["train_gan.py", f"--workdir={tmp_path / 'w'}", *TINY_GAN, *args], devices=devices)
  assert result.returncode != 0
  assert message in result.stderr
  assert "Traceback" not in result.stderr


@pytest.mark.parametrize("section,name,value,message", [
    ("optim", "g_lr", -0.1, "optim.g_lr=-0.1 must be positive"),
    ("data", "name", "no_such_dataset", "unknown dataset 'no_such_dataset'"),
    ("data", "image_size", "48", "the convolutional models do not support image size 48"),
])
def test_bad_values_stop_the_run_at_start(tmp_path, section, name, value, message):
  c = tiny_config()
  c[section][name] = value
  with pytest.raises(UserError, match=f"^{message}"):
    train(c, str(tmp_path))


def test_unwritable_workdir(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("not a directory")
  with pytest.raises(UserError, match="is not writable"):
    train(tiny_config(num_steps=1), str(blocker / "run"))


def test_sample_errors(tmp_path):
  result = run(["-m", "gen", "sample", f"--workdir={tmp_path / 'missing'}", "--num=2",
                f"--out={tmp_path / 'x.npz'}"])
  assert result.returncode == 2
  assert "error: workdir" in result.stderr and "does not exist" in result.stderr
  assert "Traceback" not in result.stderr
