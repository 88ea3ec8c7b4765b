"""Per-example augmentations of the input pipeline (config `data.*`), for little data.

They run in tf.data (gen.data.pipeline, gen.data.image_ops), unlike the differentiable
augmentation of what a GAN's discriminator sees (gen.objectives.augment).
"""

from __future__ import annotations

import dataclasses
import fractions

from gen.errors import UserError


@dataclasses.dataclass(frozen=True)
class ExampleAugment:
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
  def from_config(cls, config) -> ExampleAugment:
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
