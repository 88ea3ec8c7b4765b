"""K members in one program (gen.train.members) against K runs one after the other.

  python benchmarks/members.py [--families gan,vae] [--members 1,2,4,8] \
      [--out benchmarks/results/members.json]

For the default GAN (DCGAN, 28x28x1, batch 64) and the default VAE (MLP, batch
100) it times the trainer's real update function (`step_lib.compile_steps`, the
member step vmapped, state donated, 10 steps per call) on synthetic batches:
the compile time and the steady-state steps/s of K members in one program, with
the members vmapped (one batched program) and looped (one after another inside
the program; what `member_map=auto` picks on CPU).
K runs one after the other process K x as many images at the 1-member rate and
compile K times. Reported per K:

  members img/s    K x batch x steps/s of the K-member program (steady state)
  sequential img/s batch x steps/s of one run (the same whatever K)
  speed-up         their ratio
  run speed-up     the same for whole runs of --run-steps steps, compile included:
                   (K x (compile_1 + steps / sps_1)) / (compile_K + steps / sps_K)
Prints a markdown table and writes JSON.
"""

import argparse
import json
import os
import time

import jax
import numpy as np
from timing import calls_per_sec, machine_info

from gen.configs import gan, vae
from gen.data import DatasetInfo
from gen.families import get as get_family
from gen.train import members as members_lib
from gen.train import sharding
from gen.train.step import compile_steps

CONFIGS = {"gan": gan.get_config, "vae": vae.get_config}


def measure(family_name: str, k: int, seconds: float, mapping: str = "vmap") -> dict:
  config = CONFIGS[family_name]()
  with config.unlocked():
    config.seeds = k
    if family_name == "gan":
      config.batch_size = 64  # as recorded in benchmarks/results/members.json
  info = DatasetInfo("mnist5k", (28, 28, 1), 10, 4000)
  family_cls = get_family(config.family)
  family = family_cls(config, info)
  members = members_lib.from_config(config, family_cls, info)
  mesh = sharding.make_mesh(sharding.member_shards(k) if members else 1)
  lo, hi = family.value_range
  rng = np.random.default_rng(0)
  spc, batch = config.steps_per_call, config.batch_size
  images = rng.uniform(lo, hi, (spc, batch, 28, 28, 1)).astype(np.float32)
  batches = sharding.to_global({"image": images, "label": rng.integers(0, 10, (spc, batch))},
                               sharding.batch_sharding(mesh, batch_axis=1))
  started = time.perf_counter()
  if members:
    state_sharding = sharding.member_sharding(mesh)
    keys = jax.vmap(jax.random.key)(np.asarray(members.seeds))
    state = jax.jit(jax.vmap(family.init_state), out_shardings=state_sharding)(keys)
    carry = (state, jax.device_put(np.ones(k, bool), state_sharding))
    run = compile_steps(family, (state_sharding, state_sharding), members, mapping=mapping)
  else:
    replicated = sharding.replicated(mesh)
    carry = jax.jit(family.init_state, out_shardings=replicated)(jax.random.key(0))
    run = compile_steps(family, replicated)
  jax.block_until_ready(carry)
  init_seconds = time.perf_counter() - started
  compile_seconds, calls = calls_per_sec(run, carry, batches, seconds)
  compile_seconds += init_seconds  # start-up: initialisation and compilation
  sps = calls * spc
  return {"family": family_name, "members": k, "map": mapping if k > 1 else "-", "batch": batch,
          "compile_seconds": compile_seconds,
          "steps_per_sec": sps, "images_per_sec": k * batch * sps}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--families", default="gan,vae")
  parser.add_argument("--members", default="1,2,4,8")
  parser.add_argument("--maps", default="vmap,loop", help="member mappings (see step_lib.member_map)")
  parser.add_argument("--seconds", type=float, default=8.0, help="timing window per row")
  parser.add_argument("--run-steps", type=int, default=2000, help="run length for 'run speed-up'")
  parser.add_argument("--out", default="benchmarks/results/members.json")
  args = parser.parse_args()
  info = machine_info()
  print(" ".join(f"{k}={v}" for k, v in info.items()))
  rows = []
  lines = ["| family | K | map | members img/s | sequential img/s | speed-up | compile K / 1 (s) | "
           f"run speed-up ({args.run_steps} steps) |", "|---|---|---|---|---|---|---|---|"]
  for family in args.families.split(","):
    one = None
    ks = [int(x) for x in args.members.split(",")]
    for k, mapping in [(n, m) for n in ks for m in (args.maps.split(",") if n > 1 else ["-"])]:
      r = measure(family, k, args.seconds, mapping)
      one = one or (r if k == 1 else measure(family, 1, args.seconds))
      r["sequential_images_per_sec"] = one["images_per_sec"]
      r["speedup"] = r["images_per_sec"] / one["images_per_sec"]
      sequential = k * (one["compile_seconds"] + args.run_steps / one["steps_per_sec"])
      together = r["compile_seconds"] + args.run_steps / r["steps_per_sec"]
      r["run_speedup"] = sequential / together
      rows.append(r)
      lines.append(f"| {family} | {k} | {r['map']} | {r['images_per_sec']:.0f} | "
                   f"{one['images_per_sec']:.0f} | "
                   f"{r['speedup']:.2f}x | {r['compile_seconds']:.1f} / {one['compile_seconds']:.1f} | "
                   f"{r['run_speedup']:.2f}x |")
      print(lines[-1], flush=True)
  print("\n".join(lines))
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump({"info": info, "rows": rows, "table": "\n".join(lines)}, f, indent=2)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
