"""The family contract, as code: what a model family gives the shared trainer.

A family is a class built from (config, DatasetInfo). It subclasses `Family` and implements
its three abstract methods; everything else (the jitted scan, devices, processes, members,
checkpoints, logging, evaluation, preemption) is the trainer's. Optional capabilities are
mixins that tools and metrics test for by type (`isinstance(family, Sampler)`):

  Sampler          sample(state, key, num): gen sample, fid/kid/is/pr metrics
  LatentSampler    a Sampler whose images are generate(state, z, labels) of latents
                   z ~ N(0, I): gen sample --truncation and --grid, gen interpolate
  Translator       translate_batch(state, x, direction): gen translate, mae
  LikelihoodModel  log_importance_weights(...): the nll metric

`gen.families.register(name)` checks a class against the contract when it is registered; one
that lacks a required member fails there with one line. docs/adding_a_family.md walks
through tests/toy_family.py, a complete family in one file.
"""

from __future__ import annotations

import abc
import contextlib
import functools
from typing import Any, ClassVar

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from gen import images
from gen.configs import checks
from gen.errors import UserError
from gen.families.streams import Domains, OneStream, Paired
from gen.objectives import latents
from gen.train.members import varied_names
from gen.train.state import step_key

# -- what the step reports ------------------------------------------------------


@flax.struct.dataclass
class Sometimes:
  """A metric defined on some steps only (G's loss with n_critic > 1): `valid` says which.

  Logged means skip the steps where it is not valid; it is checked for finiteness only where
  it is. Its `value` elsewhere is a placeholder and never read.
  """
  value: jax.Array
  valid: jax.Array


def split_metrics(metrics: dict) -> tuple[dict, dict]:
  """{name: scalar | Sometimes} -> ({name: value}, {name: valid})."""
  values, valid = {}, {}
  for name, m in metrics.items():
    if isinstance(m, Sometimes):
      values[name], valid[name] = m.value, jnp.asarray(m.valid, bool)
    else:
      values[name], valid[name] = m, jnp.ones((), bool)
  return values, valid


def all_finite(values: dict, valid: dict) -> jax.Array:
  ok = [jnp.all(jnp.isfinite(v) | ~valid[k]) for k, v in values.items()]
  return jnp.all(jnp.stack(ok)) if ok else jnp.array(True)


# -- the required interface ------------------------------------------------------


class Family(abc.ABC):
  """A model family. Subclasses set `value_range` and implement the abstract methods.

  Attributes a subclass sets:
    value_range       pixel range its models use, e.g. (-1, 1) or (0, 1)
    picture_examples  eval-split images `pictures` wants (0: none)
    streams           OneStream(), Domains(('A', 'B')) or Paired(): which splits the step reads
    numeric_settings  config names that enter the step as numbers (learning rates, loss
                      weights, decays): `config.vary` may give each member its own value of
                      these, so `update` reads them with `self.setting(name)`, never from
                      `self.config` directly (a varied setting the step never reads through
                      `setting` is an error before step 0). Anything else is structural.
    sampling_settings config names read only where the family draws samples (a diffusion
                      model's guidance weight): `vary` may set these per member too; the
                      trainer evaluates and pictures each member with a family built from
                      that member's config (`Members.config_for`), and the step need not
                      read them.
  """
  value_range: ClassVar[tuple[float, float]]
  picture_examples: ClassVar[int] = 0
  streams: ClassVar[OneStream | Domains | Paired] = OneStream()
  numeric_settings: ClassVar[tuple[str, ...]] = ()
  sampling_settings: ClassVar[tuple[str, ...]] = ()

  def __init__(self, config, info):
    self.check_config(config, info)
    self.config, self.info = config, info
    self.varied = frozenset(varied_names(config))  # settings members set themselves
    self._member_values = {}
    self._reads = None

  def apply(self, module, variables: dict, *args, **kwargs):
    """`module.apply` in the config's `compute_dtype`: for bfloat16 the parameters and the
    floating inputs are cast for the computation only (the state keeps float32 parameters,
    so gradients, optimizer state, EMA and BatchNorm statistics stay float32) and the floating
    outputs come back as float32, so every loss is computed in float32."""
    dtype = jnp.dtype(self.config.compute_dtype)
    if dtype == jnp.float32:
      return module.apply(variables, *args, **kwargs)
    cast = lambda t, to: jax.tree.map(
        lambda x: x.astype(to) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else x, t)
    variables = {**variables, "params": cast(variables["params"], dtype)}
    out = module.apply(variables, *cast(args, dtype), **kwargs)
    return cast(out, jnp.float32)

  def setting(self, name: str):
    """The config's value of `name` ('optim.g_lr'), or, inside a member's step, that member's
    (a traced scalar) when `config.vary` varies it. A term that a setting switches on or off
    is switched with `active(name)`."""
    if self._reads is not None:
      self._reads.add(name)
    if name in self._member_values:
      return self._member_values[name]
    return checks.value(self.config, name)

  def active(self, name: str) -> bool:
    """Whether the setting `name` can be non-zero in this run: it is in the config, or members
    vary it (0 in one member, > 0 in another). A term weighted or switched by it is computed
    when this holds, and weighted by `setting(name)`."""
    return bool(checks.value(self.config, name)) or name in self.varied

  @contextlib.contextmanager
  def member_settings(self, values: dict):
    """While tracing one member's step: `setting(name)` returns values[name]."""
    previous, self._member_values = self._member_values, dict(values)
    try:
      yield
    finally:
      self._member_values = previous

  @contextlib.contextmanager
  def recording_reads(self):
    """Yields the set of setting names `setting` is asked for while the context is open."""
    previous, self._reads = self._reads, set()
    try:
      yield self._reads
    finally:
      self._reads = previous

  @classmethod  # noqa: B027  an optional hook: nothing to check unless a family says so
  def check_config(cls, config, info) -> None:
    """Raises UserError for a bad setting of this family's; called before anything runs."""

  @abc.abstractmethod
  def init_state(self, key: jax.Array) -> Any:
    """A flax.struct dataclass with `step` (int32 scalar, 0) and `key` (the run's base key as
    raw uint32 data, `jax.random.key_data`) fields, and whatever the family trains. A field
    that is None is an optional part the configuration does not use: it is left out of the
    checkpoint, so adding optional parts keeps earlier checkpoints restoring."""

  @abc.abstractmethod
  def update(self, state, batch, key: jax.Array) -> tuple[Any, dict]:
    """One training step, pure: (state, batch, this step's key) -> (state, metrics).

    Leave `state.step` alone (the trainer advances it) and draw randomness only from `key`.
    `metrics` maps names to scalars (or `Sometimes`); report every loss and gradient norm:
    the trainer stops the run at the first step where any of them is not finite.
    """

  @abc.abstractmethod
  def pictures(self, state, examples) -> dict[str, np.ndarray]:
    """{name: uint8 [H, W, C] grid}: what the model has learned, saved as PNG. `examples` are
    the first `picture_examples` eval-split images (per domain), or None."""

  def train_step(self, state, batch) -> tuple[Any, tuple[dict, dict, jax.Array]]:
    """What every step repeats, in one place: the step key, the step count, finiteness.

    -> (state, (values, valid, finite)); the trainer jits and scans this.
    """
    new, metrics = self.update(state, batch, step_key(state.key, state.step))
    values, valid = split_metrics(metrics)
    return new.replace(step=state.step + 1), (values, valid, all_finite(values, valid))


# -- optional capabilities -------------------------------------------------------


class Sampler(abc.ABC):
  """Draws new images: `gen sample` and the sample-quality metrics use it."""
  num_classes: int = 0  # > 0: class-conditional; `sample` returns balanced `labels`

  @abc.abstractmethod
  def sample(self, state, key: jax.Array, num: int) -> dict:
    """{'images': uint8 [num, H, W, C]} (and int32 'labels' [num] when conditional)."""


class LatentSampler(Sampler):
  """A Sampler that maps latents z ~ N(0, I) [N, latent_dim] (and, when conditional, int32
  labels [N]) to images. Sampling has one path: `sample` draws latents (`draw_latents`) and
  renders them with `generate_images`, which runs the compiled `generate` in batches; the
  truncation trick (gen sample --truncation) and latent walks (gen interpolate) use the same.

  A subclass sets `latent_dim` and implements `generate`.
  """
  latent_dim: int
  latent_batch: ClassVar[int] = 256  # latents per compiled `generate` call

  @abc.abstractmethod
  def generate(self, state, z: jax.Array, labels) -> jax.Array:
    """Images in `value_range` [B, H, W, C] for z [B, latent_dim] and labels (int32 [B], or
    None for an unconditional model); traceable."""

  @functools.cached_property
  def _compiled_generate(self):
    return jax.jit(self.generate)

  def draw_latents(self, key: jax.Array, num: int, truncation: float | None = None) -> jax.Array:
    """z [num, latent_dim] ~ N(0, I), with BigGAN's truncation at `truncation` unless None
    (gen.objectives.latents.truncated_normal)."""
    return latents.truncated_normal(key, (num, self.latent_dim), truncation)

  def balanced_labels(self, num: int) -> np.ndarray | None:
    """0, 1, ..., C-1, 0, 1, ... (int32 [num]) for a conditional model; None otherwise."""
    return np.arange(num, dtype=np.int32) % self.num_classes if self.num_classes else None

  def generate_images(self, state, z: jax.Array, labels=None, batch: int | None = None) -> np.ndarray:
    """uint8 [N, H, W, C] for latents z [N, latent_dim] (and labels [N] when conditional), in
    calls of `batch` (default latent_batch) latents."""
    if (labels is None) != (not self.num_classes):
      raise UserError("this model is class-conditional: give a label per latent" if self.num_classes
                      else "this model is unconditional: it takes no labels")
    batch = batch or self.latent_batch
    out = []
    for i in range(0, len(z), batch):
      part = None if labels is None else jnp.asarray(labels[i:i + batch], jnp.int32)
      out.append(images.to_uint8(self._compiled_generate(state, z[i:i + batch], part),
                                 self.value_range))
    return np.concatenate(out) if out else np.zeros((0,) + self.info.image_shape, np.uint8)

  def sample(self, state, key: jax.Array, num: int, batch: int | None = None,
             truncation: float | None = None) -> dict:
    """{'images': uint8 [num, H, W, C]} from z = draw_latents(key, num, truncation), and for a
    conditional model balanced 'labels' (int32 [num], i % num_classes)."""
    labels = self.balanced_labels(num)
    out = {"images": self.generate_images(state, self.draw_latents(key, num, truncation), labels, batch)}
    if labels is not None:
      out["labels"] = labels
    return out


class Translator(abc.ABC):
  """Maps images of one domain to another: `gen translate` and the `mae` metric use it."""
  directions: ClassVar[tuple[str, ...]] = ("AtoB", "BtoA")

  @abc.abstractmethod
  def translate_batch(self, state, x: jax.Array, direction: str) -> jax.Array:
    """Images in `value_range` of the source domain -> the target domain, traceable."""

  @functools.cached_property
  def jit_translate_batch(self):
    """translate_batch, compiled once per family (pictures and gen translate reuse it)."""
    return jax.jit(self.translate_batch, static_argnums=2)

  @property
  def domain_shape(self) -> tuple[int, int, int]:
    """(H, W, C) of one domain's images (pix2pix's data holds both domains' channels)."""
    return self.info.image_shape

  def translate(self, state, images_u8: np.ndarray, direction: str, batch: int = 64) -> np.ndarray:
    """uint8 [N, H, W, C] -> uint8 [N, H, W, C] in the other domain."""
    if direction not in self.directions:
      raise UserError(f"direction {direction!r} is not one of {', '.join(self.directions)} "
                      f"for this model")
    want = self.domain_shape
    if images_u8.ndim != 4 or images_u8.shape[1:] != want:
      got = "x".join(map(str, images_u8.shape[1:])) if images_u8.ndim == 4 else str(images_u8.shape)
      raise UserError(f"input images are {got}; this model translates "
                      f"{'x'.join(map(str, want))} (HxWxC) images")
    lo, hi = self.value_range
    out = []
    for i in range(0, len(images_u8), batch):
      x = jnp.asarray(images_u8[i:i + batch], jnp.float32) * ((hi - lo) / 255.0) + lo
      out.append(images.to_uint8(self.jit_translate_batch(state, x, direction), self.value_range))
    return np.concatenate(out) if out else np.zeros((0,) + want, np.uint8)


class LikelihoodModel(abc.ABC):
  """Bounds log p(x) by importance sampling: the `nll` metric uses it."""
  num_dims: int  # dimensions of one example, for bits/dim

  @abc.abstractmethod
  def model_inputs(self, x: jax.Array, key: jax.Array) -> jax.Array:
    """Data in `value_range` -> what the likelihood models (binarised, dequantised, as is)."""

  @abc.abstractmethod
  def log_importance_weights(self, state, x: jax.Array, key: jax.Array, k: int) -> jax.Array:
    """log p(x, z_i) / q(z_i | x) for k samples z_i ~ q(z | x): [k, B]."""


# -- registration -----------------------------------------------------------------


def check_family_class(name: str, cls) -> None:
  """One line naming what a class lacks to be a family."""
  if not (isinstance(cls, type) and issubclass(cls, Family)):
    raise UserError(f"family {name!r}: {cls!r} is not a subclass of gen.families.Family")
  missing = sorted(getattr(cls, "__abstractmethods__", ()))
  if not hasattr(cls, "value_range"):
    missing.append("value_range")
  if missing:
    raise UserError(f"family {name!r} ({cls.__qualname__}) lacks {', '.join(missing)}: "
                    f"see gen/families/base.py")
