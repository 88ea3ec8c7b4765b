"""Evaluation metrics, by name.

A metric is `fn(family, state, batches, config, cache) -> {output: float}`: `batches()`
returns a fresh pass over the evaluation split as global `jax.Array` dicts
(`image`, `label` where the data has labels, and `mask`, 0 for the padding
of the last batch); `config` is the run's config (`config.eval` holds the
metrics' options); `cache` is shared by the metrics of one evaluation (samples and
features are computed once for fid_digits, kid_digits, ...). The trainer logs the results
with the split as prefix (`test_nll_nats`); `gen evaluate` prints them as JSON.

Each metric is registered once, in the module that defines it, with the outputs it returns
(and which way each is better), the family capability it needs (`gen.families.Sampler`, ...)
and a check of its settings, so `check` finds every mistake in the evaluation config before
training starts. Every module of this package is imported when a metric is first looked up.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil
from collections.abc import Callable

from gen.configs import checks
from gen.errors import UserError

_NOT_METRICS = ("digits", "feature_stats", "inception_weights")  # helpers, not metric modules
Direction = str | None  # 'min', 'max', or None for an output that is not a score (a spread)


@dataclasses.dataclass(frozen=True)
class Metric:
  fn: Callable
  outputs: dict[str, Direction]  # the keys `fn` returns, each with which way is better
  needs: type  # the family capability it uses (gen.families.Sampler, ...)
  check: Callable | None = None  # (config, family or None) -> None, raises UserError


_REGISTRY: dict[str, Metric] = {}


def register(name: str, *, outputs: dict[str, Direction], needs: type,
             check: Callable | None = None):
  """Registers `fn(family, state, batches, config, cache) -> {output: float}` as metric `name`."""
  def wrap(fn):
    _REGISTRY[name] = Metric(fn, dict(outputs), needs, check)
    return fn
  return wrap


@functools.cache
def _load_all() -> None:
  for module in pkgutil.iter_modules(__path__):
    if module.name not in _NOT_METRICS:
      importlib.import_module(f"{__name__}.{module.name}")


def names() -> list[str]:
  """Every metric name, from the modules of this package."""
  _load_all()
  return sorted(_REGISTRY)


def parse(text: str) -> list[str]:
  """'a,b' -> ['a', 'b'], each a known metric."""
  out = [n.strip() for n in text.split(",") if n.strip()]
  for n in out:
    if n not in names():
      raise UserError(f"unknown metric {n!r}; one of {', '.join(names())}")
  return out


def get(name: str) -> Metric:
  parse(name)
  return _REGISTRY[name]


def direction(output: str) -> Direction:
  """'min' or 'max' for an output of a metric that is a score ('fid_digits'), None for one
  that is not (a spread, a baseline) or no metric's output at all (a training loss)."""
  for metric in (_REGISTRY[n] for n in names()):
    if output in metric.outputs:
      return metric.outputs[output]
  return None


def check(names: list[str], config, family=None) -> None:
  """Everything about evaluating `names` that a user can get wrong, checked before training:
  the eval batch over the devices, each metric's own settings, that the family has what the
  metric needs (skipped with family=None: scoring image files) and eval.best_metric/_mode."""
  checks.one_of(config, "eval.best_mode", ("min", "max"))
  if not names:
    return
  if family is not None:  # the eval split is read in batches over the devices
    from gen.train import sharding
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
  best = config.eval.best_metric
  if best and best not in outputs:
    raise UserError(f"eval.best_metric={best!r} is not an output of eval.metrics="
                    f"{','.join(names)!r} (outputs: {', '.join(outputs)})")


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
