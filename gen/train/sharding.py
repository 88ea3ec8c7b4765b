"""Devices: a `member x data` mesh. Batches are sharded along `data`; the member axis of a run
with members (gen.train.members) along `member`, so member shards train with no communication.

Multi-host runs call `jax.distributed.initialize()` first (see gen.tools.runner); each
process then feeds its own slice of every global batch.
"""

import functools
import math

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from gen.errors import UserError

MEMBER_AXIS = "member"
DATA_AXIS = "data"
ALL_AXES = (MEMBER_AXIS, DATA_AXIS)


def make_mesh(member_shards: int = 1) -> jax.sharding.Mesh:
  """`member_shards` x (devices / member_shards)."""
  # Auto axes: inputs and state carry explicit shardings and XLA propagates them through the
  # model, so model code (reshapes that merge the batch with other axes) stays sharding-free.
  return jax.make_mesh((member_shards, jax.device_count() // member_shards), ALL_AXES,
                       axis_types=(jax.sharding.AxisType.Auto,) * 2)


def member_shards(members: int, requested: int = 0) -> int:
  """How many ways the member axis splits: `requested`, or (0) as many as divide both the
  member count and the device count. Multi-process runs keep members whole on every process
  (each process feeds its slice of the data axis), so there it is 1."""
  devices = jax.device_count()
  if requested:
    if members % requested or devices % requested:
      raise UserError(f"member_shards={requested} must divide both the member count ({members}) "
                      f"and the device count ({devices})")
    if requested > 1 and jax.process_count() > 1:
      raise UserError("member_shards > 1 needs a single process; multi-process runs shard "
                      "members over data only (member_shards=1)")
    return requested
  return math.gcd(members, devices) if jax.process_count() == 1 else 1


def data_shards(mesh) -> int:
  return mesh.shape[DATA_AXIS]


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def member_sharding(mesh) -> NamedSharding:
  """A member-stacked state: leading axis over `member`, replicated over `data`."""
  return NamedSharding(mesh, P(MEMBER_AXIS))


def batch_sharding(mesh, batch_axis: int = 0, member_axis: int | None = None) -> NamedSharding:
  """Shards dimension `batch_axis` over `data` (1 for [steps, batch, ...] stacks) and
  `member_axis`, if given, over `member` ([steps, members, batch, ...] with per-member data).
  Without a member axis the batch is the same on every member shard."""
  spec = [None] * (batch_axis + 1)
  spec[batch_axis] = DATA_AXIS
  if member_axis is not None:
    spec[member_axis] = MEMBER_AXIS
  return NamedSharding(mesh, P(*spec))


def eval_sharding(mesh) -> NamedSharding:
  """Evaluation batches over every device (the evaluated state is replicated)."""
  return NamedSharding(mesh, P(ALL_AXES))


def check_batch_size(batch_size: int, name: str = "batch_size", shards: int | None = None) -> int:
  """Returns the per-process batch; the global batch must divide over `shards` (default: all
  devices)."""
  shards = shards or jax.device_count()
  if batch_size < 1 or batch_size % shards:
    what = "device count" if shards == jax.device_count() else "data shards"
    raise UserError(f"{name}={batch_size} must be a positive multiple of the {what} ({shards})")
  return batch_size // jax.process_count()


def to_global(tree, sharding: NamedSharding):
  """Process-local numpy arrays -> global jax.Arrays laid out by `sharding`."""
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree)


def to_host(tree):
  """Global jax.Arrays -> numpy arrays of their whole value, on every process, also when an
  array spans processes (then gathered over them)."""
  def get(x):
    if isinstance(x, jax.Array) and not (x.is_fully_addressable or x.is_fully_replicated):
      from jax.experimental import multihost_utils
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))
  return jax.tree.map(get, tree)


@functools.cache
def _taker(replicated: NamedSharding):
  return jax.jit(lambda state, i: jax.tree.map(lambda x: x[i], state), out_shardings=replicated)


def take_member(state, i: int, replicated: NamedSharding):
  """Member i of a member-stacked state, replicated on every device: pictures, evaluation and
  the tools then hand the family a plain state. Works when the state spans processes."""
  return _taker(replicated)(state, i)
