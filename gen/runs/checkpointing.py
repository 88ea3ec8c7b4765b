"""Orbax checkpoints of the full train state plus a small JSON record per step.

Layout: `<run>/checkpoints/<step>/{state,meta}`. `state` is the whole train state pytree
(params, optimizer states, EMA, step, base key); `meta` holds what is not an array: the
family, the data position and the dataset's shape.

A state's optional parts (its fields that are None, see gen.families.Family.init_state) are
left out of `state`: a checkpoint holds the same tree whether or not the state class has
optional parts the run does not use, so states grow without breaking earlier checkpoints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from gen.errors import UserError


class Checkpointer:

  def __init__(self, directory: str, max_to_keep: int = 3, read_only: bool = False,
               best_metric: str = "", best_mode: str = "min"):
    """With `best_metric`, orbax keeps the `max_to_keep` best checkpoints by that metric.
    `read_only` (the gen.* tools): create, clean up and move nothing."""
    self.directory = os.path.abspath(directory)
    best = dict(best_fn=lambda m: m[best_metric], best_mode=best_mode,
                keep_checkpoints_without_metrics=False) if best_metric else {}
    # cleanup_tmp_directories: a save cut short (kill -9) leaves a tmp directory, never a step
    # directory; the next training start removes it.
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only,
                                           cleanup_tmp_directories=not read_only,
                                           read_only=read_only, **best)
    self.read_only = read_only
    self._manager = ocp.CheckpointManager(self.directory, options=options,
                                          item_names=("state", "meta"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any, meta: dict, metrics: dict | None = None) -> None:
    """Starts an asynchronous save; `wait()` blocks until it is on disk."""
    self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(_stored(state)),
                                                     meta=ocp.args.JsonSave(meta)),
                       metrics=metrics, force=True)

  def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict]:
    """Restores `step` (default: latest) onto the shardings of `abstract_state`."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise UserError(f"no checkpoint in {self.directory}")
    try:
      out = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(_stored(abstract_state)), meta=ocp.args.JsonRestore()))
    except Exception as e:  # orbax raises many types for unreadable or mismatched trees
      raise _restore_error(step, self.directory, e) from None
    return _unstored(abstract_state, out.state), dict(out.meta)

  def restore_latest_usable(self, abstract_state: Any, family: str) -> tuple[Any, dict] | None:
    """The newest checkpoint that restores, or None if there is none at all.

    A checkpoint whose files are missing or unreadable as data is reported in one line and
    skipped; the previous one is tried next. Training (not read_only) also moves it aside
    to `<step>.corrupt` (kept for inspection, out of orbax's rotation, so it never takes the
    place of a good one): with several processes, only once all of them found it unreadable,
    and only process 0 renames it. Any other failure (an I/O error, out of memory) is an
    error that moves nothing. One written for a different model (its meta records another
    state signature) is an error.
    """
    steps = sorted(self._manager.all_steps(), reverse=True)
    if not steps:
      return None
    want = signature(abstract_state)
    for step in steps:
      try:
        meta = self.read_meta(step)
        if meta.get("family") != family:
          raise UserError(f"the checkpoint in {self.directory} is of family "
                          f"{meta.get('family')!r}, not {family!r}: use another --workdir")
        if meta.get("signature", want) != want:
          raise UserError(f"checkpoint {step} in {self.directory} was written for a different "
                          f"model or config than this run's: use another --workdir or the run's "
                          f"own config")
        restored = self.restore(abstract_state, step)
      except Unreadable as e:
        restored = e
      if not _all_processes_agree(isinstance(restored, Unreadable), step):
        return restored
      self._skip(step, restored)
    raise UserError(f"no usable checkpoint in {self.directory}: every one is unreadable"
                    + ("" if self.read_only else " (moved aside as <step>.corrupt)"))

  def _skip(self, step: int, error: Exception) -> None:
    path = os.path.join(self.directory, str(step))
    first = (str(error).strip().splitlines() or [""])[0][:200]
    if self.read_only:
      print(f"warning: checkpoint {step} in {self.directory} is unreadable ({first}); "
            f"using the previous one (left in place)", file=sys.stderr, flush=True)
      return
    if jax.process_index() == 0:
      print(f"warning: checkpoint {step} in {self.directory} is unreadable ({first}); moved it "
            f"to {path}.corrupt and trying the previous one", file=sys.stderr, flush=True)
      os.replace(path, f"{path}.corrupt")
    _sync_processes(f"gen-set-aside-{step}")  # every process sees the rename before reloading
    self._manager.reload()

  def read_meta(self, step: int | None = None) -> dict:
    step = self.latest_step() if step is None else step
    if step is None:
      raise UserError(f"no checkpoint in {self.directory}")
    try:
      out = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
    except Exception as e:  # any failure to read is reported in one line
      raise _restore_error(step, self.directory, e) from None
    return dict(out.meta)

  def latest_readable_meta(self) -> dict | None:
    """The meta of the newest checkpoint whose meta can be read, None if there is none
    (read-only: moves nothing)."""
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        return self.read_meta(step)
      except Unreadable:
        continue
    return None

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def _stored(state: Any) -> Any:
  """What a checkpoint holds of `state`: a dataclass state as the dict of its fields that are
  not None (optional parts the run does not use are left out)."""
  if not dataclasses.is_dataclass(state):
    return state
  return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)
          if f.metadata.get("pytree_node", True) and getattr(state, f.name) is not None}


def _unstored(template: Any, stored: Any) -> Any:
  """The state of `template`'s class from what `_stored` kept."""
  if not dataclasses.is_dataclass(template):
    return stored
  return template.replace(**stored)


class Unreadable(UserError):
  """A checkpoint whose files are missing or do not parse: corrupt, not merely unavailable."""


# tensorstore's status codes for data that is missing or does not parse (a truncated or
# overwritten file); others (UNAVAILABLE, RESOURCE_EXHAUSTED, UNKNOWN I/O errors) may pass.
_CORRUPT_STATUS = ("NOT_FOUND", "DATA_LOSS", "OUT_OF_RANGE", "INVALID_ARGUMENT")
_CORRUPT_TYPES = (FileNotFoundError, NotADirectoryError, IsADirectoryError, KeyError,
                  json.JSONDecodeError, UnicodeDecodeError, EOFError)


def is_corruption(e: BaseException) -> bool:
  """True for a checkpoint's files missing or unreadable as data; False for transient faults."""
  if isinstance(e, _CORRUPT_TYPES):
    return True
  if isinstance(e, (OSError, MemoryError)):  # EIO, a full or vanished mount, out of memory
    return False
  return isinstance(e, ValueError) and str(e).lstrip().startswith(_CORRUPT_STATUS)


def _restore_error(step: int, directory: str, e: Exception) -> UserError:
  first = (str(e).strip().splitlines() or [""])[0][:300]
  if is_corruption(e):
    return Unreadable(f"cannot restore checkpoint {step} in {directory}: {type(e).__name__}: {first}")
  return UserError(f"cannot restore checkpoint {step} in {directory} ({type(e).__name__}: {first}); "
                   f"this does not look like a corrupt checkpoint, so nothing was moved: fix the "
                   f"cause and run again")


def _all_processes_agree(unreadable: bool, step: int) -> bool:
  """Whether every process found checkpoint `step` unreadable; an error where they differ."""
  if jax.process_count() == 1:
    return unreadable
  from jax.experimental import multihost_utils
  votes = multihost_utils.process_allgather(np.asarray(unreadable))
  if votes.any() and not votes.all():
    raise UserError(f"checkpoint {step} is unreadable on processes "
                    f"{np.flatnonzero(votes).tolist()} only (a file system not shared alike?); "
                    f"nothing was moved")
  return bool(votes.all())


def _sync_processes(name: str) -> None:
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def abstract_like(state_shapes: Any, sharding) -> Any:
  """ShapeDtypeStructs carrying `sharding`: what orbax restores into."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state_shapes)


def signature(state_shapes: Any) -> str:
  """A short hash of the state's tree structure, shapes and dtypes: which model a checkpoint fits."""
  leaves = jax.tree_util.tree_flatten_with_path(state_shapes)[0]
  text = "".join(f"{jax.tree_util.keystr(path)}{x.shape}{x.dtype};" for path, x in leaves)
  return hashlib.sha256(text.encode()).hexdigest()[:16]
