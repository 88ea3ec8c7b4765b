"""Image conversions and PNG grids."""

import math
import os
import zipfile

import numpy as np

from gen.errors import UserError


def to_uint8(images, value_range=(-1.0, 1.0)) -> np.ndarray:
  """Float images in `value_range` -> uint8 [0, 255], rounded and clipped."""
  lo, hi = value_range
  x = (np.asarray(images, np.float32) - lo) * (255.0 / (hi - lo))
  return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def grid(images: np.ndarray, cols: int | None = None, pad: int = 2) -> np.ndarray:
  """uint8 [N, H, W, C] -> one uint8 [rows*(H+pad)+pad, cols*(W+pad)+pad, C] tile image."""
  images = np.asarray(images)
  if images.ndim != 4:
    raise UserError(f"expected images of shape [N, H, W, C], got {images.shape}")
  n, h, w, c = images.shape
  cols = cols or math.ceil(math.sqrt(n))
  rows = math.ceil(n / cols)
  out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, np.uint8)
  for i, image in enumerate(images):
    r, q = divmod(i, cols)
    out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + q * (w + pad):pad + q * (w + pad) + w] = image
  return out


def save_png(path: str, image: np.ndarray) -> None:
  from PIL import Image
  image = np.asarray(image)
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  tmp = path + ".tmp.png"
  Image.fromarray(image).save(tmp)
  os.replace(tmp, path)  # a reader never sees half a file


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def read_images(path: str) -> tuple[np.ndarray, list[str] | None]:
  """(uint8 [N, H, W, C], file names or None) from an .npz file or a folder of images."""
  if os.path.isdir(path):
    return _read_folder(path)
  if not os.path.exists(path):
    raise UserError(f"input {path!r} does not exist")
  if not zipfile.is_zipfile(path):
    raise UserError(f"{path!r} is not an .npz file (numpy.savez writes one) nor a folder of images")
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
  from PIL import Image, UnidentifiedImageError
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


def write_npz(path: str, arrays: dict) -> None:
  if not path.endswith(".npz"):  # numpy would append .npz and write another file than named
    raise UserError(f"--out {path!r} must end in .npz")
  try:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    np.savez(path, **arrays)
  except OSError as e:
    raise UserError(f"cannot write {path!r}: {e.strerror or e}") from None
