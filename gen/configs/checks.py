"""Config value checks shared by the trainer and every family: each failure is one UserError line.

Names are dotted paths into the config (`optim.g_lr`), and the message names them
the way a user sets them (`--config.optim.g_lr`).
"""

from __future__ import annotations

from collections.abc import Iterable

from gen.errors import UserError


def value(config, name: str):
  for part in name.split("."):
    config = config[part]
  return config


def positive(config, *names: str) -> None:
  for name in names:
    v = value(config, name)
    if not v > 0:
      raise UserError(f"{name}={v} must be positive")


def non_negative(config, *names: str) -> None:
  for name in names:
    v = value(config, name)
    if not v >= 0:
      raise UserError(f"{name}={v} must be >= 0")


def at_least(config, name: str, low, why: str = "") -> None:
  v = value(config, name)
  if not v >= low:
    raise UserError(f"{name}={v} must be >= {low}" + (f" ({why})" if why else ""))


def in_unit_interval(config, *names: str) -> None:
  """[0, 1): Adam's betas, EMA decays."""
  for name in names:
    v = value(config, name)
    if not 0.0 <= v < 1.0:
      raise UserError(f"{name}={v} must be in [0, 1)")


def one_of(config, name: str, choices: Iterable[str]) -> None:
  choices = tuple(choices)
  v = value(config, name)
  if v not in choices:
    raise UserError(f"{name}={v!r} is not one of {', '.join(choices)}")
