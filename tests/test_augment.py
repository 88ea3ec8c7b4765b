"""Data-limited GAN training: DiffAugment, ADA and bCR by value, in the GAN step, and resume."""

import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import metrics_rows
from test_gan import batch, tiny  # the GAN tests' tiny config (section__name overrides) and batch

from gen.configs.gan import get_config
from gen.data import DatasetInfo
from gen.errors import UserError
from gen.families.gan import GAN, GANState
from gen.objectives import augment, losses
from gen.runs import run_dir
from gen.train import train

INFO = DatasetInfo("toy", (28, 28, 1), 10, 100)


def images(shape=(4, 12, 10, 3), seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, shape), jnp.float32)


def roll_zero_fill(a, dy, dx):
  """np.roll(a, (-dy, -dx)) with what wraps around set to 0: out[i, j] = a[i + dy, j + dx]."""
  out = np.roll(a, (-dy, -dx), axis=(0, 1))
  h, w = a.shape[:2]
  if dy > 0:
    out[h - dy:] = 0
  elif dy < 0:
    out[:-dy] = 0
  if dx > 0:
    out[:, w - dx:] = 0
  elif dx < 0:
    out[:, :-dx] = 0
  return out


# -- DiffAugment ----------------------------------------------------------------------


def test_translation_is_a_roll_with_zero_fill():
  x = images()
  shift = jnp.array([[1, -2], [-3, 0], [0, 0], [12, 1]])  # the last moves everything out
  out = np.asarray(augment.translate(x, shift))
  for n, (dy, dx) in enumerate(np.asarray(shift)):
    np.testing.assert_array_equal(out[n], roll_zero_fill(np.asarray(x[n]), dy, dx))
  # Drawn shifts stay within 1/8 of each side, and the policy applies exactly them.
  key = jax.random.key(3)
  draws = augment.diffaugment_draws(key, "translation", (64, 16, 24, 3))
  assert np.abs(draws["shift"][:, 0]).max() == 2 and np.abs(draws["shift"][:, 1]).max() == 3
  big = images((64, 16, 24, 3))
  np.testing.assert_array_equal(augment.diffaugment(big, key, "translation"),
                                augment.translate(big, draws["shift"]))


def test_cutout_zeroes_exactly_the_drawn_rectangle():
  x = images((64, 12, 10, 3)) + 3.0  # no zeros of its own
  key = jax.random.key(5)
  centre = np.asarray(augment.diffaugment_draws(key, "cutout", x.shape)["cutout"])
  out = np.asarray(augment.diffaugment(x, key, "cutout"))
  s0, s1 = 6, 5
  for n, (r, c) in enumerate(centre):
    # The reference: rows clamp(r - s0//2 + arange(s0), 0, H - 1), columns likewise, zeroed.
    mask = np.ones((12, 10), bool)
    mask[np.clip(r - s0 // 2 + np.arange(s0), 0, 11)[:, None],
         np.clip(c - s1 // 2 + np.arange(s1), 0, 9)[None, :]] = False
    np.testing.assert_array_equal(out[n], np.where(mask[..., None], np.asarray(x[n]), 0.0))
    assert 0 <= r <= 12 and 0 <= c <= 9  # randint(0, H + 1 - s0 % 2), randint(0, W + 1 - s1 % 2)
  assert {int(r) for r in centre[:, 0]} >= {0, 12}  # the border centres are drawn too


def test_color_with_its_draws_is_the_reference_formula():
  x = images()
  key = jax.random.key(7)
  d = {k: np.asarray(v) for k, v in augment.diffaugment_draws(key, "color", x.shape).items()}
  assert (np.abs(d["brightness"]) <= 0.5).all() and ((d["saturation"] >= 0) & (d["saturation"] <= 2)).all()
  assert ((d["contrast"] >= 0.5) & (d["contrast"] <= 1.5)).all()
  y = np.asarray(x) + d["brightness"][:, None, None, None]
  m = y.mean(axis=3, keepdims=True)
  y = (y - m) * d["saturation"][:, None, None, None] + m
  m = y.mean(axis=(1, 2, 3), keepdims=True)
  y = (y - m) * d["contrast"][:, None, None, None] + m
  np.testing.assert_allclose(augment.diffaugment(x, key, "color"), y, rtol=1e-5, atol=1e-6)
  # Each call its own draw: another key, other images.
  assert not np.allclose(augment.diffaugment(x, jax.random.key(8), "color"), y)


def test_policies_apply_in_the_order_given_with_their_own_draws():
  x, key = images(), jax.random.key(1)
  d = augment.diffaugment_draws(key, "cutout,translation", x.shape)
  expected = augment.translate(augment.cutout(x, d["cutout"], (6, 5)), d["shift"])
  np.testing.assert_array_equal(augment.diffaugment(x, key, "cutout,translation"), expected)
  # A policy's draws do not depend on which others are on.
  np.testing.assert_array_equal(d["shift"], augment.diffaugment_draws(key, "translation", x.shape)["shift"])


# -- ADA --------------------------------------------------------------------------------

# Jitted: op by op, each test would compile some 50-100 small programs.
ada = jax.jit(augment.ada, static_argnums=3)
ada_apply = jax.jit(augment.ada_apply)
ada_draws = jax.jit(augment.ada_draws, static_argnums=(2, 3))


@pytest.mark.parametrize("shape", [(4, 12, 10, 3), (4, 9, 9, 1)])
def test_ada_with_p_0_is_the_identity(shape):
  x = images(shape)
  out = ada(x, jax.random.key(0), 0.0, "bgc")
  np.testing.assert_array_equal(out, x)
  assert not np.allclose(ada(x, jax.random.key(0), 1.0, "bgc"), x)


def test_ada_blit_transforms_with_p_1_are_exact():
  x, key = images((16, 10, 10, 3)), jax.random.key(2)
  xn = np.asarray(x)
  flip = np.asarray(ada_draws(key, 1.0, "xflip", x.shape)["xflip"])
  assert 0 < flip.sum() < 16  # a fair coin per image
  out = np.asarray(ada(x, key, 1.0, "xflip"))
  for n in range(16):
    np.testing.assert_array_equal(out[n], xn[n, :, ::-1] if flip[n] else xn[n])
  quarter = np.asarray(ada_draws(key, 1.0, "rotate90", x.shape)["rotate90"])
  assert set(quarter.tolist()) == {0, 1, 2, 3}
  out = np.asarray(ada(x, key, 1.0, "rotate90"))
  for n in range(16):
    np.testing.assert_array_equal(out[n], np.rot90(xn[n], k=quarter[n], axes=(0, 1)))
  # Integer translation: out[i, j] = x[i - ty, j - tx], mirrored at the borders (reflect).
  t = np.asarray(ada_draws(key, 1.0, "xint", x.shape)["xint"]).astype(int)
  assert np.abs(t).max() == 1 and np.abs(t).sum() > 0  # round(U(-0.125, 0.125) * 10)
  mirror = lambda i: np.abs(i) if i < 0 else (18 - i if i > 9 else i)
  out = np.asarray(ada(x, key, 1.0, "xint"))
  for n in range(16):
    rows = [mirror(i - t[n, 1]) for i in range(10)]
    cols = [mirror(j - t[n, 0]) for j in range(10)]
    np.testing.assert_array_equal(out[n], xn[n][np.ix_(rows, cols)])


def test_ada_general_geometry_agrees_with_the_exact_transforms():
  x = images((2, 10, 10, 3))
  quarter = {"rotate": jnp.array([[np.pi / 2, 0.0], [0.0, -np.pi / 2]])}
  np.testing.assert_allclose(ada_apply(x, quarter),
                             ada_apply(x, {"rotate90": jnp.array([1, 3])}), atol=1e-5)
  whole = {"xfrac": jnp.array([[1.0, -1.0], [0.0, 0.0]])}
  np.testing.assert_array_equal(ada_apply(x, whole),
                                ada_apply(x, {"xint": whole["xfrac"]}))
  # A half-pixel shift is the mean of the two neighbours (bilinear).
  half = np.asarray(ada_apply(x, {"xfrac": jnp.array([[0.5, 0.0], [0.0, 0.0]])}))
  np.testing.assert_allclose(half[0, :, 1:], (x[0, :, 1:] + x[0, :, :-1]) / 2, atol=1e-6)
  # Scaling by 2 about the centre, on a horizontal ramp (bilinear is exact on it): output
  # column j samples input column (j - c) / 2 + c, c = 4.5.
  ramp = jnp.broadcast_to(jnp.arange(10.0)[None, None, :, None], (2, 10, 10, 3))
  zoom = np.asarray(ada_apply(ramp, {"scale": jnp.array([2.0, 1.0]),
                                     "aniso": jnp.array([1.0, 1.0])}))
  np.testing.assert_allclose(zoom[0], np.broadcast_to(((np.arange(10.0) - 4.5) / 2 + 4.5)[None, :, None],
                                                      (10, 10, 3)), atol=1e-6)
  np.testing.assert_array_equal(zoom[1], ramp[1])
  # Anisotropic scaling by s stretches x by s and squeezes y by 1/s: the ramp by s.
  stretched = np.asarray(ada_apply(ramp, {"aniso": jnp.array([2.0, 0.5])}))
  np.testing.assert_allclose(stretched[:, 0, 4:6, 0], [[4.25, 4.75], [3.5, 5.5]], atol=1e-6)


def test_ada_colour_transforms_by_value():
  x = images((3, 4, 4, 3))
  b, c = jnp.array([0.1, -0.2, 0.0]), jnp.array([1.5, 0.5, 1.0])
  bc = ada_apply(x, {"brightness": b, "contrast": c})  # C = contrast @ brightness
  np.testing.assert_allclose(bc, (x + b[:, None, None, None]) * c[:, None, None, None], atol=1e-6)
  mean = jnp.mean(x, axis=-1, keepdims=True)
  s = jnp.array([0.0, 2.0, 1.0])  # about the luma axis: towards / away from the channel mean
  np.testing.assert_allclose(ada_apply(x, {"saturation": s}),
                             mean + (x - mean) * s[:, None, None, None], atol=1e-6)
  np.testing.assert_allclose(ada_apply(x, {"lumaflip": jnp.array([1, 0, 1])})[0],
                             x[0] - 2 * mean[0], atol=1e-6)
  hue = np.asarray(ada_apply(x, {"hue": jnp.array([2 * np.pi / 3, np.pi, 0.0])}))
  np.testing.assert_allclose(hue[0], np.asarray(x[0])[..., [2, 0, 1]], atol=1e-5)  # 120 degrees
  np.testing.assert_allclose(hue.mean(-1), np.asarray(mean[..., 0]), atol=1e-6)  # luma kept
  # One channel: brightness and contrast as above, hue and saturation leave it alone.
  g = images((3, 4, 4, 1))
  np.testing.assert_allclose(
      ada_apply(g, {"brightness": b, "contrast": c, "hue": b, "saturation": c}),
      (g + b[:, None, None, None]) * c[:, None, None, None], atol=1e-6)
  np.testing.assert_allclose(ada_apply(g, {"lumaflip": jnp.array([1, 1, 0])})[:2], -g[:2],
                             atol=1e-6)


def test_ada_probabilities_and_strengths():
  n = 20000
  d = ada_draws(jax.random.key(4), 0.3, "bgc", (n, 32, 32, 3))
  applied = lambda v, identity: np.mean(np.asarray(v) != identity)
  assert abs(applied(d["scale"], 1.0) - 0.3) < 0.015
  assert abs(applied(d["brightness"], 0.0) - 0.3) < 0.015
  assert abs(applied(d["xflip"], 0) - 0.15) < 0.015  # applied with p, then a fair coin
  rotated = np.any(np.asarray(d["rotate"]) != 0, axis=1)
  assert abs(rotated.mean() - 0.3) < 0.015  # before or after: p in all
  logs = np.log(np.asarray(d["scale"])[np.asarray(d["scale"]) != 1.0])
  assert abs(logs.std() - 0.2 * np.log(2)) < 0.01
  logs = np.log(np.asarray(d["saturation"])[np.asarray(d["saturation"]) != 1.0])
  assert abs(logs.std() - np.log(2)) < 0.03


def test_ada_p_moves_by_the_right_step_in_the_direction_of_r_t():
  state = augment.ada_init(0.5)
  up, down = jnp.full((8,), 2.0), jnp.concatenate([jnp.full((6,), -1.0), jnp.full((2,), 1.0)])
  kw = dict(interval=4, target=0.6, kimg=0.5)  # step 8 * 4 / 500 = 0.064
  for step in range(3):  # accumulate only
    state, r_t, adjusted = augment.ada_adjust(state, up, jnp.asarray(step), **kw)
    assert not adjusted and float(state["p"]) == 0.5
  assert float(state["signs"]) == 24 and int(state["count"]) == 24
  state, r_t, adjusted = augment.ada_adjust(state, up, jnp.asarray(3), **kw)
  assert adjusted and float(r_t) == 1.0
  np.testing.assert_allclose(state["p"], 0.564, rtol=1e-6)
  assert float(state["signs"]) == 0 and int(state["count"]) == 0
  for step in range(4, 8):  # r_t = -0.5 < 0.6: down
    state, r_t, adjusted = augment.ada_adjust(state, down, jnp.asarray(step), **kw)
  assert adjusted and float(r_t) == -0.5
  np.testing.assert_allclose(state["p"], 0.5, rtol=1e-6)
  # Clipped to [0, 1]; r_t equal to the target leaves p alone; interval 0 keeps p.
  state, _, _ = augment.ada_adjust(augment.ada_init(0.01), down, jnp.asarray(0), 1, 0.6, 0.001)
  assert float(state["p"]) == 0.0
  state, _, _ = augment.ada_adjust(augment.ada_init(0.99), up, jnp.asarray(0), 1, 0.6, 0.001)
  assert float(state["p"]) == 1.0
  state, _, _ = augment.ada_adjust(augment.ada_init(0.3), down, jnp.asarray(0), 1, -0.5, 0.001)
  assert float(state["p"]) == pytest.approx(0.3)
  state, _, adjusted = augment.ada_adjust(augment.ada_init(0.3), up, jnp.asarray(0), 0, 0.6, 0.001)
  assert float(state["p"]) == pytest.approx(0.3) and not adjusted


# -- gradients and bCR --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["diffaugment", "ada", "consistency"])
def test_gradients_flow_through_the_augmentations(name):
  x, key = images(), jax.random.key(9)
  weight = images(seed=1)
  fn = {"diffaugment": lambda x: augment.diffaugment(x, key, "color,translation,cutout"),
        "ada": lambda x: augment.ada(x, key, 1.0, "bgc"),
        "consistency": lambda x: augment.consistency_transform(x, key)}[name]
  grad = jax.jit(jax.grad(lambda x: jnp.sum(fn(x) * weight)))(x)
  assert np.isfinite(grad).all() and np.abs(grad).sum() > 0
  # Linear in x with fixed draws: the gradient is the transpose, <grad, v> = <weight, T(v) - T(0)>.
  v = images(seed=2)
  fn = jax.jit(fn)
  np.testing.assert_allclose(jnp.sum(grad * v), jnp.sum(weight * (fn(v) - fn(jnp.zeros_like(v)))),
                             rtol=1e-4)


def test_bcr_by_hand():
  x = jnp.zeros((4, 16, 16, 1)).at[:, 7:9, 7:9].set(1.0)  # a centred 2x2 blob
  key = jax.random.key(11)
  d = augment.consistency_draws(key, x.shape)
  assert np.abs(d["shift"]).max() <= 2
  # A critic blind to flips and small shifts of the blob: no penalty.
  assert float(losses.consistency_penalty(lambda x: jnp.sum(x, axis=(1, 2, 3)), x, key)) == 0.0
  # A critic reading one pixel: D(x) = 1; D(T(x)) = 1 iff T keeps (7, 7) on the blob.
  pixel = lambda x: x[:, 7, 7, 0]
  moved = np.asarray(pixel(augment.consistency_transform(x, key)))
  expected = []
  for n in range(4):
    img = np.asarray(x[n, :, :, 0])
    img = img[:, ::-1] if d["xflip"][n] else img
    img = roll_zero_fill(img, *np.asarray(d["shift"][n]))
    expected.append(img[7, 7])
  np.testing.assert_array_equal(moved, expected)
  np.testing.assert_allclose(losses.consistency_penalty(pixel, x, key),
                             np.mean((1.0 - np.array(expected)) ** 2))


# -- in the GAN step -----------------------------------------------------------------------


def run_steps(family, n):
  state = jax.jit(family.init_state)(jax.random.key(0))
  step = jax.jit(family.train_step)
  history = []
  for i in range(n):
    state, (metrics, valid, finite) = step(state, batch(seed=i))
    assert finite
    history.append(({k: float(v) for k, v in metrics.items()}, jax.device_get(valid)))
  return state, history


@pytest.mark.slow
def test_ada_at_p_0_and_no_adjustment_trains_exactly_as_without_augmentation():
  plain, _ = run_steps(GAN(tiny(), INFO), 1)
  ada, history = run_steps(GAN(tiny(augment__ada="bgc", augment__ada_interval=0), INFO), 1)
  assert ada.ada is not None and ada.d_reg is None and float(ada.ada["p"]) == 0.0
  assert plain.ada is None and plain.d_reg is None
  assert history[0][0]["ada_p"] == 0.0 and "ada_rt" not in history[0][0]
  chex.assert_trees_all_equal((plain.g, plain.d), (ada.g, ada.d))


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    dict(loss__kind="ns", augment__diffaugment="color,translation,cutout", augment__ada="bgc",
         augment__ada_p=0.5, augment__ada_interval=2, augment__ada_kimg=0.1,
         loss__lecam_weight=0.3, loss__r1_gamma=1.0),
    dict(loss__kind="hinge", augment__ada="blit,color", augment__ada_p=1.0, loss__bcr_real=10.0,
         loss__bcr_fake=10.0, model__spectral_norm=True, model__d_norm="none",
         model__conditional=True),
    dict(loss__kind="wgan", loss__gp_weight=10.0, loss__n_critic=2, model__d_norm="none",
         augment__diffaugment="translation", augment__ada="geom", augment__ada_p=0.2,
         augment__ada_interval=1, augment__ada_kimg=0.1, loss__bcr_real=1.0),
    dict(loss__kind="lsgan", augment__diffaugment="cutout,color", loss__bcr_fake=10.0,
         model__d_norm="layer"),
])
def test_augmentations_compose_with_every_loss_and_regulariser(overrides):
  family = GAN(tiny(**overrides), INFO)
  state, history = run_steps(family, 2)
  ada = bool(overrides.get("augment__ada"))
  stateful = bool(overrides.get("loss__lecam_weight"))
  assert type(state) is GANState  # one state class; its optional parts are there when used
  assert (state.ada is not None) == ada and (state.d_reg is not None) == stateful
  weights = {"gp": "gp_weight", "r1": "r1_gamma", "lecam": "lecam_weight", "bcr_real": "bcr_real",
             "bcr_fake": "bcr_fake"}
  for metrics, valid in history:
    assert all(np.isfinite(v) for k, v in metrics.items() if valid[k])
    for name, weight in weights.items():  # each active regulariser is logged, and only those
      assert (name in metrics) == bool(overrides.get(f"loss__{weight}"))
      assert metrics.get(name, 0.0) >= 0
    assert all(metrics[n] > 0 for n in ("bcr_real", "bcr_fake") if n in metrics)
  if ada:
    interval = overrides.get("augment__ada_interval", 4)
    p = [m["ada_p"] for m, _ in history]
    if interval == 1:  # adjusted on every D step by 8 / 100, from 0.2
      for (m, valid), before, after in zip(history, [0.2] + p[:-1], p):
        assert valid["ada_rt"]
        np.testing.assert_allclose(after - before, 0.08 * np.sign(m["ada_rt"] - 0.6), atol=1e-6)
    elif interval == 2:
      assert not history[0][1]["ada_rt"] and history[1][1]["ada_rt"]
      assert p[0] == 0.5
      np.testing.assert_allclose(p[1], 0.5 + 0.16 * np.sign(history[1][0]["ada_rt"] - 0.6),
                                 atol=1e-6)
    else:
      assert p == [overrides["augment__ada_p"]] * 2


@pytest.mark.parametrize("overrides,message", [
    (dict(augment__diffaugment="colour"), "augment.diffaugment='colour': unknown name 'colour'"),
    (dict(augment__diffaugment="color,color"), "names 'color' twice"),
    (dict(augment__ada="bgc,zoom"), "augment.ada='bgc,zoom': unknown name 'zoom'"),
    (dict(augment__ada_p=1.5), "augment.ada_p=1.5 must be in [0, 1]"),
    (dict(augment__ada_target=-0.1), "augment.ada_target=-0.1 must be in [0, 1]"),
    (dict(augment__ada_interval=-1), "augment.ada_interval=-1 must be an integer >= 0"),
    (dict(augment__ada_kimg=0.0), "augment.ada_kimg=0.0 must be positive"),
    (dict(loss__bcr_real=-1.0), "loss.bcr_real=-1.0 must be >= 0"),
])
def test_bad_augment_values_are_one_line(overrides, message):
  with pytest.raises(UserError) as e:
    GAN(tiny(**overrides), INFO)
  assert message in str(e.value) and "\n" not in str(e.value)
  with pytest.raises(UserError, match="need 1- or 3-channel images"):
    GAN(tiny(augment__ada="color"), DatasetInfo("toy", (28, 28, 2), 0, 100))


def test_a_config_json_from_before_augmentation_still_loads(tmp_path):
  config = get_config("tiny").to_dict()
  del config["augment"], config["loss"]["bcr_real"], config["loss"]["bcr_fake"]
  (tmp_path / "config.json").write_text(json.dumps(config))
  loaded = run_dir.RunDir(str(tmp_path)).read_config()
  assert loaded.augment.ada == "" and loaded.loss.bcr_real == 0.0
  assert loaded.model.ngf == 8  # the run's own values are kept
  family = GAN(loaded, INFO)
  assert type(jax.eval_shape(family.init_state, jax.random.key(0))) is GANState


# -- through the trainer: members and resume ---------------------------------------------


def tiny_run(num_steps, **sections):
  c = get_config("tiny")
  c.num_steps = num_steps
  for section, values in sections.items():
    if isinstance(values, dict):
      c[section].update(values)
    else:
      c[section] = values
  return c


@pytest.mark.slow
def test_ada_target_and_bcr_vary_over_members(tmp_path):
  workdir = str(tmp_path / "members")
  train(tiny_run(
      2, augment=dict(ada="bgc", ada_p=0.5, ada_interval=1, ada_kimg=0.1),
      vary="augment.ada_target=0,1;loss.bcr_real=2", member_map="vmap"),  # bcr_real 0 in the config
      workdir)
  rows = [r for r in metrics_rows(workdir) if "ada_p" in r]
  by_member = {}
  for r in rows:
    by_member.setdefault(r["member"], []).append(r)
  assert len(by_member) == 2
  for rs in by_member.values():
    target = rs[0]["augment.ada_target"]
    # r_t is in [-1, 1]: above target 0 unless every logit is <= 0, below target 1 unless all > 0.
    p = [0.5] + [r["ada_p"] for r in rs]
    for r, before, after in zip(rs, p, p[1:]):
      np.testing.assert_allclose(after - before, 0.08 * np.sign(r["ada_rt"] - target), atol=1e-6)
    assert ("bcr_real" in rs[0]) and (rs[0]["bcr_real"] > 0)


@pytest.mark.slow
def test_resume_with_diffaugment_ada_and_lecam_is_bitwise(tmp_path):
  sections = dict(augment=dict(diffaugment="color,translation,cutout", ada="bgc", ada_p=0.3,
                               ada_interval=3, ada_kimg=0.1),
                  loss=dict(lecam_weight=0.3))
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  train(tiny_run(4, **sections), straight)
  train(tiny_run(2, **sections), resumed)  # stops at 2, mid-interval ...
  train(tiny_run(4, **sections), resumed)  # ... and resumes to 4
  a = run_dir.restore_run(straight)[2]
  b = run_dir.restore_run(resumed)[2]
  assert a.ada is not None and a.d_reg is not None and int(b.step) == 4
  assert int(b.ada["count"]) == 8  # step 4: one step into the second interval
  chex.assert_trees_all_equal(a, b)
  rows = metrics_rows(straight)
  assert rows == metrics_rows(resumed)
  p = [r["ada_p"] for r in rows]
  p0 = float(np.float32(0.3))
  assert p[0] == p[1] == p0 and p[2] == p[3] == float(a.ada["p"])
  assert p[2] == pytest.approx(p0 + 0.24 * np.sign(rows[2]["ada_rt"] - 0.6))  # 8 * 3 / 100
  assert os.path.isdir(os.path.join(resumed, "checkpoints", "2"))
