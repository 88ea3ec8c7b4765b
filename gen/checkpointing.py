"""Orbax checkpoints of the full train state plus a small JSON record per step.

Layout: `workdir/checkpoints/<step>/{state,meta}`. `state` is the whole
TrainState pytree (params, optimizer states, EMA, step, base key); `meta` holds
what is not an array: the family, the data position and the dataset's shape.
"""

from __future__ import annotations

import hashlib
import os
import sys
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
    # cleanup_tmp_directories: a save cut short (kill -9) leaves a tmp directory, never a step
    # directory; the next start removes it.
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create,
                                           cleanup_tmp_directories=True, **best)
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

  def restore_latest_usable(self, abstract_state: Any, family: str) -> tuple[Any, dict] | None:
    """The newest checkpoint that restores, or None if there is none at all.

    A checkpoint that cannot be read (truncated or deleted files) is reported in one line
    and moved aside to `<step>.corrupt` (kept for inspection, out of orbax's rotation, so
    it never takes the place of a good one); the previous one is tried next. One written
    for a different model (its meta records another state signature) is an error.
    """
    steps = sorted(self._manager.all_steps(), reverse=True)
    if not steps:
      return None
    want = signature(abstract_state)
    for step in steps:
      try:
        meta = self.read_meta(step)
      except Exception as e:  # pylint: disable=broad-except
        self._set_aside(step, e)
        continue
      if meta.get("family") != family:
        raise UserError(f"the checkpoint in {self.directory} is of family {meta.get('family')!r}, "
                        f"not {family!r}: use another --workdir")
      if meta.get("signature", want) != want:
        raise UserError(f"checkpoint {step} in {self.directory} was written for a different model "
                        f"or config than this run's: use another --workdir or the run's own config")
      try:
        return self.restore(abstract_state, step)
      except UserError as e:
        self._set_aside(step, e)
    raise UserError(f"no usable checkpoint in {self.directory}: every one is unreadable "
                    f"(moved aside as <step>.corrupt)")

  def _set_aside(self, step: int, error: Exception) -> None:
    path = os.path.join(self.directory, str(step))
    first = (str(error).strip().splitlines() or [""])[0][:200]
    print(f"warning: checkpoint {step} in {self.directory} is unreadable ({first}); moved it to "
          f"{path}.corrupt and trying the previous one", file=sys.stderr, flush=True)
    os.replace(path, f"{path}.corrupt")
    self._manager.reload()

  def read_meta(self, step: int | None = None) -> dict:
    step = self.latest_step() if step is None else step
    if step is None:
      raise UserError(f"no checkpoint in {self.directory}")
    return dict(self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta)

  def latest_readable_meta(self) -> dict:
    """The meta of the newest checkpoint whose meta can be read (read-only: moves nothing)."""
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        return self.read_meta(step)
      except Exception:  # pylint: disable=broad-except
        continue
    raise UserError(f"no readable checkpoint in {self.directory}")

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def abstract_like(state_shapes: Any, sharding) -> Any:
  """ShapeDtypeStructs carrying `sharding`: what orbax restores into."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state_shapes)


def signature(state_shapes: Any) -> str:
  """A short hash of the state's tree structure, shapes and dtypes: which model a checkpoint fits."""
  leaves = jax.tree_util.tree_flatten_with_path(state_shapes)[0]
  text = "".join(f"{jax.tree_util.keystr(path)}{x.shape}{x.dtype};" for path, x in leaves)
  return hashlib.sha256(text.encode()).hexdigest()[:16]
