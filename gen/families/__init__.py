"""Model families, by name. The contract a family implements is `gen.families.base`.

`get(name)` finds a family: one registered already (`@register(name)` in the module that
defines it, e.g. a config file that defines or imports it, see tests/toy_family.py), else the
module `gen.families.<name>` (the built-in families: gan, vae, cyclegan, pix2pix, diffusion), else a
module named `name`, which must register that name.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil

from gen.errors import UserError
from gen.families.base import (
  Family,
  LatentSampler,
  LikelihoodModel,
  Sampler,
  Sometimes,
  Translator,
  check_family_class,
)
from gen.families.streams import Domains, OneStream, Paired

_REGISTRY: dict[str, type] = {}
_NOT_FAMILIES = ("base", "streams")  # the contract's own modules

__all__ = ["Domains", "Family", "LatentSampler", "LikelihoodModel", "OneStream", "Paired",
           "Sampler", "Sometimes", "Translator", "builtin", "get", "register"]


def register(name: str):
  """Class decorator: checks `cls` against the contract and makes it `config.family=name`."""
  def wrap(cls):
    check_family_class(name, cls)
    old = _REGISTRY.get(name)
    if old is not None and _origin(old) != _origin(cls):  # the same file loaded twice is fine
      raise UserError(f"family name {name!r} is taken by {old.__module__}.{old.__qualname__}")
    _REGISTRY[name] = cls
    return cls
  return wrap


def _origin(cls) -> tuple[str, str]:
  try:
    return os.path.realpath(inspect.getfile(cls)), cls.__qualname__
  except TypeError:
    return cls.__module__, cls.__qualname__


def builtin() -> list[str]:
  """The families that come with gen: the modules of this package."""
  return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in _NOT_FAMILIES)


def _import(module: str, own: bool) -> None:
  try:
    importlib.import_module(module)
  except ModuleNotFoundError as e:
    missing = e.name or ""
    if own or not (module == missing or module.startswith(missing + ".")):
      raise  # the module exists but something it imports does not
  except (ImportError, ValueError, TypeError):  # not a module name at all
    pass


def get(name: str) -> type:
  """The family class registered as `name`."""
  if name not in _REGISTRY:
    own = name in builtin()
    _import(f"gen.families.{name}" if own else name, own)
  if name not in _REGISTRY:
    raise UserError(f"unknown model family {name!r}; one of "
                    f"{', '.join(sorted({*builtin(), *_REGISTRY}))} (or a module that registers it)")
  return _REGISTRY[name]
