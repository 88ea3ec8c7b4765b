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
import fractions
import functools
import os
import socket
import threading
from typing import Iterator

import numpy as np

from gen.errors import UserError

OFFLINE_DATASETS = ("mnist5k", "digits2bold", "digits2bold_pairs")  # built from files that ship with our dependencies
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
  import gen.data.digits2bold  # registers digits2bold and digits2bold_pairs
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


FOLDER_PREFIX = "folder:"  # data.name='folder:PATH': a directory of images (gen/data/folder.py)
FOLDER_TEST_FRACTION = 0.05  # data.folder_test_fraction's default


def open_config_builder(config):
  """open_builder for a run's `config.data` (name, data_dir, folder_test_fraction)."""
  data = config.data
  return open_builder(data.name, data.get("data_dir") or None,
                      float(data.get("folder_test_fraction", FOLDER_TEST_FRACTION)))


def open_builder(name: str, data_dir: str | None = None,
                 folder_test_fraction: float = FOLDER_TEST_FRACTION):
  """Returns a prepared TFDS builder for `name`, preparing it when it can; else a UserError.

  `name` is a TFDS name ('mnist5k', 'cycle_gan/horse2zebra') or `folder:PATH`, a directory
  of images prepared into a TFDS dataset (gen/data/folder.py)."""
  if not name.strip():
    raise UserError("data.name is empty: set --config.data.name to a TFDS name or folder:PATH")
  _, tfds = _tf_and_tfds()
  data_dir = data_dir or default_data_dir()
  if name.startswith(FOLDER_PREFIX):
    from gen.data import folder  # pylint: disable=g-import-not-at-top
    make = lambda: folder.builder(name[len(FOLDER_PREFIX):], data_dir, folder_test_fraction)
    builder = make()
    return builder if builder.is_prepared() else _prepare_in_turn(name, make, data_dir)
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise UserError(f"unknown dataset {name!r}: not a TFDS dataset name (try mnist5k, "
                    f"digits2bold, digits2bold_pairs, mnist, cifar10, celeb_a, "
                    f"cycle_gan/horse2zebra) or folder:PATH") from None
  except Exception as e:  # bad config name, unreadable data_dir, ...
    if "BuilderConfig" in str(e) and "not found" in str(e):  # cycle_gan/nope: name the real ones
      base, _, config = name.partition("/")
      configs = [c.name for c in tfds.builder_cls(base).BUILDER_CONFIGS]
      raise UserError(f"dataset {base!r} has no config {config!r}; its configs: "
                      f"{', '.join(configs)}") from None
    raise UserError(f"cannot open dataset {name!r} in {data_dir}: {_first_line(e)}") from None
  if builder.is_prepared():
    return builder
  return _prepare_in_turn(name, lambda: tfds.builder(name, data_dir=data_dir), data_dir)


def _prepare_in_turn(name: str, make, data_dir: str):
  """Prepares `name`; in a multi-process run one process at a time, each after the previous
  one is done, so processes sharing a data_dir never write it at once (the first prepares, the
  others find it prepared) and hosts with their own disks each prepare their copy."""
  import jax  # pylint: disable=g-import-not-at-top
  count = jax.process_count()
  for turn in range(count):
    if turn == jax.process_index():
      builder = make()  # sees what earlier turns prepared
      if not builder.is_prepared():
        _prepare(name, builder, data_dir)
    if count > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices(f"gen-prepare-{name}-{turn}")
  return builder


def _prepare(name: str, builder, data_dir: str) -> None:
  offline = name.split("/")[0] in OFFLINE_DATASETS or name.startswith(FOLDER_PREFIX)
  if not offline and not _network_available():
    raise UserError(
        f"dataset {name!r} is not prepared in {data_dir} and cannot be downloaded (no network); "
        f"prepare it on a machine with network (`tfds build {name} --data_dir DIR`), copy DIR here "
        f"and pass --config.data.data_dir=DIR (or set TFDS_DATA_DIR)")
  try:
    builder.download_and_prepare()
  except UserError:
    raise
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


@dataclasses.dataclass(frozen=True)
class Augment:
  """Per-example augmentations beyond `random_flip` and `load_size`'s crop; all off by default.

  In the per-example map, in this order: decode -> crop/resize -> rotation -> resized crop ->
  flip -> colour jitter. Each draws its randomness statelessly from its own seed folded out of
  the element's (seed, global index), so a resumed stream is bitwise that of an uninterrupted
  one, and turning one augmentation on does not change the draws of another. Images go to
  float in [0, 1] for these and back to uint8 (rounded, clipped) before batching.

  rotation: max degrees a; the angle is uniform in [-a, a] (positive: counter-clockwise),
    bilinear, corners filled by reflecting the image (the edge pixel repeated: 'reflect' as in
    keras' RandomRotation), so a generator never learns blank corners.
  resized_crop_scale, resized_crop_ratio: Inception-style random resized crop: a box of area
    fraction in [min, max] and aspect ratio (width / height) in [min, max], resized (bilinear)
    back to the image size; after 100 draws that do not fit, the whole image.
    `resized_crop_scale=None` is off.
  brightness, contrast, saturation, hue: torchvision ColorJitter's semantics, applied in that
    fixed order (torchvision shuffles it): factors uniform in [max(0, 1 - b), 1 + b], brightness
    scales the image, contrast blends it with its mean grey level, saturation with its per-pixel
    grey (0.2989 R + 0.587 G + 0.114 B); hue shifts the HSV hue by a fraction uniform in
    [-hue, hue], hue <= 0.5; each clamps to [0, 1]. Saturation and hue need RGB images:
    on other channel counts they are a UserError (see `check_channels`).
  """
  rotation: float = 0.0
  resized_crop_scale: tuple[float, float] | None = None
  resized_crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
  brightness: float = 0.0
  contrast: float = 0.0
  saturation: float = 0.0
  hue: float = 0.0

  def __post_init__(self):
    if not 0 <= self.rotation <= 180:
      raise UserError(f"data.rotation={self.rotation} must be in [0, 180] (max degrees either way)")
    if self.resized_crop_scale is not None:
      lo, hi = self.resized_crop_scale
      if not 0 < lo <= hi <= 1:
        raise UserError(f"data.resized_crop_scale={_pair_text(self.resized_crop_scale)} must be "
                        f"min,max area fractions with 0 < min <= max <= 1")
    lo, hi = self.resized_crop_ratio
    if not 0 < lo <= hi:
      raise UserError(f"data.resized_crop_ratio={_pair_text(self.resized_crop_ratio)} must be "
                      f"min,max aspect ratios (width / height) with 0 < min <= max")
    for name in ("brightness", "contrast", "saturation"):
      if not getattr(self, name) >= 0:
        raise UserError(f"data.{name}={getattr(self, name)} must be >= 0")
    if not 0 <= self.hue <= 0.5:
      raise UserError(f"data.hue={self.hue} must be in [0, 0.5] (a fraction of the hue circle)")

  @classmethod
  def from_config(cls, config) -> Augment:
    """From the trainer config's `data.*` (missing keys: off); bad values are a UserError."""
    data = config.data
    return cls(rotation=float(data.get("rotation", 0.0)),
               resized_crop_scale=_parse_pair(data.get("resized_crop_scale", ""),
                                              "data.resized_crop_scale"),
               resized_crop_ratio=_parse_pair(data.get("resized_crop_ratio", ""),
                                              "data.resized_crop_ratio") or (3 / 4, 4 / 3),
               **{name: float(data.get(name, 0.0))
                  for name in ("brightness", "contrast", "saturation", "hue")})

  def check_channels(self, channels: int) -> None:
    if channels != 3:
      for name in ("saturation", "hue"):
        if getattr(self, name):
          raise UserError(f"data.{name}={getattr(self, name)} needs RGB images; this dataset's "
                          f"have {channels} channel(s): leave it 0")

  @property
  def colour(self) -> bool:
    return bool(self.brightness or self.contrast or self.saturation or self.hue)

  @property
  def active(self) -> bool:
    return bool(self.rotation or self.resized_crop_scale or self.colour)


def _parse_pair(text, name: str) -> tuple[float, float] | None:
  """'0.8,1.0', '3/4,4/3', '(0.08, 1)' or a 2-sequence -> (lo, hi); '' or None -> None."""
  if text is None or (isinstance(text, str) and not text.strip()):
    return None
  parts = text.strip().strip("()[]").split(",") if isinstance(text, str) else list(text)
  try:
    if len(parts) != 2:
      raise ValueError
    return tuple(float(fractions.Fraction(str(p).strip())) for p in parts)
  except (ValueError, ZeroDivisionError):
    raise UserError(f"{name}={text!r} must be two numbers min,max (e.g. 0.8,1 or 3/4,4/3)") from None


def _pair_text(pair) -> str:
  return ",".join(f"{v:g}" for v in pair)


def _image_feature(builder, image_key: str):
  features = builder.info.features
  if image_key not in features:
    raise UserError(f"dataset {builder.info.full_name!r} has no {image_key!r} feature "
                    f"(features: {', '.join(features.keys())})")
  return features[image_key]


def parse_image_size(value) -> tuple[int, int] | None:
  """`data.image_size` -> (H, W), or None for the dataset's own size.

  0, '' or '0': the dataset's size; 64 or '64': 64x64; '32,48' (or '32x48', (32, 48)): 32 rows
  by 48 columns. Older config.json files hold an int, newer ones a string: both are read."""
  if value is None or (isinstance(value, str) and value.strip() in ("", "0")):
    return None
  if isinstance(value, (int, np.integer)):
    parts = [int(value)] * 2 if value else []
  else:
    text = value if isinstance(value, str) else ",".join(map(str, value))
    try:
      parts = [int(p) for p in text.strip().strip("()[]").replace("x", ",").split(",")]
    except ValueError:
      parts = [-1]
    parts = parts * 2 if len(parts) == 1 else parts
  if not parts:
    return None
  if len(parts) != 2 or min(parts) < 1:
    raise UserError(f"data.image_size={value!r} must be a size (64), rows,cols (32,48) "
                    f"or 0 for the dataset's own size")
  return parts[0], parts[1]


def dataset_info(builder, split: str, image_size=0, image_key: str = "image",
                 paired: bool = False) -> DatasetInfo:
  """Shapes, classes and size of `split`; `image_size` (see parse_image_size) resizes.

  `paired`: each stored image is an A|B pair side by side (pix2pix's format); the pipeline
  stacks the halves on channels, so the shape is (H, W / 2, 2C)."""
  _, tfds = _tf_and_tfds()
  feature = _image_feature(builder, image_key)
  h, w, c = feature.shape
  if c is None:
    raise UserError(f"dataset {builder.info.full_name!r} has images with an unknown channel count")
  if paired:
    if w is not None and w % 2:
      raise UserError(f"dataset {builder.info.full_name!r} has {h}x{w} images: side-by-side "
                      f"A|B pairs need an even width")
    w, c = (w // 2 if w is not None else None), 2 * c
  size = parse_image_size(image_size)
  if size:
    h, w = size
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
               image_size=0, random_crop: bool = False, paired: bool = False, value_range: tuple[float, float] = (-1.0, 1.0),
               shuffle_buffer: int = 10_000, random_flip: bool = False, load_size: int = 0,
               augment: Augment | None = None, repeat: bool = True,
               start: int = 0, cache: bool = True, image_key: str = "image",
               process_index: int = 0, process_count: int = 1):
    tf, tfds = _tf_and_tfds()
    self.info = dataset_info(builder, split, image_size, image_key, paired)
    size = parse_image_size(image_size)
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
    augment = augment or Augment()
    augment.check_channels(c)
    global_batch = batch_size * process_count
    self.num_batches = -(-n // global_batch)  # a one-pass stream's length, on every process

    random_crop = bool(random_crop and size)  # a random window of the resized image
    if load_size and size and size[0] != size[1]:
      raise UserError(f"data.load_size (resize to a square, then a random crop) needs a square "
                      f"data.image_size, not {size[0]},{size[1]}: use data.train_crop=random")

    def decode(encoded):
      image = feature.decode_example(encoded)
      if paired:  # A|B side by side -> A and B stacked on channels, cropped and flipped as one
        half = tf.shape(image)[1] // 2
        image = tf.concat([image[:, :half], image[:, half:2 * half]], axis=-1)
      if load_size:
        return _center_crop_resize(tf, image, (load_size, load_size))
      if random_crop:
        return _cover_resize(tf, image, size)
      return _center_crop_resize(tf, image, size) if size else image

    # A split small enough is cached decoded (decoding dominates the cost of small images);
    # a larger one encoded, and decoded after the resume skip.
    side = load_size or max(h, w) * (2 if random_crop else 1)
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
      if load_size or random_crop:
        image = tf.image.stateless_random_crop(image, (h, w, c), seed=element_seed[::-1])
      # Each augmentation its own seed (flip and crop keep theirs: older streams stay the same).
      fold = lambda k: tf.random.experimental.stateless_fold_in(element_seed, k)
      if augment.active:
        image = tf.ensure_shape(tf.cast(image, tf.float32) / 255.0, (h, w, c))
      if augment.rotation:
        angle = tf.random.stateless_uniform((), fold(1), -augment.rotation, augment.rotation)
        image = rotate(tf, image, angle)
      if augment.resized_crop_scale:
        image = resized_crop(tf, image, fold(2), augment.resized_crop_scale,
                             augment.resized_crop_ratio)
      if random_flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=element_seed)
      if augment.colour:
        image = colour_jitter(tf, image, jitter_factors(tf, fold(3), augment))
      if augment.active:  # back to uint8 as the decoded images are: per_batch scales them
        image = tf.cast(tf.clip_by_value(tf.round(image * 255.0), 0, 255), tf.uint8)
      return index, (image, label)

    def per_batch(index, x):
      image, label = x
      image = tf.cast(image, tf.float32) * ((hi - lo) / 255.0) + lo
      out = {"image": tf.ensure_shape(image, (None, h, w, c))}
      if has_label:
        out["label"] = tf.cast(label, tf.int32)
      return out

    if random_flip or load_size or random_crop or augment.active or not decoded:
      ds = ds.map(per_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=repeat)
    ds = ds.map(per_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    self._ds = ds.prefetch(tf.data.AUTOTUNE)
    self._tfds = tfds

  def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
    return iter(self._tfds.as_numpy(self._ds))


def _center_crop_resize(tf, image, size: tuple[int, int]):
  """The largest central crop of the target's aspect (a square for square sizes), then an
  antialiased resize to size = (H, W) (uint8 in, uint8 out): evaluation's view of an image."""
  (th, tw), shape = size, tf.shape(image)
  ch, cw = tf.minimum(shape[0], shape[1] * th // tw), tf.minimum(shape[1], shape[0] * tw // th)
  top, left = (shape[0] - ch) // 2, (shape[1] - cw) // 2
  image = image[top:top + ch, left:left + cw]
  image = tf.image.resize(image, (th, tw), method="bilinear", antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def _cover_resize(tf, image, size: tuple[int, int]):
  """An antialiased resize keeping the aspect, the shorter side (relative to the target) to
  the target's, so the image covers size = (H, W); a random window of it is cut later.
  Images smaller than the target are enlarged."""
  (th, tw), shape = size, tf.cast(tf.shape(image), tf.float32)
  scale = tf.maximum(th / shape[0], tw / shape[1])
  nh = tf.maximum(th, tf.cast(tf.round(shape[0] * scale), tf.int32))
  nw = tf.maximum(tw, tf.cast(tf.round(shape[1] * scale), tf.int32))
  image = tf.image.resize(image, tf.stack([nh, nw]), method="bilinear", antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


# Per-image augmentations: float images [H, W, C] in [0, 1] in and out (see Augment).

def rotate(tf, image, degrees):
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


def resized_crop(tf, image, seed, scale: tuple[float, float], ratio: tuple[float, float]):
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


def jitter_factors(tf, seed, augment: Augment):
  """[brightness, contrast, saturation, hue] drawn as torchvision's ColorJitter draws them;
  one uniform each, so a factor's draw does not depend on which others are on."""
  u = tf.random.stateless_uniform((4,), seed)
  lo = tf.constant([max(0.0, 1.0 - augment.brightness), max(0.0, 1.0 - augment.contrast),
                    max(0.0, 1.0 - augment.saturation), -augment.hue])
  hi = tf.constant([1.0 + augment.brightness, 1.0 + augment.contrast,
                    1.0 + augment.saturation, augment.hue])
  return lo + u * (hi - lo)


def colour_jitter(tf, image, factors):
  """Brightness, contrast, saturation, hue with the given factors (1, 1, 1, 0: unchanged)."""
  image = adjust_brightness(tf, image, factors[0])
  image = adjust_contrast(tf, image, factors[1])
  if image.shape[-1] == 3:  # else Augment.check_channels has made sure they are off
    image = adjust_saturation(tf, image, factors[2])
    image = adjust_hue(tf, image, factors[3])
  return image


def _grey(tf, image):
  """torchvision's rgb_to_grayscale (ITU-R 601-2 luma) on RGB; the image itself otherwise."""
  if image.shape[-1] != 3:
    return image
  return tf.reduce_sum(image * tf.constant([0.2989, 0.587, 0.114]), axis=-1, keepdims=True)


def _blend(tf, image, other, factor):
  return tf.clip_by_value(factor * image + (1.0 - factor) * other, 0.0, 1.0)


def adjust_brightness(tf, image, factor):
  return _blend(tf, image, tf.zeros_like(image), factor)


def adjust_contrast(tf, image, factor):
  return _blend(tf, image, tf.reduce_mean(_grey(tf, image)), factor)


def adjust_saturation(tf, image, factor):
  return _blend(tf, image, _grey(tf, image), factor)


def adjust_hue(tf, image, delta):
  return tf.clip_by_value(tf.image.adjust_hue(image, delta), 0.0, 1.0)
