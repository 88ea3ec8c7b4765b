"""`folder:PATH`: a directory of your own images, prepared once into a real TFDS dataset.

  python train_gan.py --workdir runs/mine --config.data.name=folder:/data/faces \\
      --config.data.image_size=64

Layouts (PNG, JPEG, BMP, GIF or WebP files, found recursively; hidden files are ignored):
  PATH/*.png                      one class-less set, split into train/test by a seeded
                                  `data.folder_test_fraction` (default 5%, at least one image)
  PATH/<class>/**.png             the same, each first-level sub-directory a class (`label`,
                                  classes in sorted name order)
  PATH/train/..., PATH/test/...   the splits as given (each flat or with class
                                  sub-directories); `val` is a split too
  PATH/trainA, trainB, testA, testB   CycleGAN's layout: one split per domain
pix2pix's paired folders (`train/`, `val/`, `test/` of A|B side-by-side images) are the
splits layout; the pix2pix family cuts each image in halves.

Conversions, documented rather than refused: if any image has colour the dataset is RGB
(greyscale images replicated to 3 channels), else greyscale (1 channel); an alpha channel is
dropped, palette and CMYK images become RGB, 16-bit greyscale is scaled to 8 bits. Images
of any size and aspect are kept as they are; the pipeline resizes them (the shorter side to
`data.image_size`, then a random crop for training and a central one for evaluation).
Images smaller than the crop are enlarged.

Refused, with one line naming the file: an empty folder, a file that is not a readable image
(empty, truncated, unreadable), images both at a split's top level and in class
sub-directories. Preparation writes to a temporary directory that TFDS renames only when
every image has been read, so a bad file never leaves a half-prepared dataset.

The prepared dataset lives in the data_dir as `gen_folder/<name>-<fingerprint>`; the
fingerprint covers the folder's file list (paths, sizes, modification times) and the test
fraction, so a changed folder is prepared again (the old copy stays until deleted).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import re

import numpy as np
import tensorflow_datasets as tfds

from gen.errors import UserError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
SPLIT_DIRS = ("train", "test", "val", "trainA", "trainB", "testA", "testB", "valA", "valB")
SPLIT_SEED = 0  # the train/test split of a folder is the same for every run and seed
FORMAT = "1"  # part of the fingerprint: bump when preparation changes what it writes
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")


class _QuietCustomConfig(logging.Filter):
  """Every folder is a config TFDS does not know in advance: that is by design, not news."""

  def filter(self, record):
    return "custom data configuration" not in record.getMessage()


logging.getLogger("absl").addFilter(_QuietCustomConfig())


@dataclasses.dataclass(frozen=True)
class Layout:
  """What a folder holds: {split: [(relative path, class name or '')]}, classes, channels."""
  root: str
  splits: dict
  classes: tuple[str, ...]
  channels: int
  shape: tuple  # (H, W) when every image has it, else (None, None)
  fingerprint: str


def _images_under(path: str) -> list[str]:
  out = []
  for dirpath, dirnames, filenames in os.walk(path, followlinks=True):
    dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    out += [os.path.join(dirpath, f) for f in sorted(filenames)
            if not f.startswith(".") and f.lower().endswith(EXTENSIONS)]
  return out


def _labelled(split_dir: str, root: str) -> list[tuple[str, str]]:
  """[(path relative to root, class)] under split_dir: first-level sub-directories are classes."""
  entries = sorted(e for e in os.listdir(split_dir) if not e.startswith("."))
  top = [e for e in entries if os.path.isfile(os.path.join(split_dir, e))
         and e.lower().endswith(EXTENSIONS)]
  subdirs = [e for e in entries if os.path.isdir(os.path.join(split_dir, e))]
  nested = [(p, d) for d in subdirs for p in _images_under(os.path.join(split_dir, d))]
  if top and nested:
    raise UserError(f"folder {split_dir} has images both at its top level ({top[0]}) and in "
                    f"class sub-directories ({os.path.relpath(nested[0][0], split_dir)}): put "
                    f"them all in sub-directories (one per class) or none")
  files = [(os.path.join(split_dir, f), "") for f in top] + nested
  return [(os.path.relpath(p, root), c) for p, c in files]


def scan(path: str, test_fraction: float) -> Layout:
  """Reads the folder's layout and every image's header (not its pixels); one-line errors."""
  root = os.path.abspath(os.path.expanduser(path))
  if not os.path.isdir(root):
    raise UserError(f"data.name='folder:{path}': no such directory")
  if not 0 <= test_fraction < 1:
    raise UserError(f"data.folder_test_fraction={test_fraction} must be in [0, 1)")
  dirs = [d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))]
  given = sorted(d for d in dirs if d in SPLIT_DIRS)
  if given:  # the splits as the folder gives them
    loose = [e for e in os.listdir(root) if e.lower().endswith(EXTENSIONS)] + \
            [d for d in dirs if d not in SPLIT_DIRS and not d.startswith(".")]
    if loose:
      raise UserError(f"folder {root} has split directories ({', '.join(given)}) and also "
                      f"{loose[0]!r} beside them: move it into a split or out of the folder")
    splits = {d: _labelled(os.path.join(root, d), root) for d in given}
  else:  # one set, split by a seeded fraction
    files = _labelled(root, root)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(files))
    n_test = round(test_fraction * len(files))
    if test_fraction > 0 and len(files) >= 2:
      n_test = min(max(n_test, 1), len(files) - 1)
    test = set(order[:n_test].tolist())
    splits = {"train": [f for i, f in enumerate(files) if i not in test],
              "test": [f for i, f in enumerate(files) if i in test]}
    if not n_test:
      del splits["test"]
  if not any(splits.values()):
    raise UserError(f"folder {root} has no images ({', '.join(EXTENSIONS)})")
  for name, files in splits.items():
    if not files:
      raise UserError(f"folder {root}: split directory {name!r} has no images")

  classes = sorted({c for files in splits.values() for _, c in files} - {""})
  if classes and any(c == "" for files in splits.values() for _, c in files):
    raise UserError(f"folder {root}: some splits have class sub-directories and others do not")
  colour, sizes, listing = False, set(), []
  from PIL import Image
  for name, files in splits.items():
    for rel, _ in files:
      full = os.path.join(root, rel)
      try:
        with Image.open(full) as im:
          sizes.add(im.size)
          colour |= im.mode not in _GREY_MODES
        stat = os.stat(full)
      except Exception as e:  # empty, not an image, unreadable
        raise UserError(f"cannot read image {full}: {_reason(e)}") from None
      listing.append(f"{name}\0{rel}\0{stat.st_size}\0{stat.st_mtime_ns}")
  digest = hashlib.sha256("\n".join([FORMAT, repr(test_fraction), *listing]).encode())
  (w, h), = sizes if len(sizes) == 1 else [(None, None)]
  return Layout(root, splits, tuple(classes), 3 if colour else 1, (h, w), digest.hexdigest()[:12])


def _reason(e: Exception) -> str:
  text = str(e).strip().splitlines()
  return text[0] if text else type(e).__name__


def config_name(layout: Layout) -> str:
  slug = re.sub(r"[^a-z0-9_]+", "_", os.path.basename(layout.root).lower()).strip("_") or "root"
  return f"{slug[:40]}-{layout.fingerprint}"


def read_image(full: str, channels: int):
  """The file's pixels as uint8 [H, W, channels], or the file's own bytes when TFDS can store
  them as they are (a PNG or JPEG already 8-bit greyscale / RGB as the dataset wants)."""
  from PIL import Image
  try:
    with open(full, "rb") as f:
      data = f.read()
    with Image.open(io.BytesIO(data)) as im:
      im.load()  # decodes every pixel: a truncated file fails here, before anything is kept
      want = "L" if channels == 1 else "RGB"
      if im.format in ("PNG", "JPEG") and im.mode == want:
        return data
      if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit greyscale: keep the top 8 bits
        grey = np.asarray(im, np.int64)
        grey = (np.clip(grey, 0, 65535) >> 8 if grey.max() > 255 else grey).astype(np.uint8)
        im = Image.fromarray(grey)
      array = np.asarray(im.convert(want))
  except Exception as e:
    raise UserError(f"cannot read image {full}: {_reason(e)}") from None
  return array[..., None] if channels == 1 else array


class ImageFolderConfig(tfds.core.BuilderConfig):
  def __init__(self, *, layout: Layout, **kwargs):
    super().__init__(name=config_name(layout), version=tfds.core.Version("1.0.0"),
                     description=f"images of {layout.root}", **kwargs)
    self.layout = layout


class ImageFolder(tfds.core.GeneratorBasedBuilder):
  """A user's image folder (see gen/data/folder.py); one config per folder fingerprint."""

  name = "gen_folder"
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  def _info(self) -> tfds.core.DatasetInfo:
    layout = self.builder_config.layout
    features = {"image": tfds.features.Image(shape=(*layout.shape, layout.channels))}
    if layout.classes:
      features["label"] = tfds.features.ClassLabel(names=list(layout.classes))
    return tfds.core.DatasetInfo(builder=self, description=f"Images of {layout.root}.",
                                 features=tfds.features.FeaturesDict(features),
                                 disable_shuffling=True)  # file order: name-sorted

  def _split_generators(self, dl_manager):
    del dl_manager
    return {name: self._generate_examples(files) for name, files in
            self.builder_config.layout.splits.items()}

  def _generate_examples(self, files):
    layout = self.builder_config.layout
    for i, (rel, label) in enumerate(files):
      example = {"image": read_image(os.path.join(layout.root, rel), layout.channels)}
      if layout.classes:
        example["label"] = label
      yield i, example


def builder(path: str, data_dir: str, test_fraction: float):
  """The TFDS builder of `folder:PATH` (prepared or not)."""
  layout = scan(path, test_fraction)
  return ImageFolder(config=ImageFolderConfig(layout=layout), data_dir=data_dir)
