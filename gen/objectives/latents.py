"""Latent-space tools, pure and jittable: the truncation trick and spherical interpolation.

`truncated_normal` draws the latents of `gen sample --truncation` and `gen interpolate`;
`slerp` and `loop_path` make `gen interpolate`'s walks.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


def truncated_normal(key: jax.Array, shape, psi: float | None = None, dtype=jnp.float32) -> jax.Array:
  """z ~ N(0, I) of `shape` with BigGAN's truncation trick (Brock et al. 2019, section 3.1):
  every coordinate whose magnitude exceeds `psi` is resampled, again and again, until it lies
  inside [-psi, psi].

  That loop ends with each coordinate distributed as N(0, 1) conditioned on |z| <= psi,
  independently: the standard normal truncated to [-psi, psi]. This draws it directly, by
  inverting the CDF (`jax.random.truncated_normal`: z = Phi^-1(u), u uniform on
  (Phi(-psi), Phi(psi))), in one pass with a fixed number of draws. Its variance,
  1 - 2 psi phi(psi) / (2 Phi(psi) - 1), shrinks with psi: smaller psi trades variety for
  fidelity.

  `psi` None or 0 means no truncation: exactly `jax.random.normal(key, shape, dtype)`, so
  untruncated latents are the ones sampling always drew. `psi` is a Python number (it picks
  the computation); a negative one is a ValueError.
  """
  if psi is None or psi == 0:
    return jax.random.normal(key, shape, dtype)
  if not psi > 0:  # also NaN
    raise ValueError(f"truncation psi={psi} must be positive (or None/0: no truncation)")
  return jax.random.truncated_normal(key, -psi, psi, shape, dtype)


# Below this angle (radians) between the endpoints slerp is lerp: sin(omega) ~ 0 would divide
# zero by zero, and the two agree to first order there anyway.
PARALLEL = 1e-6


@jax.jit
def slerp(a: jax.Array, b: jax.Array, t) -> jax.Array:
  """Spherical linear interpolation from a (t = 0) to b (t = 1) along the last axis.

    slerp(a, b, t) = sin((1 - t) w) / sin(w) a + sin(t w) / sin(w) b,   w = angle(a, b)

  (Shoemake 1985; for generative models' latents, White 2016, "Sampling Generative Networks").
  For unit vectors the path is the great circle and stays on the unit sphere; for Gaussian
  latents it keeps the norm near the typical sqrt(d), where a straight line would pass through
  the low-norm region the generator never saw. The endpoints come back exactly. The angle is
  2 atan2(|a' - b'|, |a' + b'|) of the unit vectors a', b' (accurate at every angle, unlike
  arccos of the dot product near 0 and pi); for (nearly) parallel or opposite endpoints
  (sin w ~ 0) it is the straight line (1 - t) a + t b, never NaN (nor its gradient).

  a, b: [..., D]; t: broadcastable against a.shape[:-1] (e.g. a, b [1, D] and t [T] -> [T, D]).
  """
  a, b = jnp.asarray(a), jnp.asarray(b)
  t = jnp.asarray(t, a.dtype)[..., None]
  tiny = jnp.finfo(a.dtype).tiny
  # |x|, never 0: no division by 0, and a finite gradient where x = 0 (a = b, a = -b).
  norm = lambda x: jnp.sqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), tiny))
  ua, ub = a / norm(a), b / norm(b)
  omega = 2.0 * jnp.arctan2(norm(ua - ub), norm(ua + ub))
  sin = jnp.sin(omega)
  curved = jnp.abs(sin) > PARALLEL
  safe = jnp.where(curved, sin, 1.0)  # no 0/0 in the branch jnp.where discards
  ca = jnp.where(curved, jnp.sin((1.0 - t) * omega) / safe, 1.0 - t)
  cb = jnp.where(curved, jnp.sin(t * omega) / safe, t)
  # The endpoints exactly, whatever the compiler makes of sin(w) / sin(w).
  return jnp.where(t == 0, a, jnp.where(t == 1, b, ca * a + cb * b))


@functools.partial(jax.jit, static_argnames=("steps", "loop"))
def loop_path(z: jax.Array, steps: int, loop: bool = True) -> jax.Array:
  """Frames of a walk through latents z [K, D]: `steps` slerp frames from each z[i] towards the
  next (t = 0, 1/steps, ...), the first being z[i] itself; with `loop` the last leg returns
  to z[0] (K * steps frames, for a seamless animation), without it the walk ends on z[K-1]
  ((K - 1) * steps + 1 frames). -> [frames, D]."""
  k = z.shape[0]
  if k < 2 or steps < 1:
    raise ValueError(f"a walk needs at least 2 latents and 1 step, got {k} and {steps}")
  ends = jnp.roll(z, -1, axis=0) if loop else z[1:]
  starts = z if loop else z[:-1]
  t = jnp.arange(steps, dtype=z.dtype) / steps  # [steps]
  legs = slerp(starts[:, None], ends[:, None], t[None, :])  # [legs, steps, D]
  frames = legs.reshape((-1, z.shape[-1]))
  return frames if loop else jnp.concatenate([frames, z[-1:]])


def rows_by_class(images: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
  """Balanced samples (labels i % C, as `Sampler.sample` gives them) -> the same images ordered
  class by class: [C * K, ...] for a grid of C rows (one per class) of K columns."""
  n = len(images)
  if n % num_classes or not np.array_equal(labels, np.arange(n) % num_classes):
    raise ValueError(f"expected {num_classes} classes in turn, got labels {labels[:2 * num_classes]}...")
  per_class = n // num_classes
  return images.reshape((per_class, num_classes) + images.shape[1:]).swapaxes(0, 1).reshape(images.shape)
