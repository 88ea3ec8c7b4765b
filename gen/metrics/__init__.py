"""Evaluation metrics, by name.

A metric is `fn(family, state, batches, config) -> {name: float}`: `batches()`
returns a fresh pass over the evaluation split as global `jax.Array` dicts
(`image`, `label` where the data has labels, and `mask`, 0 for the padding
of the last batch); `config` is the run's config (`config.eval` holds the
metrics' options). The trainer logs the results with the split as prefix
(`test_nll_nats`); `python -m gen.evaluate` prints them as JSON.
"""

from __future__ import annotations

import importlib
from typing import Callable

from gen.errors import UserError

# name -> module that registers it: the module is imported only when the metric is asked for.
_MODULES = {"nll": "gen.metrics.likelihood", "mae": "gen.metrics.translation"}
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


def get(name: str) -> Callable:
  parse(name)
  importlib.import_module(_MODULES[name])
  return _REGISTRY[name]


def compute(names: list[str], family, state, batches, config) -> dict[str, float]:
  out = {}
  for name in names:
    out.update(get(name)(family, state, batches, config))
  return out
