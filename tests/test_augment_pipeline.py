"""Input-pipeline augmentations (gen.data.augment.ExampleAugment): known outputs of the per-image
functions, their config checks, and determinism / exact resume through Pipeline."""

import colorsys
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gen.configs.gan import get_config
from gen.data import Pipeline, builders, image_ops, open_builder
from gen.data.augment import ExampleAugment
from gen.errors import UserError
from gen.train import train

tf = image_ops.tf


def _image(shape, seed=0):
  return np.random.default_rng(seed).random(shape).astype(np.float32)


def _take(stream, n):
  it = iter(stream)
  return [next(it) for _ in range(n)]


# ---------------------------------------------------------------- Per-image functions

def test_rotation_by_0_is_the_identity_and_by_90_is_rot90():
  for shape in ((7, 7, 3), (8, 8, 1)):
    image = _image(shape)
    np.testing.assert_array_equal(image_ops.rotate(tf.constant(image), 0.0).numpy(), image)
    np.testing.assert_allclose(image_ops.rotate(tf.constant(image), 90.0).numpy(),
                               np.rot90(image), atol=1e-5)  # counter-clockwise
    np.testing.assert_allclose(image_ops.rotate(tf.constant(image), -90.0).numpy(),
                               np.rot90(image, -1), atol=1e-5)
  wide = _image((4, 6, 1))
  np.testing.assert_allclose(image_ops.rotate(tf.constant(wide), 180.0).numpy(),
                             wide[::-1, ::-1], atol=1e-5)


def test_rotation_fills_corners_by_reflection():
  image = np.zeros((9, 9, 1), np.float32)
  image[4, :] = 1.0  # a horizontal bar through the centre
  out = image_ops.rotate(tf.constant(image), 45.0).numpy()
  assert out.min() >= 0 and out.max() <= 1 + 1e-6
  assert out[0, 0, 0] > 0 or out[0, -1, 0] > 0 or out[-1, 0, 0] > 0  # not constant 0 corners
  blank = image_ops.rotate(tf.ones((9, 9, 3)), 30.0).numpy()
  np.testing.assert_allclose(blank, 1.0, atol=1e-6)  # reflection never brings in a fill colour


def test_resized_crop_of_the_whole_image_is_the_identity():
  for shape in ((6, 6, 3), (5, 9, 1)):  # 5x9: no 1:1 box of full area fits -> whole image
    image = _image(shape)
    out = image_ops.resized_crop(tf.constant(image), tf.constant([3, 4]), (1.0, 1.0), (1.0, 1.0))
    np.testing.assert_array_equal(out.numpy(), image)


def test_resized_crop_is_a_resized_box_of_the_image():
  image = np.tile(np.arange(16, dtype=np.float32)[None, :, None], (16, 1, 1)) / 15  # ramp in x
  out = image_ops.resized_crop(tf.constant(image), tf.constant([1, 2]), (0.25, 0.5),
                              (1.0, 1.0)).numpy()
  assert out.shape == (16, 16, 1)
  np.testing.assert_allclose(out[0], out[-1])  # each column still constant
  assert np.all(np.diff(out[0, :, 0]) >= -1e-6)  # still increasing, over a narrower range
  assert out[0, -1, 0] - out[0, 0, 0] < 0.75


def test_colour_jitter_with_fixed_factors_matches_numpy():
  rgb = _image((5, 6, 3), seed=1)
  grey = rgb @ np.array([0.2989, 0.587, 0.114], np.float32)
  t = tf.constant(rgb)
  np.testing.assert_allclose(image_ops.adjust_brightness(t, 1.5).numpy(),
                             np.clip(rgb * 1.5, 0, 1), atol=1e-6)
  np.testing.assert_allclose(image_ops.adjust_contrast(t, 0.6).numpy(),
                             np.clip(0.6 * rgb + 0.4 * grey.mean(), 0, 1), atol=1e-6)
  np.testing.assert_allclose(image_ops.adjust_saturation(t, 1.7).numpy(),
                             np.clip(1.7 * rgb - 0.7 * grey[..., None], 0, 1), atol=1e-6)
  shifted = np.array([[colorsys.hsv_to_rgb((h + 0.3) % 1, s, v)
                       for h, s, v in (colorsys.rgb_to_hsv(*px) for px in row)] for row in rgb])
  np.testing.assert_allclose(image_ops.adjust_hue(t, 0.3).numpy(), shifted, atol=1e-5)
  # One channel: contrast blends with the image's mean.
  mono = _image((4, 4, 1), seed=2)
  np.testing.assert_allclose(image_ops.adjust_contrast(tf.constant(mono), 1.8).numpy(),
                             np.clip(1.8 * mono - 0.8 * mono.mean(), 0, 1), atol=1e-6)
  # Neutral factors change nothing; the whole jitter applies them in order.
  neutral = image_ops.colour_jitter(t, tf.constant([1.0, 1.0, 1.0, 0.0])).numpy()
  np.testing.assert_allclose(neutral, rgb, atol=1e-6)
  both = image_ops.colour_jitter(t, tf.constant([0.8, 1.2, 1.0, 0.0])).numpy()
  b = np.clip(rgb * 0.8, 0, 1)
  mean = (b @ np.array([0.2989, 0.587, 0.114], np.float32)).mean()
  np.testing.assert_allclose(both, np.clip(1.2 * b - 0.2 * mean, 0, 1), atol=1e-6)


def test_jitter_factors_lie_in_torchvisions_ranges():
  augment = ExampleAugment(brightness=0.4, contrast=1.5, saturation=0.2, hue=0.1)
  f = np.array([image_ops.jitter_factors(tf.constant([0, i]), augment).numpy()
                for i in range(200)])
  for k, (lo, hi) in enumerate(((0.6, 1.4), (0.0, 2.5), (0.8, 1.2), (-0.1, 0.1))):
    assert lo <= f[:, k].min() < lo + 0.1 * (hi - lo) and hi - 0.1 * (hi - lo) < f[:, k].max() <= hi


# ---------------------------------------------------------------- Config checks

@pytest.mark.parametrize("change,message", [
    (dict(rotation=-5.0), r"^data.rotation=-5.0 must be in \[0, 180\]"),
    (dict(resized_crop_scale="0,1"), r"^data.resized_crop_scale=0,1 must be min,max area fractions"),
    (dict(resized_crop_scale="0.5,1.2"), r"^data.resized_crop_scale=0.5,1.2 must be"),
    (dict(resized_crop_scale="0.9,0.5"), r"^data.resized_crop_scale=0.9,0.5 must be"),
    (dict(resized_crop_scale="big"), r"^data.resized_crop_scale='big' must be two numbers min,max"),
    (dict(resized_crop_ratio="4/3,3/4"), r"^data.resized_crop_ratio=1.33333,0.75 must be"),
    (dict(brightness=-0.1), r"^data.brightness=-0.1 must be >= 0$"),
    (dict(saturation=-1.0), r"^data.saturation=-1.0 must be >= 0$"),
    (dict(hue=0.6), r"^data.hue=0.6 must be in \[0, 0.5\]"),
])
def test_bad_augmentation_settings_are_one_line_user_errors(change, message):
  c = get_config("tiny")
  c.data.update(change)
  with pytest.raises(UserError, match=message):
    ExampleAugment.from_config(c)


def test_augment_from_config():
  c = get_config("tiny")
  assert ExampleAugment.from_config(c) == ExampleAugment() and not ExampleAugment().active
  c.data.update(rotation=10.0, resized_crop_scale="(0.8, 1)", resized_crop_ratio="3/4,4/3",
                brightness=0.2, hue=0.5)
  a = ExampleAugment.from_config(c)
  assert a == ExampleAugment(rotation=10.0, resized_crop_scale=(0.8, 1.0), resized_crop_ratio=(0.75, 4 / 3),
                      brightness=0.2, hue=0.5)
  assert a.active and a.colour


def test_saturation_and_hue_on_greyscale_are_a_user_error(mnist5k_builder):
  for name in ("saturation", "hue"):
    with pytest.raises(UserError, match=rf"^data.{name}=0.1 needs RGB images; .* have 1 channel"):
      Pipeline(mnist5k_builder, "train", batch_size=4, augment=ExampleAugment(**{name: 0.1}))


def test_the_trainer_checks_augmentations_before_training(tmp_path):
  c = get_config("tiny")
  c.data.rotation = -1.0
  with pytest.raises(UserError, match=r"^data.rotation=-1.0 must be in \[0, 180\]"):
    train(c, str(tmp_path / "bad"))
  assert not os.path.exists(tmp_path / "bad")  # before anything is written
  c = get_config("tiny")  # mnist5k: greyscale
  c.data.hue = 0.1
  with pytest.raises(UserError, match=r"^data.hue=0.1 needs RGB images"):
    train(c, str(tmp_path / "run"))


# ---------------------------------------------------------------- Through Pipeline

ALL_GREY = ExampleAugment(rotation=20.0, resized_crop_scale=(0.6, 1.0), brightness=0.3, contrast=0.3)


def test_augmented_stream_is_deterministic_and_resumes_exactly(mnist5k_builder):
  kw = dict(batch_size=32, random_flip=True, augment=ALL_GREY)
  a = _take(Pipeline(mnist5k_builder, "train", seed=2, **kw), 4)
  b = _take(Pipeline(mnist5k_builder, "train", seed=2, **kw), 4)
  other = _take(Pipeline(mnist5k_builder, "train", seed=3, **kw), 1)
  plain = _take(Pipeline(mnist5k_builder, "train", seed=2, batch_size=32, random_flip=True), 1)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["image"], y["image"])
  assert not np.array_equal(a[0]["image"], other[0]["image"])
  # Same examples in the same order as without augmentation, but changed images.
  np.testing.assert_array_equal(a[0]["label"], plain[0]["label"])
  changed = [not np.array_equal(x, y) for x, y in zip(a[0]["image"], plain[0]["image"])]
  assert sum(changed) >= 30
  # Still uint8 levels scaled into [-1, 1].
  image = a[0]["image"]
  assert image.min() >= -1 and image.max() <= 1
  np.testing.assert_allclose((image + 1) * 127.5, np.round((image + 1) * 127.5), atol=1e-4)
  # A stream started at position p is the tail of one started at 0 (p mid-batch).
  p = 32 + 5
  resumed = _take(Pipeline(mnist5k_builder, "train", seed=2, start=p, **kw), 2)
  whole = np.concatenate([x["image"] for x in a])[p:p + 64]
  np.testing.assert_array_equal(np.concatenate([x["image"] for x in resumed]), whole)


def test_augmentations_off_leave_the_stream_unchanged(mnist5k_builder):
  kw = dict(batch_size=16, seed=1, load_size=32, image_size=28)
  plain = _take(Pipeline(mnist5k_builder, "train", **kw), 1)[0]["image"]
  off = _take(Pipeline(mnist5k_builder, "train", augment=ExampleAugment(), **kw), 1)[0]["image"]
  np.testing.assert_array_equal(plain, off)
  # Neutral settings through the float path round back to the same uint8 pixels.
  still = ExampleAugment(resized_crop_scale=(1.0, 1.0), resized_crop_ratio=(1.0, 1.0))
  same = _take(Pipeline(mnist5k_builder, "train", augment=still, **kw), 1)[0]["image"]
  np.testing.assert_array_equal(plain, same)


def test_colour_jitter_on_rgb_through_the_pipeline(monkeypatch, tmp_path):
  monkeypatch.setattr(builders, "_network_available", lambda *a, **k: True)
  augment = ExampleAugment(rotation=10.0, brightness=0.2, contrast=0.2, saturation=0.5, hue=0.2)
  with tfds.testing.mock_data(num_examples=12):
    builder = open_builder("cifar10", str(tmp_path))
    a = _take(Pipeline(builder, "train", batch_size=4, seed=0, augment=augment), 2)
    b = _take(Pipeline(builder, "train", batch_size=4, seed=0, augment=augment), 2)
    plain = _take(Pipeline(builder, "train", batch_size=4, seed=0), 1)
  assert a[0]["image"].shape == (4, 32, 32, 3)
  assert a[0]["image"].min() >= -1.0 and a[0]["image"].max() <= 1.0
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["image"], y["image"])
  assert not np.array_equal(a[0]["image"], plain[0]["image"])
