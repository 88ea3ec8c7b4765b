"""Evaluates a run's latest checkpoint and prints the metrics as one JSON object.

  python -m gen.evaluate --workdir runs/vae --metrics nll --num-importance 1000

--metrics defaults to the run's own `eval.metrics`; the data, split and
options come from the run's config.json unless a flag overrides them.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top

from gen.cli import parse_flags, user_errors  # pylint: disable=g-import-not-at-top
from gen.errors import UserError  # pylint: disable=g-import-not-at-top

flags.DEFINE_string("workdir", None, "Run directory written by a train_*.py script.", required=True)
flags.DEFINE_string("metrics", None, "Comma-separated metric names (default: the run's eval.metrics).")
flags.DEFINE_integer("num-importance", None, "nll: importance samples K per example.")
flags.DEFINE_string("split", None, "Split to evaluate on (default: the run's eval.split).")
FLAGS = flags.FLAGS


def main(argv):
  logging.set_verbosity(logging.WARNING)
  with user_errors():
    if len(argv) > 1:
      raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    from gen import metrics, sharding, trainer  # pylint: disable=g-import-not-at-top
    from gen.data import open_builder  # pylint: disable=g-import-not-at-top
    config, family, state = trainer.restore_for_inference(FLAGS.workdir)
    if FLAGS["num-importance"].value is not None:
      config.eval.num_importance = FLAGS["num-importance"].value
    if FLAGS.split:
      config.eval.split = FLAGS.split
    names = metrics.parse(FLAGS.metrics if FLAGS.metrics is not None else config.eval.metrics)
    if not names:
      raise UserError("no metrics to compute: pass --metrics (e.g. --metrics nll)")
    builder = open_builder(config.data.name, config.data.data_dir or None)
    results = trainer.evaluate(config, family, state, builder, sharding.make_mesh(), names)
    print(json.dumps({"step": int(state.step), **results}))
    sys.stdout.flush()


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
