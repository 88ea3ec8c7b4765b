"""A run directory: one object that knows its paths, and restoring a run for the tools.

  <run>/config.json           the run's config (written once a resume has checked it fits)
  <run>/checkpoints/<step>    orbax checkpoints (state + meta), see gen.runs.checkpointing
  <run>/checkpoints_best/     the best checkpoint by eval.best_metric
  <run>/metrics.jsonl         one JSON row per log or eval event (process 0 writes it)
  <run>/samples/*.png         the family's pictures
  <run>/tensorboard/          the same scalars as TensorBoard events

A run with members (gen.train.members) keeps one sample folder and one TensorBoard run per
member (samples/member_<i>/, tensorboard/member_<i>/) and tags its metrics.jsonl rows with
`member`.

The read-only tools (gen sample, interpolate, evaluate, translate) use `restore_for_inference`,
which never renames, moves or deletes anything in the run.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os

import jax

from gen.data import DatasetInfo
from gen.errors import UserError
from gen.families import get as get_family
from gen.runs.checkpointing import Checkpointer, abstract_like
from gen.train import members as members_lib
from gen.train import sharding


@dataclasses.dataclass(frozen=True)
class RunDir:
  """The paths of one run."""
  path: str

  @property
  def config_file(self) -> str:
    return os.path.join(self.path, "config.json")

  @property
  def checkpoints(self) -> str:
    return os.path.join(self.path, "checkpoints")

  @property
  def best_checkpoints(self) -> str:
    return os.path.join(self.path, "checkpoints_best")

  @property
  def metrics(self) -> str:
    return os.path.join(self.path, "metrics.jsonl")

  def samples(self, member: int | None = None) -> str:
    """Where the pictures of the run (or of one of its members) go."""
    return os.path.join(self.path, "samples", *([] if member is None else [f"member_{member:02d}"]))

  def tensorboard(self, member: int | None = None) -> str:
    return os.path.join(self.path, "tensorboard",
                        *([] if member is None else [f"member_{member:02d}"]))

  def prepare(self) -> None:
    """Creates the directory and checks it is writable."""
    try:
      os.makedirs(self.path, exist_ok=True)
      probe = os.path.join(self.path, f".write_test.{jax.process_index()}")  # one per process
      with open(probe, "w") as f:
        f.write("ok")
      os.remove(probe)
    except OSError as e:
      raise UserError(f"workdir {self.path!r} is not writable: {e.strerror or e}") from None

  def write_config(self, config) -> None:
    if jax.process_index() == 0:
      with open(self.config_file, "w") as f:
        f.write(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")

  def read_config(self):
    """The run's config; keys its config.json lacks take the family's defaults."""
    import ml_collections
    if not os.path.exists(self.config_file):
      raise UserError(f"{self.path!r} is not a run directory: no config.json")
    try:
      with open(self.config_file) as f:
        config = ml_collections.ConfigDict(json.load(f))
    except (OSError, ValueError) as e:
      raise UserError(f"cannot read {self.config_file}: {e}") from None
    return _with_defaults(config)


def _with_defaults(config):
  """Keys that a config.json written before they existed lacks take the family's defaults
  (gen/configs/<family>.py), which leave new features off: such runs still load."""
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


def restore_run(workdir: str):
  """(config, family, state, members) from a run's newest readable checkpoint, the whole state
  (every member) replicated on all devices; members is None for a run without members.

  Read-only: an unreadable checkpoint is reported and skipped, never moved.
  """
  run = RunDir(workdir)
  if not os.path.isdir(workdir):
    raise UserError(f"workdir {workdir!r} does not exist")
  ckpt = Checkpointer(run.checkpoints, read_only=True)
  if ckpt.latest_step() is None:
    raise UserError(f"no checkpoint in {workdir!r}")
  config = run.read_config()
  meta = ckpt.latest_readable_meta()
  if meta is None:
    raise UserError(f"no readable checkpoint in {ckpt.directory}")
  info = DatasetInfo(**{**meta["dataset"], "image_shape": tuple(meta["dataset"]["image_shape"])})
  family = get_family(config.family)(config, info)
  members = members_lib.from_config(config, type(family), family.info)
  if members:
    keys = jax.vmap(jax.random.key)(jax.numpy.asarray(members.seeds))
    shapes = jax.eval_shape(jax.vmap(family.init_state), keys)
  else:
    shapes = jax.eval_shape(family.init_state, jax.random.key(config.seed))
  state, _ = ckpt.restore_latest_usable(
      abstract_like(shapes, sharding.replicated(sharding.make_mesh())), config.family)
  return config, family, state, members


def restore_for_inference(workdir: str, member: int | None = None, sampling: dict | None = None):
  """(config, family, state) of one model of a run: the run's, or member `member`'s (then the
  config and family are that member's: its seed and varied values), replicated on all devices.
  `sampling` ({name: value} of the config's `sample` section: a diffusion run's sampler, NFE,
  guidance) replaces those settings for this use; the family checks the new values.
  """
  config, family, state, members = restore_run(workdir)
  if members is None and member not in (None, 0):
    raise UserError(f"{workdir!r} holds a run without members: --member must be left out")
  if members is not None:
    if member is None or not 0 <= member < members.count:
      raise UserError(f"{workdir!r} holds {members.count} members: pass --member "
                      f"0..{members.count - 1} (e.g. --member 0 is {members.label(0)})")
    config = members.config_for(config, member)
    state = sharding.take_member(state, member, sharding.replicated(sharding.make_mesh()))
  if sampling:
    if "sample" not in config:
      raise UserError(f"--{' --'.join(sampling)} set{'s' if len(sampling) == 1 else ''} how a "
                      f"diffusion model samples; {workdir!r} holds a {config.family} run")
    config = members_lib.with_values(config, {f"sample.{k}": v for k, v in sampling.items()})
  if members is not None or sampling:
    family = get_family(config.family)(config, family.info)
  return config, family, state
