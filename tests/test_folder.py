"""`folder:PATH` datasets: layouts, classes, conversions, bad files, any size; end to end."""

import os

import numpy as np
import pytest
from conftest import TINY_CYCLEGAN, TINY_GAN, metrics_rows, run
from PIL import Image

from gen.data import Pipeline, open_builder
from gen.data.mnist5k import load_rows
from gen.errors import UserError

DIGITS, LABELS = load_rows()


def _write(path, array, **kw):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array).save(path, **kw)


def _classes(root, per_class=6, classes=(0, 1, 2), wide=False):
  """Digits as PNGs in class sub-directories `c0`, `c1`, ...; every third one 28x38 if wide."""
  out = {}
  for c in classes:
    rows = np.flatnonzero(c == LABELS)[:per_class]
    for j, i in enumerate(rows):
      x = DIGITS[i, :, :, 0]
      if wide and j % 3 == 0:
        x = np.concatenate([x, x[:, :10]], axis=1)
      _write(os.path.join(root, f"c{c}", f"{j:02d}.png"), x)
      out[os.path.join(f"c{c}", f"{j:02d}.png")] = x
  return out


def _all(builder, split):
  import tensorflow_datasets as tfds
  return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def test_class_directories_give_labels_and_a_seeded_split(tmp_path):
  files = _classes(str(tmp_path / "digits"), per_class=10)
  data_dir = str(tmp_path / "tfds")
  b = open_builder(f"folder:{tmp_path / 'digits'}", data_dir, folder_test_fraction=0.2)
  assert b.info.features["label"].names == ["c0", "c1", "c2"]
  assert b.info.features["image"].shape == (28, 28, 1)
  assert {k: v.num_examples for k, v in b.info.splits.items()} == {"train": 24, "test": 6}
  examples = _all(b, "train") + _all(b, "test")
  # Every file exactly once, with its pixels and its directory's class.
  by_pixels = {x.tobytes(): rel for rel, x in files.items()}
  seen = sorted(by_pixels[e["image"][..., 0].tobytes()] for e in examples)
  assert seen == sorted(files)
  for e in examples:
    assert f"c{e['label']}" == os.path.dirname(by_pixels[e["image"][..., 0].tobytes()])
  # The same folder is the same dataset (prepared once): same split, same name.
  again = open_builder(f"folder:{tmp_path / 'digits'}", data_dir, folder_test_fraction=0.2)
  assert again.info.full_name == b.info.full_name
  assert [e["image"].tobytes() for e in _all(again, "test")] == \
         [e["image"].tobytes() for e in _all(b, "test")]
  # A changed folder is prepared again.
  _write(str(tmp_path / "digits" / "c1" / "new.png"), DIGITS[0, :, :, 0])
  changed = open_builder(f"folder:{tmp_path / 'digits'}", data_dir, folder_test_fraction=0.2)
  assert changed.info.full_name != b.info.full_name
  assert sum(s.num_examples for s in changed.info.splits.values()) == 31


def test_split_directories_and_the_cyclegan_layout(tmp_path):
  for split, lo in (("train", 0), ("test", 10)):
    for i in range(lo, lo + 4):
      _write(str(tmp_path / "tt" / split / f"{i}.png"), DIGITS[i, :, :, 0])
  b = open_builder(f"folder:{tmp_path / 'tt'}", str(tmp_path / "tfds"))
  assert {k: v.num_examples for k, v in b.info.splits.items()} == {"train": 4, "test": 4}
  assert "label" not in b.info.features
  np.testing.assert_array_equal(np.stack([e["image"] for e in _all(b, "test")]), DIGITS[10:14])
  for split in ("trainA", "trainB", "testA", "testB"):
    for i in range(3):
      _write(str(tmp_path / "cg" / split / f"{i}.jpg"), DIGITS[i, :, :, 0], quality=95)
  b = open_builder(f"folder:{tmp_path / 'cg'}", str(tmp_path / "tfds"))
  assert sorted(b.info.splits.keys()) == ["testA", "testB", "trainA", "trainB"]


def test_mixed_modes_are_converted_as_documented(tmp_path):
  root = tmp_path / "mixed"
  grey = DIGITS[0, :, :, 0]
  rgb = np.stack([DIGITS[1, :, :, 0], DIGITS[2, :, :, 0], DIGITS[3, :, :, 0]], -1)
  rgba = np.concatenate([rgb, np.full((28, 28, 1), 7, np.uint8)], -1)
  _write(str(root / "train" / "a_grey.png"), grey)
  _write(str(root / "train" / "b_rgb.png"), rgb)
  _write(str(root / "train" / "c_rgba.png"), rgba)
  grey16 = DIGITS[4, :, :, 0].astype(np.uint16) * 257  # 16-bit greyscale
  Image.fromarray(grey16).save(root / "train" / "d_grey16.png")
  palette = Image.fromarray(rgb).convert("P")
  palette.save(root / "train" / "e_palette.png")
  b = open_builder(f"folder:{root}", str(tmp_path / "tfds"))
  assert b.info.features["image"].shape == (28, 28, 3)  # one colour image: all RGB
  got = [e["image"] for e in _all(b, "train")]  # in name order
  np.testing.assert_array_equal(got[0], np.repeat(grey[..., None], 3, -1))
  np.testing.assert_array_equal(got[1], rgb)
  np.testing.assert_array_equal(got[2], rgb)  # alpha dropped
  np.testing.assert_array_equal(got[3], np.repeat(DIGITS[4], 3, -1))  # top 8 of 16 bits
  np.testing.assert_array_equal(got[4], np.asarray(palette.convert("RGB")))


@pytest.mark.parametrize("bad,message", [
    ("empty", r"^cannot read image .*/train/bad\.png: cannot identify image file"),
    ("truncated", r"^cannot read image .*/train/bad\.png: .*(truncated|broken|ended)"),
    ("text", r"^cannot read image .*/train/bad\.png: cannot identify image file"),
])
def test_a_bad_file_is_one_line_naming_it_and_leaves_nothing_prepared(tmp_path, bad, message):
  root, data_dir = tmp_path / "f", str(tmp_path / "tfds")
  for i in range(3):
    _write(str(root / "train" / f"{i}.png"), DIGITS[i, :, :, 0])
  good = root / "train" / "0.png"
  path = root / "train" / "bad.png"
  content = {"empty": b"", "text": b"not an image\n",
             "truncated": good.read_bytes()[:len(good.read_bytes()) // 2]}[bad]
  path.write_bytes(content)
  with pytest.raises(UserError, match=message):
    open_builder(f"folder:{root}", data_dir)
  assert not any("incomplete" in d or d == "1.0.0" for _, dirs, _ in os.walk(data_dir)
                 for d in dirs)  # nothing half-written left behind
  path.unlink()
  assert open_builder(f"folder:{root}", data_dir).info.splits["train"].num_examples == 3


def test_folder_mistakes_are_one_line(tmp_path):
  with pytest.raises(UserError, match=r"^data.name='folder:.*nope': no such directory$"):
    open_builder(f"folder:{tmp_path / 'nope'}")
  (tmp_path / "empty").mkdir()
  with pytest.raises(UserError, match=r"^folder .*/empty has no images"):
    open_builder(f"folder:{tmp_path / 'empty'}")
  _write(str(tmp_path / "both" / "top.png"), DIGITS[0, :, :, 0])
  _write(str(tmp_path / "both" / "cls" / "x.png"), DIGITS[1, :, :, 0])
  with pytest.raises(UserError, match=r"images both at its top level \(top.png\) and in class"):
    open_builder(f"folder:{tmp_path / 'both'}")
  with pytest.raises(UserError, match=r"^data.folder_test_fraction=1.5 must be in \[0, 1\)$"):
    open_builder(f"folder:{tmp_path / 'both' / 'cls'}", folder_test_fraction=1.5)


def test_any_size_resized_and_cropped_center_for_eval_random_for_training(tmp_path):
  _classes(str(tmp_path / "d"), per_class=6, wide=True)  # 28x28 and 28x38 images
  b = open_builder(f"folder:{tmp_path / 'd'}", str(tmp_path / "tfds"), folder_test_fraction=0)
  assert b.info.features["image"].shape == (None, None, 1)
  with pytest.raises(UserError, match="images of varying size: set --config.data.image_size"):
    Pipeline(b, "train", batch_size=4)
  examples = _all(b, "train")
  wide = [e["image"] for e in examples if e["image"].shape[1] == 38]
  # Evaluation: the central 28x28 of a 28x38 image, unresized.
  center = np.concatenate([x["image"] for x in Pipeline(
      b, "train", batch_size=18, image_size=28, repeat=False, value_range=(0, 255))])
  assert center.shape == (18, 28, 28, 1)
  got = {x.round().astype(np.uint8).tobytes() for x in center}
  for x in wide:
    assert x[:, 5:33].tobytes() in got
  # Training: a random 28x28 window of it (the shorter side is already 28), stable per seed.
  train = lambda seed, start=0: next(iter(Pipeline(
      b, "train", batch_size=18, image_size="28", random_crop=True, seed=seed, start=start,
      value_range=(0, 255), shuffle_buffer=1)))["image"].round().astype(np.uint8)
  a = train(0)
  np.testing.assert_array_equal(a, train(0))
  windows = [{x[:, o:o + 28].tobytes() for o in range(11)} for x in wide]
  picked = [x.tobytes() for x in a if any(x.tobytes() in w for w in windows)]
  assert len(picked) >= len(wide)
  offsets = {o for x in a for w in wide for o in range(11) if x.tobytes() == w[:, o:o + 28].tobytes()}
  assert len(offsets) > 1  # not always the same window
  # A resumed stream continues it exactly (the crop is drawn from the element's index).
  whole = next(iter(Pipeline(b, "train", batch_size=36, image_size="28", random_crop=True,
                             seed=0, value_range=(0, 255), shuffle_buffer=1)))["image"]
  np.testing.assert_array_equal(whole[18:].round().astype(np.uint8), train(0, start=18))
  # Non-square targets: rows,cols, and smaller images enlarged to cover them.
  x = next(iter(Pipeline(b, "train", batch_size=4, image_size="56,40", random_crop=True)))
  assert x["image"].shape == (4, 56, 40, 1)
  # Each process keeps its slots of the same global batches.
  parts = [next(iter(Pipeline(b, "train", batch_size=6, image_size="28", random_crop=True,
                              process_index=i, process_count=3)))["image"] for i in range(3)]
  np.testing.assert_array_equal(np.concatenate(parts), next(iter(Pipeline(
      b, "train", batch_size=18, image_size="28", random_crop=True)))["image"])


def test_train_gan_on_a_folder_non_square_and_conditional(tmp_path):
  _classes(str(tmp_path / "d"), per_class=8, wide=True)
  workdir = str(tmp_path / "run")
  result = run(["train_gan.py", f"--workdir={workdir}", *TINY_GAN,
                f"--config.data.name=folder:{tmp_path / 'd'}", "--config.data.image_size=28,56",
                "--config.model.conditional=True", "--config.eval.metrics=",
                f"--config.data.data_dir={tmp_path / 'tfds'}"])
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  import jax

  from gen.runs.run_dir import restore_for_inference
  _, family, state = restore_for_inference(workdir)
  assert family.info.image_shape == (28, 56, 1) and family.num_classes == 3
  out = family.sample(state, jax.random.key(0), 6)
  assert out["images"].shape == (6, 28, 56, 1) and sorted(out["labels"]) == [0, 0, 1, 1, 2, 2]
  # A bad image size is one line.
  result = run(["train_gan.py", f"--workdir={tmp_path / 'x'}", *TINY_GAN,
                f"--config.data.name=folder:{tmp_path / 'd'}", "--config.data.image_size=28,50",
                f"--config.data.data_dir={tmp_path / 'tfds'}"])
  assert result.returncode != 0 and "Traceback" not in result.stderr
  assert "do not support 28x50 images" in result.stderr.strip().splitlines()[-1]
  # The default digit metrics on images that are not digits: one line before any step.
  from gen.configs.gan import get_config
  from gen.train import train
  c = get_config("tiny")
  c.data.name, c.data.image_size = f"folder:{tmp_path / 'd'}", "28,56"
  c.data.data_dir, c.eval.metrics = str(tmp_path / "tfds"), "fid_digits"
  with pytest.raises(UserError, match=r"^metric 'fid_digits' scores 28x28x1 digit images; "
                                      r"folder:.* gives 28x56x1: set --config.eval.metrics"):
    train(c, str(tmp_path / "y"))
  assert not os.path.exists(tmp_path / "y" / "checkpoints" / "2")


@pytest.mark.slow
def test_train_cyclegan_on_a_folder_in_the_cyclegan_layout(tmp_path):
  root = tmp_path / "a2b"
  for split, lo in (("trainA", 0), ("trainB", 20), ("testA", 40), ("testB", 60)):
    for i in range(lo, lo + 6):
      x = DIGITS[i, :, :, 0] if split.endswith("A") else 255 - DIGITS[i, :, :, 0]
      _write(str(root / split / f"{i}.png"), np.stack([x] * 3, -1))
  workdir = str(tmp_path / "run")
  result = run(["train_cyclegan.py", f"--workdir={workdir}", *TINY_CYCLEGAN,
                f"--config.data.name=folder:{root}", "--config.data.image_size=24,32",
                f"--config.data.data_dir={tmp_path / 'tfds'}"])
  assert result.returncode == 0, result.stderr[-3000:]
  final = metrics_rows(workdir)[-1]
  assert 0 < final["test_mae_AtoB"] < 1
  assert os.path.exists(os.path.join(workdir, "samples", "AtoBtoA_0000002.png"))
