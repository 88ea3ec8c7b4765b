"""Which stride-2 up-sampling formulation is faster on this backend (gen.models.layers).

  python benchmarks/upsample.py [--seconds 3] [--dtype float32] \
      [--out benchmarks/results/upsample_<backend>.json]

Times forward + backward (value and gradients for input and kernel) of the `gather` (tap /
phase) and `native` (lax.conv_transpose) formulations on the up-sampling layers of DCGAN-64
(batch 128) and CycleGAN-256 (batch 8), and prints which wins per layer and in total. The
winner for a backend belongs in layers.UPSAMPLE_BY_BACKEND.
"""

import argparse
import json
import os

import jax
import jax.numpy as jnp
from timing import calls_per_sec, machine_info

from gen.models.layers import conv_transpose_s2

# (name, input NHWC, kernel size, output channels)
LAYERS = [("dcgan64_up1", (128, 4, 4, 512), 4, 256), ("dcgan64_up2", (128, 8, 8, 256), 4, 128),
          ("dcgan64_up3", (128, 16, 16, 128), 4, 64), ("dcgan64_out", (128, 32, 32, 64), 4, 3),
          ("cyclegan256_up1", (8, 64, 64, 256), 3, 128), ("cyclegan256_up2", (8, 128, 128, 128), 3, 64)]


def time_layer(shape, k, features, formulation, dtype, seconds):
  x = jax.random.normal(jax.random.key(0), shape, dtype)
  w = (0.02 * jax.random.normal(jax.random.key(1), (k, k, shape[-1], features))).astype(dtype)
  loss = lambda w, x: jnp.sum(jnp.square(conv_transpose_s2(x, w, formulation).astype(jnp.float32)))
  step = jax.jit(lambda carry, _: (carry, jax.grad(loss, argnums=(0, 1))(*carry)))
  return calls_per_sec(step, (w, x), None, seconds)[1]


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--seconds", type=float, default=3.0)
  parser.add_argument("--dtype", default="float32")
  parser.add_argument("--out", default=None)
  args = parser.parse_args()
  rows, totals = [], {"gather": 0.0, "native": 0.0}
  for name, shape, k, features in LAYERS:
    row = {"layer": name, "input": list(shape), "kernel": k, "features": features}
    for formulation in ("gather", "native"):
      ms = 1e3 / time_layer(shape, k, features, formulation, jnp.dtype(args.dtype), args.seconds)
      row[f"{formulation}_ms"] = ms
      totals[formulation] += ms
    row["faster"] = min(("gather", "native"), key=lambda f: row[f"{f}_ms"])
    rows.append(row)
    print(f"{name:>16} gather {row['gather_ms']:9.2f} ms  native {row['native_ms']:9.2f} ms  "
          f"-> {row['faster']}", flush=True)
  winner = min(totals, key=totals.get)
  print(f"{'total':>16} gather {totals['gather']:9.2f} ms  native {totals['native']:9.2f} ms  -> "
        f"{winner} for backend {jax.default_backend()!r}")
  out = args.out or os.path.join(os.path.dirname(__file__), "results",
                                 f"upsample_{jax.default_backend()}.json")
  with open(out, "w") as f:
    json.dump({"info": machine_info(), "dtype": args.dtype, "rows": rows, "totals_ms": totals,
               "faster": winner}, f, indent=2)


if __name__ == "__main__":
  main()
