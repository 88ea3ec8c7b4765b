"""Image conversions and PNG grids."""

import math
import os

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
  from PIL import Image  # pylint: disable=g-import-not-at-top
  image = np.asarray(image)
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  tmp = path + ".tmp.png"
  Image.fromarray(image).save(tmp)
  os.replace(tmp, path)  # a reader never sees half a file
