"""One input pipeline for every family.

TFDS -> tf.data (skip to the resume position, decode, crop/resize, augment, scale, shuffle with
a seed, batch, prefetch) -> numpy. `gen.train.sharding` turns the numpy batches into
`jax.Array`s sharded over the mesh's `data` axis.

The stream is a pure function of (seed, position): epoch `e` is the split shuffled with seed
(seed, e), and augmentation draws from the element's global index, so a run resumed at example
`position` sees exactly the batches an uninterrupted run would have seen. Images are decoded
after the skip, so resuming reads raw records only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from gen.data.augment import ExampleAugment
from gen.data.builders import dataset_info, image_feature, open_builder, tf_and_tfds
from gen.data.info import parse_image_size
from gen.errors import UserError

DECODED_CACHE_BYTES = 1 << 30  # splits up to this size (as uint8 pixels) are cached decoded


class Pipeline:
  """A deterministic stream of batches of one split for this process.

  Yields dicts of numpy arrays: `image` float32 [B, H, W, C] scaled to `value_range`, and
  `label` int32 [B] when the dataset has class labels. With `repeat=True` it is endless and
  starts at example `start`; otherwise it is one pass in file order with the last partial
  batch kept.

  With `process_count` P > 1 every process walks the same global stream (global batches of
  P x batch_size, shuffled as in one process) and keeps its own slots, [process_index x B,
  (process_index + 1) x B) of each global batch; it decodes only those. The global batches,
  the resume position (`start`, in global examples) and the evaluation passes are then the
  same on any number of processes. A one-pass stream yields `num_batches` batches on every
  process, the last ones possibly partial or empty (the caller pads them).

  `load_size` (resize to a square, then a random `image_size` crop) and `random_crop` take the
  values gen.data.settings.DataSettings has checked.
  """

  def __init__(self, builder, split: str, *, batch_size: int, seed: int = 0,
               image_size=None, random_crop: bool = False, paired: bool = False,
               value_range: tuple[float, float] = (-1.0, 1.0), shuffle_buffer: int = 10_000,
               random_flip: bool = False, load_size: int = 0,
               augment: ExampleAugment | None = None, repeat: bool = True, start: int = 0,
               cache: bool = True, image_key: str = "image", process_index: int = 0,
               process_count: int = 1):
    self._tf, self._tfds = tf_and_tfds()
    from gen.data import image_ops  # TensorFlow: imported once a pipeline is made
    self._ops = image_ops
    self.info = dataset_info(builder, split, image_size, image_key, paired)
    self._size = parse_image_size(image_size)
    self._feature = image_feature(builder, image_key)
    self._paired, self._load_size = paired, load_size
    self._random_crop = bool(random_crop and self._size)
    self._augment = augment or ExampleAugment()
    self._augment.check_channels(self.info.image_shape[-1])
    self._seed, self._random_flip = seed, random_flip

    records = self._records(builder, split, image_key)
    n = self.info.num_examples
    if repeat and n < 1:
      raise UserError(f"split {split!r} of {self.info.name!r} is empty")
    global_batch = batch_size * process_count
    self.num_batches = -(-n // global_batch)  # a one-pass stream's length, on every process

    # A split small enough is cached decoded (decoding dominates the cost of small images); a
    # larger one encoded, and decoded after the resume skip.
    h, w, c = self.info.image_shape
    side = load_size or max(h, w) * (2 if self._random_crop else 1)
    self._decoded = cache and n * side * side * c <= DECODED_CACHE_BYTES
    if self._decoded:
      records = records.map(lambda encoded, label: (self._decode(encoded), label),
                            num_parallel_calls=self._tf.data.AUTOTUNE, deterministic=True)
    if cache:
      records = records.cache()

    ds = self._ordered(records, n, repeat, start, shuffle_buffer)
    if process_count > 1:  # this process's slots of every global batch, before any decoding
      ds = ds.enumerate().filter(  # slots count from `start`: global batches begin there
          lambda j, x: (j % global_batch) // batch_size == process_index).map(lambda j, x: x)
    AUTOTUNE = self._tf.data.AUTOTUNE
    if random_flip or load_size or self._random_crop or self._augment.active or not self._decoded:
      ds = ds.map(self._per_example, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=repeat)
    ds = ds.map(lambda index, x: self._per_batch(x, value_range), num_parallel_calls=AUTOTUNE,
                deterministic=True)
    self._ds = ds.prefetch(AUTOTUNE)

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return iter(self._tfds.as_numpy(self._ds))

  def _records(self, builder, split: str, image_key: str):
    """(encoded image, label) records of the split, in file order; counts them if the
    dataset's metadata does not (tfds.testing.mock_data)."""
    tf, has_label = self._tf, self.info.num_classes > 0
    raw = builder.as_dataset(split=split, shuffle_files=False,
                             decoders={image_key: self._tfds.decode.SkipDecoding()})
    raw = raw.map(lambda ex: (ex[image_key], ex["label"] if has_label else tf.constant(0, tf.int64)))
    if self.info.num_examples < 0:
      count = int(raw.reduce(np.int64(0), lambda c, _: c + 1))
      self.info = dataclasses.replace(self.info, num_examples=count)
    return raw

  def _decode(self, encoded):
    """Encoded image -> uint8 [H', W', C] at the size the per-example crop starts from."""
    tf, image_ops = self._tf, self._ops
    image = self._feature.decode_example(encoded)
    if self._paired:  # A|B side by side -> A and B stacked on channels, cropped and flipped as one
      half = tf.shape(image)[1] // 2
      image = tf.concat([image[:, :half], image[:, half:2 * half]], axis=-1)
    if self._load_size:
      return image_ops.center_crop_resize(image, (self._load_size, self._load_size))
    if self._random_crop:
      return image_ops.cover_resize(image, self._size)
    return image_ops.center_crop_resize(image, self._size) if self._size else image

  def _ordered(self, records, n: int, repeat: bool, start: int, shuffle_buffer: int):
    """(global index, record) in stream order: epoch e shuffled with seed (seed, e), from `start`."""
    tf = self._tf

    def epoch(e):  # zip, as a per-element map costs ~6x more
      d = tf.data.Dataset.zip(tf.data.Dataset.range(e * n, (e + 1) * n), records)
      if repeat and shuffle_buffer > 1:
        d = d.shuffle(min(n, shuffle_buffer), seed=self._seed * 1_000_003 + e,
                      reshuffle_each_iteration=False)
      return d

    if not repeat:
      return epoch(tf.constant(0, tf.int64))
    first_epoch, offset = divmod(int(start), n)
    return tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch).skip(offset)

  def _per_example(self, index, x):
    """Decoding (if not cached decoded), crops, flips and augmentations: only what cannot be
    done on a batch. Each draws from the element's (seed, global index)."""
    tf, image_ops, augment = self._tf, self._ops, self._augment
    h, w, c = self.info.image_shape
    image, label = x
    if not self._decoded:
      image = self._decode(image)
    element_seed = tf.stack([tf.cast(self._seed, tf.int64), index])
    if self._load_size or self._random_crop:
      image = tf.image.stateless_random_crop(image, (h, w, c), seed=element_seed[::-1])
    # Each augmentation its own seed, so turning one on leaves the others' draws as they are.
    fold = lambda k: tf.random.experimental.stateless_fold_in(element_seed, k)
    if augment.active:
      image = tf.ensure_shape(tf.cast(image, tf.float32) / 255.0, (h, w, c))
    if augment.rotation:
      angle = tf.random.stateless_uniform((), fold(1), -augment.rotation, augment.rotation)
      image = image_ops.rotate(image, angle)
    if augment.resized_crop_scale:
      image = image_ops.resized_crop(image, fold(2), augment.resized_crop_scale,
                                     augment.resized_crop_ratio)
    if self._random_flip:
      image = tf.image.stateless_random_flip_left_right(image, seed=element_seed)
    if augment.colour:
      image = image_ops.colour_jitter(image, image_ops.jitter_factors(fold(3), augment))
    if augment.active:  # back to uint8 as the decoded images are: _per_batch scales them
      image = tf.cast(tf.clip_by_value(tf.round(image * 255.0), 0, 255), tf.uint8)
    return index, (image, label)

  def _per_batch(self, x, value_range):
    tf = self._tf
    image, label = x
    lo, hi = value_range
    image = tf.cast(image, tf.float32) * ((hi - lo) / 255.0) + lo
    out = {"image": tf.ensure_shape(image, (None,) + self.info.image_shape)}
    if self.info.num_classes > 0:
      out["label"] = tf.cast(label, tf.int32)
    return out


def split_images(spec: str) -> tuple[np.ndarray, np.ndarray | None]:
  """'DATASET:SPLIT' (e.g. 'mnist5k:test') -> (uint8 images [N, H, W, C], int32 labels or None),
  in file order."""
  name, sep, split = spec.rpartition(":")
  if not sep or not name or not split:
    raise UserError(f"{spec!r} is not DATASET:SPLIT (e.g. mnist5k:test)")
  parts = list(Pipeline(open_builder(name), split, batch_size=1000, repeat=False,
                        value_range=(0.0, 255.0)))
  images = np.concatenate([p["image"] for p in parts]).round().astype(np.uint8)
  labels = np.concatenate([p["label"] for p in parts]) if "label" in parts[0] else None
  return images, labels
