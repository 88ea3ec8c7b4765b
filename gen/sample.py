"""Samples from a run's latest checkpoint (the EMA generator where the family has one).

  python -m gen.sample --workdir runs/gan --num 1000 --out samples.npz [--seed 0]

Writes `images` (uint8 [N, H, W, C]) and, for class-conditional models,
`labels` (int32 [N], balanced over the classes) to the .npz file.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top

from gen.cli import parse_flags, user_errors  # pylint: disable=g-import-not-at-top
from gen.errors import UserError  # pylint: disable=g-import-not-at-top

flags.DEFINE_string("workdir", None, "Run directory written by a train_*.py script.", required=True)
flags.DEFINE_integer("num", 64, "How many images to sample.")
flags.DEFINE_string("out", None, "Output .npz path.", required=True)
flags.DEFINE_integer("seed", 0, "Sampling seed (independent of the training seed).")
FLAGS = flags.FLAGS


def main(argv):
  logging.set_verbosity(logging.WARNING)
  with user_errors():
    if len(argv) > 1:
      raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.num < 1:
      raise UserError(f"--num={FLAGS.num} must be >= 1")
    import jax  # pylint: disable=g-import-not-at-top
    import numpy as np  # pylint: disable=g-import-not-at-top
    from gen.trainer import restore_for_inference  # pylint: disable=g-import-not-at-top
    _, family, state = restore_for_inference(FLAGS.workdir)
    out = family.sample(state, jax.random.key(FLAGS.seed), FLAGS.num)
    try:
      os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
      np.savez(FLAGS.out, **out)
    except OSError as e:
      raise UserError(f"cannot write {FLAGS.out!r}: {e.strerror or e}") from None
    shape = "x".join(map(str, out["images"].shape))
    print(f"wrote {FLAGS.out}: images {shape} uint8"
          + (", labels" if "labels" in out else ""), file=sys.stderr)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
