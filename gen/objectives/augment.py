"""Differentiable augmentation of what a GAN's discriminator sees, for data-limited training.

Three mechanisms; gen/families/gan.py wires them into the GAN step (config `augment.*` and
`loss.bcr_*`, documented in gen/configs/gan.py):

  DiffAugment  Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training",
               as in mit-han-lab/data-efficient-gans DiffAugment_pytorch.py. Policies, applied
               in the order given:
                 color        brightness x + U(-0.5, 0.5); saturation (x - mean_c) * U(0, 2)
                              + mean_c (mean over channels, per pixel); contrast
                              (x - mean) * U(0.5, 1.5) + mean (mean over the image)
                 translation  integer shifts in [-H//8, H//8] x [-W//8, W//8], zero fill
                 cutout       a zeroed (H//2) x (W//2) rectangle, its centre uniform (clipped
                              at the borders)
  ADA          Karras et al. 2020, "Training Generative Adversarial Networks with Limited
               Data", after NVlabs/stylegan2-ada-pytorch training/augment.py (AugmentPipe).
               Each transform is applied to each image with probability p (the rotations with
               1 - sqrt(1 - p) each, before and after the anisotropic scaling, so that one of
               them happens with probability p), with the reference's strengths. Implemented,
               all of the reference's 'bgc' pipeline:
                 blit      xflip, rotate90, xint (integer translation, uniform within 0.125 of
                           the size)
                 geom      scale (isotropic, lognormal, std 0.2 ln 2), rotate (uniform angle),
                           aniso (lognormal, std 0.2 ln 2), xfrac (fractional translation,
                           normal, std 0.125 of the size)
                 color     brightness (+N(0, 0.2)), contrast (lognormal, std 0.5 ln 2),
                           lumaflip, hue (rotation about the luma axis, uniform angle),
                           saturation (lognormal, std ln 2); hue and saturation leave
                           1-channel images alone, as in the reference
               The geometric transforms compose into one inverse affine map per image, which
               is sampled bilinearly with mirror (reflect) boundaries. Unlike the reference
               there is no 2x-upsampled anti-aliasing (its sym6 wavelet filter) around that
               resampling, and mirroring continues beyond its padding margin. Not implemented:
               the reference's image-space filtering ('f'), noise ('n') and cutout (its
               'bgcfnc' extras). The blit transforms, and every transform that is not drawn,
               are exact: p = 0 returns the input bitwise.
               p is adapted from r_t = E[sign(D(real))] (`ada_adjust`).
  bCR's T      Zhao et al. 2021, "Improved Consistency Regularization for GANs": a random
               x-flip (probability 1/2) and a DiffAugment translation (1/8, zero fill),
               `consistency_transform`; the penalty is in gen/objectives/losses.py.

Everything works on NHWC images in [-1, 1] of any size, is pure JAX, differentiable w.r.t.
the images, and draws randomness only from an explicit key. Each augmentation comes in two
halves: `*_draws(key, ...)` draws its random parameters ({name: per-image array}) and
`*_apply(x, ..., draws)` applies given parameters, so draws can be injected (tests) or
recomputed from the same key. Keys of different transforms are folded in by the transform's
fixed index, so turning one transform on or off does not change the others' draws.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from gen.errors import UserError

# -- config ----------------------------------------------------------------------

DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")

ADA_PRESETS = {
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
}
ADA_PRESETS["bgc"] = ADA_PRESETS["blit"] + ADA_PRESETS["geom"] + ADA_PRESETS["color"]
ADA_TRANSFORMS = ADA_PRESETS["bgc"]  # also the order they are applied in

# The reference's strengths (AugmentPipe's defaults).
XINT_MAX = 0.125  # integer translation, relative to the size
SCALE_STD = 0.2  # log2 std of isotropic scaling
ROTATE_MAX = 1.0  # arbitrary rotation range, 1 = full circle
ANISO_STD = 0.2  # log2 std of anisotropic scaling
XFRAC_STD = 0.125  # std of fractional translation, relative to the size
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5  # log2
HUE_MAX = 1.0  # 1 = full circle
SATURATION_STD = 1.0  # log2


def _names(text: str, field: str, known, presets=None) -> tuple[str, ...]:
  presets = presets or {}
  given = [n.strip() for n in (text or "").split(",") if n.strip()]
  out = []
  for i, name in enumerate(given):
    if name not in known and name not in presets:
      choices = ", ".join(tuple(presets) + tuple(known))
      raise UserError(f"augment.{field}={text!r}: unknown name {name!r}; one of {choices}")
    if name in given[:i]:
      raise UserError(f"augment.{field}={text!r} names {name!r} twice")
    out += [n for n in presets.get(name, (name,)) if n not in out]
  return tuple(out)


def parse_diffaugment(text: str) -> tuple[str, ...]:
  """'color,translation' -> ('color', 'translation'); in the order given."""
  return _names(text, "diffaugment", DIFFAUGMENT_POLICIES)


def parse_ada(text: str) -> tuple[str, ...]:
  """'bgc' / 'blit,color' / 'xflip,hue' -> the transforms, in the order they are applied."""
  chosen = _names(text, "ada", ADA_TRANSFORMS, ADA_PRESETS)
  return tuple(n for n in ADA_TRANSFORMS if n in chosen)


def check_config(config, info) -> None:
  """One UserError line for a bad `augment.*` value (a config without the section is off)."""
  a = config.get("augment")
  if a is None:
    return
  parse_diffaugment(a.get("diffaugment", ""))
  ada = parse_ada(a.get("ada", ""))
  for name in ("ada_p", "ada_target"):
    v = a.get(name, 0.0)
    if not 0.0 <= v <= 1.0:
      raise UserError(f"augment.{name}={v} must be in [0, 1]")
  interval = a.get("ada_interval", 4)
  if isinstance(interval, bool) or not isinstance(interval, int) or interval < 0:
    raise UserError(f"augment.ada_interval={interval!r} must be an integer >= 0 "
                    f"(0 keeps p at augment.ada_p)")
  if not a.get("ada_kimg", 500.0) > 0:
    raise UserError(f"augment.ada_kimg={a.get('ada_kimg')} must be positive")
  channels = info.image_shape[-1]
  colour = [n for n in ada if n in ADA_PRESETS["color"]]
  if colour and channels not in (1, 3):
    raise UserError(f"augment.ada colour transforms ({', '.join(colour)}) need 1- or 3-channel "
                    f"images, dataset {info.name!r} has {channels} channels")


@dataclasses.dataclass(frozen=True)
class DiscriminatorAugment:
  """What the config turns on: `augment(x, key, p)` = DiffAugment(ADA(x, p)); identity if off."""
  diffaugment: tuple[str, ...] = ()
  ada: tuple[str, ...] = ()

  @classmethod
  def from_config(cls, config) -> DiscriminatorAugment:
    a = config.get("augment") or {}
    return cls(parse_diffaugment(a.get("diffaugment", "")), parse_ada(a.get("ada", "")))

  @property
  def active(self) -> bool:
    return bool(self.diffaugment or self.ada)

  def __call__(self, x: jax.Array, key: jax.Array, p=None) -> jax.Array:
    k_ada, k_diff = jax.random.split(key)
    if self.ada:
      x = ada(x, k_ada, p, self.ada)
    if self.diffaugment:
      x = diffaugment(x, k_diff, self.diffaugment)
    return x


# -- DiffAugment -----------------------------------------------------------------


def _per_image(v, x):
  return jnp.asarray(v, x.dtype).reshape((x.shape[0],) + (1,) * (x.ndim - 1))


def brightness(x: jax.Array, b: jax.Array) -> jax.Array:
  """x + b, b per image."""
  return x + _per_image(b, x)


def saturation(x: jax.Array, s: jax.Array) -> jax.Array:
  """(x - m) * s + m, m the mean over channels at each pixel, s per image."""
  mean = jnp.mean(x, axis=-1, keepdims=True)
  return (x - mean) * _per_image(s, x) + mean


def contrast(x: jax.Array, c: jax.Array) -> jax.Array:
  """(x - m) * c + m, m the mean of each image, c per image."""
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return (x - mean) * _per_image(c, x) + mean


def translate(x: jax.Array, shift: jax.Array) -> jax.Array:
  """out[n, i, j] = x[n, i + shift[n, 0], j + shift[n, 1]], 0 where that is outside x.

  Integer shifts [N, 2] (rows, columns); np.roll(x, -shift) with zero fill.
  """
  _, h, w, _ = x.shape
  rows = jnp.arange(h)[None, :] + shift[:, :1]  # [N, H]
  cols = jnp.arange(w)[None, :] + shift[:, 1:]  # [N, W]
  x = jnp.take_along_axis(x, jnp.clip(rows, 0, h - 1)[:, :, None, None], axis=1)
  x = jnp.take_along_axis(x, jnp.clip(cols, 0, w - 1)[:, None, :, None], axis=2)
  inside = (((rows >= 0) & (rows < h))[:, :, None, None]
            & ((cols >= 0) & (cols < w))[:, None, :, None])
  return jnp.where(inside, x, jnp.zeros((), x.dtype))


def cutout_size(shape) -> tuple[int, int]:
  return shape[1] // 2, shape[2] // 2


def cutout(x: jax.Array, centre: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Zeroes rows [c0 - s0 // 2, c0 - s0 // 2 + s0) x columns [c1 - s1 // 2, ...) of each image
  (the part inside it), centre [N, 2] integer (row, column), size (s0, s1)."""
  _, h, w, _ = x.shape
  top, left = centre[:, :1] - size[0] // 2, centre[:, 1:] - size[1] // 2
  rows, cols = jnp.arange(h)[None, :], jnp.arange(w)[None, :]
  in_rows = (rows >= top) & (rows < top + size[0])  # [N, H]
  in_cols = (cols >= left) & (cols < left + size[1])  # [N, W]
  keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
  return x * keep[..., None].astype(x.dtype)


def diffaugment_draws(key: jax.Array, policy, shape) -> dict:
  """The random parameters of `policy` (names or 'a,b' text) for images of `shape` (NHWC):
  brightness, saturation, contrast [N] float; shift [N, 2] int; cutout [N, 2] int centres."""
  policy = parse_diffaugment(policy) if isinstance(policy, str) else tuple(policy)
  n, h, w = shape[0], shape[1], shape[2]
  draws = {}
  for name in policy:
    k = jax.random.fold_in(key, DIFFAUGMENT_POLICIES.index(name))
    if name == "color":
      kb, ks, kc = jax.random.split(k, 3)
      draws["brightness"] = jax.random.uniform(kb, (n,)) - 0.5
      draws["saturation"] = jax.random.uniform(ks, (n,)) * 2.0
      draws["contrast"] = jax.random.uniform(kc, (n,)) + 0.5
    elif name == "translation":
      bound = np.array([h // 8, w // 8])
      draws["shift"] = jax.random.randint(k, (n, 2), -bound, bound + 1)
    elif name == "cutout":
      size = np.array(cutout_size(shape))
      # The reference's centres: 0 .. size + (1 - s % 2) - 1 in each dimension.
      draws["cutout"] = jax.random.randint(k, (n, 2), 0, np.array([h, w]) + 1 - size % 2)
  return draws


def diffaugment_apply(x: jax.Array, policy, draws: dict) -> jax.Array:
  """`policy` in its order with the given draws (see diffaugment_draws)."""
  policy = parse_diffaugment(policy) if isinstance(policy, str) else tuple(policy)
  for name in policy:
    if name == "color":
      x = brightness(x, draws["brightness"])
      x = saturation(x, draws["saturation"])
      x = contrast(x, draws["contrast"])
    elif name == "translation":
      x = translate(x, draws["shift"])
    elif name == "cutout":
      x = cutout(x, draws["cutout"], cutout_size(x.shape))
  return x


def diffaugment(x: jax.Array, key: jax.Array, policy) -> jax.Array:
  """DiffAugment(x) with a fresh draw from `key`: one call, one draw per image."""
  return diffaugment_apply(x, policy, diffaugment_draws(key, policy, x.shape))


# -- ADA ---------------------------------------------------------------------------

_HIGHEST = jax.lax.Precision.HIGHEST


def _mm(a, b):
  return jnp.matmul(a, b, precision=_HIGHEST)


def _matrix(rows) -> jax.Array:
  """[[a, b, ...], ...] of per-image [N] arrays or numbers -> [N, R, C]."""
  n = next(jnp.shape(e)[0] for row in rows for e in row if jnp.ndim(e))
  cols = [jnp.stack([jnp.broadcast_to(jnp.asarray(e, jnp.float32), (n,)) for e in row], -1)
          for row in rows]
  return jnp.stack(cols, -2)


def _translate2d(tx, ty):
  return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]])


def _scale2d(sx, sy):
  return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]])


def _rotate2d(cos, sin):
  return _matrix([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])


_LUMA = np.array([1.0, 1.0, 1.0, 0.0]) / np.sqrt(3.0)  # the luma axis (homogeneous)
_LUMA_OUTER = np.outer(_LUMA, _LUMA)


def _rotate3d_luma(theta):
  """Rotation by theta about the luma axis, as the reference's rotate3d(v, theta)."""
  v = _LUMA[0]  # vx = vy = vz
  s, c = jnp.sin(theta), jnp.cos(theta)
  cc = 1.0 - c
  d = v * v * cc + c
  a, b = v * v * cc - v * s, v * v * cc + v * s
  return _matrix([[d, a, b, 0], [b, d, a, 0], [a, b, d, 0], [0, 0, 0, 1]])


def ada_draws(key: jax.Array, p, transforms, shape) -> dict:
  """Per-image parameters of `transforms` for images of `shape` (NHWC), each transform applied
  with probability p (an identity parameter where not). {name: [N] or [N, 2]}:
    xflip {0, 1}; rotate90 {0..3} quarter turns; xint [N, 2] whole pixels (x, y); scale;
    rotate [N, 2] radians (before, after aniso); aniso; xfrac [N, 2] pixels (x, y);
    brightness; contrast; lumaflip {0, 1}; hue radians; saturation.
  """
  transforms = parse_ada(transforms) if isinstance(transforms, str) else tuple(transforms)
  n, h, w = shape[0], shape[1], shape[2]
  p = jnp.asarray(p, jnp.float32)
  size = jnp.array([w, h], jnp.float32)
  draws = {}
  for name in transforms:
    kv, ka = jax.random.split(jax.random.fold_in(key, ADA_TRANSFORMS.index(name)))
    apply = jax.random.uniform(ka, (n,)) < p
    normal = jax.random.normal(kv, (n,))
    if name in ("xflip", "lumaflip"):
      draws[name] = jnp.where(apply, jax.random.randint(kv, (n,), 0, 2), 0)
    elif name == "rotate90":
      draws[name] = jnp.where(apply, jax.random.randint(kv, (n,), 0, 4), 0)
    elif name == "xint":
      t = (jax.random.uniform(kv, (n, 2)) * 2.0 - 1.0) * XINT_MAX
      draws[name] = jnp.where(apply[:, None], jnp.round(t * size), 0.0)
    elif name == "scale":
      draws[name] = jnp.where(apply, jnp.exp2(normal * SCALE_STD), 1.0)
    elif name == "rotate":  # P(before or after) = p
      p_rot = 1.0 - jnp.sqrt(jnp.clip(1.0 - p, 0.0, 1.0))
      theta = (jax.random.uniform(kv, (n, 2)) * 2.0 - 1.0) * np.pi * ROTATE_MAX
      draws[name] = jnp.where(jax.random.uniform(ka, (n, 2)) < p_rot, theta, 0.0)
    elif name == "aniso":
      draws[name] = jnp.where(apply, jnp.exp2(normal * ANISO_STD), 1.0)
    elif name == "xfrac":
      t = jax.random.normal(kv, (n, 2)) * XFRAC_STD
      draws[name] = jnp.where(apply[:, None], t * size, 0.0)
    elif name == "brightness":
      draws[name] = jnp.where(apply, normal * BRIGHTNESS_STD, 0.0)
    elif name == "contrast":
      draws[name] = jnp.where(apply, jnp.exp2(normal * CONTRAST_STD), 1.0)
    elif name == "hue":
      theta = (jax.random.uniform(kv, (n,)) * 2.0 - 1.0) * np.pi * HUE_MAX
      draws[name] = jnp.where(apply, theta, 0.0)
    elif name == "saturation":
      draws[name] = jnp.where(apply, jnp.exp2(normal * SATURATION_STD), 1.0)
  return draws


def geometry(draws: dict) -> jax.Array | None:
  """The inverse map G_inv [N, 3, 3], output pixel -> input pixel in coordinates centred on
  the image (pixel units), as the reference composes it; None if no geometric transform."""
  g = None

  def then(m):
    nonlocal g
    g = m if g is None else _mm(g, m)

  if "xflip" in draws:  # a flip is its own inverse
    then(_scale2d(1.0 - 2.0 * draws["xflip"].astype(jnp.float32), 1.0))
  if "rotate90" in draws:  # exact quarter turns: cos, sin from a table
    i = draws["rotate90"]
    then(_rotate2d(jnp.array([1.0, 0.0, -1.0, 0.0])[i], jnp.array([0.0, 1.0, 0.0, -1.0])[i]))
  if "xint" in draws:
    then(_translate2d(-draws["xint"][:, 0], -draws["xint"][:, 1]))
  if "scale" in draws:
    then(_scale2d(1.0 / draws["scale"], 1.0 / draws["scale"]))
  if "rotate" in draws:
    then(_rotate2d(jnp.cos(draws["rotate"][:, 0]), jnp.sin(draws["rotate"][:, 0])))
  if "aniso" in draws:
    then(_scale2d(1.0 / draws["aniso"], draws["aniso"]))
  if "rotate" in draws:
    then(_rotate2d(jnp.cos(draws["rotate"][:, 1]), jnp.sin(draws["rotate"][:, 1])))
  if "xfrac" in draws:
    then(_translate2d(-draws["xfrac"][:, 0], -draws["xfrac"][:, 1]))
  return g


def colour(draws: dict, channels: int) -> jax.Array | None:
  """The colour map C [N, 4, 4] (homogeneous RGB), as the reference composes it; None if none."""
  c = None

  def then(m):
    nonlocal c
    c = m if c is None else _mm(m, c)

  if "brightness" in draws:
    b = draws["brightness"]
    then(_matrix([[1, 0, 0, b], [0, 1, 0, b], [0, 0, 1, b], [0, 0, 0, 1]]))
  if "contrast" in draws:
    k = draws["contrast"]
    then(_matrix([[k, 0, 0, 0], [0, k, 0, 0], [0, 0, k, 0], [0, 0, 0, 1]]))
  if "lumaflip" in draws:  # Householder reflection about the luma plane
    i = draws["lumaflip"].astype(jnp.float32)
    then(jnp.eye(4) - 2.0 * i[:, None, None] * _LUMA_OUTER)
  if channels > 1 and "hue" in draws:
    then(_rotate3d_luma(draws["hue"]))
  if channels > 1 and "saturation" in draws:  # I + (s - 1)(I - vv^T): exactly I at s = 1
    s = draws["saturation"]
    then(jnp.eye(4) + (s - 1.0)[:, None, None] * (np.eye(4) - _LUMA_OUTER))
  return c


def _reflect(u: jax.Array, n: int) -> jax.Array:
  """Continuous pixel coordinates mirrored into [0, n - 1] (reflect padding, edge not repeated)."""
  if n == 1:
    return jnp.zeros_like(u)
  period = 2.0 * (n - 1)
  u = jnp.mod(jnp.abs(u), period)
  return jnp.where(u > n - 1, period - u, u)


def resample(x: jax.Array, g_inv: jax.Array) -> jax.Array:
  """out[n, i, j] = x[n] at G_inv[n] (j - cx, i - cy, 1) + (cx, cy), bilinear, mirrored at the
  borders (c = (size - 1) / 2). Exact where the coordinates are whole pixels."""
  n, h, w, c = x.shape
  cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) - cy,
                        jnp.arange(w, dtype=jnp.float32) - cx, indexing="ij")
  m = lambda r, k: g_inv[:, r, k][:, None, None]
  u = _reflect(m(0, 0) * xs + m(0, 1) * ys + m(0, 2) + cx, w)  # [N, H, W] input columns
  v = _reflect(m(1, 0) * xs + m(1, 1) * ys + m(1, 2) + cy, h)  # input rows
  u0, v0 = jnp.floor(u), jnp.floor(v)
  fu, fv = (u - u0)[..., None].astype(x.dtype), (v - v0)[..., None].astype(x.dtype)
  u0, v0 = u0.astype(jnp.int32), v0.astype(jnp.int32)
  u1, v1 = jnp.minimum(u0 + 1, w - 1), jnp.minimum(v0 + 1, h - 1)
  flat = x.reshape(n, h * w, c)
  at = lambda vi, ui: jnp.take_along_axis(
      flat, (vi * w + ui).reshape(n, h * w, 1), axis=1).reshape(n, h, w, c)
  return ((at(v0, u0) * (1 - fu) + at(v0, u1) * fu) * (1 - fv)
          + (at(v1, u0) * (1 - fu) + at(v1, u1) * fu) * fv)


def recolour(x: jax.Array, c: jax.Array) -> jax.Array:
  """RGB: C[:3, :3] x + C[:3, 3] per pixel; 1 channel: the reference's reduction
  (x * mean row-sum of C[:3, :3] + mean of C[:3, 3])."""
  c = c.astype(x.dtype)
  if x.shape[-1] == 3:
    return (jnp.sum(c[:, None, None, :3, :3] * x[..., None, :], axis=-1)
            + c[:, None, None, :3, 3])
  if x.shape[-1] == 1:
    gain = jnp.sum(c[:, :3, :3], axis=(1, 2)) / 3.0
    offset = jnp.sum(c[:, :3, 3], axis=1) / 3.0
    return x * _per_image(gain, x) + _per_image(offset, x)
  raise ValueError(f"ADA colour transforms need 1 or 3 channels, got {x.shape[-1]}")


def ada_apply(x: jax.Array, draws: dict) -> jax.Array:
  """The geometric transforms (one resampling), then the colour transforms, with given draws."""
  g = geometry(draws)
  if g is not None:
    x = resample(x, g)
  c = colour(draws, x.shape[-1])
  if c is not None:
    x = recolour(x, c)
  return x


def ada(x: jax.Array, key: jax.Array, p, transforms) -> jax.Array:
  """ADA's pipeline with probability p (a traced scalar is fine) and a fresh draw from key."""
  return ada_apply(x, ada_draws(key, p, transforms, x.shape))


def ada_init(p: float) -> dict:
  """ADA's train state: p, and the sum of sign(D(real)) and its count since the last adjustment."""
  return {"p": jnp.asarray(p, jnp.float32), "signs": jnp.zeros((), jnp.float32),
          "count": jnp.zeros((), jnp.int32)}


def ada_adjust(state: dict, real_logits: jax.Array, step: jax.Array, interval: int, target,
               kimg) -> tuple[dict, jax.Array, jax.Array]:
  """One D step of ADA's heuristic: add sign(D(real)) of this step's (augmented) reals; after
  every `interval`-th D step (`step` counts them from 0, this one included) set
    p <- clip(p + sign(r_t - target) * batch * interval / (kimg * 1000), 0, 1),
  r_t = mean sign(D(real)) over the interval, and restart the sums (stylegan2-ada-pytorch
  training_loop.py; it clips at 0 only). p can thus go 0 -> 1 in `kimg` thousand real images.
  -> (state, r_t, whether p was adjusted). interval 0 keeps p fixed.
  """
  if not interval:
    return state, jnp.zeros((), jnp.float32), jnp.zeros((), bool)
  batch = real_logits.shape[0]
  signs = state["signs"] + jnp.sum(jnp.sign(jax.lax.stop_gradient(real_logits)).astype(jnp.float32))
  count = state["count"] + batch
  r_t = signs / jnp.maximum(count, 1).astype(jnp.float32)
  now = (step + 1) % interval == 0
  step_size = batch * interval / (jnp.asarray(kimg, jnp.float32) * 1000.0)
  p = jnp.clip(state["p"] + jnp.sign(r_t - target) * step_size, 0.0, 1.0)
  return ({"p": jnp.where(now, p, state["p"]).astype(jnp.float32),
           "signs": jnp.where(now, 0.0, signs).astype(jnp.float32),
           "count": jnp.where(now, 0, count).astype(jnp.int32)}, r_t, now)


# -- bCR ---------------------------------------------------------------------------


def consistency_draws(key: jax.Array, shape) -> dict:
  """bCR's T: xflip {0, 1} (probability 1/2) and shift [N, 2] (DiffAugment's translation)."""
  k_flip, k_shift = jax.random.split(key)
  n, h, w = shape[0], shape[1], shape[2]
  bound = np.array([h // 8, w // 8])
  return {"xflip": jax.random.randint(k_flip, (n,), 0, 2),
          "shift": jax.random.randint(k_shift, (n, 2), -bound, bound + 1)}


def consistency_apply(x: jax.Array, draws: dict) -> jax.Array:
  flip = (draws["xflip"] == 1)[:, None, None, None]
  return translate(jnp.where(flip, x[:, :, ::-1], x), draws["shift"])


def consistency_transform(x: jax.Array, key: jax.Array) -> jax.Array:
  """bCR's T(x): a random x-flip, then an integer translation within 1/8 of the size, zero fill."""
  return consistency_apply(x, consistency_draws(key, x.shape))

