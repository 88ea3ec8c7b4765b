"""The image history buffer of Shrivastava et al. 2017, as CycleGAN uses it, in the train state.

The discriminator sees a mix of current fakes and fakes from earlier steps. For
each image of a batch, in order: while the pool holds fewer than `size`
images, the image is stored and returned; once full, with probability 1/2 a
uniformly chosen stored image is returned and replaced by the new one, else
the new image is returned. (pytorch-CycleGAN's ImagePool.query, with an
explicit key.)
"""

import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class ImagePool:
  images: jax.Array  # [size, H, W, C]
  count: jax.Array  # how many slots are filled (int32)

  @classmethod
  def create(cls, size: int, image_shape: tuple[int, ...]) -> "ImagePool":
    return cls(images=jnp.zeros((size,) + tuple(image_shape)), count=jnp.zeros((), jnp.int32))

  @property
  def size(self) -> int:
    return self.images.shape[0]

  def query(self, images: jax.Array, key: jax.Array) -> tuple["ImagePool", jax.Array]:
    """-> (updated pool, the images to show the discriminator)."""
    if self.size == 0:
      return self, images
    pool, out = self, []
    for i in range(images.shape[0]):  # sequential, as the reference: later images see earlier ones
      key_swap, key_slot = jax.random.split(jax.random.fold_in(key, i))
      filling = pool.count < self.size
      swap = ~filling & (jax.random.uniform(key_swap) < 0.5)
      slot = jnp.where(filling, pool.count, jax.random.randint(key_slot, (), 0, self.size))
      stored = pool.images[slot]
      out.append(jnp.where(swap, stored, images[i]))
      pool = ImagePool(images=pool.images.at[slot].set(jnp.where(filling | swap, images[i], stored)),
                       count=pool.count + filling.astype(jnp.int32))
    return pool, jnp.stack(out)
