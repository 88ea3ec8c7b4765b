"""An offline feature network for digits: a small CNN classifier trained on mnist5k.

It stands in for Inception where no weights can be downloaded: the same FID, KID, IS and
precision/recall computed on its 128-d penultimate features ("FID-digits"), and, for
class-conditional samples, its accuracy on the requested labels.

The network is part of the metric's protocol, so gen ships it: `digits_v1.msgpack` beside
this file holds `train()`'s result with its defaults (12 epochs of mnist5k's train split,
seed 0, XLA's default optimisations; about 2 minutes on 2 CPU cores), with its test accuracy,
which must be >= 97%. Every machine then scores digits with the same weights.
"""

from __future__ import annotations

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gen.errors import UserError

MIN_ACCURACY = 0.97
SHAPE = (28, 28, 1)
VERSION = 1  # bump when the network or its training changes: results name it ("digits-v1")
WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"digits_v{VERSION}.msgpack")
WEIGHTS_SHA256 = "e7fcb43229bada1f486ae35d47634307a26f65c0bdb4b4ec37da83be00d0965d"


def cache_dir() -> str:
  """Where computed reference features are cached ($GEN_CACHE_DIR, else ~/.cache/gen)."""
  return os.environ.get("GEN_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "gen")


class DigitNet(nn.Module):
  @nn.compact
  def __call__(self, x, train: bool = False, dropout_key=None):
    for features in (32, 64):
      x = nn.relu(nn.Conv(features, (5, 5))(x))
      x = nn.max_pool(x, (2, 2), (2, 2))
    x = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
    features = x
    if train:
      x = nn.Dropout(0.5, deterministic=False)(x, rng=dropout_key)
    return features, nn.Dense(10)(x)


def _split(name: str):
  from gen.data import Pipeline, open_builder
  batches = Pipeline(open_builder("mnist5k"), name, batch_size=1000, repeat=False,
                     value_range=(0.0, 1.0))
  parts = list(batches)
  return (np.concatenate([b["image"] for b in parts]), np.concatenate([b["label"] for b in parts]))


def train(seed: int = 0, epochs: int = 12, batch: int = 64) -> tuple[dict, float]:
  """(params, test accuracy) of DigitNet trained on mnist5k train."""
  x, y = _split("train")
  xt, yt = _split("test")
  net = DigitNet()
  key = jax.random.key(seed)
  params = net.init(key, x[:1])["params"]
  tx = optax.adam(1e-3)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt, xb, yb, key):
    def loss_fn(p):
      _, logits = net.apply({"params": p}, xb, train=True, dropout_key=key)
      return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
    grads = jax.grad(loss_fn)(params)
    updates, opt = tx.update(grads, opt)
    return optax.apply_updates(params, updates), opt

  rng = np.random.default_rng(seed)
  for epoch in range(epochs):
    order = rng.permutation(len(x))
    for i in range(0, len(x) - batch + 1, batch):
      idx = order[i:i + batch]
      params, opt = step(params, opt, x[idx], y[idx], jax.random.fold_in(key, epoch * 10_000 + i))
  logits = jax.jit(lambda p, xb: net.apply({"params": p}, xb)[1])(params, xt)
  return params, float(np.mean(np.argmax(logits, axis=1) == yt))


def load(path: str = WEIGHTS) -> tuple[dict, float]:
  """(params, test accuracy) of the shipped network."""
  from flax import serialization
  try:
    with open(path, "rb") as f:
      stored = serialization.msgpack_restore(f.read())
  except (OSError, ValueError) as e:
    raise UserError(f"cannot read the digit network's weights {path}: {e} (reinstall gen)") from None
  return stored["params"], float(stored["accuracy"])


def save(params: dict, accuracy: float, path: str = WEIGHTS) -> None:
  """Writes `train()`'s result where `load` reads it."""
  from flax import serialization
  if accuracy < MIN_ACCURACY:
    raise UserError(f"the digit classifier reached {accuracy:.2%} test accuracy, below "
                    f"{MIN_ACCURACY:.0%}")
  with open(path, "wb") as f:
    f.write(serialization.msgpack_serialize({"params": params, "accuracy": np.float64(accuracy)}))


class DigitFeatures:
  """uint8 28x28x1 images -> (128-d features, 10 logits)."""
  name = f"digits-v{VERSION}"

  @staticmethod
  def check_shape(metric: str, shape, config) -> None:
    """One line, before training, when a digit metric is asked of images it cannot score."""
    if tuple(shape) != SHAPE:
      raise UserError(f"metric {metric!r} scores 28x28x1 digit images; {config.data.name} gives "
                      f"{'x'.join(map(str, shape))}: set --config.eval.metrics to others (fid, "
                      f"kid, pr, dc with the FID Inception weights; or '' for none)")

  def __init__(self):
    self.params, self.accuracy = load()
    self._apply = jax.jit(lambda p, x: DigitNet().apply({"params": p}, x.astype(jnp.float32) / 255.0))

  def __call__(self, images_u8: np.ndarray, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    if images_u8.shape[1:] != SHAPE:
      raise UserError(f"the digit metrics need 28x28x1 images, not "
                      f"{'x'.join(map(str, images_u8.shape[1:]))}")
    out = [jax.device_get(self._apply(self.params, jnp.asarray(images_u8[i:i + batch])))
           for i in range(0, len(images_u8), batch)]
    return np.concatenate([f for f, _ in out]), np.concatenate([l for _, l in out])
