"""A family of one's own in one file: a denoising autoencoder, trained by gen's trainer with no edits.

The family (model, state, step, pictures) and its config live here together, so loading this
file as a config registers the family:

  gen train --workdir runs/toy --config=tests/toy_family.py
"""

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gen import images
from gen.configs import checks
from gen.configs.common import trainer_config
from gen.families import Family, register
from gen.train.state import ModelState


class AutoEncoder(nn.Module):
  code: int
  shape: tuple[int, int, int]

  @nn.compact
  def __call__(self, x):
    h = nn.tanh(nn.Dense(self.code)(x.reshape(x.shape[0], -1)))
    return nn.Dense(int(np.prod(self.shape)))(h).reshape((-1,) + self.shape)


@flax.struct.dataclass
class ToyState:
  step: jax.Array
  key: jax.Array
  ae: ModelState


@register("toy_autoencoder")
class ToyAutoencoder(Family):
  value_range = (0.0, 1.0)
  picture_examples = 8
  numeric_settings = ("optim.lr", "model.noise")  # `vary` may set these per member

  @classmethod
  def check_config(cls, config, info) -> None:
    checks.positive(config, "model.code", "optim.lr")
    checks.non_negative(config, "model.noise")

  def __init__(self, config, info):
    super().__init__(config, info)
    self.model = AutoEncoder(config.model.code, info.image_shape)

  def init_state(self, key):
    k_init, k_base = jax.random.split(key)
    variables = self.model.init(k_init, jnp.zeros((1,) + self.info.image_shape))
    return ToyState(step=jnp.zeros((), jnp.int32), key=jax.random.key_data(k_base),
                    ae=ModelState.create(variables, optax.adam(self.setting("optim.lr"))))

  def update(self, state, batch, key):
    x = batch["image"]
    noisy = x + self.setting("model.noise") * jax.random.normal(key, x.shape, x.dtype)

    def loss_fn(params):
      return jnp.mean((self.model.apply({"params": params}, noisy) - x) ** 2)

    loss, grads = jax.value_and_grad(loss_fn)(state.ae.params)
    tx = optax.adam(self.setting("optim.lr"))
    return (state.replace(ae=state.ae.apply_gradients(grads, tx)),
            {"loss": loss, "grad_norm": optax.global_norm(grads)})

  def pictures(self, state, examples):
    out = self.model.apply({"params": state.ae.params}, jnp.asarray(examples))
    rows = np.concatenate([np.asarray(examples), np.asarray(out)])
    return {"reconstructions": images.grid(images.to_uint8(rows, self.value_range), len(examples))}


def get_config(arg=None):
  del arg
  c = trainer_config(family="toy_autoencoder", batch_size=16, num_steps=6, log_every=1,
                     sample_every=2, checkpoint_every=2, eval_every=0)
  c.sample_grid = 4
  c.steps_per_call = 2
  c.model = ml_collections.ConfigDict({"code": 8, "noise": 0.1})
  c.optim = ml_collections.ConfigDict({"lr": 1e-3})
  return c
