"""What a model needs to know about its data, and the image-size setting; no TensorFlow here."""

from __future__ import annotations

import dataclasses

import numpy as np

from gen.errors import UserError


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What a model needs to know about its data."""
  name: str
  image_shape: tuple[int, int, int]  # (H, W, C) after the pipeline's resize
  num_classes: int  # 0 when the dataset has no `label` class feature
  num_examples: int  # in the requested split, whole (every process reads it; see Pipeline)


def parse_image_size(value) -> tuple[int, int] | None:
  """`data.image_size` -> (H, W), or None for the dataset's own size.

  0, '' or '0': the dataset's size; 64 or '64': 64x64; '32,48' (or '32x48', (32, 48)): 32 rows
  by 48 columns. A config.json may hold an int or a string: both are read."""
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
