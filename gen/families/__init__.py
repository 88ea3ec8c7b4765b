"""Model families, by name. The contract a family implements is `gen.families.base`.

Built-in families are imported when first asked for. Another family registers
itself with `@register("name")` in the module that defines it; a config file
that defines or imports it (see tests/toy_family.py) makes it available to
`python -m gen.train --config=that_file.py`. A name that is neither built in
nor registered is imported as a module, which must register that name.
"""

from __future__ import annotations

import importlib
import inspect

from gen.errors import UserError
from gen.families.base import (Domains, Family, LatentSampler, LikelihoodModel, OneStream, Sampler,
                               Sometimes, Translator, check_family_class)

BUILTIN = {"gan": "gen.families.gan", "vae": "gen.families.vae", "cyclegan": "gen.families.cyclegan",
           "pix2pix": "gen.families.pix2pix"}
_REGISTRY: dict[str, type] = {}

__all__ = ["BUILTIN", "Domains", "Family", "LatentSampler", "LikelihoodModel", "OneStream", "Sampler",
           "Sometimes", "Translator", "get", "register"]


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
    return inspect.getfile(cls), cls.__qualname__
  except TypeError:
    return cls.__module__, cls.__qualname__


def get(name: str) -> type:
  """The family class registered as `name`."""
  if name not in _REGISTRY:
    module = BUILTIN.get(name, name)
    try:
      importlib.import_module(module)
    except ModuleNotFoundError as e:
      missing = e.name or ""
      if name in BUILTIN or not (module == missing or module.startswith(missing + ".")):
        raise  # the module exists but something it imports does not
    except (ImportError, ValueError, TypeError):  # not a module name at all
      pass
  if name not in _REGISTRY:
    raise UserError(f"unknown model family {name!r}; one of "
                    f"{', '.join(sorted({*BUILTIN, *_REGISTRY}))} (or a module that registers it)")
  return _REGISTRY[name]
