"""Evaluation metrics, by name.

A metric is `fn(family, state, batches, config, cache) -> {output: float}`: `batches()`
returns a fresh pass over the evaluation split as global `jax.Array` dicts
(`image`, `label` where the data has labels, and `mask`, 0 for the padding
of the last batch); `config` is the run's config (`config.eval` holds the
metrics' options); `cache` is shared by the metrics of one evaluation (samples and
features are computed once for fid_digits, kid_digits, ...). The trainer logs the results with the split as prefix
(`test_nll_nats`); `python -m gen.evaluate` prints them as JSON.

Each metric is registered with the outputs it returns, the family capability it needs
(`gen.families.Sampler`, ...) and a check of its settings, so `check` finds every
mistake in the evaluation config before training starts.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Callable

from gen.errors import UserError

# name -> module that registers it: the module is imported only when the metric is asked for.
_MODULES = {"nll": "gen.metrics.likelihood", "mae": "gen.metrics.translation",
            **{n: "gen.metrics.translation" for n in ("fid_AtoB", "fid_BtoA", "fid_AtoB_digits",
                                                     "fid_BtoA_digits")},
            **{n: "gen.metrics.quality" for n in ("fid", "kid", "is", "pr", "dc", "fid_digits",
                                                 "kid_digits", "is_digits", "pr_digits",
                                                 "dc_digits", "acc_digits")}}


@dataclasses.dataclass(frozen=True)
class Metric:
  fn: Callable
  outputs: tuple[str, ...]  # the keys `fn` returns
  needs: type  # the family capability it uses (gen.families.Sampler, ...)
  check: Callable | None = None  # (config, family or None) -> None, raises UserError


_REGISTRY: dict[str, Metric] = {}


def register(name: str, *, outputs: tuple[str, ...], needs: type, check: Callable | None = None):
  def wrap(fn):
    _REGISTRY[name] = Metric(fn, tuple(outputs), needs, check)
    return fn
  return wrap


def parse(names: str) -> list[str]:
  """'a,b' -> ['a', 'b'], each a known metric."""
  out = [n.strip() for n in names.split(",") if n.strip()]
  for n in out:
    if n not in _MODULES:
      raise UserError(f"unknown metric {n!r}; one of {', '.join(sorted(_MODULES))}")
  return out


def get(name: str) -> Metric:
  parse(name)
  importlib.import_module(_MODULES[name])
  return _REGISTRY[name]


def check(names: list[str], config, family=None) -> None:
  """Everything about evaluating `names` that a user can get wrong, checked before training:
  the eval batch over the devices, each metric's own settings, that the family has what the
  metric needs (skipped with family=None: scoring image files) and eval.best_metric."""
  if not names:
    return
  if family is not None:  # the eval split is read in batches over the devices
    from gen import sharding  # pylint: disable=g-import-not-at-top
    sharding.check_batch_size(config.eval.batch_size, "eval.batch_size")
  outputs = []
  for name in names:
    metric = get(name)
    if family is not None and not isinstance(family, metric.needs):
      raise UserError(f"metric {name!r} needs a family that is a {metric.needs.__name__} "
                      f"(one that {metric.needs.__doc__.split(':')[0].lower()}); "
                      f"{config.family!r} is not")
    if metric.check:
      metric.check(config, family)
    outputs.extend(metric.outputs)
  best = config.eval.get("best_metric", "")
  if best and best not in outputs:
    raise UserError(f"eval.best_metric={best!r} is not an output of eval.metrics="
                    f"{','.join(names)!r} (outputs: {', '.join(outputs)})")


# Outputs that are better larger (inception score, precision, recall, accuracy); the others
# (FID, KID, NLL, bits/dim, MAE) are better smaller; spreads (`*_std*`) are not ranked.
_HIGHER_IS_BETTER = ("is", "precision", "recall", "density", "coverage", "acc")


def better(output: str) -> str | None:
  """'max', 'min' or None (not a score): how results tables rank an output ('fid_digits')."""
  if "_std" in output:
    return None
  return "max" if output.split("_")[0] in _HIGHER_IS_BETTER else "min"


def compute(names: list[str], family, state, batches, config, cache: dict | None = None) -> dict[str, float]:
  """{output: value}. How each was measured (samples, reference, network) is then in
  `protocol(cache)`."""
  cache = {} if cache is None else cache
  out = {}
  for name in names:
    out.update(get(name).fn(family, state, batches, config, cache))
  return out


def protocol(cache: dict) -> dict[str, str]:
  """{output: how it was measured}, for the outputs whose metric records it (fid, kid, ...)."""
  return dict(cache.get("protocol", {}))
