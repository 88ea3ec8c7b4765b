"""The one training loop every family shares.

Builds the mesh and the data stream, restores the latest checkpoint (or
initialises), then runs `steps_per_call` jitted steps per call (a `lax.scan`
over stacked batches, state donated), logging, sampling and checkpointing at
their intervals. The family supplies the model, state and step.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import signal
import sys
import time

import jax
import numpy as np

from gen import metrics as metrics_lib
from gen import sharding
from gen.checkpointing import Checkpointer, abstract_like, signature
from gen.data import DatasetInfo, Pipeline, dataset_info, open_builder
from gen.errors import UserError
from gen.families import get as get_family
from gen.images import save_png
from gen.run_log import Meter, RunLog


DOMAIN_SEED_STRIDE = 1 << 31  # domain i's stream uses seed + i * stride: independent orders


def check_config(config) -> None:
  """Checks the settings the trainer itself uses; families check their own."""
  positive = ("batch_size", "steps_per_call", "log_every", "sample_every", "checkpoint_every",
              "keep_checkpoints")
  for name in positive:
    if config[name] < 1:
      raise UserError(f"{name}={config[name]} must be >= 1")
  if config.num_steps < 0:
    raise UserError(f"num_steps={config.num_steps} must be >= 0")
  if config.data.image_size < 0:
    raise UserError(f"data.image_size={config.data.image_size} must be >= 0 (0 = native size)")
  if config.data.load_size and not 0 < config.data.image_size <= config.data.load_size:
    raise UserError(f"data.load_size={config.data.load_size} (resize, then random crop) needs "
                    f"0 < data.image_size <= load_size, not {config.data.image_size}")
  if config.eval_every < 0:
    raise UserError(f"eval_every={config.eval_every} must be >= 0 (0 = only at the end)")
  if config.eval.batch_size < 1:
    raise UserError(f"eval.batch_size={config.eval.batch_size} must be >= 1")
  if config.eval.best_mode not in ("min", "max"):
    raise UserError(f"eval.best_mode={config.eval.best_mode!r} is not one of min, max")
  metrics_lib.check_available(metrics_lib.parse(config.eval.metrics), config)


def prepare_workdir(workdir: str) -> None:
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, ".write_test")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise UserError(f"workdir {workdir!r} is not writable: {e.strerror or e}") from None


def write_config(config, workdir: str) -> None:
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2, sort_keys=True) + "\n")


def family_for_workdir(workdir: str, ckpt: Checkpointer):
  """(config, family) of an existing run, from its config.json and latest checkpoint."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise UserError(f"{workdir!r} is not a run directory: no config.json")
  with open(path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  meta = ckpt.latest_readable_meta()
  info = DatasetInfo(**{**meta["dataset"], "image_shape": tuple(meta["dataset"]["image_shape"])})
  return config, get_family(config.family)(config, info)


def restore_for_inference(workdir: str):
  """(config, family, state) from a run directory's latest checkpoint, replicated on all devices."""
  if not os.path.isdir(workdir):
    raise UserError(f"workdir {workdir!r} does not exist")
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), create=False)
  if ckpt.latest_step() is None:
    raise UserError(f"no checkpoint in {workdir!r}")
  config, family = family_for_workdir(workdir, ckpt)
  shapes = jax.eval_shape(family.init_state, jax.random.key(config.seed))
  state, _ = ckpt.restore_latest_usable(
      abstract_like(shapes, sharding.replicated(sharding.make_mesh())), config.family)
  return config, family, state


def _chunk(step: int, config) -> int:
  """Steps in the next call: steps_per_call, cut short to land on the next event."""
  k = min(config.steps_per_call, config.num_steps - step)
  for every in (config.log_every, config.sample_every, config.checkpoint_every, config.eval_every):
    if every:
      k = min(k, every - step % every)
  return k


def _processes() -> dict:
  return dict(process_index=jax.process_index(), process_count=jax.process_count())


def domain_splits(family, split: str) -> dict:
  """The splits a family reads: {None: split}, or one per domain ({'A': 'trainA', 'B': 'trainB'})."""
  domains = getattr(family, "domains", ())
  return {d: f"{split}{d}" for d in domains} if domains else {None: split}


def _by_domain(parts: dict):
  """{None: x} -> x; {'A': x, 'B': y} stays: the batch layout a family's step receives."""
  return parts[None] if None in parts else parts


def _eval_pipelines(config, builder, family, batch_size: int) -> dict:
  return {d: Pipeline(builder, split, batch_size=batch_size, repeat=False,
                      image_size=config.data.image_size, value_range=family.value_range,
                      cache=False, **_processes())
          for d, split in domain_splits(family, config.eval.split).items()}


def eval_batches(config, builder, family, mesh):
  """() -> one pass over config.eval.split as global batches with a `mask` (0 for padding).

  The last batch is padded to full size. Families with domains get {'A': batch, 'B': batch}
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
    for group in itertools.zip_longest(*pipelines.values()):
      full = next(b for b in group if b is not None)
      parts = {d: padded(b if b is not None else {k: v[:0] for k, v in full.items()})
               for d, b in zip(pipelines, group)}
      yield sharding.to_global(_by_domain(parts), batch_sharding)

  return batches


def picture_examples(config, builder, family):
  """The first `family.picture_examples` images of the eval split(s): the same ones every time."""
  if not family.picture_examples:
    return None
  pipelines = _eval_pipelines(config, builder, family, family.picture_examples)
  return _by_domain({d: next(iter(p))["image"] for d, p in pipelines.items()})


def evaluate(config, family, state, builder, mesh, names: list[str]) -> dict[str, float]:
  return metrics_lib.compute(names, family, state, eval_batches(config, builder, family, mesh),
                             config)


def compile_steps(family, state_sharding):
  """jit(state, batches[k, ...]) -> (state, metrics[k]): k train steps in one call, state donated."""
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


def _check_finite(metrics: dict, step: int, ckpt: Checkpointer) -> None:
  """Stops at the first step whose losses or gradient norms are not finite; saves nothing of it."""
  finite = np.asarray(metrics.pop("finite"))  # one bool per step: waits for this call's steps
  if finite.all():
    return
  i = int(np.argmin(finite))
  values = {name: float(np.asarray(v).reshape(-1)[i]) for name, v in metrics.items()}
  bad = ", ".join(f"{n}={v}" for n, v in values.items() if not np.isfinite(v))
  ckpt.wait()
  last = ckpt.latest_step()
  raise UserError(f"non-finite loss or gradient at step {step + i + 1} ({bad or 'a gradient norm'}); "
                  f"stopped without saving it; the last checkpoint is "
                  f"{'step ' + str(last) if last is not None else 'none'} "
                  f"(--config.debug_nans=True finds the operation)")


def train(config, workdir: str) -> None:
  check_config(config)
  if config.get("debug_nans"):
    jax.config.update("jax_debug_nans", True)
  family_cls = get_family(config.family)
  prepare_workdir(workdir)
  mesh = sharding.make_mesh()
  local_batch = sharding.check_batch_size(config.batch_size)
  builder = open_builder(config.data.name, config.data.data_dir or None)
  processes = _processes()
  splits = domain_splits(family_cls, config.data.split)
  infos = [dataset_info(builder, split, config.data.image_size, **processes)
           for split in splits.values()]
  if len({i.image_shape for i in infos}) > 1:
    raise UserError(f"the splits {', '.join(splits.values())} of {infos[0].name!r} have images of "
                    f"different shapes: set --config.data.image_size")
  info = dataclasses.replace(infos[0], num_examples=max(i.num_examples for i in infos))
  family = family_cls(config, info)
  eval_names = metrics_lib.parse(config.eval.metrics)
  examples = picture_examples(config, builder, family)

  replicated = sharding.replicated(mesh)
  key = jax.random.key(config.seed)
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"), config.keep_checkpoints)
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
  write_config(config, workdir)  # only once any checkpoint there is known to fit this config

  # One stream per split, each a pure function of (seed, position); domains draw independently.
  streams = {d: iter(Pipeline(builder, split, batch_size=local_batch, start=position,
                              seed=config.seed + i * DOMAIN_SEED_STRIDE,
                              image_size=config.data.image_size, load_size=config.data.load_size,
                              value_range=family.value_range, random_flip=config.data.random_flip,
                              shuffle_buffer=config.data.shuffle_buffer, cache=config.data.cache,
                              **processes))
             for i, (d, split) in enumerate(splits.items())}
  batch_sharding = sharding.batch_sharding(mesh, batch_axis=1)

  run_steps = compile_steps(family, replicated)
  primary = jax.process_index() == 0  # writes the files; every process computes
  log = RunLog(workdir, config.num_steps) if primary else None
  step = int(state.step)
  if log:
    log.truncate_after(step)
  meter = Meter()
  samples_dir = os.path.join(workdir, "samples")
  state_signature = signature(shapes)
  dataset = {"name": info.name, "image_shape": list(info.image_shape),
             "num_classes": info.num_classes, "num_examples": info.num_examples}
  stop = _StopOnSignals()
  try:
    while step < config.num_steps and not stop.signal:
      k = _chunk(step, config)
      batches = [_by_domain({d: next(it) for d, it in streams.items()}) for _ in range(k)]
      stacked = jax.tree.map(lambda *xs: np.stack(xs), *batches)
      state, metrics = run_steps(state, sharding.to_global(stacked, batch_sharding))
      _check_finite(metrics, step, ckpt)  # before anything is logged or saved from this state
      step += k
      position += k * local_batch
      meter.add(metrics, k)
      end = step == config.num_steps
      if step % config.log_every == 0 or end:
        summary = meter.summary(config.batch_size)
        if log:
          log.write(step, summary)
      if step % config.sample_every == 0 or end:
        for name, picture in family.pictures(state, examples).items():
          if primary:
            save_png(os.path.join(samples_dir, f"{name}_{step:07d}.png"), picture)
      meta = {"family": config.family, "step": step, "data_position": position, "dataset": dataset,
              "signature": state_signature}
      if step % config.checkpoint_every == 0 or end:  # saves in the background
        ckpt.save(step, state, meta)
      if eval_names and ((config.eval_every and step % config.eval_every == 0) or end):
        started = time.perf_counter()
        results = evaluate(config, family, state, builder, mesh, eval_names)
        meter.exclude(time.perf_counter() - started)
        if log:
          log.write(step, {f"{config.eval.split}_{name}": v for name, v in results.items()})
        if best_ckpt:
          if config.eval.best_metric not in results:
            raise UserError(f"eval.best_metric={config.eval.best_metric!r} is not among the "
                            f"evaluated metrics ({', '.join(results)})")
          best_ckpt.save(step, state, meta, metrics=results)
    if stop.signal:
      if ckpt.latest_step() != step:
        ckpt.save(step, state, meta)
      ckpt.wait()
      print(f"{stop.signal}: saved a checkpoint at step {step} in {ckpt.directory}; run the same "
            f"command again to resume", file=sys.stderr, flush=True)
  finally:
    stop.restore()
    for c in (ckpt, best_ckpt):
      if c:
        c.wait()
        c.close()
    if log:
      log.close()
