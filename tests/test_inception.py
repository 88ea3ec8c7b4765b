"""The Flax FID Inception against pytorch-fid's (torch, CPU), through the weights converter.

Random weights stand in for the released file (no network here): the converter and the
network must agree with pytorch-fid for any weights, so they agree for the real ones too.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the `test` extra installs torch and pytorch-fid")
fid_inception = pytest.importorskip("pytorch_fid.inception")

from gen.metrics import inception_weights  # pylint: disable=g-import-not-at-top
from gen.models.inception import FIDInceptionV3, preprocess  # pylint: disable=g-import-not-at-top


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
  with pytest.raises(UserError, match="pt_inception-2015-12-05-6726825d.pth"):
    inception_weights.load(str(tmp_path / "none.msgpack"))
