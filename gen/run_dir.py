"""A run directory: what `train()` writes and what the read-only tools read back.

  workdir/config.json         the run's config (written once a resume has checked it fits)
  workdir/checkpoints/<step>  orbax checkpoints (state + meta), see gen.checkpointing
  workdir/checkpoints_best/   the best checkpoint by eval.best_metric
  workdir/metrics.jsonl       one JSON row per log or eval event (process 0 writes it)
  workdir/samples/*.png       the family's pictures
  workdir/tensorboard/        the same scalars as TensorBoard events

A run with members (gen.members) keeps one sample folder and one TensorBoard run per member
(samples/member_<i>/, tensorboard/member_<i>/) and tags its metrics.jsonl rows with `member`.

The read-only tools (gen.sample, gen.interpolate, gen.evaluate, gen.translate) use
`restore_for_inference`, which never renames, moves or deletes anything here.
"""

from __future__ import annotations

import importlib
import json
import os

import jax

from gen import members as members_lib
from gen import sharding
from gen.checkpointing import Checkpointer, abstract_like
from gen.data import DatasetInfo
from gen.errors import UserError
from gen.families import get as get_family


def checkpoints_dir(workdir: str) -> str:
  return os.path.join(workdir, "checkpoints")


def prepare(workdir: str) -> None:
  """Creates `workdir` and checks it is writable."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f".write_test.{jax.process_index()}")  # one per process
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise UserError(f"workdir {workdir!r} is not writable: {e.strerror or e}") from None


def write_config(config, workdir: str) -> None:
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")


def read_config(workdir: str):
  import ml_collections  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise UserError(f"{workdir!r} is not a run directory: no config.json")
  try:
    with open(path) as f:
      config = ml_collections.ConfigDict(json.load(f))
  except (OSError, ValueError) as e:
    raise UserError(f"cannot read {path}: {e}") from None
  return _with_defaults(config)


def _with_defaults(config):
  """Keys that a config.json written before they existed lacks take the family's defaults
  (gen/configs/<family>.py), which leave new features off: older runs still load."""
  try:
    defaults = importlib.import_module(f"gen.configs.{config.get('family')}").get_config()
  except (ImportError, AttributeError, TypeError, ValueError):
    return config

  def fill(node, default):
    for key, value in default.items():
      if key not in node:
        node[key] = value
      elif hasattr(value, "items") and hasattr(node[key], "items"):
        fill(node[key], value)

  fill(config, defaults)
  return config


def family_for(workdir: str, ckpt: Checkpointer):
  """(config, family) of an existing run, from its config.json and newest readable checkpoint."""
  config = read_config(workdir)
  meta = ckpt.latest_readable_meta()
  info = DatasetInfo(**{**meta["dataset"], "image_shape": tuple(meta["dataset"]["image_shape"])})
  return config, get_family(config.family)(config, info)


def restore_run(workdir: str):
  """(config, family, state, members) from a run's newest readable checkpoint, the whole state
  (every member) replicated on all devices; members is None for a run without members.

  Read-only: an unreadable checkpoint is reported and skipped, never moved.
  """
  if not os.path.isdir(workdir):
    raise UserError(f"workdir {workdir!r} does not exist")
  ckpt = Checkpointer(checkpoints_dir(workdir), read_only=True)
  if ckpt.latest_step() is None:
    raise UserError(f"no checkpoint in {workdir!r}")
  config, family = family_for(workdir, ckpt)
  members = members_lib.from_config(config, type(family), family.info)
  if members:
    keys = jax.vmap(jax.random.key)(jax.numpy.asarray(members.seeds))
    shapes = jax.eval_shape(jax.vmap(family.init_state), keys)
  else:
    shapes = jax.eval_shape(family.init_state, jax.random.key(config.seed))
  state, _ = ckpt.restore_latest_usable(
      abstract_like(shapes, sharding.replicated(sharding.make_mesh())), config.family)
  return config, family, state, members


def restore_for_inference(workdir: str, member: int | None = None):
  """(config, family, state) of one model of a run: the run's, or member `member`'s (then the
  config and family are that member's: its seed and varied values), replicated on all devices.
  """
  config, family, state, members = restore_run(workdir)
  if members is None:
    if member not in (None, 0):
      raise UserError(f"{workdir!r} holds a run without members: --member must be left out")
    return config, family, state
  if member is None or not 0 <= member < members.count:
    raise UserError(f"{workdir!r} holds {members.count} members: pass --member 0..{members.count - 1} "
                    f"(e.g. --member 0 is {members.label(0)})")
  config = members.config_for(config, member)
  family = get_family(config.family)(config, family.info)
  return config, family, sharding.take_member(state, member, sharding.replicated(sharding.make_mesh()))
