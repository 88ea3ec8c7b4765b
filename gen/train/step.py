"""The compiled update: k steps of a family's step per call, mapped over members, and what
happens when a step is not finite (the NaN policy).

A family's `train_step` is written for one model. Here it is scanned over the call's stacked
batches and, in a run with members (gen.train.members), mapped over the member axis with each
member's own settings.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from gen.errors import UserError
from gen.train import sharding

NAN_POLICIES = ("stop", "drop")  # with members: stop the run, or freeze the member and go on
MEMBER_MAPS = ("auto", "vmap", "loop")


def member_map(config) -> str:
  """How the step maps over members: `vmap` (one batched program) or `loop` (the members'
  steps one after another inside the same program). XLA:CPU runs convolutions whose kernels
  carry a member axis (grouped convolutions) ~3x slower than one per member (measured on 2
  cores, DCGAN layers: 123 vs 42 ms for a conv gradient), so `auto` loops on CPU and vmaps on
  GPU/TPU, where a grouped convolution is one fast kernel. Both compute the same numbers."""
  if config.member_map == "auto":
    return "loop" if jax.default_backend() == "cpu" else "vmap"
  return config.member_map


def compile_steps(family, carry_sharding, members=None, member_order: bool = False,
                  nan_policy: str = "stop", mapping: str = "vmap"):
  """jit(carry, batches[k, ...]) -> (carry, (values, valid, finite)[k]): k train steps in one
  call (family.train_step scanned), the carry donated.

  Without members the carry is the state. With members it is (state, alive): the state has a
  leading member axis and the step is mapped over it (`mapping`, see member_map), each member
  reading its own varied settings; batches are shared ([k, B, ...]) or, with member_order,
  per member ([k, K, B, ...]). Outputs are then [k, K]. With nan_policy='drop' a member whose
  step is not finite keeps its previous state from then on (`alive` False) and reports nothing.
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


def _one_member(family):
  def one(state, batch, values):
    with family.member_settings(values):
      return family.train_step(state, batch)
  return one


def _member_step(family, members, member_order: bool, nan_policy: str, mapping: str):
  settings = members.settings()
  one = _one_member(family)

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


def check_varied_settings_are_read(family, members, state, batch, member_order: bool) -> None:
  """A setting that `vary` gives each member its own value of must be read by the step (through
  `Family.setting`): otherwise every member would train alike. Traces one member's step."""
  if not members or not members.names:
    return
  drop_member_axis = lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype)
  state = jax.tree.map(drop_member_axis, state)
  if member_order:
    batch = jax.tree.map(drop_member_axis, batch)
  values = {name: jax.ShapeDtypeStruct((), jnp.float32) for name in members.names}
  with family.recording_reads() as read:
    jax.eval_shape(_one_member(family), state, batch, values)
  unread = [name for name in members.names
            if name not in read and name not in family.sampling_settings]
  if unread:
    raise UserError(f"vary: the {family.config.family} step does not read "
                    f"{', '.join(unread)} in this configuration, so its members would train "
                    f"alike: leave {'it' if len(unread) == 1 else 'them'} out of vary (or turn on "
                    f"what {'it weighs' if len(unread) == 1 else 'they weigh'})")


# -- the NaN policy ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NonFinite:
  """The first step of a call (in a member) where a reported value is not finite."""
  step: int
  member: int | None
  values: str  # 'd_loss=nan, g_loss=inf'


def _describe(values: dict, valid: dict | None, at) -> str:
  return ", ".join(f"{n}={float(at(np.asarray(v)))}" for n, v in values.items()
                   if (valid is None or at(np.asarray(valid[n])))
                   and not np.isfinite(at(np.asarray(v))))


def first_non_finite(outputs, first_step: int) -> NonFinite | None:
  """Where a call's steps (and members) first report a non-finite value; None if nowhere.
  Values a step marks as not valid (gen.families.Sometimes) do not count."""
  values, valid, finite = outputs
  finite = np.asarray(finite)  # one bool per step (and member): waits for this call's steps
  if finite.all():
    return None
  if finite.ndim == 2:
    i, m = np.unravel_index(np.argmin(finite), finite.shape)
    at, member = (lambda v: v[i, m]), int(m)
  else:
    i = np.argmin(finite)
    at, member = (lambda v: v[i]), None
  return NonFinite(first_step + int(i) + 1, member, _describe(values, valid, at))


def newly_dropped(outputs, first_step: int, alive: np.ndarray) -> list[NonFinite]:
  """nan_policy=drop: the members alive before the call that a step of it froze."""
  values, _, finite = outputs  # `valid` is already masked for a frozen member
  finite = np.asarray(finite)
  out = []
  for m in np.flatnonzero(alive & ~finite.all(axis=0)):
    i = int(np.argmin(finite[:, m]))
    at = lambda v, i=i, m=m: v[i, m]
    out.append(NonFinite(first_step + i + 1, int(m), _describe(values, None, at)))
  return out
