"""One input pipeline for every family.

TFDS -> tf.data (skip to the resume position, decode, crop/resize, augment,
scale, shuffle with a seed, batch, prefetch) -> numpy. `gen.sharding` turns the
numpy batches into `jax.Array`s sharded over the mesh's `data` axis.

The stream is a pure function of (seed, position): epoch `e` is the split
shuffled with seed (seed, e), and augmentation draws from the element's global
index, so a run resumed at example `position` sees exactly the batches an
uninterrupted run would have seen. Images are decoded after the skip, so
resuming reads raw records only.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import threading
from typing import Iterator

import numpy as np

from gen.errors import UserError

OFFLINE_DATASETS = ("mnist5k", "digits2bold")  # built from files that ship with our dependencies
DECODED_CACHE_BYTES = 1 << 30  # splits up to this size (as uint8 pixels) are cached decoded


@functools.cache
def _tf_and_tfds():
  """Imports TensorFlow lazily (so `import gen` stays light) and keeps it off accelerators."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # tf.data only; and its start-up banner
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.core.utils import gcs_utils  # pylint: disable=g-import-not-at-top
  # TFDS otherwise probes GCS for every unprepared dataset, which hangs offline.
  gcs_utils._is_gcs_disabled = True  # pylint: disable=protected-access
  # pylint: disable=g-import-not-at-top,unused-import
  import gen.data.digits2bold  # registers digits2bold
  import gen.data.mnist5k  # registers mnist5k
  return tf, tfds


def default_data_dir() -> str:
  return os.environ.get("TFDS_DATA_DIR") or os.path.join(os.path.expanduser("~"), "tensorflow_datasets")


def _network_available(host: str = "storage.googleapis.com", timeout: float = 3.0) -> bool:
  """A quick DNS probe: TFDS's downloader retries for minutes when there is no network."""
  result = []
  t = threading.Thread(target=lambda: result.append(_resolves(host)), daemon=True)
  t.start()
  t.join(timeout)
  return bool(result and result[0])


def _resolves(host: str) -> bool:
  try:
    socket.getaddrinfo(host, 443)
    return True
  except OSError:
    return False


def open_builder(name: str, data_dir: str | None = None):
  """Returns a prepared TFDS builder for `name`, preparing it when it can; else a UserError."""
  _, tfds = _tf_and_tfds()
  data_dir = data_dir or default_data_dir()
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise UserError(f"unknown dataset {name!r}: not a TFDS dataset name "
                    f"(try mnist5k, digits2bold, mnist, cifar10, celeb_a, cycle_gan/horse2zebra)") from None
  except Exception as e:  # bad config name, unreadable data_dir, ...
    if "BuilderConfig" in str(e) and "not found" in str(e):  # cycle_gan/nope: name the real ones
      base, _, config = name.partition("/")
      configs = [c.name for c in tfds.builder_cls(base).BUILDER_CONFIGS]
      raise UserError(f"dataset {base!r} has no config {config!r}; its configs: "
                      f"{', '.join(configs)}") from None
    raise UserError(f"cannot open dataset {name!r} in {data_dir}: {_first_line(e)}") from None
  if builder.is_prepared():
    return builder
  return _prepare_in_turn(name, builder, data_dir, tfds)


def _prepare_in_turn(name: str, builder, data_dir: str, tfds):
  """Prepares `name`; in a multi-process run one process at a time, each after the previous
  one is done, so processes sharing a data_dir never write it at once (the first prepares, the
  others find it prepared) and hosts with their own disks each prepare their copy."""
  import jax  # pylint: disable=g-import-not-at-top
  count = jax.process_count()
  for turn in range(count):
    if turn == jax.process_index():
      builder = tfds.builder(name, data_dir=data_dir)  # sees what earlier turns prepared
      if not builder.is_prepared():
        _prepare(name, builder, data_dir)
    if count > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices(f"gen-prepare-{name}-{turn}")
  return builder


def _prepare(name: str, builder, data_dir: str) -> None:
  if name.split("/")[0] not in OFFLINE_DATASETS and not _network_available():
    raise UserError(
        f"dataset {name!r} is not prepared in {data_dir} and cannot be downloaded (no network); "
        f"prepare it on a machine with network (`tfds build {name} --data_dir DIR`), copy DIR here "
        f"and pass --config.data.data_dir=DIR (or set TFDS_DATA_DIR)")
  try:
    builder.download_and_prepare()
  except Exception as e:
    raise UserError(f"could not download and prepare dataset {name!r} into {data_dir}: "
                    f"{_first_line(e)}") from None


def _first_line(e: Exception) -> str:
  text = str(e).strip().splitlines()
  return f"{type(e).__name__}: {text[0] if text else ''}"


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What a model needs to know about its data."""
  name: str
  image_shape: tuple[int, int, int]  # (H, W, C) after the pipeline's resize
  num_classes: int  # 0 when the dataset has no `label` class feature
  num_examples: int  # in the requested split, whole (every process reads it; see Pipeline)


def _image_feature(builder, image_key: str):
  features = builder.info.features
  if image_key not in features:
    raise UserError(f"dataset {builder.info.full_name!r} has no {image_key!r} feature "
                    f"(features: {', '.join(features.keys())})")
  return features[image_key]


def dataset_info(builder, split: str, image_size: int = 0, image_key: str = "image") -> DatasetInfo:
  """Shapes, classes and size of `split`; `image_size` > 0 means square-resized images."""
  _, tfds = _tf_and_tfds()
  feature = _image_feature(builder, image_key)
  h, w, c = feature.shape
  if c is None:
    raise UserError(f"dataset {builder.info.full_name!r} has images with an unknown channel count")
  if image_size:
    h = w = image_size
  elif h is None or w is None:
    raise UserError(f"dataset {builder.info.full_name!r} has images of varying size: "
                    f"set --config.data.image_size")
  features = builder.info.features
  num_classes = getattr(features["label"], "num_classes", 0) if "label" in features else 0
  try:
    # No split metadata (tfds.testing.mock_data): -1, and Pipeline counts the records.
    num_examples = builder.info.splits[split].num_examples if builder.info.splits.keys() else -1
  except (KeyError, ValueError):
    raise UserError(f"dataset {builder.info.full_name!r} has no split {split!r} "
                    f"(splits: {', '.join(builder.info.splits.keys())})") from None
  name = builder.info.full_name.rsplit("/", 1)[0]  # drop the version
  return DatasetInfo(name, (int(h), int(w), int(c)), int(num_classes), int(num_examples))


class Pipeline:
  """A deterministic stream of batches of one split for this process.

  Yields dicts of numpy arrays: `image` float32 [B, H, W, C] scaled to
  `value_range`, and `label` int32 [B] when the dataset has class labels.
  With `repeat=True` it is endless and starts at example `start`; otherwise it
  is one pass in file order with the last partial batch kept.

  With `process_count` P > 1 every process walks the same global stream (global
  batches of P x batch_size, shuffled as in one process) and keeps its own slots,
  [process_index x B, (process_index + 1) x B) of each global batch; it decodes only
  those. The global batches, the resume position (`start`, in global examples) and
  the evaluation passes are then the same on any number of processes. A one-pass
  stream yields `num_batches` batches on every process, the last ones possibly
  partial or empty (the caller pads them).
  """

  def __init__(self, builder, split: str, *, batch_size: int, seed: int = 0,
               image_size: int = 0, value_range: tuple[float, float] = (-1.0, 1.0),
               shuffle_buffer: int = 10_000, random_flip: bool = False, load_size: int = 0,
               repeat: bool = True,
               start: int = 0, cache: bool = True, image_key: str = "image",
               process_index: int = 0, process_count: int = 1):
    tf, tfds = _tf_and_tfds()
    self.info = dataset_info(builder, split, image_size, image_key)
    feature = _image_feature(builder, image_key)
    has_label = self.info.num_classes > 0

    raw = builder.as_dataset(split=split, shuffle_files=False,
                             decoders={image_key: tfds.decode.SkipDecoding()})
    raw = raw.map(lambda ex: (ex[image_key], ex["label"] if has_label else tf.constant(0, tf.int64)))
    if self.info.num_examples < 0:
      count = int(raw.reduce(np.int64(0), lambda c, _: c + 1))
      self.info = dataclasses.replace(self.info, num_examples=count)
    n = self.info.num_examples
    h, w, c = self.info.image_shape
    global_batch = batch_size * process_count
    self.num_batches = -(-n // global_batch)  # a one-pass stream's length, on every process

    def decode(encoded):
      image = feature.decode_example(encoded)
      size = load_size or image_size
      return _center_crop_resize(tf, image, size) if size else image

    # A split small enough is cached decoded (decoding dominates the cost of small images);
    # a larger one encoded, and decoded after the resume skip.
    side = load_size or max(h, w)
    decoded = cache and n * side * side * c <= DECODED_CACHE_BYTES
    if decoded:
      raw = raw.map(lambda encoded, label: (decode(encoded), label),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache:
      raw = raw.cache()
    if repeat and n < 1:
      raise UserError(f"split {split!r} of {self.info.name!r} is empty")

    def epoch(e):  # (global index, image, label); zip, as a per-element map costs ~6x more
      d = tf.data.Dataset.zip(tf.data.Dataset.range(e * n, (e + 1) * n), raw)
      if repeat and shuffle_buffer > 1:
        d = d.shuffle(min(n, shuffle_buffer), seed=seed * 1_000_003 + e,
                      reshuffle_each_iteration=False)
      return d

    if repeat:
      first_epoch, offset = divmod(int(start), n)
      ds = tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch).skip(offset)
    else:
      ds = epoch(tf.constant(0, tf.int64))
    if process_count > 1:  # this process's slots of every global batch, before any decoding
      ds = ds.enumerate().filter(  # slots count from `start`: global batches begin there
          lambda j, x: (j % global_batch) // batch_size == process_index).map(lambda j, x: x)

    lo, hi = value_range

    def per_example(index, x):  # only what cannot be done on a batch
      image, label = x
      if not decoded:
        image = decode(image)
      element_seed = tf.stack([tf.cast(seed, tf.int64), index])
      if load_size:
        image = tf.image.stateless_random_crop(image, (h, w, c), seed=element_seed[::-1])
      if random_flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=element_seed)
      return index, (image, label)

    def per_batch(index, x):
      image, label = x
      image = tf.cast(image, tf.float32) * ((hi - lo) / 255.0) + lo
      out = {"image": tf.ensure_shape(image, (None, h, w, c))}
      if has_label:
        out["label"] = tf.cast(label, tf.int32)
      return out

    if random_flip or load_size or not decoded:
      ds = ds.map(per_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=repeat)
    ds = ds.map(per_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    self._ds = ds.prefetch(tf.data.AUTOTUNE)
    self._tfds = tfds

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return iter(self._tfds.as_numpy(self._ds))


def _center_crop_resize(tf, image, size: int):
  """Central square crop, then an antialiased resize to size x size (uint8 in, uint8 out)."""
  shape = tf.shape(image)
  side = tf.minimum(shape[0], shape[1])
  top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
  image = image[top:top + side, left:left + side]
  image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
