"""Where a run's scalars go: workdir/metrics.jsonl, TensorBoard events and a console line."""

from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np


class RunLog:

  def __init__(self, workdir: str, total_steps: int):
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.total_steps = total_steps
    from flax.metrics import tensorboard as flax_tb  # pylint: disable=g-import-not-at-top
    self._tb = flax_tb.SummaryWriter(os.path.join(workdir, "tensorboard"))

  def truncate_after(self, step: int) -> None:
    """Drops lines logged after `step`: a resumed run rewrites them (same values) itself."""
    if not os.path.exists(self.path):
      return
    with open(self.path) as f:
      lines = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
    with open(self.path, "w") as f:
      f.writelines(lines)

  def write(self, step: int, scalars: dict[str, float]) -> None:
    record = {"step": int(step), **{k: _plain(v) for k, v in scalars.items()}}
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    for k, v in scalars.items():
      if math.isfinite(v):
        self._tb.scalar(k, v, step)
    self._tb.flush()
    shown = " ".join(f"{k} {_fmt(v)}" for k, v in scalars.items())
    print(f"step {step}/{self.total_steps} | {shown}", file=sys.stderr, flush=True)

  def close(self) -> None:
    self._tb.close()


def _plain(v):
  v = float(v)
  return v if math.isfinite(v) else None  # JSON has no NaN


def _fmt(v) -> str:
  return f"{v:.4g}" if isinstance(v, float) else str(v)


class Meter:
  """Collects per-step metric arrays without syncing; means them at log time."""

  def __init__(self):
    self._chunks = []
    self._start = time.perf_counter()
    self._steps = 0

  def add(self, values: dict, valid: dict, num_steps: int) -> None:
    """values[name][k] counts in the mean where valid[name][k] (see gen.families.Sometimes)."""
    self._chunks.append((values, valid))
    self._steps += num_steps

  def exclude(self, seconds: float) -> None:
    """Leaves time spent outside training (evaluation) out of steps_per_sec."""
    self._start += seconds

  def summary(self, batch_size: int) -> dict[str, float]:
    chunks = [({k: np.asarray(v, np.float64).reshape(-1) for k, v in values.items()},
               {k: np.asarray(v, bool).reshape(-1) for k, v in valid.items()})
              for values, valid in self._chunks]
    elapsed = time.perf_counter() - self._start  # after the fetch above waited for the steps
    out = {}
    if chunks:
      for k in chunks[0][0]:
        values = np.concatenate([c[0][k] for c in chunks])
        valid = np.concatenate([c[1][k] for c in chunks])
        out[k] = float(values[valid].mean()) if valid.any() else float("nan")
    out["steps_per_sec"] = self._steps / elapsed if elapsed > 0 else float("nan")
    out["images_per_sec"] = out["steps_per_sec"] * batch_size
    self._chunks, self._steps, self._start = [], 0, time.perf_counter()
    return out
