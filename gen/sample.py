"""Samples from a run's latest checkpoint (the EMA generator where the family has one).

  python -m gen.sample --workdir runs/gan --num 1000 --out samples.npz [--seed 0] [--member I]

Writes `images` (uint8 [N, H, W, C]) and, for class-conditional models,
`labels` (int32 [N], balanced over the classes) to the .npz file.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # pylint: disable=g-import-not-at-top

from gen.cli import run_tool  # pylint: disable=g-import-not-at-top
from gen.errors import UserError  # pylint: disable=g-import-not-at-top

flags.DEFINE_string("workdir", None, "Run directory written by a train_*.py script.", required=True)
flags.DEFINE_integer("num", 64, "How many images to sample.")
flags.DEFINE_string("out", None, "Output .npz path.", required=True)
flags.DEFINE_integer("member", None, "With a run of several members (seeds, vary): which one.")
flags.DEFINE_integer("seed", 0, "Sampling seed (independent of the training seed).")
FLAGS = flags.FLAGS


def main():
  if FLAGS.num < 1:
    raise UserError(f"--num={FLAGS.num} must be >= 1")
  import jax  # pylint: disable=g-import-not-at-top
  from gen.images import write_npz  # pylint: disable=g-import-not-at-top
  from gen.families import Sampler  # pylint: disable=g-import-not-at-top
  from gen.run_dir import restore_for_inference  # pylint: disable=g-import-not-at-top
  config, family, state = restore_for_inference(FLAGS.workdir, FLAGS.member)
  if not isinstance(family, Sampler):
    raise UserError(f"{FLAGS.workdir!r} holds a {config.family} run, which does not sample images"
                    + (": use python -m gen.translate" if config.family == "cyclegan" else ""))
  out = family.sample(state, jax.random.key(FLAGS.seed), FLAGS.num)
  from gen import processes  # pylint: disable=g-import-not-at-top
  if processes.primary():  # every process computed the same images; one writes them
    write_npz(FLAGS.out, out)
    shape = "x".join(map(str, out["images"].shape))
    print(f"wrote {FLAGS.out}: images {shape} uint8"
          + (", labels" if "labels" in out else ""), file=sys.stderr)


if __name__ == "__main__":
  run_tool(main)
