"""The one training loop every family shares.

`train(config, workdir)` sets a run up (`Training.__init__`: checks, data, family, members,
mesh, state, input streams, the compiled step), then runs `steps_per_call` jitted steps per
call (a `lax.scan` over stacked batches, state donated). Calls end on the steps where
something happens, and each such event is one method: log, pictures, checkpoint, evaluate,
and the save on SIGTERM. The family supplies the model, state and step.
"""

from __future__ import annotations

import signal
import sys
import time

import jax
import numpy as np

from gen import metrics as metrics_lib
from gen.configs import checks
from gen.data import DataSettings, Pipeline, splits_info
from gen.errors import UserError
from gen.families import get as get_family
from gen.images import save_png
from gen.runs.checkpointing import Checkpointer, abstract_like, signature
from gen.runs.run_dir import RunDir
from gen.runs.run_log import Meter, RunLog
from gen.train import evaluation, processes, sharding
from gen.train import members as members_lib
from gen.train import step as step_lib

DOMAIN_SEED_STRIDE = 1 << 31  # domain i's stream uses seed + i * stride: independent orders


def check_config(config) -> None:
  """Checks the settings the loop itself uses; the data, the family, members and metrics check
  their own (gen.data.settings, the family's check_config, gen.train.members, gen.metrics)."""
  checks.positive(config, "batch_size", "steps_per_call", "log_every", "sample_every",
                  "checkpoint_every", "keep_checkpoints", "sample_grid")
  checks.non_negative(config, "num_steps", "member_shards")
  checks.at_least(config, "eval_every", 0, "0 = only at the end")
  checks.one_of(config, "nan_policy", step_lib.NAN_POLICIES)
  checks.one_of(config, "member_map", step_lib.MEMBER_MAPS)
  checks.one_of(config, "compute_dtype", ("float32", "bfloat16"))


def train(config, workdir: str) -> None:
  """Trains `config.family` in `workdir` up to `config.num_steps` steps.

  Resumes from the newest usable checkpoint in `workdir/checkpoints` (bitwise: state, data
  position and metrics.jsonl continue as if never stopped); logs every `log_every` steps,
  saves pictures every `sample_every`, checkpoints every `checkpoint_every` and evaluates
  `eval.metrics` every `eval_every` steps and at the end. SIGTERM or SIGINT saves and returns.

  Args:
    config: a family config (gen/configs/*.py), `config.family` naming a registered family.
    workdir: the run directory (see gen.runs.run_dir); created if missing.

  Raises:
    UserError: for anything the user can fix (config, data, checkpoint, a non-finite loss);
      every config mistake is raised before the first step.
  """
  stop = StopOnSignals()  # from here on, SIGTERM / SIGINT ask the run to save and stop
  try:
    with jax.debug_nans(bool(config.debug_nans)):  # for this run only
      Training(config, RunDir(workdir)).run(stop)
  finally:
    stop.restore()


class StopOnSignals:
  """SIGTERM / SIGINT (preemption, Ctrl-C) set `signal`; the loop then saves and stops."""

  def __init__(self):
    self.signal = None
    self._previous = {}
    try:
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
    except ValueError:  # not the main thread: leave the process's handlers alone
      pass

  def _handle(self, signum, frame):
    del frame
    self.signal = signal.Signals(signum).name

  def restore(self):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def _chunk(step: int, config) -> int:
  """Steps in the next call: steps_per_call, cut short to land on the next event."""
  k = min(config.steps_per_call, config.num_steps - step)
  for every in (config.log_every, config.sample_every, config.checkpoint_every, config.eval_every):
    if every:
      k = min(k, every - step % every)
  return k


class Training:
  """One run of the loop: set up by the constructor, then `run()`.

  The run's progress lives here and nowhere else: `carry` (the state, and with members the
  device's `alive` flags), `step`, `position` (global examples read) and `alive` (members
  still training, as the host knows them once a call is settled).
  """

  def __init__(self, config, run: RunDir):
    # ---------------------------------------------------------------- Checks, data and family
    # Everything a user can get wrong surfaces here, before anything is trained or written.
    check_config(config)
    data = DataSettings.from_config(config)
    family_cls = get_family(config.family)
    run.prepare()
    builder = data.open_builder()
    splits = family_cls.streams.splits(data.split)
    paired = family_cls.streams.paired
    info = splits_info(builder, splits, data.image_size, paired)
    data.augment.check_channels(info.image_shape[-1])  # saturation, hue: RGB only
    family = family_cls(config, info)
    members = members_lib.from_config(config, family_cls, info)  # None: a plain run
    count = members.count if members else 1
    mesh = sharding.make_mesh(sharding.member_shards(count, config.member_shards) if members else 1)
    local_batch = sharding.check_batch_size(config.batch_size, shards=sharding.data_shards(mesh))
    self.eval_names = metrics_lib.parse(config.eval.metrics)
    metrics_lib.check(self.eval_names, config, family)
    if self.eval_names or family.picture_examples:
      splits_info(builder, family.streams.splits(config.eval.split), data.image_size, paired)
    self.examples = evaluation.picture_examples(config, builder, family)
    self.per_member_data = bool(members) and data.member_order
    self.config, self.run_dir, self.family, self.members = config, run, family, members
    # Members that vary how the family samples are evaluated and pictured each by a family of
    # its own config; otherwise one family serves them all.
    self.member_families = (
        [family_cls(members.config_for(config, i), info) for i in range(members.count)]
        if members and set(members.names) & set(family_cls.sampling_settings) else None)
    self.builder, self.mesh, self.count = builder, mesh, count

    # ---------------------------------------------------------------- State: resume or initialise
    self.replicated = sharding.replicated(mesh)
    state_sharding = sharding.member_sharding(mesh) if members else self.replicated
    if members:  # one key per member, from its own seed; init vmapped over them
      key = jax.vmap(jax.random.key)(np.asarray(members.seeds, np.uint32))
      init = jax.vmap(family.init_state)
    else:
      key, init = jax.random.key(config.seed), family.init_state
    self.ckpt = Checkpointer(run.checkpoints, config.keep_checkpoints)
    self.best_ckpt = (Checkpointer(run.best_checkpoints, 1, best_metric=config.eval.best_metric,
                                   best_mode=config.eval.best_mode)
                      if config.eval.best_metric and self.eval_names else None)
    shapes = jax.eval_shape(init, key)
    meta = self.ckpt.latest_readable_meta()
    if meta is not None:  # other members than the run's: say so, before the shapes do
      members_lib.check_resume(members, meta, self.ckpt.directory)
    restored = self.ckpt.restore_latest_usable(abstract_like(shapes, state_sharding), config.family)
    if restored:
      state, meta = restored
      self.position = int(meta["data_position"])
      self.alive = np.asarray(meta.get("alive", [True] * count), bool)
      self.step = int(meta["step"])
      print(f"resumed from step {self.step} in {self.ckpt.directory}", file=sys.stderr, flush=True)
    else:
      state = jax.jit(init, out_shardings=state_sharding)(key)
      self.position, self.alive, self.step = 0, np.ones(count, bool), 0
    run.write_config(config)  # only once any checkpoint there is known to fit
    self.state_signature = signature(shapes)
    self.dataset = {"name": info.name, "image_shape": list(info.image_shape),
                    "num_classes": info.num_classes, "num_examples": info.num_examples}

    # ---------------------------------------------------------------- Input streams
    # One stream per split (and per seed with data.member_order), each a pure function of
    # (seed, position); domains draw independently.
    seeds = members.distinct_seeds() if self.per_member_data else [config.seed]
    where = dict(process_index=jax.process_index(), process_count=jax.process_count())
    self.streams = {
        seed: [iter(Pipeline(builder, split, batch_size=local_batch, start=self.position,
                             seed=seed + i * DOMAIN_SEED_STRIDE, image_size=data.image_size,
                             paired=paired, random_crop=data.random_crop,
                             load_size=data.load_size, value_range=family.value_range,
                             random_flip=data.random_flip, augment=data.augment,
                             shuffle_buffer=data.shuffle_buffer, cache=data.cache, **where))
               for i, split in enumerate(splits)]
        for seed in seeds}
    self.batch_sharding = sharding.batch_sharding(
        mesh, batch_axis=2 if self.per_member_data else 1,
        member_axis=1 if self.per_member_data else None)
    self.upcoming = self._prepare() if self.step < config.num_steps else None

    # ---------------------------------------------------------------- Update step
    self.nan_policy = config.nan_policy if members else "stop"
    self.run_steps = step_lib.compile_steps(
        family, (state_sharding, state_sharding) if members else state_sharding, members,
        self.per_member_data, self.nan_policy, step_lib.member_map(config))
    if self.upcoming:
      first = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), self.upcoming[1])
      step_lib.check_varied_settings_are_read(family, members, shapes, first, self.per_member_data)
    self.carry = (state, jax.device_put(self.alive, state_sharding)) if members else state

    # ---------------------------------------------------------------- Outputs
    self.primary = jax.process_index() == 0  # writes the files; every process computes
    self.log = RunLog(run, config.num_steps, members) if self.primary else None
    if self.log:
      self.log.truncate_after(self.step)
    self.meter = Meter(count)

  @property
  def state(self):
    return self.carry[0] if self.members else self.carry

  def member_state(self, i: int):
    """Member i's state (a plain state for pictures, evaluation and the tools)."""
    return sharding.take_member(self.state, i, self.replicated) if self.members else self.state

  def member_family(self, i: int):
    """The family that draws member i's pictures and samples."""
    return self.member_families[i] if self.member_families else self.family

  # -------------------------------------------------------------------- The loop

  def run(self, stop: StopOnSignals) -> None:
    """Trains to config.num_steps, or until a signal: then saves and returns."""
    config = self.config
    events = [e for e in (config.log_every, config.sample_every, config.checkpoint_every,
                          config.eval_every) if e]
    pending = None  # the last dispatched call, while it is not settled
    try:
      while self.step < config.num_steps:
        if processes.any_process(stop.signal is not None):  # every process stops at one step
          stop.signal = stop.signal or "SIGTERM (to another process)"
          break
        call = self._dispatch()
        # Double buffering: the next call's batches are made and sent while this call runs;
        # then the previous call, finished by now, is settled without a wait.
        end = self.step == config.num_steps
        self.upcoming = None if end else self._prepare()
        if pending:
          self._settle(pending)
        pending = call
        if not end and all(self.step % e for e in events):
          continue
        self._settle(pending)  # an event: this call's state is logged, pictured or saved
        pending = None
        self.log_scalars(end)
        self.save_pictures(end)
        self.save_checkpoint(end)
        self.evaluate(end)
      if pending:
        self._settle(pending)
      if stop.signal is not None:  # also before the first step: then it saves the initial state
        self.save_on_stop(stop.signal)
    finally:
      for c in (self.ckpt, self.best_ckpt):
        if c:
          c.wait()
          c.close()
      if self.log:
        self.log.close()

  def _next_batch(self):
    by_seed = {seed: self.family.streams.combine([next(it) for it in its])
               for seed, its in self.streams.items()}
    if not self.per_member_data:
      return by_seed[self.config.seed]
    return jax.tree.map(lambda *xs: np.stack(xs), *(by_seed[s] for s in self.members.seeds))

  def _prepare(self):
    """The next call's batches, stacked and sent to the devices (asynchronously)."""
    k = _chunk(self.step, self.config)
    batches = [self._next_batch() for _ in range(k)]
    stacked = jax.tree.map(lambda *xs: np.stack(xs), *batches)
    return k, sharding.to_global(stacked, self.batch_sharding)

  def _dispatch(self):
    """Starts the prepared call; returns what settling it needs. The devices run it while
    the host goes on."""
    k, stacked = self.upcoming
    self.carry, outputs = self.run_steps(self.carry, stacked)
    call = (outputs, self.step, self.carry[1] if self.members else None)
    self.step += k
    self.position += k * self.config.batch_size  # global examples: the same on any host count
    self.meter.add(outputs[0], outputs[1], k)
    return call

  def _settle(self, call) -> None:
    """Reads a dispatched call's finiteness flags: stops on a non-finite step, or under
    nan_policy=drop freezes those members. Nothing of a call is logged or saved before it is
    settled, and calls settle in order."""
    outputs, first_step, alive_after = call
    if self.nan_policy == "drop":
      for bad in step_lib.newly_dropped(outputs, first_step, self.alive):
        print(f"{self.members.label(bad.member)}: non-finite at step {bad.step} ({bad.values}); "
              f"nan_policy=drop: it stays at step {bad.step - 1} and the other members go on",
              file=sys.stderr, flush=True)
        if self.log:
          self.log.write(bad.step, {"dropped": f"non-finite: {bad.values}"}, member=bad.member)
      self.alive = np.asarray(alive_after, bool)
      if not self.alive.any():
        raise UserError(f"every member has gone non-finite by step {first_step + len(outputs[2])}; "
                        f"stopped without saving (the last checkpoint is "
                        f"{self.ckpt.latest_step()})")
      return
    bad = step_lib.first_non_finite(outputs, first_step)
    if bad is None:
      return
    self.ckpt.wait()
    last = self.ckpt.latest_step()
    who = f" in {self.members.label(bad.member)}" if bad.member is not None else ""
    raise UserError(f"non-finite loss or gradient at step {bad.step}{who} ({bad.values}); "
                    f"stopped without saving it; the last checkpoint is "
                    f"{'step ' + str(last) if last is not None else 'none'} "
                    f"(--config.debug_nans=True finds the operation"
                    f"{'; nan_policy=drop freezes such a member and goes on' if who else ''})")

  # -------------------------------------------------------------------- Events

  def _due(self, every: int, end: bool) -> bool:
    return end or bool(every and self.step % every == 0)

  def _meta(self) -> dict:
    meta = {"family": self.config.family, "step": self.step, "data_position": self.position,
            "dataset": self.dataset, "signature": self.state_signature}
    if self.members:
      meta.update(members=self.members.describe(), alive=[bool(a) for a in self.alive])
    return meta

  def log_scalars(self, end: bool) -> None:
    if not self._due(self.config.log_every, end):
      return
    for m, summary in enumerate(self.meter.summary(self.config.batch_size)):
      if self.log and self.alive[m]:
        self.log.write(self.step, summary, member=m if self.members else None)

  def save_pictures(self, end: bool) -> None:
    if not self._due(self.config.sample_every, end):
      return
    for m in range(self.count):
      folder = self.run_dir.samples(m if self.members else None)
      for name, picture in self.member_family(m).pictures(self.member_state(m), self.examples).items():
        if self.primary:
          save_png(f"{folder}/{name}_{self.step:07d}.png", picture)

  def save_checkpoint(self, end: bool) -> None:
    if self._due(self.config.checkpoint_every, end):  # saves in the background
      self.ckpt.save(self.step, self.state, self._meta())

  def evaluate(self, end: bool) -> None:
    if not (self.eval_names and self._due(self.config.eval_every, end)):
      return
    config = self.config
    started = time.perf_counter()
    results = {}
    for m in np.flatnonzero(self.alive):
      protocol = {}
      results[int(m)] = evaluation.evaluate(config, self.member_family(int(m)), self.member_state(int(m)),
                                            self.builder, self.mesh, self.eval_names, protocol)
      if self.log:
        self.log.write(self.step, {f"{config.eval.split}_{name}": v
                                   for name, v in results[int(m)].items()},
                       member=int(m) if self.members else None,
                       extra={"protocol": protocol} if protocol else None)
    self.meter.exclude(time.perf_counter() - started)
    if self.best_ckpt:  # with members: the step where the members' mean is best
      mean = {name: float(np.mean([r[name] for r in results.values()]))
              for name in next(iter(results.values()))}
      self.best_ckpt.save(self.step, self.state, self._meta(), metrics=mean)

  def save_on_stop(self, signal_name: str) -> None:
    if self.ckpt.latest_step() != self.step:
      self.ckpt.save(self.step, self.state, self._meta())
    self.ckpt.wait()
    print(f"{signal_name}: saved a checkpoint at step {self.step} in {self.ckpt.directory}; run "
          f"the same command again to resume", file=sys.stderr, flush=True)
