"""`digits2bold`: an offline unpaired translation task with an exact answer, as a TFDS dataset.

Domain A is mnist5k digits (white on black); domain B is T(x) = 1 - maxfilter3x3(x):
each digit dilated by a 3x3 grayscale max filter (zeros beyond the border), then
inverted, so a dark bold digit on white. With x in [0, 1] (uint8: 255 - max).

  trainA  the train-split digits with even index (2,000)
  trainB  T of the train-split digits with odd index (2,000), so no pair is ever seen
  testA   the test split (1,000), classes interleaved (0, 1, ..., 9, 0, 1, ...)
  testB   T of the test split, in the same order: testB[i] = T(testA[i]), the ground truth

Same layout of splits and features as TFDS's `cycle_gan/*` datasets.
"""

import numpy as np
import tensorflow_datasets as tfds

from gen.data import mnist5k


def bold_inverse(images: np.ndarray) -> np.ndarray:
  """T(x) = 1 - maxfilter3x3(x) on uint8 [N, H, W, C] (zero padding), as uint8."""
  h, w = images.shape[1:3]
  padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
  dilated = np.max([padded[:, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=0)
  return (255 - dilated).astype(np.uint8)


class Digits2bold(tfds.core.GeneratorBasedBuilder):
  """Unpaired digits -> bold inverted digits, built from mnist5k; offline."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=mnist5k.digit_features(),  # label: the digit
        supervised_keys=("image", "label"),
        disable_shuffling=True,  # keep generation order: testB[i] is T(testA[i])
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download: built from mnist5k's CSV
    images, labels = mnist5k.load_rows()
    train, test = (mnist5k.split_indices(labels, s) for s in ("train", "test"))
    test = test[np.argsort(np.arange(len(test)) % 100, kind="stable")]  # classes interleaved: 0-9, 0-9, ...
    return {
        "trainA": self._generate_examples(images[train[0::2]], labels[train[0::2]]),
        "trainB": self._generate_examples(bold_inverse(images[train[1::2]]), labels[train[1::2]]),
        "testA": self._generate_examples(images[test], labels[test]),
        "testB": self._generate_examples(bold_inverse(images[test]), labels[test]),
    }

  def _generate_examples(self, images, labels):
    for i, (image, label) in enumerate(zip(images, labels)):
      yield i, {"image": image, "label": int(label)}


class Digits2boldPairs(tfds.core.GeneratorBasedBuilder):
  """digits2bold as pairs, for paired translation (pix2pix): each image is a digit x and its
  T(x) side by side (28x56, A|B, pix2pix's format).

    train  the 4,000 train-split digits (trainA and trainB of digits2bold together), paired
    test   the 1,000 test digits in digits2bold's testA order: the right halves are its testB
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(28, 56, 1)),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    images, labels = mnist5k.load_rows()
    train, test = (mnist5k.split_indices(labels, s) for s in ("train", "test"))
    test = test[np.argsort(np.arange(len(test)) % 100, kind="stable")]  # as digits2bold's testA
    pairs = lambda x: np.concatenate([x, bold_inverse(x)], axis=2)
    return {"train": self._generate_examples(pairs(images[train]), labels[train]),
            "test": self._generate_examples(pairs(images[test]), labels[test])}

  def _generate_examples(self, images, labels):
    for i, (image, label) in enumerate(zip(images, labels)):
      yield i, {"image": image, "label": int(label)}
