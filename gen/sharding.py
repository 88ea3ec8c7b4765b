"""Data parallelism: one `data` mesh axis over all devices, batches sharded along it.

Multi-host runs call `jax.distributed.initialize()` first (see gen.cli); each
process then feeds its own slice of every global batch.
"""

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from gen.errors import UserError

DATA_AXIS = "data"


def make_mesh() -> jax.sharding.Mesh:
  # Auto axes: inputs and state carry explicit shardings and XLA propagates them through the
  # model, so model code (reshapes that merge the batch with other axes) stays sharding-free.
  return jax.make_mesh((jax.device_count(),), (DATA_AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh, batch_axis: int = 0) -> NamedSharding:
  """Shards dimension `batch_axis` over the `data` axis (1 for [steps, batch, ...] stacks)."""
  return NamedSharding(mesh, P(*([None] * batch_axis), DATA_AXIS))


def check_batch_size(batch_size: int, name: str = "batch_size") -> int:
  """Returns the per-process batch; the global batch must divide over all devices."""
  devices = jax.device_count()
  if batch_size < 1 or batch_size % devices:
    raise UserError(f"{name}={batch_size} must be a positive multiple of the device count ({devices})")
  return batch_size // jax.process_count()


def to_global(tree, sharding: NamedSharding):
  """Process-local numpy arrays -> global jax.Arrays laid out by `sharding`."""
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree)
