"""Model families. Each adds only its models, losses, state and step to the shared trainer.

A family class is built from (config, DatasetInfo) and provides:
  value_range                       pixel range its models use, e.g. (-1, 1)
  picture_examples                  how many eval-split images `pictures` wants (0: none)
  init_state(key) -> state          a pytree with `step` and `key` leaves
  train_step(state, batch)          pure: -> (state, scalar metrics); the trainer jits and scans it
  pictures(state, examples)         -> {name: uint8 grid}: what it has learned, saved as PNG
  sample(state, key, num)           dict of uint8 `images` (and `labels`) for `gen.sample`
"""

import importlib

from gen.errors import UserError

FAMILIES = ("gan", "vae", "cyclegan")


def get(name: str):
  if name not in FAMILIES:
    raise UserError(f"unknown model family {name!r}; one of {', '.join(FAMILIES)}")
  return importlib.import_module(f"gen.families.{name}").Family
