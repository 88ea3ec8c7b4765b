"""pytorch-fid's Inception weights -> a Flax checkpoint for gen.models.inception.

Once, on any machine with the file (torch needed for reading it, `pip install torch`):

  # pt_inception-2015-12-05-6726825d.pth from
  # https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth
  python -m gen.metrics.inception_weights --pth pt_inception-2015-12-05-6726825d.pth \
      --out ~/.cache/gen/inception_fid.msgpack

The FID metrics then find the converted file through `config.eval.inception_weights`
or the environment variable GEN_INCEPTION_WEIGHTS (else the default path above).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from gen.errors import UserError

ENV = "GEN_INCEPTION_WEIGHTS"
DEFAULT_PATH = os.path.join(os.path.expanduser("~"), ".cache", "gen", "inception_fid.msgpack")
PTH_NAME = "pt_inception-2015-12-05-6726825d.pth"
PTH_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{PTH_NAME}"


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


def save(variables: dict, path: str) -> None:
  from flax import serialization  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.{os.getpid()}.tmp"  # processes of one run may write it at once
  with open(tmp, "wb") as f:
    f.write(serialization.msgpack_serialize(variables))
  os.replace(tmp, path)


def weights_path(configured: str = "") -> str:
  return configured or os.environ.get(ENV) or DEFAULT_PATH


def load(configured: str = "") -> dict:
  """The converted variables, or a UserError that says exactly how to get them."""
  from flax import serialization  # pylint: disable=g-import-not-at-top
  path = weights_path(configured)
  if not os.path.exists(path):
    raise UserError(f"no Inception weights at {path}: download {PTH_URL} and run "
                    f"`python -m gen.metrics.inception_weights --pth {PTH_NAME} --out {path}` "
                    f"(or point {ENV} / --config.eval.inception_weights at a converted file)")
  try:
    with open(path, "rb") as f:
      return serialization.msgpack_restore(f.read())
  except Exception as e:  # pylint: disable=broad-except
    raise UserError(f"cannot read Inception weights {path}: {type(e).__name__}: {e}") from None


def convert_file(pth: str, out: str) -> None:
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise UserError("reading a .pth file needs torch: pip install torch") from None
  if not os.path.exists(pth):
    raise UserError(f"{pth!r} does not exist")
  state_dict = torch.load(pth, map_location="cpu", weights_only=True)
  save(convert({k: v.numpy() for k, v in state_dict.items()}), out)


def main(argv: list[str]) -> None:
  import argparse  # pylint: disable=g-import-not-at-top
  from gen.cli import user_errors  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--pth", required=True, help=f"pytorch-fid's {PTH_NAME}")
  parser.add_argument("--out", default=DEFAULT_PATH, help="where to write the Flax weights")
  args = parser.parse_args(argv)
  with user_errors():
    convert_file(args.pth, args.out)
  print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
  main(sys.argv[1:])
