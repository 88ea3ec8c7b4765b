"""Evaluation of a state on the eval split, and the examples its pictures show.

The training loop evaluates `eval.metrics` at its intervals, and `gen evaluate` a saved run,
both through `evaluate`.
"""

from __future__ import annotations

import jax
import numpy as np

from gen import metrics as metrics_lib
from gen.data import DatasetInfo, Pipeline, parse_image_size
from gen.train import sharding


def _eval_pipelines(config, builder, family, batch_size: int, processes: bool = True) -> list:
  where = dict(process_index=jax.process_index(), process_count=jax.process_count())
  return [Pipeline(builder, split, batch_size=batch_size, repeat=False,
                   image_size=parse_image_size(config.data.image_size),
                   value_range=family.value_range, paired=family.streams.paired, cache=False,
                   **(where if processes else {}))
          for split in family.streams.splits(config.eval.split)]


def eval_batches(config, builder, family, mesh):
  """() -> one pass over config.eval.split as global batches with a `mask` (0 for padding).

  The last batch is padded to full size. Families with Domains get {'A': batch, 'B': batch}
  from the domains' splits side by side; the shorter one is padded with fully masked batches.
  Every process yields the same number of batches, and the global batches are those of one
  process (see Pipeline): no example is dropped or counted twice on any number of hosts.
  """
  local_batch = sharding.check_batch_size(config.eval.batch_size, "eval.batch_size")
  batch_sharding = sharding.eval_sharding(mesh)
  pipelines = _eval_pipelines(config, builder, family, local_batch)
  count = max(p.num_batches for p in pipelines)

  def padded(batch):
    n = len(batch["image"])
    pad = lambda x: np.concatenate([x, np.zeros((local_batch - n,) + x.shape[1:], x.dtype)])
    return {**{k: pad(v) for k, v in batch.items()},
            "mask": (np.arange(local_batch) < n).astype(np.float32)}

  def batches():
    iters, empty = [iter(p) for p in pipelines], _empty_batch(pipelines[0].info)
    for _ in range(count):
      parts = [padded(next(it, empty)) for it in iters]
      yield sharding.to_global(family.streams.combine(parts), batch_sharding)

  return batches


def _empty_batch(info: DatasetInfo) -> dict:
  h, w, c = info.image_shape
  out = {"image": np.zeros((0, h, w, c), np.float32)}
  if info.num_classes:
    out["label"] = np.zeros((0,), np.int32)
  return out


def picture_examples(config, builder, family):
  """The first `family.picture_examples` images of the eval split(s): the same ones every time
  and on every process."""
  if not family.picture_examples:
    return None
  pipelines = _eval_pipelines(config, builder, family, family.picture_examples, processes=False)
  return family.streams.combine([next(iter(p))["image"] for p in pipelines])


def evaluate(config, family, state, builder, mesh, names: list[str],
             protocol: dict | None = None) -> dict[str, float]:
  """{output: value} of the metrics `names`; `protocol`, if given, receives {output: how it
  was measured}."""
  cache = {}
  results = metrics_lib.compute(names, family, state, eval_batches(config, builder, family, mesh),
                                config, cache)
  if protocol is not None:
    protocol.update(metrics_lib.protocol(cache))
  return results
