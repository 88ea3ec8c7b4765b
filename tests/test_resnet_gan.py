"""SNGAN and BigGAN ResNets (gen/models/resnet_gan.py): parameter counts equal the references',
shapes, settings checks, and tiny runs through the trainer (outputs, conditioning, the
spectral-norm state of G)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import metrics_rows

from gen.configs.gan import get_config
from gen.data import DatasetInfo
from gen.errors import UserError
from gen.families.gan import GAN
from gen.models import resnet_gan
from gen.runs import run_dir
from gen.train import train


def count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def sn_layers(batch_stats):
  """Spectrally normalised weights: one `.../u` entry in batch_stats each."""
  return sum(1 for path, _ in jax.tree_util.tree_leaves_with_path(batch_stats)
             if str(path[-1].key).endswith("/u"))


def weights(params):
  """Weight matrices/kernels/embeddings (what spectral norm can normalise), not biases/gains."""
  return sum(1 for x in jax.tree.leaves(params) if x.ndim >= 2)


# PyTorch `sum(p.numel() for p in m.parameters())` of the references, computed by instantiating
# them with torch at the commits in gen/models/resnet_gan.py's docstring (spectral norm's u/v
# are buffers there, batch_stats here: neither side counts them, nor BN's running statistics).
#   (arch, size, classes, z, ngf, ndf, G, D, reference)
REFERENCES = [
    ("sngan", 32, 0, 128, 256, 128, 4_276_739, 1_053_825,
     "kwotsin/mimicry SNGANGenerator32 / SNGANDiscriminator32"),
    ("sngan", 32, 10, 128, 256, 128, 4_304_387, 1_055_105,
     "kwotsin/mimicry CGANPDGenerator32 / CGANPDDiscriminator32 (10 classes)"),
    ("biggan", 32, 10, 80, 96, 96, 9_416_196, 2_415_170,
     "PyTorch-StudioGAN big_resnet, src/configs/CIFAR10/BigGAN.yaml"),
    ("biggan", 32, 0, 80, 96, 96, 8_825_092, 2_413_250,
     "PyTorch-StudioGAN big_resnet, CIFAR10 BigGAN without conditioning (W/O)"),
    ("biggan", 64, 100, 100, 80, 80, 17_322_404, 30_668_722,
     "PyTorch-StudioGAN big_resnet, src/configs/Baby_ImageNet/BigGAN.yaml"),
    ("biggan", 128, 1000, 120, 96, 96, 70_433_988, 87_982_370,
     "PyTorch-StudioGAN src/configs/ImageNet/BigGAN-256.yaml = BigGAN-PyTorch ImageNet-128"),
]


@pytest.mark.parametrize("arch,size,classes,z,ngf,ndf,g_ref,d_ref,name", REFERENCES,
                         ids=[f"{r[0]}{r[1]}-{r[2]}classes" for r in REFERENCES])
def test_parameter_counts_equal_the_references(arch, size, classes, z, ngf, ndf, g_ref, d_ref,
                                               name):
  c = get_config()
  c.model.arch, c.model.z_dim, c.model.ngf, c.model.ndf = arch, z, ngf, ndf
  c.model.conditional = bool(classes)
  family = GAN(c, DatasetInfo("ref", (size, size, 3), classes or 10, 1000))
  state = jax.eval_shape(family.init_state, jax.random.key(0))  # shapes only: no compute
  assert (count(state.g.params), count(state.d.params)) == (g_ref, d_ref), name
  # Spectral norm on every D weight; in BigGAN's G on every weight but the shared embedding.
  assert sn_layers(state.d.batch_stats) == weights(state.d.params)
  if arch == "biggan":
    assert sn_layers(state.g.batch_stats) == weights(state.g.params) - bool(classes)
    # Self-attention where StudioGAN's configs put it: in G after the up-block that reaches
    # size/2, in D after its first block (size/2); theta maps C -> C/8.
    g_width = resnet_gan.BIGGAN_G[size][1][-2] * ngf
    assert state.g.params["attention"]["theta"]["conv"]["kernel"].shape[-2:] == (g_width,
                                                                                  g_width // 8)
    d_width = resnet_gan.BIGGAN_D[size][0][0] * ndf
    assert state.d.params["attention"]["theta"]["conv"]["kernel"].shape[-2:] == (d_width,
                                                                                  d_width // 8)
  else:
    assert sn_layers(state.g.batch_stats) == 0
  # Shapes of G's samples and D's logits, also without computing anything.
  labels = jnp.arange(2, dtype=jnp.int32) if classes else None
  x = jax.eval_shape(family.generate, state, jax.ShapeDtypeStruct((2, z), jnp.float32), labels)
  assert x.shape == (2, size, size, 3)
  logits = jax.eval_shape(lambda s, x: family._d(s.d.params, s.d.batch_stats, x, labels)[0],
                          state, x)
  assert logits.shape == (2,)


@pytest.mark.parametrize("overrides,message", [
    (dict(arch="sngan"), r"model.arch='sngan' is SNGAN's 32x32 ResNet: image size 28"),
    (dict(arch="biggan"), r"model.arch='biggan' supports image sizes 32, 64, 128, not 28"),
    (dict(arch="resnet"), r"model.arch='resnet'"),
])
def test_unsupported_sizes_and_archs_are_one_line_user_errors(overrides, message):
  c = get_config("tiny")
  c.model.update(overrides)
  with pytest.raises(UserError, match=message):
    GAN(c, DatasetInfo("toy", (28, 28, 1), 10, 100))


@pytest.mark.parametrize("overrides,message", [
    (dict(z_dim=18), r"model.z_dim=18 must be a multiple of 4 for biggan at 32x32"),
    (dict(attention_res=32), r"model.attention_res=32 has no BigGAN block at 32x32: .* 8, 16$"),
    (dict(ngf=1), r"self-attention at 16x16 needs at least 8 channels"),
])
def test_biggan_settings_are_checked(overrides, message):
  c = get_config("biggan_tiny")
  c.model.update(overrides)
  with pytest.raises(UserError, match=message):
    GAN(c, DatasetInfo("toy", (32, 32, 1), 10, 100))


def test_biggan_is_conditional_where_there_are_labels_else_says_so():
  with pytest.raises(UserError, match="model.conditional=True needs class labels"):
    GAN(get_config("biggan_tiny"), DatasetInfo("toy", (32, 32, 1), 0, 100))
  c = get_config("biggan_tiny")
  c.model.conditional = False  # the documented fallback: BN gains from the z chunks only
  shapes = jax.eval_shape(GAN(c, DatasetInfo("toy", (32, 32, 1), 0, 100)).init_state,
                          jax.random.key(0))
  assert "shared" not in shapes.g.params and "embedding" not in shapes.d.params


@pytest.mark.slow
@pytest.mark.parametrize("variant,top,extra", [
    # SNGAN with another loss (least squares) as two members (seeds) in one vmapped program
    # (what GPUs run; CPUs default to a loop over members, which compiles twice as much).
    ("sngan_resnet_tiny", {"seeds": 2, "member_map": "vmap"}, dict(loss={"kind": "lsgan"})),
    # Conditional BigGAN with self-attention, hinge, n_critic 2 (G updated on step 2).
    ("biggan_tiny", {}, {}),
])
def test_trains_through_the_trainer_and_samples(tmp_path, variant, top, extra):
  c = get_config(variant)  # mnist5k resized to 32x32, 2 steps, G updated on step 2
  c.update(top)
  for section, values in extra.items():
    c[section].update(values)
  workdir = str(tmp_path / variant)
  train(c, workdir)
  rows = [r for r in metrics_rows(workdir) if "d_loss" in r]
  assert len(rows) == 2 * c.seeds
  for row in rows:
    assert np.isfinite(row["d_loss"]) and np.isfinite(row["d_grad_norm"])
  assert all(np.isfinite(r["g_loss"]) for r in rows if r["step"] == 2)

  config, family, state = run_dir.restore_for_inference(workdir, 0 if c.seeds > 1 else None)
  assert config.model.arch == c.model.arch
  # G's BN running means moved with its training step (the batch_stats collection is kept).
  assert any(not np.allclose(m, 0) for path, m in jax.tree_util.tree_leaves_with_path(
      state.g.batch_stats) if str(path[-1].key) == "mean")
  out = family.sample(state, jax.random.key(0), 4, batch=4)  # the shapes the pictures used
  assert out["images"].shape == (4, 32, 32, 1) and out["images"].std() > 0
  if not c.model.conditional:
    return
  assert out["labels"].tolist() == [0, 1, 2, 3]
  z = jax.random.normal(jax.random.key(1), (4, c.model.z_dim))
  labels = jnp.arange(4, dtype=jnp.int32)
  generate = jax.jit(family.generate)
  x = np.asarray(generate(state, z, labels))
  assert float(np.abs(x).max()) <= 1.0
  # The same z with other labels: other images (the shared class embedding conditions G's BNs).
  assert float(np.abs(np.asarray(generate(state, z, labels + 4)) - x).mean()) > 1e-4
  # Every G weight but the shared embedding has its spectral-norm state in G's batch_stats.
  assert sn_layers(state.g.batch_stats) == weights(state.ema_params) - 1


def test_g_blocks_advance_spectral_norm_only_in_training():
  """BigGAN's G passes `train` on as `update_stats`: its training-mode apply (the family's
  update, mutable batch_stats) advances every u; sampling mode (the family's generate, nothing
  mutable) reads them and would raise if it tried to write."""
  block = resnet_gan.GBlock(8, "dense", 0, 1e-4, True, 1e-6)
  x, cond = jnp.ones((2, 4, 4, 8)), jnp.ones((2, 6))
  variables = jax.jit(block.init, static_argnums=3)(jax.random.key(0), x, cond, True)
  # Orthogonal weights are fixed points of the power iteration: move them off first.
  params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.key(1), p.shape),
                        variables["params"])
  variables = {**variables, "params": params}
  _, new = jax.jit(lambda v: block.apply(v, x, cond, True, mutable=["batch_stats"]))(variables)
  before = jax.tree_util.tree_leaves_with_path(variables["batch_stats"])
  us = [(a, b) for (path, a), b in zip(before, jax.tree.leaves(new["batch_stats"]))
        if str(path[-1].key).endswith("/u")]
  assert len(us) == 7 and all(not np.allclose(a, b) for a, b in us)  # 3 convs, 2 x (gain, bias)
  assert jax.jit(lambda v: block.apply(v, x, cond, False))(variables).shape == (2, 8, 8, 8)


@pytest.mark.parametrize("variant", ["sngan_resnet_tiny", "biggan_tiny"])
def test_bfloat16_computes_in_bfloat16_and_keeps_float32_state(variant):
  """compute_dtype=bfloat16: the family casts parameters and inputs; the spectrally normalised
  layers stay in bfloat16 (flax's SpectralNorm would otherwise promote to its float32 u), the
  state and the losses stay float32. By shapes and dtypes only (no compute)."""
  c = get_config(variant)
  c.compute_dtype = "bfloat16"
  family = GAN(c, DatasetInfo("toy", (32, 32, 1), 10, 100))
  state = jax.eval_shape(family.init_state, jax.random.key(0))
  bf16 = lambda t: jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, jnp.bfloat16)
                                if x.dtype == jnp.float32 else x, t)
  z = jax.ShapeDtypeStruct((2, c.model.z_dim), jnp.bfloat16)
  labels = jnp.zeros((2,), jnp.int32)
  x = jax.eval_shape(lambda p, s, z: family.generator.apply(
      {"params": p, "batch_stats": s}, z, labels, train=False), bf16(state.g.params),
      state.g.batch_stats, z)
  assert x.dtype == jnp.bfloat16
  logits = jax.eval_shape(lambda p, s, x: family.discriminator.apply(
      {"params": p, "batch_stats": s}, x, labels, update_stats=False), bf16(state.d.params),
      state.d.batch_stats, x)
  assert logits.dtype == jnp.bfloat16
  batch = {"image": jax.ShapeDtypeStruct((8, 32, 32, 1), jnp.float32), "label": labels.repeat(4)}
  new, (metrics, _, _) = jax.eval_shape(family.train_step, state, batch)
  assert {x.dtype for x in jax.tree.leaves((new.g.params, new.d.params, new.g.batch_stats,
                                            new.d.batch_stats, new.ema_params))} == {
                                                jnp.dtype(jnp.float32)}
  assert metrics["d_loss"].dtype == metrics["g_loss"].dtype == jnp.float32
