"""Translates images with a CycleGAN run's latest checkpoint.

  python -m gen.translate --workdir runs/cyclegan --direction AtoB --input IN --out OUT.npz

IN is an .npz file with `images` (uint8 [N, H, W, C]) or a folder of PNG/JPEG
files (read in sorted name order; grayscale files give C = 1, others are read
as RGB). Images must have the model's size and channels: nothing is resized.
OUT gets `images` (uint8 [N, H, W, C], in input order) and, for a folder,
`names` (the file names).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from gen.cli import parse_flags, user_errors  # pylint: disable=g-import-not-at-top
from gen.errors import UserError  # pylint: disable=g-import-not-at-top

flags.DEFINE_string("workdir", None, "Run directory written by train_cyclegan.py.", required=True)
flags.DEFINE_enum("direction", "AtoB", ["AtoB", "BtoA"], "AtoB: G_AB(x); BtoA: G_BA(x).")
flags.DEFINE_string("input", None, "An .npz with uint8 `images` [N, H, W, C], or a folder of PNG/JPEG.",
                    required=True)
flags.DEFINE_string("out", None, "Output .npz path.", required=True)
FLAGS = flags.FLAGS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_images(path: str) -> tuple[np.ndarray, list[str] | None]:
  """(uint8 [N, H, W, C], file names or None) from an .npz file or a folder of images."""
  if os.path.isdir(path):
    return _read_folder(path)
  if not os.path.exists(path):
    raise UserError(f"input {path!r} does not exist")
  try:
    with np.load(path, allow_pickle=False) as f:
      if "images" not in f:
        raise UserError(f"input {path!r} has no 'images' array (it has: {', '.join(f.files) or 'none'})")
      images = f["images"]
  except UserError:
    raise
  except Exception as e:  # not an .npz, truncated, pickled objects, ...
    raise UserError(f"cannot read {path!r} as an .npz file: {type(e).__name__}: {e}") from None
  if images.dtype != np.uint8 or images.ndim != 4:
    raise UserError(f"'images' in {path!r} must be uint8 [N, H, W, C], not {images.dtype} "
                    f"{list(images.shape)}")
  return images, None


def _read_folder(path: str) -> tuple[np.ndarray, list[str]]:
  from PIL import Image, UnidentifiedImageError  # pylint: disable=g-import-not-at-top
  names = sorted(n for n in os.listdir(path) if n.lower().endswith(IMAGE_SUFFIXES))
  if not names:
    raise UserError(f"folder {path!r} holds no .png, .jpg or .jpeg files")
  images = []
  for name in names:
    try:
      with Image.open(os.path.join(path, name)) as im:
        image = np.asarray(im.convert("L" if im.mode in ("1", "L", "I", "I;16") else "RGB"))
    except (OSError, UnidentifiedImageError) as e:
      raise UserError(f"cannot read image {name!r} in {path!r}: {e}") from None
    image = image[..., None] if image.ndim == 2 else image
    if images and image.shape != images[0].shape:
      raise UserError(f"images in {path!r} differ in shape: {names[0]} is "
                      f"{'x'.join(map(str, images[0].shape))}, {name} is {'x'.join(map(str, image.shape))}")
    images.append(image)
  return np.stack(images), names


def main(argv):
  logging.set_verbosity(logging.WARNING)
  with user_errors():
    if len(argv) > 1:
      raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    images, names = read_images(FLAGS.input)
    from gen.trainer import restore_for_inference  # pylint: disable=g-import-not-at-top
    config, family, state = restore_for_inference(FLAGS.workdir)
    if not hasattr(family, "translate"):
      raise UserError(f"{FLAGS.workdir!r} holds a {config.family} run; gen.translate needs a "
                      f"cyclegan run")
    out = {"images": family.translate(state, images, FLAGS.direction)}
    if names is not None:
      out["names"] = np.asarray(names)
    try:
      os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
      np.savez(FLAGS.out, **out)
    except OSError as e:
      raise UserError(f"cannot write {FLAGS.out!r}: {e.strerror or e}") from None
    print(f"wrote {FLAGS.out}: images {'x'.join(map(str, out['images'].shape))} uint8 "
          f"({FLAGS.direction})", file=sys.stderr)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
