"""Where a run's scalars go: metrics.jsonl, TensorBoard events and a console line.

A run with members (gen.train.members) writes one row per member, tagged with `member`, its
`seed` and its varied values, and one TensorBoard run per member (tensorboard/member_<i>/),
so TensorBoard overlays the members' curves.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np

from gen.data.builders import tf_and_tfds  # imports TensorFlow lazily, on the first call


class RunLog:

  def __init__(self, run, total_steps: int, members=None):
    """`run`: a gen.runs.run_dir.RunDir; `members`: gen.train.members.Members, or None."""
    self.path = run.metrics
    self.total_steps = total_steps
    self.members = members
    self._run = run
    self._tbs = {}

  def _tb(self, member: int | None):
    """TensorBoard's own event writer (flax.metrics.tensorboard wraps the same one, but its
    import pulls in Keras and scikit-learn: ~3 s of every run's start)."""
    if member not in self._tbs:
      self._tbs[member] = tf_and_tfds()[0].summary.create_file_writer(self._run.tensorboard(member))
    return self._tbs[member]

  def truncate_after(self, step: int) -> None:
    """Drops lines logged after `step`: a resumed run rewrites them (same values) itself."""
    if not os.path.exists(self.path):
      return
    with open(self.path) as f:
      lines = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
    with open(self.path, "w") as f:
      f.writelines(lines)

  def write(self, step: int, scalars: dict, member: int | None = None,
            extra: dict | None = None) -> None:
    """One row: `scalars` at `step`, of `member` (tagged with its seed and values) if given;
    `extra` (JSON) goes into the row only, not to TensorBoard or the console."""
    tags = self.members.tags(member) if member is not None else {}
    record = {"step": int(step), **tags,
              **{k: (v if isinstance(v, str) else _plain(v)) for k, v in scalars.items()},
              **(extra or {})}
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    tb, tf = self._tb(member), tf_and_tfds()[0]
    with tb.as_default(step=int(step)):
      for k, v in scalars.items():
        if not isinstance(v, str) and math.isfinite(v):
          tf.summary.scalar(k, float(v))
    tb.flush()
    shown = " ".join(f"{k} {_fmt(v)}" for k, v in scalars.items())
    who = "" if member is None else f" m{member}"
    print(f"step {step}/{self.total_steps}{who} | {shown}", file=sys.stderr, flush=True)

  def close(self) -> None:
    for tb in self._tbs.values():
      tb.close()


def _plain(v):
  v = float(v)
  return v if math.isfinite(v) else None  # JSON has no NaN


def _fmt(v) -> str:
  return f"{v:.4g}" if isinstance(v, float) else str(v)


class Meter:
  """Collects per-step metric arrays without syncing; means them at log time.

  Arrays are [steps] or, with K members, [steps, K]; `summary` gives one dict per member.
  """

  def __init__(self, members: int = 1):
    self._members = members
    self._chunks = []
    self._start = time.perf_counter()
    self._steps = 0

  def add(self, values: dict, valid: dict, num_steps: int) -> None:
    """values[name][k] counts in the mean where valid[name][k] (see gen.families.base.Sometimes)."""
    self._chunks.append((values, valid))
    self._steps += num_steps

  def exclude(self, seconds: float) -> None:
    """Leaves time spent outside training (evaluation) out of steps_per_sec."""
    self._start += seconds

  def summary(self, batch_size: int) -> list[dict[str, float]]:
    """[{name: mean over the interval's valid steps, steps_per_sec, images_per_sec}] per
    member; images_per_sec counts every member's images."""
    shape = (-1, self._members)
    chunks = [({k: np.asarray(v, np.float64).reshape(shape) for k, v in values.items()},
               {k: np.asarray(v, bool).reshape(shape) for k, v in valid.items()})
              for values, valid in self._chunks]
    elapsed = time.perf_counter() - self._start  # after the fetch above waited for the steps
    out = [{} for _ in range(self._members)]
    if chunks:
      for k in chunks[0][0]:
        values = np.concatenate([c[0][k] for c in chunks])
        valid = np.concatenate([c[1][k] for c in chunks])
        for m in range(self._members):
          v = values[:, m][valid[:, m]]
          out[m][k] = float(v.mean()) if v.size else float("nan")
    steps_per_sec = self._steps / elapsed if elapsed > 0 else float("nan")
    for o in out:
      o["steps_per_sec"] = steps_per_sec
      o["images_per_sec"] = steps_per_sec * batch_size * self._members
    self._chunks, self._steps, self._start = [], 0, time.perf_counter()
    return out
