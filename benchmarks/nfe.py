"""FID-digits and sampling time of a diffusion run against the number of network evaluations.

  python benchmarks/nfe.py --workdir runs/diffusion [--member 0] [--num 4000] [--out nfe.md]

For each sampler and NFE: 4,000 EMA samples (the default), their FID-digits against the 1,000
mnist5k test digits, and the wall time of sampling them (compilation excluded: a warm-up call
compiles first). Prints a markdown table (and writes it to --out).
"""

import time

import jax
from absl import app, flags

from gen.data import split_images
from gen.metrics import quality
from gen.runs.run_dir import restore_for_inference

flags.DEFINE_string("workdir", None, "A diffusion run directory.", required=True)
flags.DEFINE_integer("member", None, "With a run of several members: which one.")
flags.DEFINE_integer("num", 4000, "Samples per measurement.")
flags.DEFINE_string("grid", "heun:5,9,17,35;euler:5,10,18,35", "SAMPLER:NFE,NFE;...")
flags.DEFINE_string("out", None, "Also write the table to this file.")
FLAGS = flags.FLAGS


def main(_):
  reference, _ = split_images("mnist5k:test")
  rows = ["| sampler | NFE | FID-digits | sampling time (s) |", "|---|---|---|---|"]
  for part in FLAGS.grid.split(";"):
    sampler, nfes = part.split(":")
    for nfe in map(int, nfes.split(",")):
      config, family, state = restore_for_inference(FLAGS.workdir, FLAGS.member,
                                                    {"sampler": sampler, "nfe": nfe})
      key = jax.random.key(config.eval.seed)
      family.sample(state, key, config.sample.batch)  # compiles
      start = time.perf_counter()
      images = family.sample(state, key, FLAGS.num)["images"]
      seconds = time.perf_counter() - start
      fid = quality.quality(["fid_digits"], images, None, reference, config, {},
                            "mnist5k:test")["fid_digits"]
      rows.append(f"| {sampler} | {nfe} | {fid:.1f} | {seconds:.1f} |")
      print(rows[-1], flush=True)
  table = "\n".join(rows) + "\n"
  print(table)
  if FLAGS.out:
    with open(FLAGS.out, "w") as f:
      f.write(table)


if __name__ == "__main__":
  app.run(main)
