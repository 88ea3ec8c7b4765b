"""`mae`: mean absolute error of translations against paired ground truth (pixels in [0, 1]).

For a test set where `<split>B[i]` is the true image of `<split>A[i]` in domain B
(digits2bold: testB = T(testA)):
  mae_AtoB         mean |G_AB(a) - b|
  mae_BtoA         mean |G_BA(b) - a|
and the trivial baselines it must beat:
  mae_identity     mean |a - b|            (translate nothing)
  mae_AtoB_meanB   mean |mean(B) - b|      (always answer the mean test B image)
  mae_BtoA_meanA   mean |mean(A) - a|
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gen import sharding
from gen.errors import UserError
from gen.families import Translator
from gen.metrics import register


@register("mae", outputs=("mae_AtoB", "mae_BtoA", "mae_identity", "mae_AtoB_meanB", "mae_BtoA_meanA"),
          needs=Translator)
def mae(family, state, batches, config, cache=None) -> dict[str, float]:
  lo, hi = family.value_range
  unit = lambda x: (x - lo) / (hi - lo)
  per_example = lambda x: jnp.mean(jnp.abs(x), axis=tuple(range(1, x.ndim)))

  @jax.jit
  def sums(state, batch):
    a, b, mask = unit(batch["A"]["image"]), unit(batch["B"]["image"]), batch["A"]["mask"]
    ab = unit(family.translate_batch(state, batch["A"]["image"], "AtoB"))
    ba = unit(family.translate_batch(state, batch["B"]["image"], "BtoA"))
    total = lambda err: jnp.sum(mask * per_example(err))
    return {"mae_AtoB": total(ab - b), "mae_BtoA": total(ba - a), "mae_identity": total(a - b),
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
  out = {k: float(totals[k]) / n for k in ("mae_AtoB", "mae_BtoA", "mae_identity")}
  out.update(mae_AtoB_meanB=to_mean_b / n, mae_BtoA_meanA=to_mean_a / n)
  return {k: float(v) for k, v in out.items()}
