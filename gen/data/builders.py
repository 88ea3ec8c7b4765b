"""Datasets by name: TFDS builders, prepared here when they can be, and what a split holds.

`open_builder` gives a prepared TFDS builder for a TFDS name or `folder:PATH` (a directory of
images, gen/data/folder.py), preparing the offline datasets and folders itself; a dataset that
needs a download is prepared only when the network answers, else it is one line saying how to
prepare it elsewhere. TensorFlow is imported here, lazily, and nowhere before a dataset is opened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import os
import socket
import sys
import threading

from gen.data.info import DatasetInfo, parse_image_size
from gen.errors import UserError

# Built from files that ship with gen's dependencies: prepared here, no download.
OFFLINE_DATASETS = ("mnist5k", "digits2bold", "digits2bold_pairs")


@functools.cache
def tf_and_tfds():
  """Imports TensorFlow lazily (so `import gen` stays light) and keeps it off accelerators."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # tf.data only; and its start-up banner
  with _without_eager_keras():
    import tensorflow as tf
  tf.config.set_visible_devices([], "GPU")
  import tensorflow_datasets as tfds
  from tensorflow_datasets.core.utils import gcs_utils
  # TFDS otherwise probes GCS for every unprepared dataset, which hangs offline.
  gcs_utils._is_gcs_disabled = True
  import gen.data.digits2bold
  import gen.data.mnist5k  # noqa: F401  registers mnist5k
  return tf, tfds


@contextlib.contextmanager
def _without_eager_keras():
  """`import tensorflow` also imports Keras's optimizers eagerly (~4 s of a 7-11 s import) unless
  TF_USE_LEGACY_KERAS names the tf_keras package; where that is not installed TensorFlow skips
  the eager import. gen uses only tf.data. Set for the import alone: `tf.keras`, loaded lazily,
  is still Keras 3 afterwards."""
  if "TF_USE_LEGACY_KERAS" in os.environ or "keras" in sys.modules or importlib.util.find_spec("tf_keras"):
    yield
    return
  os.environ["TF_USE_LEGACY_KERAS"] = "1"
  try:
    yield
  finally:
    del os.environ["TF_USE_LEGACY_KERAS"]


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


def open_builder(name: str, data_dir: str | None = None,
                 folder_test_fraction: float = FOLDER_TEST_FRACTION):
  """Returns a prepared TFDS builder for `name`, preparing it when it can; else a UserError.

  `name` is a TFDS name ('mnist5k', 'cycle_gan/horse2zebra') or `folder:PATH`, a directory
  of images prepared into a TFDS dataset (gen/data/folder.py)."""
  if not name.strip():
    raise UserError("data.name is empty: set --config.data.name to a TFDS name or folder:PATH")
  _, tfds = tf_and_tfds()
  data_dir = data_dir or default_data_dir()
  if name.startswith(FOLDER_PREFIX):
    from gen.data import folder
    make = lambda: folder.builder(name[len(FOLDER_PREFIX):], data_dir, folder_test_fraction)
    builder = make()
    return builder if builder.is_prepared() else _prepare_in_turn(name, make, data_dir)
  base, _, config = name.split(":")[0].partition("/")  # dataset[/config][:version]
  try:
    configs = [c.name for c in tfds.builder_cls(base).BUILDER_CONFIGS or ()]
  except tfds.core.registered.DatasetNotFoundError:
    raise UserError(f"unknown dataset {name!r}: not a TFDS dataset name (try mnist5k, "
                    f"digits2bold, digits2bold_pairs, mnist, cifar10, celeb_a, "
                    f"cycle_gan/horse2zebra) or folder:PATH") from None
  if config and config not in configs:
    raise UserError(f"dataset {base!r} has no config {config!r}; its configs: "
                    f"{', '.join(configs) or 'none'}")
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # an unreadable data_dir, a bad version, ...
    raise UserError(f"cannot open dataset {name!r} in {data_dir}: {_first_line(e)}") from None
  if builder.is_prepared():
    return builder
  return _prepare_in_turn(name, lambda: tfds.builder(name, data_dir=data_dir), data_dir)


def _prepare_in_turn(name: str, make, data_dir: str):
  """Prepares `name`; in a multi-process run one process at a time, each after the previous
  one is done, so processes sharing a data_dir never write it at once (the first prepares, the
  others find it prepared) and hosts with their own disks each prepare their copy."""
  import jax
  count = jax.process_count()
  for turn in range(count):
    if turn == jax.process_index():
      builder = make()  # sees what earlier turns prepared
      if not builder.is_prepared():
        _prepare(name, builder, data_dir)
    if count > 1:
      from jax.experimental import multihost_utils
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


def image_feature(builder, image_key: str):
  features = builder.info.features
  if image_key not in features:
    raise UserError(f"dataset {builder.info.full_name!r} has no {image_key!r} feature "
                    f"(features: {', '.join(features.keys())})")
  return features[image_key]


def dataset_info(builder, split: str, image_size=None, image_key: str = "image",
                 paired: bool = False) -> DatasetInfo:
  """Shapes, classes and size of `split`; `image_size` (see gen.data.info.parse_image_size)
  resizes.

  `paired`: each stored image is an A|B pair side by side (pix2pix's format); the pipeline
  stacks the halves on channels, so the shape is (H, W / 2, 2C)."""
  feature = image_feature(builder, image_key)
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




def splits_info(builder, splits: tuple[str, ...], image_size=None, paired: bool = False) -> DatasetInfo:
  """One DatasetInfo for the splits a family reads together (their images must agree in shape).

  num_examples is the largest split's whole size, over all processes: a family's epoch is the
  same on any number of hosts (each process reads its own slice; see Pipeline).
  """
  infos = [dataset_info(builder, split, image_size, paired=paired) for split in splits]
  if len({i.image_shape for i in infos}) > 1:
    raise UserError(f"the splits {', '.join(splits)} of {infos[0].name!r} have images of "
                    f"different shapes: set --config.data.image_size")
  return dataclasses.replace(infos[0], num_examples=max(i.num_examples for i in infos))
