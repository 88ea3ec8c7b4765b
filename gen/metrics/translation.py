"""`mae`: mean absolute error of translations against paired ground truth (pixels in [0, 1]).

For a test set where `<split>B[i]` is the true image of `<split>A[i]` in domain B
(digits2bold: testB = T(testA)):
  mae_AtoB         mean |G_AB(a) - b|
  mae_BtoA         mean |G_BA(b) - a|
and the trivial baselines it must beat:
  mae_identity     mean |a - b|            (translate nothing)
  mae_AtoB_meanB   mean |mean(B) - b|      (always answer the mean test B image)
  mae_BtoA_meanA   mean |mean(A) - a|

`fid_AtoB`, `fid_BtoA` (and `*_digits` on the digit classifier's features): FID of the
translated eval split against the other domain's eval split, unpaired, as CycleGAN
papers score horse2zebra (test A translated vs test B). Protocol and reference caching as
in gen.metrics.quality.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gen import images as image_lib
from gen.errors import UserError
from gen.families import Translator
from gen.metrics import register
from gen.train import sharding


@register("mae", outputs={"mae_AtoB": "min", "mae_BtoA": "min", "mae_identity": None,
                          "mae_AtoB_meanB": None, "mae_BtoA_meanA": None},  # baselines: not scores
          needs=Translator)
def mae(family, state, batches, config, cache=None) -> dict[str, float]:
  lo, hi = family.value_range
  unit = lambda x: (x - lo) / (hi - lo)
  per_example = lambda x: jnp.mean(jnp.abs(x), axis=tuple(range(1, x.ndim)))

  directions = family.directions  # pix2pix: the one it was trained for

  @jax.jit
  def sums(state, batch):
    a, b, mask = unit(batch["A"]["image"]), unit(batch["B"]["image"]), batch["A"]["mask"]
    total = lambda err: jnp.sum(mask * per_example(err))
    out = {}
    if "AtoB" in directions:
      out["mae_AtoB"] = total(unit(family.translate_batch(state, batch["A"]["image"], "AtoB")) - b)
    if "BtoA" in directions:
      out["mae_BtoA"] = total(unit(family.translate_batch(state, batch["B"]["image"], "BtoA")) - a)
    return {**out, "mae_identity": total(a - b),
            "count": jnp.sum(mask), "paired": jnp.all(mask == batch["B"]["mask"]),
            "sum_a": jnp.einsum("n,n...->...", mask, a), "sum_b": jnp.einsum("n,n...->...", mask, b)}

  @jax.jit
  def to_mean(batch, mean_a, mean_b):
    a, b, mask = unit(batch["A"]["image"]), unit(batch["B"]["image"]), batch["A"]["mask"]
    return (jnp.sum(mask * per_example(a - mean_a[None])),
            jnp.sum(mask * per_example(b - mean_b[None])))

  totals = {}
  for batch in batches():
    s = sharding.to_host(sums(state, batch))
    if not s.pop("paired"):
      raise UserError(f"metric 'mae' needs paired splits: {config.eval.split}A and "
                      f"{config.eval.split}B differ in length")
    totals = {k: totals.get(k, 0.0) + v for k, v in s.items()}
  if not totals.get("count"):
    raise UserError(f"the evaluation split {config.eval.split!r} is empty")
  n = float(totals["count"])
  mean_a, mean_b = totals["sum_a"] / n, totals["sum_b"] / n
  to_mean_a = to_mean_b = 0.0
  for batch in batches():
    da, db = to_mean(batch, jnp.asarray(mean_a), jnp.asarray(mean_b))
    to_mean_a, to_mean_b = to_mean_a + float(da), to_mean_b + float(db)
  out = {k: float(totals[k]) / n for k in ("mae_AtoB", "mae_BtoA", "mae_identity") if k in totals}
  if "AtoB" in directions:
    out["mae_AtoB_meanB"] = to_mean_b / n
  if "BtoA" in directions:
    out["mae_BtoA_meanA"] = to_mean_a / n
  return {k: float(v) for k, v in out.items()}


def _domain_images(family, state, batches, domain: str, direction: str | None, cache: dict):
  """uint8 images of the eval split's `domain` ('A' or 'B'), translated by `direction` if
  given, padding dropped; computed once per evaluation."""
  key = ("translation", domain, direction)
  if key not in cache:
    translate = jax.jit(lambda s, x: family.translate_batch(s, x, direction)) if direction else None
    parts = []
    for batch in batches():
      x = translate(state, batch[domain]["image"]) if translate else batch[domain]["image"]
      host = sharding.to_host({"x": x, "mask": batch[domain]["mask"]})
      parts.append(image_lib.to_uint8(host["x"], family.value_range)[host["mask"] > 0])
    cache[key] = np.concatenate(parts)
  return cache[key]


def _translation_fid(name: str):
  direction = name.split("_")[1]  # fid_AtoB[_digits]
  source, target = direction[0], direction[-1]

  def fn(family, state, batches, config, cache):
    from gen.metrics import feature_stats, quality
    kind = "digits" if name.endswith("_digits") else "inception"
    net = quality.feature_net(kind, config, cache)
    translated = _domain_images(family, state, batches, source, direction, cache)
    reference = _domain_images(family, state, batches, target, None, cache)
    ref_name = f"{config.data.name}:{config.eval.split}{target}"
    ref_features, _ = quality.reference_features(
        net, reference, config.eval.get("recompute_reference", False), ref_name)
    resize = getattr(net, "resize", "none")
    cache.setdefault("protocol", {})[name] = (
        f"{len(translated)} {config.eval.split}{source} translated vs {ref_name} "
        f"({len(reference)} images), {net.name.removesuffix('-' + resize)}, resize {resize}")
    return {name: feature_stats.fid(net(translated)[0], ref_features)}
  return fn


def _check_fid(name: str):
  def check(config, family):
    direction = name.split("_")[1]
    if family is not None and direction not in family.directions:
      raise UserError(f"metric {name!r}: this {config.family} model translates "
                      f"{', '.join(family.directions)} only")
    if not name.endswith("_digits"):
      from gen.metrics import quality
      quality.check_inception(config)
    elif family is not None:
      from gen.metrics.digits import DigitFeatures
      DigitFeatures.check_shape(name, family.domain_shape, config)
  return check


for _name in ("fid_AtoB", "fid_BtoA", "fid_AtoB_digits", "fid_BtoA_digits"):
  register(_name, outputs={_name: "min"}, needs=Translator,
           check=_check_fid(_name))(_translation_fid(_name))
