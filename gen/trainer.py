"""The one training loop every family shares.

Builds the mesh and the data stream, restores the latest checkpoint (or
initialises), then runs `steps_per_call` jitted steps per call (a `lax.scan`
over stacked batches, state donated), logging, sampling and checkpointing at
their intervals. The family supplies the model, state and step.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import sys
import time

import jax
import numpy as np

from gen import checks
from gen import metrics as metrics_lib
from gen import run_dir, sharding
from gen.checkpointing import Checkpointer, abstract_like, signature
from gen.data import DatasetInfo, Pipeline, dataset_info, open_builder
from gen.errors import UserError
from gen.families import get as get_family
from gen.images import save_png
from gen.run_log import Meter, RunLog


DOMAIN_SEED_STRIDE = 1 << 31  # domain i's stream uses seed + i * stride: independent orders


def check_config(config) -> None:
  """Checks the settings the trainer itself uses; families and metrics check their own."""
  checks.positive(config, "batch_size", "steps_per_call", "log_every", "sample_every",
                  "checkpoint_every", "keep_checkpoints", "sample_grid", "eval.batch_size")
  checks.non_negative(config, "num_steps", "data.image_size", "data.load_size", "data.shuffle_buffer")
  if config.data.load_size and not 0 < config.data.image_size <= config.data.load_size:
    raise UserError(f"data.load_size={config.data.load_size} (resize, then random crop) needs "
                    f"0 < data.image_size <= load_size, not {config.data.image_size}")
  if config.eval_every < 0:
    raise UserError(f"eval_every={config.eval_every} must be >= 0 (0 = only at the end)")
  checks.one_of(config, "eval.best_mode", ("min", "max"))


def data_info(builder, splits: tuple[str, ...], config) -> DatasetInfo:
  """One DatasetInfo for the splits a family reads (their images must agree in shape).

  num_examples is the largest split's whole size, over all processes: a family's epoch is
  the same on any number of hosts (each process reads its own slice; see Pipeline).
  """
  infos = [dataset_info(builder, split, config.data.image_size) for split in splits]
  if len({i.image_shape for i in infos}) > 1:
    raise UserError(f"the splits {', '.join(splits)} of {infos[0].name!r} have images of "
                    f"different shapes: set --config.data.image_size")
  return dataclasses.replace(infos[0], num_examples=max(i.num_examples for i in infos))


def _chunk(step: int, config) -> int:
  """Steps in the next call: steps_per_call, cut short to land on the next event."""
  k = min(config.steps_per_call, config.num_steps - step)
  for every in (config.log_every, config.sample_every, config.checkpoint_every, config.eval_every):
    if every:
      k = min(k, every - step % every)
  return k


def _processes() -> dict:
  return dict(process_index=jax.process_index(), process_count=jax.process_count())


def _eval_pipelines(config, builder, family, batch_size: int) -> list:
  return [Pipeline(builder, split, batch_size=batch_size, repeat=False,
                   image_size=config.data.image_size, value_range=family.value_range,
                   cache=False, **_processes())
          for split in family.streams.splits(config.eval.split)]


def eval_batches(config, builder, family, mesh):
  """() -> one pass over config.eval.split as global batches with a `mask` (0 for padding).

  The last batch is padded to full size. Families with Domains get {'A': batch, 'B': batch}
  from the domains' splits side by side; the shorter one is padded with fully masked batches.
  """
  local_batch = sharding.check_batch_size(config.eval.batch_size)
  batch_sharding = sharding.batch_sharding(mesh, batch_axis=0)
  pipelines = _eval_pipelines(config, builder, family, local_batch)

  def padded(batch):
    n = len(batch["image"])
    pad = lambda x: np.concatenate([x, np.zeros((local_batch - n,) + x.shape[1:], x.dtype)])
    return {**{k: pad(v) for k, v in batch.items()},
            "mask": (np.arange(local_batch) < n).astype(np.float32)}

  def batches():
    for group in itertools.zip_longest(*pipelines):
      full = next(b for b in group if b is not None)
      parts = [padded(b if b is not None else {k: v[:0] for k, v in full.items()}) for b in group]
      yield sharding.to_global(family.streams.combine(parts), batch_sharding)

  return batches


def picture_examples(config, builder, family):
  """The first `family.picture_examples` images of the eval split(s): the same ones every time."""
  if not family.picture_examples:
    return None
  pipelines = _eval_pipelines(config, builder, family, family.picture_examples)
  return family.streams.combine([next(iter(p))["image"] for p in pipelines])


def evaluate(config, family, state, builder, mesh, names: list[str]) -> dict[str, float]:
  return metrics_lib.compute(names, family, state, eval_batches(config, builder, family, mesh),
                             config)


def compile_steps(family, state_sharding):
  """jit(state, batches[k, ...]) -> (state, (values, valid, finite)[k]): k train steps in one
  call (family.train_step scanned), state donated."""
  # XLA:CPU runs a while-loop body several times slower than the same ops unrolled (measured
  # on 2 cores, 28x28 DCGAN, batch 64: 0.9 vs 7.9 steps/s), so on CPU the scan is unrolled;
  # accelerators keep the loop.
  unroll = True if jax.default_backend() == "cpu" else 1

  def run_steps(state, batches):
    if jax.tree.leaves(batches)[0].shape[0] == 1:  # a length-1 scan is just as slow on XLA:CPU
      state, metrics = family.train_step(state, jax.tree.map(lambda x: x[0], batches))
      return state, jax.tree.map(lambda m: m[None], metrics)
    return jax.lax.scan(family.train_step, state, batches, unroll=unroll)

  return jax.jit(run_steps, donate_argnums=0, out_shardings=(state_sharding, state_sharding))


class _StopOnSignals:
  """SIGTERM / SIGINT (preemption, Ctrl-C) set `signal`; the loop then saves and stops."""

  def __init__(self):
    self.signal = None
    self._previous = {}
    try:
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
    except ValueError:  # not the main thread: leave the process's handlers alone
      pass

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    self.signal = signal.Signals(signum).name

  def restore(self):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def _check_finite(outputs, step: int, ckpt: Checkpointer) -> None:
  """Stops at the first step whose losses or gradient norms are not finite; saves nothing of it."""
  values, valid, finite = outputs
  finite = np.asarray(finite)  # one bool per step: waits for this call's steps
  if finite.all():
    return
  i = int(np.argmin(finite))
  bad = ", ".join(f"{n}={float(np.asarray(v)[i])}" for n, v in values.items()
                  if np.asarray(valid[n])[i] and not np.isfinite(np.asarray(v)[i]))
  ckpt.wait()
  last = ckpt.latest_step()
  raise UserError(f"non-finite loss or gradient at step {step + i + 1} ({bad}); "
                  f"stopped without saving it; the last checkpoint is "
                  f"{'step ' + str(last) if last is not None else 'none'} "
                  f"(--config.debug_nans=True finds the operation)")


def train(config, workdir: str) -> None:
  """Trains `config.family` in `workdir` up to `config.num_steps` steps.

  Resumes from the newest usable checkpoint in `workdir/checkpoints` (bitwise: state, data
  position and metrics.jsonl continue as if never stopped); logs every `log_every` steps,
  saves pictures every `sample_every`, checkpoints every `checkpoint_every` and evaluates
  `eval.metrics` every `eval_every` steps and at the end. SIGTERM or SIGINT saves and returns.

  Args:
    config: a family config (gen/configs/*.py), `config.family` naming a registered family.
    workdir: the run directory (see gen.run_dir); created if missing.

  Raises:
    UserError: for anything the user can fix (config, data, checkpoint, a non-finite loss);
      every config mistake is raised before the first step.
  """
  stop = _StopOnSignals()  # from here on, SIGTERM / SIGINT ask the run to save and stop
  try:
    _train(config, workdir, stop)
  finally:
    stop.restore()


def _train(config, workdir: str, stop: _StopOnSignals) -> None:
  # ---------------------------------------------------------------- Checks, data and family
  # Everything a user can get wrong surfaces here, before anything is trained or written.
  check_config(config)
  if config.get("debug_nans"):
    jax.config.update("jax_debug_nans", True)
  family_cls = get_family(config.family)
  run_dir.prepare(workdir)
  mesh = sharding.make_mesh()
  local_batch = sharding.check_batch_size(config.batch_size)
  builder = open_builder(config.data.name, config.data.data_dir or None)
  splits = family_cls.streams.splits(config.data.split)
  info = data_info(builder, splits, config)
  family = family_cls(config, info)
  eval_names = metrics_lib.parse(config.eval.metrics)
  metrics_lib.check(eval_names, config, family)
  if eval_names or family.picture_examples:
    data_info(builder, family.streams.splits(config.eval.split), config)  # the eval split exists
  examples = picture_examples(config, builder, family)

  # ---------------------------------------------------------------- State: resume or initialise
  replicated = sharding.replicated(mesh)
  key = jax.random.key(config.seed)
  ckpt = Checkpointer(run_dir.checkpoints_dir(workdir), config.keep_checkpoints)
  best_ckpt = (Checkpointer(os.path.join(workdir, "checkpoints_best"), 1,
                            best_metric=config.eval.best_metric, best_mode=config.eval.best_mode)
               if config.eval.best_metric and eval_names else None)
  shapes = jax.eval_shape(family.init_state, key)
  restored = ckpt.restore_latest_usable(abstract_like(shapes, replicated), config.family)
  if restored:
    state, meta = restored
    position = int(meta["data_position"])
    print(f"resumed from step {int(state.step)} in {ckpt.directory}", file=sys.stderr, flush=True)
  else:
    state = jax.jit(family.init_state, out_shardings=replicated)(key)
    position = 0
  run_dir.write_config(config, workdir)  # only once any checkpoint there is known to fit
  state_signature = signature(shapes)
  dataset = {"name": info.name, "image_shape": list(info.image_shape),
             "num_classes": info.num_classes, "num_examples": info.num_examples}

  def meta_at(step: int, position: int) -> dict:
    return {"family": config.family, "step": step, "data_position": position,
            "dataset": dataset, "signature": state_signature}

  # ---------------------------------------------------------------- Input streams
  # One stream per split, each a pure function of (seed, position); domains draw independently.
  streams = [iter(Pipeline(builder, split, batch_size=local_batch, start=position,
                           seed=config.seed + i * DOMAIN_SEED_STRIDE,
                           image_size=config.data.image_size, load_size=config.data.load_size,
                           value_range=family.value_range, random_flip=config.data.random_flip,
                           shuffle_buffer=config.data.shuffle_buffer, cache=config.data.cache,
                           **_processes()))
             for i, split in enumerate(splits)]
  batch_sharding = sharding.batch_sharding(mesh, batch_axis=1)

  # ---------------------------------------------------------------- Update step
  run_steps = compile_steps(family, replicated)

  # ---------------------------------------------------------------- Loop
  primary = jax.process_index() == 0  # writes the files; every process computes
  log = RunLog(workdir, config.num_steps) if primary else None
  step = int(state.step)
  if log:
    log.truncate_after(step)
  meter = Meter()
  samples_dir = os.path.join(workdir, "samples")
  try:
    while step < config.num_steps and not stop.signal:
      k = _chunk(step, config)
      batches = [family.streams.combine([next(it) for it in streams]) for _ in range(k)]
      stacked = jax.tree.map(lambda *xs: np.stack(xs), *batches)
      state, outputs = run_steps(state, sharding.to_global(stacked, batch_sharding))
      _check_finite(outputs, step, ckpt)  # before anything is logged or saved from this state
      step += k
      position += k * local_batch
      meter.add(outputs[0], outputs[1], k)
      end = step == config.num_steps
      if step % config.log_every == 0 or end:
        summary = meter.summary(config.batch_size)
        if log:
          log.write(step, summary)
      if step % config.sample_every == 0 or end:
        for name, picture in family.pictures(state, examples).items():
          if primary:
            save_png(os.path.join(samples_dir, f"{name}_{step:07d}.png"), picture)
      if step % config.checkpoint_every == 0 or end:  # saves in the background
        ckpt.save(step, state, meta_at(step, position))
      if eval_names and ((config.eval_every and step % config.eval_every == 0) or end):
        started = time.perf_counter()
        results = evaluate(config, family, state, builder, mesh, eval_names)
        meter.exclude(time.perf_counter() - started)
        if log:
          log.write(step, {f"{config.eval.split}_{name}": v for name, v in results.items()})
        if best_ckpt:
          best_ckpt.save(step, state, meta_at(step, position), metrics=results)
    if stop.signal:  # also before the first step: then it saves the initial state
      if ckpt.latest_step() != step:
        ckpt.save(step, state, meta_at(step, position))
      ckpt.wait()
      print(f"{stop.signal}: saved a checkpoint at step {step} in {ckpt.directory}; run the same "
            f"command again to resume", file=sys.stderr, flush=True)
  finally:
    for c in (ckpt, best_ckpt):
      if c:
        c.wait()
        c.close()
    if log:
      log.close()
