"""What a train state is made of: one network's parts, the per-step key and the EMA."""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class ModelState:
  """One network: parameters, mutable collections (BN statistics, spectral-norm vectors) and
  optimizer state.

  The optimizer itself is not kept: a family builds it from its current settings at every
  step (a member's own, when `config.vary` varies them), so `apply_gradients` must be given it.
  """
  params: Any
  batch_stats: Any
  opt_state: Any

  @classmethod
  def create(cls, variables, tx: optax.GradientTransformation) -> "ModelState":
    params = variables["params"]
    return cls(params=params, batch_stats=variables.get("batch_stats", {}),
               opt_state=tx.init(params))

  @property
  def variables(self) -> dict:
    return {"params": self.params, "batch_stats": self.batch_stats}

  def apply_gradients(self, grads, tx: optax.GradientTransformation, **changes) -> "ModelState":
    updates, opt_state = tx.update(grads, self.opt_state, self.params)
    return self.replace(params=optax.apply_updates(self.params, updates), opt_state=opt_state,
                        **changes)


def step_key(key_data: jax.Array, step: jax.Array) -> jax.Array:
  """Per-step key: fold the step into the base key (same step, same randomness, also after resume)."""
  return jax.random.fold_in(jax.random.wrap_key_data(key_data), step)


def ema_update(ema, params, decay: float, num_updates: jax.Array):
  """EMA with warm-up (decay ramps as (1+t)/(10+t)) so early weights do not dominate short runs."""
  t = jnp.asarray(num_updates, jnp.float32)
  d = jnp.minimum(decay, (1.0 + t) / (10.0 + t))
  return optax.incremental_update(params, ema, 1.0 - d)
