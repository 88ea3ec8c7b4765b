import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gen.errors import UserError
from gen.models.dcgan import Discriminator, Generator, layout
from gen.models.layers import UpConv, conv_transpose_s2


def _count(params) -> int:
  return sum(x.size for x in jax.tree.leaves(params))


# <= 4 output channels take the tap (matmul) form, wider layers the phase (conv) form.
@pytest.mark.parametrize("shape,features", [((2, 7, 7, 16), 8), ((3, 5, 6, 4), 3), ((1, 1, 1, 2), 5),
                                            ((2, 4, 3, 6), 1), ((1, 1, 1, 3), 65)])
def test_upconv_equals_flax_conv_transpose(shape, features):
  x = jax.random.normal(jax.random.key(0), shape)
  reference = nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)),
                               use_bias=False)
  params = jax.jit(reference.init)(jax.random.key(1), x)
  ours = UpConv(features)
  assert jax.tree.map(jnp.shape, jax.eval_shape(ours.init, jax.random.key(1), x)) == \
      jax.tree.map(jnp.shape, params)
  y_ref = jax.jit(reference.apply)(params, x)
  y = jax.jit(ours.apply)(params, x)
  assert y.shape == (shape[0], 2 * shape[1], 2 * shape[2], features)
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
  # Same gradients with respect to the kernel and the input.
  loss = lambda m: lambda p, x: jnp.sum(jnp.sin(m.apply(p, x)))
  g_ref = jax.jit(jax.grad(loss(reference), argnums=(0, 1)))(params, x)
  g = jax.jit(jax.grad(loss(ours), argnums=(0, 1)))(params, x)
  chex.assert_trees_all_close(g, g_ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("k,padding", [(4, ((2, 2), (2, 2))), (3, ((1, 2), (1, 2)))])
@pytest.mark.parametrize("features", [1, 3, 8])
def test_every_upsampling_formulation_is_the_same_function(k, padding, features):
  """The backends pick different formulations (layers.UPSAMPLE_BY_BACKEND): all must agree
  with flax's ConvTranspose, values and gradients."""
  x = jax.random.normal(jax.random.key(0), (2, 5, 6, 8))
  reference = nn.ConvTranspose(features, (k, k), strides=(2, 2), padding=padding, use_bias=False)
  params = jax.jit(reference.init)(jax.random.key(1), x)
  kernel = params["params"]["kernel"]
  y_ref = jax.jit(reference.apply)(params, x)
  for formulation in ("gather", "native"):
    y = jax.jit(conv_transpose_s2, static_argnums=2)(x, kernel, formulation)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    g = jax.jit(jax.grad(lambda w, x: jnp.sum(jnp.sin(conv_transpose_s2(x, w, formulation))),
                         argnums=(0, 1)))(kernel, x)
    g_ref = jax.jit(jax.grad(
        lambda w, x: jnp.sum(jnp.sin(reference.apply({"params": {"kernel": w}}, x))),
        argnums=(0, 1)))(kernel, x)
    for a, b in zip(g, g_ref):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_upconv_matches_torch_conv_transpose_formula():
  # ConvTranspose2d(k=4, s=2, p=1) by its definition: y[2i+a] gathers x[i'] * w[k] with 2i' - 1 + k = o.
  x = np.random.default_rng(0).normal(size=(1, 3, 3, 1)).astype(np.float32)
  w = np.random.default_rng(1).normal(size=(4, 4, 1, 1)).astype(np.float32)
  expected = np.zeros((6, 6), np.float32)
  for i in range(3):
    for j in range(3):
      for ki in range(4):
        for kj in range(4):
          o, p = 2 * i - 1 + ki, 2 * j - 1 + kj
          if 0 <= o < 6 and 0 <= p < 6:
            expected[o, p] += x[0, i, j, 0] * w[3 - ki, 3 - kj, 0, 0]  # lax kernels are flipped
  y = UpConv(1).apply({"params": {"kernel": jnp.asarray(w)}}, jnp.asarray(x))
  np.testing.assert_allclose(y[0, :, :, 0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 3)])
def test_dcgan_shapes_and_range(size, channels):
  g = Generator(size, channels, z_dim=100, ngf=16)
  d = Discriminator(size, channels, ndf=16)
  z = jax.random.normal(jax.random.key(0), (4, 100))
  g_vars = jax.jit(g.init)(jax.random.key(1), z)
  x, _ = jax.jit(lambda v, z: g.apply(v, z, mutable=["batch_stats"]))(g_vars, z)
  assert x.shape == (4, size, size, channels)
  assert float(jnp.max(jnp.abs(x))) <= 1.0
  d_vars = jax.jit(d.init)(jax.random.key(2), x)
  logits, _ = jax.jit(lambda v, x: d.apply(v, x, mutable=["batch_stats"]))(d_vars, x)
  assert logits.shape == (4,)


def test_dcgan_parameter_counts_match_pytorch_examples():
  # pytorch/examples/dcgan at 64x64x3, nz=100, ngf=ndf=64: 3,576,704 and 2,765,568 parameters.
  init = lambda model, x: jax.eval_shape(model.init, jax.random.key(0), x)  # shapes only
  g = init(Generator(64, 3), jnp.zeros((2, 100)))
  d = init(Discriminator(64, 3), jnp.zeros((2, 64, 64, 3)))
  assert _count(g["params"]) == 3_576_704
  assert _count(d["params"]) == 2_765_568
  # 28x28x1: 100*7*7*128 + 2*128 + 16*128*64 + 2*64 + 16*64*1, and its mirror.
  g28 = init(Generator(28, 1), jnp.zeros((2, 100)))
  d28 = init(Discriminator(28, 1), jnp.zeros((2, 28, 28, 1)))
  assert _count(g28["params"]) == 627_200 + 256 + 131_072 + 128 + 1_024
  assert _count(d28["params"]) == 1_024 + 131_072 + 256 + 6_272


def test_layout_and_unsupported_sizes():
  assert layout(28) == (7, 2)
  assert layout(32) == (4, 3)
  assert layout(64) == (4, 4)
  assert layout(128) == (4, 5)
  for bad in (0, 16, 30, 48, 56, 100):
    with pytest.raises(UserError, match="do not support image size"):
      layout(bad)


def test_conditional_and_spectral_norm_discriminator():
  d = Discriminator(32, 3, ndf=8, num_classes=10, norm="none", spectral_norm=True)
  x = jax.random.normal(jax.random.key(0), (4, 32, 32, 3))
  labels = jnp.array([0, 1, 2, 3])
  variables = jax.jit(d.init)(jax.random.key(1), x, labels)
  assert "batch_stats" in variables  # spectral-norm power-iteration vectors
  apply = jax.jit(lambda v, y, update: d.apply(v, x, y, update_stats=update, mutable=["batch_stats"]),
                  static_argnums=2)
  # The projection term makes the logits depend on the label.
  a, _ = apply(variables, labels, False)
  b, _ = apply(variables, labels + 1, False)
  assert not np.allclose(a, b)
  # update_stats advances the power iteration; without it the vectors stay put.
  _, same = apply(variables, labels, False)
  _, moved = apply(variables, labels, True)
  leaves = lambda t: jax.tree.leaves(t["batch_stats"])
  assert all(np.array_equal(u, v) for u, v in zip(leaves(same), leaves(variables)))
  assert any(not np.array_equal(u, v) for u, v in zip(leaves(moved), leaves(variables)))


def test_conditional_generator_uses_labels():
  g = Generator(28, 1, z_dim=8, ngf=8, num_classes=10)
  z = jnp.ones((2, 8))
  variables = jax.jit(g.init)(jax.random.key(0), z, jnp.array([0, 0]))
  x = jax.jit(lambda v, y: g.apply(v, z, y, train=False))(variables, jnp.array([0, 7]))
  assert not np.allclose(x[0], x[1])


def test_upconv_3x3_equals_flax_conv_transpose():
  """CycleGAN's up-sampling: ConvTranspose(k=3, s=2, padding 1, output_padding 1) = 2x size."""
  from gen.models.layers import conv_transpose_3x3_s2
  x = jax.random.normal(jax.random.key(0), (2, 7, 5, 6))
  kernel = jax.random.normal(jax.random.key(1), (3, 3, 6, 4))
  ref = lambda x, k: nn.ConvTranspose(4, (3, 3), (2, 2), padding=((1, 2), (1, 2)), use_bias=False
                                      ).apply({"params": {"kernel": k}}, x)
  np.testing.assert_allclose(jax.jit(conv_transpose_3x3_s2)(x, kernel), jax.jit(ref)(x, kernel),
                             atol=1e-5)
  g = jax.jit(jax.grad(lambda x, k: jnp.sum(jnp.sin(conv_transpose_3x3_s2(x, k))),
                       argnums=(0, 1)))(x, kernel)
  r = jax.jit(jax.grad(lambda x, k: jnp.sum(jnp.sin(ref(x, k))), argnums=(0, 1)))(x, kernel)
  for a, b in zip(g, r):
    np.testing.assert_allclose(a, b, atol=1e-4)
