"""Members: K copies of one model trained side by side in one program (ablations, seeds).

  --config.seeds=3                                   3 members, seeds seed, seed+1, seed+2
  --config.vary='optim.g_lr=1e-4,2e-4;loss.r1_gamma=0,1'   4 combinations x seeds members

Members are the combinations of the `vary` lists (their product, the first name varying
slowest) times `seeds`: member i has combination i // seeds and seed config.seed + i % seeds,
so every combination runs on the same seeds (a paired comparison). Each member's state and
step key come from its own seed; its varied values enter the step as traced numbers
(`gen.families.Family.setting`), so one compiled step trains them all. Only settings a
family lists in `numeric_settings` can vary, and only those its step reads (or, listed in
`sampling_settings`, its sampling reads: each member is evaluated with its own values): anything that
changes the program (an architecture, a loss kind, an image size) is a separate run, which
`gen sweep --grid` makes.

Data: by default every member sees the same batches (common random numbers: their
differences are the model's, not the data order's); `data.member_order=True` gives each
seed its own order, the one a separate run with that seed would read.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math

import numpy as np

from gen.configs import checks
from gen.errors import UserError

NAN_POLICIES = ("stop", "drop")


def parse_vary(text: str) -> list[tuple[str, list[str]]]:
  """'a.b=1,2;c.d=3' -> [('a.b', ['1', '2']), ('c.d', ['3'])]."""
  out = []
  for part in (p.strip() for p in (text or "").split(";")):
    if not part:
      continue
    name, sep, values = part.partition("=")
    name, values = name.strip(), [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not name or not values:
      raise UserError(f"vary={text!r}: each part is NAME=V1,V2,... separated by ';', "
                      f"e.g. 'optim.g_lr=1e-4,2e-4;loss.r1_gamma=0,1'")
    if name in (n for n, _ in out):
      raise UserError(f"vary={text!r} names {name} twice")
    out.append((name, values))
  return out


def varied_names(config) -> list[str]:
  return [name for name, _ in parse_vary(config.get("vary", ""))]


def has_members(config) -> bool:
  """Whether the run's state has a leading member axis (seeds > 1 or anything varied)."""
  return config.get("seeds", 1) != 1 or bool(varied_names(config))


@dataclasses.dataclass(frozen=True)
class Members:
  seeds: tuple[int, ...]  # per member
  values: tuple[dict, ...]  # per member: {name: float} of the varied settings
  names: tuple[str, ...]  # the varied settings, in `vary` order

  @property
  def count(self) -> int:
    return len(self.seeds)

  def tags(self, i: int) -> dict:
    """What metrics.jsonl rows of member i carry besides the metrics."""
    return {"member": i, "seed": self.seeds[i], **self.values[i]}

  def label(self, i: int) -> str:
    varied = "".join(f", {k}={v:g}" for k, v in self.values[i].items())
    return f"member {i} (seed {self.seeds[i]}{varied})"

  def settings(self) -> dict[str, np.ndarray]:
    """{name: float32 [K]}: the step's vmapped settings."""
    return {n: np.asarray([v[n] for v in self.values], np.float32) for n in self.names}

  def describe(self) -> dict:
    """JSON for checkpoint metadata: a resume must find the same members."""
    return {"seeds": list(self.seeds), "values": [dict(v) for v in self.values]}

  def config_for(self, config, i: int):
    """The config a separate run of member i would have: its seed and varied values."""
    return with_values(config, {"seed": self.seeds[i], "seeds": 1, "vary": "",
                                 **self.values[i]})

  def distinct_seeds(self) -> list[int]:
    return sorted(set(self.seeds))


def with_values(config, values: dict):
  """A copy of `config` with the dotted names set, each in its old value's type."""
  out = config.copy_and_resolve_references()
  with out.unlocked():
    for name, v in values.items():
      *path, leaf = name.split(".")
      node = out
      for p in path:
        node = node[p]
      old = node.get(leaf)
      if isinstance(old, bool) or not isinstance(old, (int, float)) or isinstance(v, str):
        node[leaf] = v
      elif isinstance(old, int) and not isinstance(v, int):
        node[leaf] = int(v)
      else:
        node[leaf] = type(old)(v)
  return out


def lookup(config, name: str, who: str = "vary"):
  """config's value of the dotted `name`; an unknown name is one line with a suggestion."""
  try:
    return checks.value(config, name)
  except (KeyError, AttributeError, TypeError):
    known = _leaf_names(config)
    close = difflib.get_close_matches(name, known, n=1)
    raise UserError(f"{who} names {name}, which is not a config key"
                    + (f" (did you mean {close[0]}?)" if close else "")) from None


def _leaf_names(config, prefix: str = "") -> list[str]:
  out = []
  for k, v in config.items():
    if hasattr(v, "items"):
      out += _leaf_names(v, f"{prefix}{k}.")
    else:
      out.append(prefix + k)
  return out


def from_config(config, family_cls, info) -> Members | None:
  """The run's members, every value checked; None for a plain run (no member axis)."""
  if not has_members(config):
    return None
  checks.positive(config, "seeds")
  grid = []
  for name, texts in parse_vary(config.vary):
    old = lookup(config, name)
    if name not in family_cls.numeric_settings + family_cls.sampling_settings:
      allowed = ", ".join(family_cls.numeric_settings + family_cls.sampling_settings) or "none"
      raise UserError(f"vary: {name} is structural for the {config.family} family (it changes "
                      f"the program, not a number in the step); compare it in separate runs with "
                      f"gen sweep --grid {name}={','.join(texts)} (vary takes: {allowed})")
    values = []
    for t in texts:
      try:
        v = float(t)
      except ValueError:
        raise UserError(f"vary: {name}={t!r} is not a number") from None
      if isinstance(old, int) and not isinstance(old, bool) and not v.is_integer():
        raise UserError(f"vary: {name}={t} must be a whole number")
      if not math.isfinite(v):
        raise UserError(f"vary: {name}={t} must be finite")
      values.append(v)
    grid.append((name, values))
  names = tuple(n for n, _ in grid)
  combos = list(itertools.product(*(vs for _, vs in grid)))
  seeds, values = [], []
  for combo in combos:
    for s in range(config.seeds):
      seeds.append(config.seed + s)
      values.append(dict(zip(names, combo)))
  members = Members(tuple(seeds), tuple(values), names)
  for i in range(len(combos)):  # each combination's values pass the family's own checks
    try:
      family_cls.check_config(members.config_for(config, i * config.seeds), info)
    except UserError as e:
      raise UserError(f"vary: {members.label(i * config.seeds)}: {e}") from None
  return members


def check_resume(members: Members | None, meta: dict, ckpt_dir: str) -> None:
  """A checkpoint resumes only the members it holds."""
  saved = meta.get("members")
  now = members.describe() if members else None
  if saved != now:
    what = lambda d: (f"{len(d['seeds'])} members (seeds {d['seeds']}"
                      + (f", values {d['values']}" if any(d["values"]) else "") + ")"
                      if d else "no members")
    raise UserError(f"the checkpoint in {ckpt_dir} holds {what(saved)}, but the config asks for "
                    f"{what(now)}: use a new --workdir, or the settings it was started with")
