"""Orbax checkpoints of the full train state plus a small JSON record per step.

Layout: `workdir/checkpoints/<step>/{state,meta}`. `state` is the whole
TrainState pytree (params, optimizer states, EMA, step, base key); `meta` holds
what is not an array: the family, the data position and the dataset's shape.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from gen.errors import UserError


class Checkpointer:

  def __init__(self, directory: str, max_to_keep: int = 3, create: bool = True,
               best_metric: str = "", best_mode: str = "min"):
    """With `best_metric`, orbax keeps the `max_to_keep` best checkpoints by that metric."""
    self.directory = os.path.abspath(directory)
    best = dict(best_fn=lambda m: m[best_metric], best_mode=best_mode,
                keep_checkpoints_without_metrics=False) if best_metric else {}
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create, **best)
    self._manager = ocp.CheckpointManager(self.directory, options=options,
                                          item_names=("state", "meta"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any, meta: dict, metrics: dict | None = None) -> None:
    """Starts an asynchronous save; `wait()` blocks until it is on disk."""
    self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                     meta=ocp.args.JsonSave(meta)),
                       metrics=metrics, force=True)

  def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict]:
    """Restores `step` (default: latest) onto the shardings of `abstract_state`."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise UserError(f"no checkpoint in {self.directory}")
    try:
      out = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
    except Exception as e:  # orbax raises many types for unreadable or mismatched trees
      first = (str(e).strip().splitlines() or [""])[0][:300]
      raise UserError(f"cannot restore checkpoint {step} in {self.directory}: "
                      f"{type(e).__name__}: {first}") from None
    return out.state, dict(out.meta)

  def read_meta(self, step: int | None = None) -> dict:
    step = self.latest_step() if step is None else step
    if step is None:
      raise UserError(f"no checkpoint in {self.directory}")
    return dict(self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta)

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def abstract_like(state_shapes: Any, sharding) -> Any:
  """ShapeDtypeStructs carrying `sharding`: what orbax restores into."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state_shapes)
