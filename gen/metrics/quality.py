"""Sample-quality metrics: FID, KID, IS and precision/recall on Inception or digit features.

  fid, kid, is, pr                          on the FID Inception's 2048-d pool features
                                            (is: its 1008 logits); needs converted weights
  fid_digits, kid_digits, is_digits,        the same on the offline digit classifier's
  pr_digits                                 128-d features (is_digits: its 10 logits)
  acc_digits                                classifier accuracy on the requested labels
                                            (class-conditional models)

In training, the family's `sample` (the EMA generator for GANs) makes
`eval.num_samples` images from the key `eval.seed`; the reference is the eval
split. Reference features are cached under the cache directory, keyed by a
hash of the feature network's name and the reference images' bytes, so a
changed dataset or resizer never reuses stale statistics; `eval.recompute_reference`
recomputes them.
"""

from __future__ import annotations

import hashlib
import os

import jax
import numpy as np

from gen import checks, sharding
from gen import images as image_lib
from gen.errors import UserError
from gen.families import Sampler
from gen.metrics import feature_stats, register

INCEPTION = ("fid", "kid", "is", "pr")
DIGITS = ("fid_digits", "kid_digits", "is_digits", "pr_digits", "acc_digits")


class _InceptionFeatures:
  name = "inception-2015-12-05-torch-bilinear"

  def __init__(self, weights: str):
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    from gen.metrics import inception_weights  # pylint: disable=g-import-not-at-top
    from gen.models.inception import FIDInceptionV3, preprocess  # pylint: disable=g-import-not-at-top
    self.variables = inception_weights.load(weights)
    fn = jax.jit(lambda v, x: FIDInceptionV3().apply(v, preprocess(x)))
    self._apply = lambda x: fn(self.variables, jnp.asarray(x))

  def __call__(self, images_u8, batch: int = 50):
    out = [jax.device_get(self._apply(images_u8[i:i + batch])) for i in range(0, len(images_u8), batch)]
    return np.concatenate([o["pool"] for o in out]), np.concatenate([o["logits"] for o in out])


def feature_net(kind: str, config, cache: dict):
  if kind not in cache:
    if kind == "digits":
      from gen.metrics.digits import DigitFeatures  # pylint: disable=g-import-not-at-top
      cache[kind] = DigitFeatures()
    else:
      cache[kind] = _InceptionFeatures(config.eval.get("inception_weights", ""))
  return cache[kind]


def reference_features(net, images_u8: np.ndarray, recompute: bool = False):
  """(features, logits) of reference images, cached by content."""
  from gen.metrics.digits import cache_dir  # pylint: disable=g-import-not-at-top
  digest = hashlib.sha256(net.name.encode() + images_u8.tobytes()).hexdigest()[:24]
  path = os.path.join(cache_dir(), "reference", f"{net.name}-{digest}.npz")
  if os.path.exists(path) and not recompute:
    with np.load(path) as f:
      return f["features"], f["logits"]
  features, logits = net(images_u8)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f"{path}.{os.getpid()}.tmp.npz"  # processes of one run may write it at once
  np.savez(tmp, features=features, logits=logits)
  os.replace(tmp, path)
  return features, logits


def quality(names, generated, labels, reference, config, cache: dict) -> dict[str, float]:
  """The named metrics of uint8 `generated` images against uint8 `reference` images."""
  out = {}
  for name in names:
    kind = "digits" if name.endswith("_digits") else "inception"
    net = feature_net(kind, config, cache)
    if ("gen", kind) not in cache:
      cache[("gen", kind)] = net(generated)
      cache[("ref", kind)] = reference_features(net, reference,
                                                config.eval.get("recompute_reference", False))
    (gf, gl), (rf, _) = cache[("gen", kind)], cache[("ref", kind)]
    base = name.removesuffix("_digits")
    suffix = "_digits" if kind == "digits" else ""
    if base == "fid":
      out[name] = feature_stats.fid(gf, rf)
    elif base == "kid":
      size = min(1000, len(gf), len(rf))
      out[name], out[f"kid_std{suffix}"] = feature_stats.kid(gf, rf, subset_size=size)
    elif base == "is":
      out[name], out[f"is_std{suffix}"] = feature_stats.inception_score(gl)
    elif base == "pr":
      out[f"precision{suffix}"], out[f"recall{suffix}"] = feature_stats.precision_recall(rf, gf)
    elif base == "acc":
      if labels is None:
        raise UserError("acc_digits needs class-conditional samples (model.conditional=True)")
      out[name] = float(np.mean(np.argmax(gl, axis=1) == labels))
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
    return quality([name], generated, labels, cache["reference"], config, cache)
  return fn


_OUTPUTS = {"kid": ("kid", "kid_std"), "is": ("is", "is_std"), "pr": ("precision", "recall")}


def outputs(name: str) -> tuple[str, ...]:
  """The keys metric `name` returns: kid_digits -> (kid_digits, kid_std_digits), ..."""
  base, suffix = name.removesuffix("_digits"), "_digits" if name.endswith("_digits") else ""
  return tuple(f"{o}{suffix}" for o in _OUTPUTS.get(base, (base,)))


def _check(name):
  def check(config, family):
    if family is not None:  # it samples from the family (not: images given to gen.evaluate)
      checks.at_least(config, "eval.num_samples", 2, f"metric {name!r} compares sample sets")
    if name == "acc_digits" and family is not None and not family.num_classes:
      raise UserError("metric 'acc_digits' needs class-conditional samples "
                      "(--config.model.conditional=True)")
    if name in INCEPTION:
      from gen.metrics import inception_weights  # pylint: disable=g-import-not-at-top
      path = inception_weights.weights_path(config.eval.get("inception_weights", ""))
      if not os.path.exists(path):
        inception_weights.load(path)  # raises the error that says what to download
  return check


for _name in INCEPTION + DIGITS:
  register(_name, outputs=outputs(_name), needs=Sampler, check=_check(_name))(_metric(_name))
