"""Which splits a family's step reads, and how their batches are combined for it."""

from __future__ import annotations

import dataclasses
from typing import ClassVar


@dataclasses.dataclass(frozen=True)
class OneStream:
  """The family reads one split; its step receives that split's batch ({'image', 'label'})."""
  paired: ClassVar[bool] = False

  def splits(self, split: str) -> tuple[str, ...]:
    return (split,)

  def combine(self, parts: list):
    (part,) = parts
    return part


@dataclasses.dataclass(frozen=True)
class Domains:
  """The family reads one split per domain (`train` -> `trainA`, `trainB`), independently;
  its step receives {'A': batch, 'B': batch}."""
  names: tuple[str, ...]
  paired: ClassVar[bool] = False

  def splits(self, split: str) -> tuple[str, ...]:
    return tuple(f"{split}{name}" for name in self.names)

  def combine(self, parts: list) -> dict:
    return dict(zip(self.names, parts))


@dataclasses.dataclass(frozen=True)
class Paired:
  """The family reads one split of A|B pairs stored side by side (pix2pix's format). The
  pipeline stacks each pair's halves on channels, so a crop or flip moves both alike; the
  step receives {'A': batch, 'B': batch}, the same examples in the two domains."""
  paired: ClassVar[bool] = True

  def splits(self, split: str) -> tuple[str, ...]:
    return (split,)

  def combine(self, parts: list) -> dict:
    (part,) = parts
    halves = lambda x: (x[..., :x.shape[-1] // 2], x[..., x.shape[-1] // 2:])
    if not isinstance(part, dict):  # images only (picture examples)
      a, b = halves(part)
      return {"A": a, "B": b}
    a, b = halves(part["image"])
    return {"A": {**part, "image": a}, "B": {**part, "image": b}}
