"""Sampling tools: the truncation trick, class grids and latent walks.

Value-level tests of gen.objectives.latents (truncated_normal, slerp, loop_path, rows_by_class), then the
command lines (`gen sample --truncation/--grid`, `gen interpolate`) on two tiny DCGAN runs
trained once for the module (28x28 mnist5k): a class-conditional one trained for 200 steps, so
that its images vary with z (2 steps leave G's BatchNorm statistics at their start, and every
image a flat grey), and the unconditional `:tiny` run as it is.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run, shared_run
from PIL import Image, ImageSequence
from scipy import stats

from gen import images
from gen.configs.gan import get_config
from gen.configs.vae import get_config as get_vae_config
from gen.data import DatasetInfo
from gen.families import LatentSampler
from gen.families import get as get_family
from gen.objectives import latents
from gen.runs.run_dir import restore_for_inference
from gen.train import train

# -- the truncation trick ---------------------------------------------------------


def test_no_truncation_is_exactly_the_normal_draw():
  key = jax.random.key(3)
  plain = jax.random.normal(key, (7, 16))
  for psi in (None, 0, 0.0):
    np.testing.assert_array_equal(latents.truncated_normal(key, (7, 16), psi), plain)


def resample_until_inside(rng, n, psi):
  """BigGAN's procedure, literally: redraw every coordinate outside [-psi, psi] until none is."""
  z = rng.standard_normal(n)
  outside = np.abs(z) > psi
  while outside.any():
    z[outside] = rng.standard_normal(outside.sum())
    outside = np.abs(z) > psi
  return z


@pytest.mark.parametrize("psi", [0.3, 1.0, 2.5])
def test_truncation_stays_inside_and_is_the_resampling_distribution(psi):
  n = 100_000
  z = np.asarray(latents.truncated_normal(jax.random.key(0), (n,), psi), np.float64)
  assert np.abs(z).max() <= np.float32(psi)
  # N(0, 1) conditioned on |z| <= psi: mean 0, variance 1 - 2 psi phi(psi) / (2 Phi(psi) - 1).
  var = 1.0 - 2.0 * psi * stats.norm.pdf(psi) / (2.0 * stats.norm.cdf(psi) - 1.0)
  assert abs(z.mean()) < 5 * np.sqrt(var / n)
  np.testing.assert_allclose(z.var(), var, rtol=0.02)
  # The same law as the resampling loop (two-sample KS) and as scipy's truncated normal.
  loop = resample_until_inside(np.random.default_rng(0), n, psi)
  assert stats.ks_2samp(z, loop).pvalue > 1e-3
  assert stats.kstest(z, stats.truncnorm(-psi, psi).cdf).pvalue > 1e-3


def test_truncation_is_jittable_and_rejects_a_negative_threshold():
  key = jax.random.key(1)
  eager = latents.truncated_normal(key, (4, 8), 0.7)
  jitted = jax.jit(lambda k: latents.truncated_normal(k, (4, 8), 0.7))(key)
  np.testing.assert_array_equal(eager, jitted)
  assert not np.array_equal(eager, latents.truncated_normal(jax.random.key(2), (4, 8), 0.7))
  with pytest.raises(ValueError, match="must be positive"):
    latents.truncated_normal(key, (4,), -1.0)


# -- slerp -------------------------------------------------------------------------


def test_slerp_returns_the_endpoints_exactly():
  a, b = jax.random.normal(jax.random.key(0), (2, 5, 16))
  for f in (latents.slerp, jax.jit(latents.slerp)):
    np.testing.assert_array_equal(f(a, b, 0.0), a)
    np.testing.assert_array_equal(f(a, b, 1.0), b)
    path = f(a[:1], b[:1], jnp.array([0.0, 0.5, 1.0]))
    np.testing.assert_array_equal(path[0], a[0])
    np.testing.assert_array_equal(path[2], b[0])


def test_slerp_of_unit_vectors_is_the_great_circle():
  a, b = jax.random.normal(jax.random.key(1), (2, 64))
  a, b = a / jnp.linalg.norm(a), b / jnp.linalg.norm(b)
  t = jnp.linspace(0.0, 1.0, 21)
  path = np.asarray(latents.slerp(a[None], b[None], t), np.float64)
  np.testing.assert_allclose(np.linalg.norm(path, axis=-1), 1.0, atol=1e-6)  # on the sphere
  omega = np.arccos(np.clip(np.dot(a, b), -1, 1))
  angle_from_a = np.arccos(np.clip(path @ np.asarray(a, np.float64), -1, 1))
  np.testing.assert_allclose(angle_from_a, t * omega, atol=1e-3)  # at constant speed
  # Not the straight line: the midpoint of lerp has norm cos(omega / 2) < 1.
  assert np.linalg.norm((a + b) / 2) < 0.8


def test_slerp_of_parallel_vectors_is_lerp_without_nan():
  a = jax.random.normal(jax.random.key(2), (16,))
  t = jnp.linspace(0.0, 1.0, 9)
  for b, expected in [(a, a[None] * jnp.ones((9, 1))),  # the same vector: angle 0, sin 0
                      (2.0 * a, (1.0 + t)[:, None] * a),  # parallel, other norm
                      (a + 1e-9 * jnp.ones(16), a[None] * jnp.ones((9, 1))),  # nearly parallel
                      (-a, (1.0 - 2.0 * t)[:, None] * a)]:  # opposite: any great circle; lerp
    path = latents.slerp(a[None], b[None], t)
    assert np.isfinite(path).all()
    np.testing.assert_allclose(path, expected, rtol=1e-5, atol=1e-6)
  # Its gradient is finite there too (jnp.where's discarded branch divides by 1, not 0).
  grad = jax.grad(lambda x: latents.slerp(x, x, 0.3).sum())(a)
  assert np.isfinite(grad).all()


def test_loop_path_walks_through_every_latent():
  z = jax.random.normal(jax.random.key(3), (3, 8))
  looped = latents.loop_path(z, 4)
  assert looped.shape == (12, 8)
  np.testing.assert_array_equal(looped[::4], z)  # each leg starts on its seed's latent
  np.testing.assert_allclose(looped[5], latents.slerp(z[1], z[2], 0.25), rtol=1e-6)
  np.testing.assert_allclose(looped[11], latents.slerp(z[2], z[0], 0.75), rtol=1e-6)  # back home
  straight = latents.loop_path(z, 4, loop=False)
  assert straight.shape == (9, 8)
  np.testing.assert_array_equal(straight[::4], z)  # ends on the last seed


def test_rows_by_class_sorts_balanced_samples():
  x = np.arange(6)[:, None] * np.ones((6, 2), int)
  assert latents.rows_by_class(x, np.arange(6) % 3, 3)[:, 0].tolist() == [0, 3, 1, 4, 2, 5]
  with pytest.raises(ValueError):
    latents.rows_by_class(x, np.zeros(6, int), 3)


def test_gan_and_vae_draw_from_latents_cyclegan_does_not():
  assert issubclass(get_family("gan"), LatentSampler) and issubclass(get_family("vae"), LatentSampler)
  assert not issubclass(get_family("cyclegan"), LatentSampler)  # gen.sample/interpolate refuse it


def test_vae_samples_are_unchanged_and_truncate():
  c = get_vae_config("tiny")
  family = get_family("vae")(c, DatasetInfo("toy", (28, 28, 1), 10, 100))
  state = jax.jit(family.init_state)(jax.random.key(0))
  key = jax.random.key(4)
  out = family.sample(state, key, 6)
  # What VAE sampling always was: decoder means of z = jax.random.normal(key, (num, latents)).
  z = jax.random.normal(key, (6, c.model.latents))
  np.testing.assert_array_equal(out["images"], images.to_uint8(
      family._decode_mean(state.vae.params, z), (0.0, 1.0)))
  truncated = family.sample(state, key, 6, truncation=0.5)["images"]
  np.testing.assert_array_equal(truncated, family.generate_images(
      state, latents.truncated_normal(key, (6, c.model.latents), 0.5)))


# -- the command lines -------------------------------------------------------------------


@pytest.fixture(scope="session")
def runs():
  """{'conditional': workdir, 'unconditional': workdir} of two tiny DCGANs (~15 s), made once
  per test run."""
  conditional = get_config("tiny")
  conditional.model.conditional = True
  conditional.num_steps = conditional.log_every = conditional.sample_every = 200
  conditional.checkpoint_every = 200
  return {"conditional": shared_run("dcgan_conditional200", lambda w: train(conditional, w)),
          "unconditional": shared_run("dcgan_tiny", lambda w: train(get_config("tiny"), w))}


def ok(result):
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  return result


def tiles(picture, rows, cols, h, w, pad):
  """A grid picture back into its [rows * cols, h, w, C] tiles."""
  return np.stack([picture[pad + r * (h + pad):pad + r * (h + pad) + h,
                           pad + c * (w + pad):pad + c * (w + pad) + w]
                   for r in range(rows) for c in range(cols)])


def read_png(path):
  image = np.asarray(Image.open(path))
  return image[..., None] if image.ndim == 2 else image


@pytest.mark.slow
def test_sample_truncation_and_class_grid(runs, tmp_path):
  workdir = runs["conditional"]
  _, family, state = restore_for_inference(workdir)
  out, grid = str(tmp_path / "t.npz"), str(tmp_path / "grid.png")
  result = ok(run(["-m", "gen", "sample", f"--workdir={workdir}", "--num=20", "--seed=0",
                   "--truncation=0.5", f"--out={out}", f"--grid={grid}", "--per_class=2"]))
  assert "truncation 0.5" in result.stderr and "10 rows" in result.stderr
  with np.load(out) as f:
    truncated, labels = f["images"], f["labels"]
  assert truncated.shape == (20, 28, 28, 1) and labels.tolist() == [i % 10 for i in range(20)]
  # Deterministic per seed: the latents of truncated_normal(key(0), psi) through the EMA G.
  np.testing.assert_array_equal(
      truncated, family.generate_images(state, latents.truncated_normal(
          jax.random.key(0), (20, family.latent_dim), 0.5), labels))
  plain = family.sample(state, jax.random.key(0), 20)["images"]
  assert np.abs(truncated.astype(int) - plain).mean() > 1  # other latents, other images
  # One row per class (0..9 top to bottom), --per_class images each: 20 = 10 x 2, the same draw.
  picture = read_png(grid)
  assert picture.shape == (10 * 30 + 2, 2 * 30 + 2, 1)
  got = tiles(picture, 10, 2, 28, 28, 2)
  np.testing.assert_array_equal(got, latents.rows_by_class(truncated, labels, 10))
  np.testing.assert_array_equal(got[2 * 3 + 1], truncated[1 * 10 + 3])  # class 3, 2nd image


def test_sample_without_truncation_is_unchanged_and_unconditional_grid(runs, tmp_path):
  workdir = runs["unconditional"]
  _, family, state = restore_for_inference(workdir)
  out, grid = str(tmp_path / "s.npz"), str(tmp_path / "grid.png")
  ok(run(["-m", "gen", "sample", f"--workdir={workdir}", "--num=10", "--seed=3", f"--out={out}",
          f"--grid={grid}"]))
  with np.load(out) as f:
    assert "labels" not in f
    sampled = f["images"]
  # What gen sample always drew: z = jax.random.normal(key(seed), (num, z_dim)) through G.
  z = jax.random.normal(jax.random.key(3), (10, family.latent_dim))
  np.testing.assert_array_equal(sampled, images.to_uint8(jax.jit(family.generate)(state, z, None)))
  picture = read_png(grid)  # 10 images: 4 columns (ceil sqrt 10), 3 rows
  assert picture.shape == (3 * 30 + 2, 4 * 30 + 2, 1)
  np.testing.assert_array_equal(tiles(picture, 3, 4, 28, 28, 2)[:10], sampled)


def gif_frames(path):
  with Image.open(path) as gif:
    frames = [np.asarray(frame.convert("L")) for frame in ImageSequence.Iterator(gif)]
    return np.stack(frames)[..., None], gif.info.get("loop")


def test_interpolate_writes_a_looping_gif_and_a_strip(runs, tmp_path):
  workdir = runs["conditional"]
  _, family, state = restore_for_inference(workdir)
  out = str(tmp_path / "walk.gif")
  result = ok(run(["-m", "gen", "interpolate", f"--workdir={workdir}", f"--out={out}",
                   "--seeds=0,1,2", "--steps=4"]))
  assert "12 frames" in result.stderr
  strip = read_png(str(tmp_path / "walk.png"))
  assert strip.shape == (28, 12 * 28, 1)  # frames side by side
  frames = strip.reshape(28, 12, 28, 1).swapaxes(0, 1)
  gif, loop = gif_frames(out)
  assert gif.shape == (12, 28, 28, 1) and loop == 0  # every frame, looping forever
  np.testing.assert_array_equal(gif, frames)  # grayscale GIFs are lossless
  # Legs start on their seed's image: the one `gen sample --seed S --num 1` gives (class 0).
  for seed, frame in ((0, 0), (1, 4), (2, 8)):
    np.testing.assert_array_equal(frames[frame], family.sample(state, jax.random.key(seed), 1)["images"][0])
  assert len({f.tobytes() for f in frames}) == 12


def test_interpolate_with_truncation_label_and_no_loop(runs, tmp_path):
  workdir = runs["conditional"]
  _, family, state = restore_for_inference(workdir)
  out = str(tmp_path / "walk.gif")
  ok(run(["-m", "gen", "interpolate", f"--workdir={workdir}", f"--out={out}", "--seeds=5,7",
          "--steps=3", "--truncation=0.5", "--label=3", "--noloop"]))
  frames, _ = gif_frames(out)
  assert frames.shape == (4, 28, 28, 1)  # (2 - 1) x 3 + 1: ends on seed 7
  ends = jnp.concatenate([latents.truncated_normal(jax.random.key(s), (1, family.latent_dim), 0.5)
                          for s in (5, 7)])
  np.testing.assert_array_equal(frames[[0, 3]], family.generate_images(state, ends, np.array([3, 3])))


FAST_ERRORS = [  # caught before a checkpoint is read
    ("sample", ["--truncation=0", "--out=x.npz"], "error: --truncation=0.0 must be > 0"),
    ("sample", ["--truncation=-0.5", "--out=x.npz"], "error: --truncation=-0.5 must be > 0"),
    ("sample", [], "error: nothing to write: give --out FILE.npz, --grid FILE.png or both"),
    ("sample", ["--grid=g.jpg"], "error: --grid 'g.jpg' must end in .png"),
    ("interpolate", ["--out=w.gif", "--seeds=0"], "error: --seeds='0' must name at least 2 seeds"),
    ("interpolate", ["--out=w.gif", "--seeds=0,x"], "error: --seeds='0,x' must be comma-separated"),
    ("interpolate", ["--out=w.gif", "--steps=1"], "error: --steps=1 must be >= 2"),
    ("interpolate", ["--out=w.gif", "--truncation=0"], "error: --truncation=0.0 must be > 0"),
    ("interpolate", ["--out=w.png"], "error: --out 'w.png' must end in .gif"),
]


@pytest.mark.parametrize("tool,args,message", FAST_ERRORS)
def test_bad_values_are_one_line(tool, args, message, tmp_path):
  result = run(["-m", "gen", tool, f"--workdir={tmp_path}", *args])
  assert result.returncode == 2 and result.stderr.startswith(message), result.stderr
  assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("tool,run_name,args,message", [
    ("interpolate", "conditional", ["--label=10"], "error: --label=10 is not a class of this model: 0..9"),
    ("interpolate", "unconditional", ["--label=0"], "error: --label is for class-conditional models"),
    ("interpolate", "missing", [], "does not exist"),
    ("sample", "unconditional", ["--grid=g.png", "--per_class=3"],
     "error: --per_class is for class-conditional models"),
])
def test_mistakes_about_the_run_are_one_line(runs, tmp_path, tool, run_name, args, message):
  workdir = runs.get(run_name, str(tmp_path / "missing"))
  out = ["--out=" + str(tmp_path / "w.gif")] if tool == "interpolate" else []
  result = run(["-m", "gen", tool, f"--workdir={workdir}", *out, *args])
  assert result.returncode == 2 and message in result.stderr, result.stderr
  assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
  assert not os.path.exists(tmp_path / "w.gif")
