"""Speed of one GAN update (one D + one G step) in JAX, beside PyTorch eager in the same run.

  pip install -e '.[bench]'     # adds torch (CPU) for the reference column
  python benchmarks/train_step.py [--sizes 28,64] [--batch 64] [--out benchmarks/results/train_step.json]

For each image size it times the real `gen` step (the trainer's jitted,
donated, `steps_per_call`-step function) with steps_per_call 1 and 10, and the
same DCGAN written in PyTorch (pytorch/examples/dcgan, BCE == our
non-saturating loss, Adam(2e-4, 0.5, 0.999)) in eager mode. Synthetic batches:
this measures the step, not the input pipeline. Prints a table and writes JSON.
"""

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from gen import sharding
from gen.configs.gan import get_config
from gen.data import DatasetInfo
from gen.families.gan import Family
from gen.models.dcgan import layout
from gen.trainer import compile_steps
from timing import calls_per_sec, machine_info


def time_jax(size: int, channels: int, batch: int, steps_per_call: int, seconds: float) -> float:
  config = get_config()
  family = Family(config, DatasetInfo("synthetic", (size, size, channels), 0, 0))
  replicated = sharding.replicated(sharding.make_mesh())
  state = jax.jit(family.init_state, out_shardings=replicated)(jax.random.key(0))
  run = compile_steps(family, replicated)
  images = np.random.default_rng(0).uniform(-1, 1, (steps_per_call, batch, size, size, channels))
  batches = {"image": jnp.asarray(images, jnp.float32)}
  return calls_per_sec(run, state, batches, seconds)[1] * steps_per_call


def time_torch(size: int, channels: int, batch: int, seconds: float) -> float | None:
  try:
    import torch  # pylint: disable=g-import-not-at-top
    from torch import nn  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  torch.manual_seed(0)
  base, stages = layout(size)
  nz, ngf, ndf = 100, 64, 64
  c = ngf * 2 ** (stages - 1)
  g_layers = [nn.ConvTranspose2d(nz, c, base, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
  for _ in range(stages - 1):
    g_layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
    c //= 2
  g_layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
  d_layers, c = [nn.Conv2d(channels, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)], ndf
  for _ in range(stages - 1):
    d_layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2, True)]
    c *= 2
  d_layers += [nn.Conv2d(c, 1, base, 1, 0, bias=False)]
  net_g, net_d = nn.Sequential(*g_layers), nn.Sequential(*d_layers)
  opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
  opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
  bce = nn.BCEWithLogitsLoss()
  real = torch.rand(batch, channels, size, size) * 2 - 1
  ones, zeros = torch.ones(batch), torch.zeros(batch)

  def step():
    net_d.zero_grad()
    fake = net_g(torch.randn(batch, nz, 1, 1))
    loss_d = bce(net_d(real).view(-1), ones) + bce(net_d(fake.detach()).view(-1), zeros)
    loss_d.backward()
    opt_d.step()
    net_g.zero_grad()
    loss_g = bce(net_d(fake).view(-1), ones)
    loss_g.backward()
    opt_g.step()

  step()  # warm-up
  steps, start = 0, time.perf_counter()
  while True:
    step()
    steps += 1
    elapsed = time.perf_counter() - start
    if elapsed > seconds and steps >= 2:
      return steps / elapsed


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default="28,64", help="image sizes: 28 is 28x28x1, others are RGB")
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--seconds", type=float, default=10.0, help="timing window per row")
  parser.add_argument("--out", default="benchmarks/results/train_step.json")
  args = parser.parse_args()

  info = machine_info()
  try:
    import torch  # pylint: disable=g-import-not-at-top
    info["torch"] = torch.__version__
    info["torch_threads"] = torch.get_num_threads()
  except ImportError:
    print("torch not installed (pip install -e '.[bench]'): no PyTorch column")
  print(" ".join(f"{k}={v}" for k, v in info.items()))
  rows = []
  for size in (int(s) for s in args.sizes.split(",")):
    channels = 1 if size == 28 else 3
    torch_sps = time_torch(size, channels, args.batch, args.seconds)
    for spc in (1, 10):
      sps = time_jax(size, channels, args.batch, spc, args.seconds)
      rows.append({"image": f"{size}x{size}x{channels}", "batch": args.batch, "steps_per_call": spc,
                   "jax_steps_per_sec": sps, "jax_images_per_sec": sps * args.batch,
                   "torch_eager_steps_per_sec": torch_sps,
                   "jax_over_torch": sps / torch_sps if torch_sps else None})
  header = f"{'image':>10} {'batch':>5} {'spc':>4} {'jax steps/s':>12} {'jax img/s':>10} {'torch steps/s':>14} {'ratio':>6}"
  print(header)
  for r in rows:
    torch_col = f"{r['torch_eager_steps_per_sec']:14.2f}" if r["torch_eager_steps_per_sec"] else f"{'-':>14}"
    ratio = f"{r['jax_over_torch']:6.2f}" if r["jax_over_torch"] else f"{'-':>6}"
    print(f"{r['image']:>10} {r['batch']:5d} {r['steps_per_call']:4d} {r['jax_steps_per_sec']:12.2f} "
          f"{r['jax_images_per_sec']:10.1f} {torch_col} {ratio}")
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump({"info": info, "rows": rows}, f, indent=2)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
