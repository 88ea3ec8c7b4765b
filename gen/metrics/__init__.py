"""Evaluation metrics, by name.

A metric is `fn(family, state, batches, config, cache) -> {name: float}`: `batches()`
returns a fresh pass over the evaluation split as global `jax.Array` dicts
(`image`, `label` where the data has labels, and `mask`, 0 for the padding
of the last batch); `config` is the run's config (`config.eval` holds the
metrics' options); `cache` is shared by the metrics of one evaluation (samples and
features are computed once for fid_digits, kid_digits, ...). The trainer logs the results with the split as prefix
(`test_nll_nats`); `python -m gen.evaluate` prints them as JSON.
"""

from __future__ import annotations

import importlib
from typing import Callable

from gen.errors import UserError

# name -> module that registers it: the module is imported only when the metric is asked for.
_MODULES = {"nll": "gen.metrics.likelihood", "mae": "gen.metrics.translation",
            **{n: "gen.metrics.quality" for n in ("fid", "kid", "is", "pr", "fid_digits", "kid_digits",
                                                 "is_digits", "pr_digits", "acc_digits")}}
_REGISTRY: dict[str, Callable] = {}


def register(name: str):
  def wrap(fn):
    _REGISTRY[name] = fn
    return fn
  return wrap


def parse(names: str) -> list[str]:
  """'a,b' -> ['a', 'b'], each a known metric."""
  out = [n.strip() for n in names.split(",") if n.strip()]
  for n in out:
    if n not in _MODULES:
      raise UserError(f"unknown metric {n!r}; one of {', '.join(sorted(_MODULES))}")
  return out


def check_available(names: list[str], config) -> None:
  """Fails early (before training) where a metric cannot run: the Inception weights are missing."""
  if any(n in ("fid", "kid", "is", "pr") for n in names):
    from gen.metrics import inception_weights  # pylint: disable=g-import-not-at-top
    path = inception_weights.weights_path(config.eval.get("inception_weights", ""))
    if not __import__("os").path.exists(path):
      inception_weights.load(path)  # raises the error that says what to download


def get(name: str) -> Callable:
  parse(name)
  importlib.import_module(_MODULES[name])
  return _REGISTRY[name]


def compute(names: list[str], family, state, batches, config, cache: dict | None = None) -> dict[str, float]:
  cache = {} if cache is None else cache
  out = {}
  for name in names:
    out.update(get(name)(family, state, batches, config, cache))
  return out
