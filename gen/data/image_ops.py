"""TensorFlow image ops of the input pipeline: resizing for training and evaluation, and the
per-image augmentations of gen.data.augment.ExampleAugment (float images [H, W, C] in [0, 1])."""

from __future__ import annotations

import numpy as np

from gen.data.augment import ExampleAugment
from gen.data.builders import tf_and_tfds

tf, _ = tf_and_tfds()


def center_crop_resize(image, size: tuple[int, int]):
  """The largest central crop of the target's aspect (a square for square sizes), then an
  antialiased resize to size = (H, W) (uint8 in, uint8 out): evaluation's view of an image."""
  (th, tw), shape = size, tf.shape(image)
  ch, cw = tf.minimum(shape[0], shape[1] * th // tw), tf.minimum(shape[1], shape[0] * tw // th)
  top, left = (shape[0] - ch) // 2, (shape[1] - cw) // 2
  image = image[top:top + ch, left:left + cw]
  image = tf.image.resize(image, (th, tw), method="bilinear", antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def cover_resize(image, size: tuple[int, int]):
  """An antialiased resize keeping the aspect, the shorter side (relative to the target) to
  the target's, so the image covers size = (H, W); a random window of it is cut later.
  Images smaller than the target are enlarged."""
  (th, tw), shape = size, tf.cast(tf.shape(image), tf.float32)
  scale = tf.maximum(th / shape[0], tw / shape[1])
  nh = tf.maximum(th, tf.cast(tf.round(shape[0] * scale), tf.int32))
  nw = tf.maximum(tw, tf.cast(tf.round(shape[1] * scale), tf.int32))
  image = tf.image.resize(image, tf.stack([nh, nw]), method="bilinear", antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def rotate(image, degrees):
  """Rotates counter-clockwise by `degrees` about the centre: bilinear, reflected corners."""
  shape = tf.shape(image)
  h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
  theta = tf.cast(degrees, tf.float32) * (np.pi / 180.0)
  cos, sin = tf.cos(theta), tf.sin(theta)
  # Maps each output pixel (x, y) to where it samples the input (keras' get_rotation_matrix).
  dx = ((w - 1) - (cos * (w - 1) - sin * (h - 1))) / 2.0
  dy = ((h - 1) - (sin * (w - 1) + cos * (h - 1))) / 2.0
  transform = tf.stack([cos, -sin, dx, sin, cos, dy, 0.0, 0.0])[None]
  out = tf.raw_ops.ImageProjectiveTransformV3(
      images=image[None], transforms=transform, output_shape=shape[:2],
      fill_value=tf.constant(0.0), interpolation="BILINEAR", fill_mode="REFLECT")
  return tf.ensure_shape(out[0], image.shape)


def resized_crop(image, seed, scale: tuple[float, float], ratio: tuple[float, float]):
  """Inception-style: a random box of area fraction in `scale` and width/height in `ratio`
  (the whole image when 100 draws do not fit), resized bilinearly back to the image's size."""
  shape = tf.shape(image)
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
      shape, bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
      min_object_covered=0.0, aspect_ratio_range=ratio, area_range=scale, max_attempts=100,
      use_image_if_no_bounding_boxes=True)
  crop = tf.slice(image, begin, size)
  out = tf.image.resize(crop, shape[:2], method="bilinear")
  return tf.ensure_shape(out, image.shape)


def jitter_factors(seed, augment: ExampleAugment):
  """[brightness, contrast, saturation, hue] drawn as torchvision's ColorJitter draws them;
  one uniform each, so a factor's draw does not depend on which others are on."""
  u = tf.random.stateless_uniform((4,), seed)
  lo = tf.constant([max(0.0, 1.0 - augment.brightness), max(0.0, 1.0 - augment.contrast),
                    max(0.0, 1.0 - augment.saturation), -augment.hue])
  hi = tf.constant([1.0 + augment.brightness, 1.0 + augment.contrast,
                    1.0 + augment.saturation, augment.hue])
  return lo + u * (hi - lo)


def colour_jitter(image, factors):
  """Brightness, contrast, saturation, hue with the given factors (1, 1, 1, 0: unchanged)."""
  image = adjust_brightness(image, factors[0])
  image = adjust_contrast(image, factors[1])
  if image.shape[-1] == 3:  # else Augment.check_channels has made sure they are off
    image = adjust_saturation(image, factors[2])
    image = adjust_hue(image, factors[3])
  return image


def _grey(image):
  """torchvision's rgb_to_grayscale (ITU-R 601-2 luma) on RGB; the image itself otherwise."""
  if image.shape[-1] != 3:
    return image
  return tf.reduce_sum(image * tf.constant([0.2989, 0.587, 0.114]), axis=-1, keepdims=True)


def _blend(image, other, factor):
  return tf.clip_by_value(factor * image + (1.0 - factor) * other, 0.0, 1.0)


def adjust_brightness(image, factor):
  return _blend(image, tf.zeros_like(image), factor)


def adjust_contrast(image, factor):
  return _blend(image, tf.reduce_mean(_grey(image)), factor)


def adjust_saturation(image, factor):
  return _blend(image, _grey(image), factor)


def adjust_hue(image, delta):
  return tf.clip_by_value(tf.image.adjust_hue(image, delta), 0.0, 1.0)
