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
import jax.numpy as jnp
import numpy as np

from gen import checks
from gen import metrics as metrics_lib
from gen import members as members_lib
from gen import processes, run_dir, sharding
from gen.checkpointing import Checkpointer, abstract_like, signature
from gen.data import DatasetInfo, Pipeline, dataset_info, open_config_builder, parse_image_size
from gen.data.pipeline import FOLDER_PREFIX, Augment
from gen.errors import UserError
from gen.families import get as get_family
from gen.images import save_png
from gen.run_log import Meter, RunLog


DOMAIN_SEED_STRIDE = 1 << 31  # domain i's stream uses seed + i * stride: independent orders


def check_config(config) -> None:
  """Checks the settings the trainer itself uses; families and metrics check their own."""
  checks.positive(config, "batch_size", "steps_per_call", "log_every", "sample_every",
                  "checkpoint_every", "keep_checkpoints", "sample_grid", "eval.batch_size")
  checks.non_negative(config, "num_steps", "data.load_size", "data.shuffle_buffer",
                      "member_shards")
  size = parse_image_size(config.data.image_size)
  if config.data.load_size and not (size and size[0] == size[1] and size[0] <= config.data.load_size):
    raise UserError(f"data.load_size={config.data.load_size} (resize, then random crop) needs "
                    f"a square 0 < data.image_size <= load_size, not {config.data.image_size!r}")
  checks.one_of(config, "data.train_crop", ("auto", "center", "random"))
  Augment.from_config(config)  # data.rotation, resized_crop_*, colour jitter
  if config.eval_every < 0:
    raise UserError(f"eval_every={config.eval_every} must be >= 0 (0 = only at the end)")
  checks.one_of(config, "eval.best_mode", ("min", "max"))
  checks.one_of(config, "nan_policy", members_lib.NAN_POLICIES)
  checks.one_of(config, "member_map", ("auto", "vmap", "loop"))
  checks.one_of(config, "compute_dtype", ("float32", "bfloat16"))


def random_train_crop(config) -> bool:
  """data.train_crop: training crops a random window of the resized image (`random`) or its
  centre (`center`); `auto` is random for image folders (any aspect) and centre otherwise."""
  crop = config.data.get("train_crop", "center")
  return crop == "random" or (crop == "auto" and config.data.name.startswith(FOLDER_PREFIX))


def data_info(builder, splits: tuple[str, ...], config, paired: bool = False) -> DatasetInfo:
  """One DatasetInfo for the splits a family reads (their images must agree in shape).

  num_examples is the largest split's whole size, over all processes: a family's epoch is
  the same on any number of hosts (each process reads its own slice; see Pipeline).
  """
  infos = [dataset_info(builder, split, config.data.image_size, paired=paired)
           for split in splits]
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


def _eval_pipelines(config, builder, family, batch_size: int, processes: bool = True) -> list:
  return [Pipeline(builder, split, batch_size=batch_size, repeat=False,
                   image_size=config.data.image_size, value_range=family.value_range,
                   paired=family.streams.paired,
                   cache=False, **(_processes() if processes else {}))
          for split in family.streams.splits(config.eval.split)]


def eval_batches(config, builder, family, mesh):
  """() -> one pass over config.eval.split as global batches with a `mask` (0 for padding).

  The last batch is padded to full size. Families with Domains get {'A': batch, 'B': batch}
  from the domains' splits side by side; the shorter one is padded with fully masked batches.
  Every process yields the same number of batches, and the global batches are those of one
  process (see Pipeline): no example is dropped or counted twice on any number of hosts.
  """
  local_batch = sharding.check_batch_size(config.eval.batch_size)
  batch_sharding = sharding.eval_sharding(mesh)
  pipelines = _eval_pipelines(config, builder, family, local_batch)
  count = max(p.num_batches for p in pipelines)

  def padded(batch):
    n = len(batch["image"])
    pad = lambda x: np.concatenate([x, np.zeros((local_batch - n,) + x.shape[1:], x.dtype)])
    return {**{k: pad(v) for k, v in batch.items()},
            "mask": (np.arange(local_batch) < n).astype(np.float32)}

  def batches():
    iters, empty = [iter(p) for p in pipelines], _empty_batch(pipelines[0].info)
    for _ in range(count):
      parts = [padded(next(it, empty)) for it in iters]
      yield sharding.to_global(family.streams.combine(parts), batch_sharding)

  return batches


def _empty_batch(info: DatasetInfo) -> dict:
  h, w, c = info.image_shape
  out = {"image": np.zeros((0, h, w, c), np.float32)}
  if info.num_classes:
    out["label"] = np.zeros((0,), np.int32)
  return out


def picture_examples(config, builder, family):
  """The first `family.picture_examples` images of the eval split(s): the same ones every time
  and on every process."""
  if not family.picture_examples:
    return None
  pipelines = _eval_pipelines(config, builder, family, family.picture_examples, processes=False)
  return family.streams.combine([next(iter(p))["image"] for p in pipelines])


def evaluate(config, family, state, builder, mesh, names: list[str],
             protocol: dict | None = None) -> dict[str, float]:
  """{output: value}; `protocol`, if given, receives {output: how it was measured}."""
  cache = {}
  results = metrics_lib.compute(names, family, state, eval_batches(config, builder, family, mesh),
                                config, cache)
  if protocol is not None:
    protocol.update(metrics_lib.protocol(cache))
  return results


def compile_steps(family, carry_sharding, members=None, member_order: bool = False,
                  nan_policy: str = "stop", mapping: str = "vmap"):
  """jit(carry, batches[k, ...]) -> (carry, (values, valid, finite)[k]): k train steps in one
  call (family.train_step scanned), the carry donated.

  Without members the carry is the state. With members (gen.members) it is (state, alive):
  the state has a leading member axis and the step is mapped over it (`mapping`, see
  member_map), each member reading its own varied settings; batches are shared
  ([k, B, ...]) or, with member_order, per member ([k, K, B, ...]). Outputs are then [k, K].
  With nan_policy='drop' a member whose step is not finite keeps its previous state from then
  on (`alive` False) and reports nothing.
  """
  # XLA:CPU runs a while-loop body several times slower than the same ops unrolled (measured
  # on 2 cores, 28x28 DCGAN, batch 64: 0.9 vs 7.9 steps/s), so on CPU the scan is unrolled;
  # accelerators keep the loop.
  unroll = True if jax.default_backend() == "cpu" else 1
  step = family.train_step if members is None else _member_step(
      family, members, member_order, nan_policy, mapping)

  def run_steps(carry, batches):
    if jax.tree.leaves(batches)[0].shape[0] == 1:  # a length-1 scan is just as slow on XLA:CPU
      carry, metrics = step(carry, jax.tree.map(lambda x: x[0], batches))
      return carry, jax.tree.map(lambda m: m[None], metrics)
    return jax.lax.scan(step, carry, batches, unroll=unroll)

  outputs = sharding.replicated(jax.tree.leaves(carry_sharding)[0].mesh)
  return jax.jit(run_steps, donate_argnums=0, out_shardings=(carry_sharding, outputs))


def member_map(config) -> str:
  """How the step maps over members: `vmap` (one batched program) or `loop` (the members'
  steps one after another inside the same program). XLA:CPU runs convolutions whose kernels
  carry a member axis (grouped convolutions) ~3x slower than one per member (measured on 2
  cores, DCGAN layers: 123 vs 42 ms for a conv gradient), so `auto` loops on CPU and vmaps on
  GPU/TPU, where a grouped convolution is one fast kernel. Both compute the same numbers."""
  mode = config.get("member_map", "auto")
  if mode == "auto":
    return "loop" if jax.default_backend() == "cpu" else "vmap"
  return mode


def _member_step(family, members, member_order: bool, nan_policy: str, mapping: str = "vmap"):
  settings = members.settings()

  def one(state, batch, values):
    with family.member_settings(values):
      return family.train_step(state, batch)

  if mapping == "vmap":
    every = jax.vmap(one, in_axes=(0, 0 if member_order else None, 0))
  else:
    def every(state, batch, values):
      take = lambda i: lambda x: x[i]
      outs = [one(jax.tree.map(take(i), state), jax.tree.map(take(i), batch) if member_order else batch,
                  jax.tree.map(take(i), values)) for i in range(members.count)]
      return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

  def step(carry, batch):
    state, alive = carry
    new, (values, valid, finite) = every(state, batch, {k: jnp.asarray(v) for k, v in settings.items()})
    if nan_policy == "drop":  # a member that goes non-finite stays as it was; the others go on
      keep = finite & alive
      frozen = jax.tree.map(lambda n, o: jnp.where(keep.reshape((-1,) + (1,) * (n.ndim - 1)), n, o),
                            new, state)
      new, alive = frozen.replace(step=new.step), keep
      valid = {k: v & keep for k, v in valid.items()}
    return (new, alive), (values, valid, finite)

  return step


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


def _check_finite(outputs, step: int, ckpt: Checkpointer, members=None, alive=None) -> list[int]:
  """Stops at the first step whose losses or gradient norms are not finite; saves nothing of it.

  With members: under nan_policy='stop' (alive None) the error names the member; under 'drop'
  it returns the members this call froze (`alive` before the call), [] if none.
  """
  values, valid, finite = outputs
  finite = np.asarray(finite)  # one bool per step (and member): waits for this call's steps
  if members is not None and alive is not None:
    return [int(m) for m in np.flatnonzero(alive & ~finite.all(axis=0))]
  if finite.all():
    return []
  i, m = np.unravel_index(np.argmin(finite), finite.shape) if finite.ndim == 2 else (np.argmin(finite), None)
  at = (lambda v: v[i]) if m is None else (lambda v: v[i, m])
  bad = ", ".join(f"{n}={float(at(np.asarray(v)))}" for n, v in values.items()
                  if at(np.asarray(valid[n])) and not np.isfinite(at(np.asarray(v))))
  ckpt.wait()
  last = ckpt.latest_step()
  who = f" in {members.label(int(m))}" if m is not None else ""
  raise UserError(f"non-finite loss or gradient at step {step + int(i) + 1}{who} ({bad}); "
                  f"stopped without saving it; the last checkpoint is "
                  f"{'step ' + str(last) if last is not None else 'none'} "
                  f"(--config.debug_nans=True finds the operation"
                  f"{'; nan_policy=drop freezes such a member and goes on' if m is not None else ''})")


def _drop_members(outputs, step: int, ckpt: Checkpointer, members, alive, alive_now, log):
  """nan_policy=drop: says which members this call froze (console and metrics.jsonl) and
  returns who is still training; stops when no member is."""
  values, _, finite = outputs  # `valid` is already masked for a frozen member
  for m in _check_finite(outputs, step, ckpt, members, alive):
    i = int(np.argmin(np.asarray(finite)[:, m]))
    bad = ", ".join(f"{n}={float(np.asarray(v)[i, m])}" for n, v in values.items()
                    if not np.isfinite(np.asarray(v)[i, m]))
    print(f"{members.label(m)}: non-finite at step {step + i + 1} ({bad}); nan_policy=drop: it "
          f"stays at step {step + i} and the other members go on", file=sys.stderr, flush=True)
    if log:
      log.write(step + i + 1, {"dropped": f"non-finite: {bad}"}, member=m)
  if not alive_now.any():
    raise UserError(f"every member has gone non-finite by step {step + len(finite)}; stopped "
                    f"without saving (the last checkpoint is {ckpt.latest_step()})")
  return alive_now


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
  builder = open_config_builder(config)
  splits = family_cls.streams.splits(config.data.split)
  paired = family_cls.streams.paired
  info = data_info(builder, splits, config, paired)
  Augment.from_config(config).check_channels(info.image_shape[-1])  # saturation, hue: RGB only
  family = family_cls(config, info)
  members = members_lib.from_config(config, family_cls, info)  # None: a plain run
  count = members.count if members else 1
  mesh = sharding.make_mesh(sharding.member_shards(count, config.member_shards) if members else 1)
  local_batch = sharding.check_batch_size(config.batch_size, shards=sharding.data_shards(mesh))
  eval_names = metrics_lib.parse(config.eval.metrics)
  metrics_lib.check(eval_names, config, family)
  if eval_names or family.picture_examples:
    data_info(builder, family.streams.splits(config.eval.split), config, paired)  # it exists
  examples = picture_examples(config, builder, family)
  per_member_data = bool(members) and config.data.member_order

  # ---------------------------------------------------------------- State: resume or initialise
  replicated = sharding.replicated(mesh)
  state_sharding = sharding.member_sharding(mesh) if members else replicated
  if members:  # one key per member, from its own seed; init vmapped over them
    key = jax.vmap(jax.random.key)(np.asarray(members.seeds, np.uint32))
    init = jax.vmap(family.init_state)
  else:
    key, init = jax.random.key(config.seed), family.init_state
  ckpt = Checkpointer(run_dir.checkpoints_dir(workdir), config.keep_checkpoints)
  best_ckpt = (Checkpointer(os.path.join(workdir, "checkpoints_best"), 1,
                            best_metric=config.eval.best_metric, best_mode=config.eval.best_mode)
               if config.eval.best_metric and eval_names else None)
  shapes = jax.eval_shape(init, key)
  if ckpt.latest_step() is not None:  # other members than the run's: say so, before the shapes do
    try:
      members_lib.check_resume(members, ckpt.latest_readable_meta(), ckpt.directory)
    except UserError as e:
      if "no readable checkpoint" not in str(e):
        raise
  restored = ckpt.restore_latest_usable(abstract_like(shapes, state_sharding), config.family)
  if restored:
    state, meta = restored
    position = int(meta["data_position"])
    alive = np.asarray(meta.get("alive", [True] * count), bool)
    step = int(meta["step"])
    print(f"resumed from step {step} in {ckpt.directory}", file=sys.stderr, flush=True)
  else:
    state = jax.jit(init, out_shardings=state_sharding)(key)
    position, alive, step = 0, np.ones(count, bool), 0
  run_dir.write_config(config, workdir)  # only once any checkpoint there is known to fit
  state_signature = signature(shapes)
  dataset = {"name": info.name, "image_shape": list(info.image_shape),
             "num_classes": info.num_classes, "num_examples": info.num_examples}

  def meta_at(step: int, position: int) -> dict:
    meta = {"family": config.family, "step": step, "data_position": position,
            "dataset": dataset, "signature": state_signature}
    if members:
      meta.update(members=members.describe(), alive=[bool(a) for a in alive])
    return meta

  # ---------------------------------------------------------------- Input streams
  # One stream per split (and per seed with data.member_order), each a pure function of
  # (seed, position); domains draw independently.
  seeds = members.distinct_seeds() if per_member_data else [config.seed]
  streams = {seed: [iter(Pipeline(builder, split, batch_size=local_batch, start=position,
                                  seed=seed + i * DOMAIN_SEED_STRIDE,
                                  image_size=config.data.image_size, paired=paired,
                                  random_crop=random_train_crop(config),
                                  load_size=config.data.load_size, value_range=family.value_range,
                                  random_flip=config.data.random_flip,
                                  augment=Augment.from_config(config),
                                  shuffle_buffer=config.data.shuffle_buffer,
                                  cache=config.data.cache, **_processes()))
                    for i, split in enumerate(splits)]
             for seed in seeds}

  def next_batch():
    by_seed = {seed: family.streams.combine([next(it) for it in its]) for seed, its in streams.items()}
    if not per_member_data:
      return by_seed[config.seed]
    return jax.tree.map(lambda *xs: np.stack(xs), *(by_seed[s] for s in members.seeds))

  batch_sharding = sharding.batch_sharding(mesh, batch_axis=2 if per_member_data else 1,
                                           member_axis=1 if per_member_data else None)

  # ---------------------------------------------------------------- Update step
  nan_policy = config.nan_policy if members else "stop"
  run_steps = compile_steps(family, (state_sharding, state_sharding) if members else state_sharding,
                            members, per_member_data, nan_policy, member_map(config))

  def member_state(i: int):
    return sharding.take_member(state, i, replicated) if members else state

  # ---------------------------------------------------------------- Loop
  # A call runs _chunk() steps; calls end on the steps where something is logged, pictured,
  # saved or evaluated (events), and only there does the host wait for the devices.
  primary = jax.process_index() == 0  # writes the files; every process computes
  log = RunLog(workdir, config.num_steps, members) if primary else None
  if log:
    log.truncate_after(step)
  meter = Meter(count)
  samples_dir = os.path.join(workdir, "samples")

  def prepare(step: int):
    """The next call's batches, stacked and sent to the devices (asynchronously)."""
    k = _chunk(step, config)
    batches = [next_batch() for _ in range(k)]
    return k, sharding.to_global(jax.tree.map(lambda *xs: np.stack(xs), *batches), batch_sharding)

  def settle(call) -> None:
    """Reads a dispatched call's finiteness flags: stops on a non-finite step (nan_policy=drop:
    freezes those members). Nothing of a call is logged or saved before it is settled."""
    nonlocal alive  # calls settle in order: `alive` is as the call found it
    outputs, before, alive_after = call
    if members and nan_policy == "drop":
      alive = _drop_members(outputs, before, ckpt, members, alive, np.asarray(alive_after, bool), log)
    else:
      _check_finite(outputs, before, ckpt, members)

  events = [e for e in (config.log_every, config.sample_every, config.checkpoint_every,
                        config.eval_every) if e]
  carry = (state, jax.device_put(alive, state_sharding)) if members else state
  try:
    stopped = False
    pending = None  # the last dispatched call, while it is not settled
    upcoming = prepare(step) if step < config.num_steps else None
    while step < config.num_steps:
      if processes.any_process(stop.signal is not None):  # every process stops at the same step
        stopped, stop.signal = True, stop.signal or "SIGTERM (to another process)"
        break
      k, stacked = upcoming
      carry, outputs = run_steps(carry, stacked)  # dispatched; runs while the host goes on
      call = (outputs, step, carry[1] if members else None)
      step += k
      position += k * config.batch_size  # global examples: the same on any number of hosts
      meter.add(outputs[0], outputs[1], k)
      end = step == config.num_steps
      # Double buffering: the next call's batches are made and transferred now, while this
      # call runs; then the previous call, finished by now, is settled without a wait.
      upcoming = None if end else prepare(step)
      if pending:
        settle(pending)
      pending = call
      if not end and all(step % e for e in events):
        continue
      settle(pending)  # an event: this call's state is logged, pictured or saved
      pending = None
      state = carry[0] if members else carry
      if step % config.log_every == 0 or end:
        for m, summary in enumerate(meter.summary(config.batch_size)):
          if log and alive[m]:
            log.write(step, summary, member=m if members else None)
      if step % config.sample_every == 0 or end:
        for m in range(count):
          sub = os.path.join(samples_dir, f"member_{m:02d}") if members else samples_dir
          for name, picture in family.pictures(member_state(m), examples).items():
            if primary:
              save_png(os.path.join(sub, f"{name}_{step:07d}.png"), picture)
      if step % config.checkpoint_every == 0 or end:  # saves in the background
        ckpt.save(step, state, meta_at(step, position))
      if eval_names and ((config.eval_every and step % config.eval_every == 0) or end):
        started = time.perf_counter()
        results = {}
        for m in np.flatnonzero(alive):
          protocol = {}
          results[int(m)] = evaluate(config, family, member_state(int(m)), builder, mesh, eval_names,
                                     protocol)
          if log:
            log.write(step, {f"{config.eval.split}_{name}": v for name, v in results[int(m)].items()},
                      member=int(m) if members else None,
                      extra={"protocol": protocol} if protocol else None)
        meter.exclude(time.perf_counter() - started)
        if best_ckpt:  # with members: the step where the members' mean is best
          mean = {name: float(np.mean([r[name] for r in results.values()]))
                  for name in next(iter(results.values()))}
          best_ckpt.save(step, state, meta_at(step, position), metrics=mean)
    if stopped:  # also before the first step: then it saves the initial state
      if pending:
        settle(pending)
      state = carry[0] if members else carry
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


