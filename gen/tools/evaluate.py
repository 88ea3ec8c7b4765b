"""Evaluates a run's latest checkpoint, or a set of images, and prints the metrics as JSON.

  gen evaluate --workdir runs/vae --metrics nll --num_importance 1000
  gen evaluate --workdir runs/gan --metrics fid_digits,kid_digits,pr_digits
  gen evaluate --workdir runs/abl --member 2      # one member of a run with members
  gen evaluate --images samples.npz --ref mnist5k:test --metrics fid_digits
  gen evaluate --images mnist5k:train --ref mnist5k:test --metrics fid_digits

With --workdir, --metrics defaults to the run's own `eval.metrics`; the data,
split and options come from the run's config.json unless a flag overrides
them. With --images (an .npz with uint8 `images`, or DATASET:SPLIT), the
sample-quality metrics compare those images with the --ref split.
"""

import json
import sys

from absl import flags

from gen.errors import UserError
from gen.tools import runner

FLAGS = flags.FLAGS


def _define_flags() -> None:
  flags.DEFINE_string("workdir", None, "Run directory written by a train_*.py script.")
  flags.DEFINE_string("images", None, "Images to score: an .npz with uint8 `images`, or DATASET:SPLIT.")
  flags.DEFINE_string("ref", None, "With --images: the reference, DATASET:SPLIT (e.g. mnist5k:test).")
  flags.DEFINE_integer("num_samples", None, "Generated images for fid/kid/is/pr (--workdir).")
  flags.DEFINE_bool("recompute_reference", False, "Recompute cached reference features.")
  flags.DEFINE_string("metrics", None, "Comma-separated metric names (default: the run's eval.metrics).")
  flags.DEFINE_integer("num_importance", None, "nll: importance samples K per example.")
  flags.DEFINE_integer("member", None, "With a run of several members (seeds, vary): which one.")
  flags.DEFINE_string("split", None, "Split to evaluate on (default: the run's eval.split).")


def _evaluate_images(names):
  import ml_collections

  from gen.configs.common import eval_config
  from gen.data import split_images
  from gen.images import read_images
  from gen.metrics import quality
  if not FLAGS.ref:
    raise UserError("--images needs --ref DATASET:SPLIT")
  unknown = [n for n in names if n not in quality.INCEPTION + quality.DIGITS]
  if unknown:
    raise UserError(f"with --images only sample-quality metrics apply, not {', '.join(unknown)}")
  config = ml_collections.ConfigDict({"eval": eval_config()})
  config.eval.recompute_reference = FLAGS.recompute_reference
  if ":" in FLAGS.images and not FLAGS.images.endswith(".npz"):
    images, labels = split_images(FLAGS.images)
  else:
    images, labels = read_images(FLAGS.images)[0], None
  from gen import metrics
  metrics.check(names, config)
  reference, _ = split_images(FLAGS.ref)
  cache = {}
  results = quality.quality(names, images, labels, reference, config, cache, FLAGS.ref)
  return {**results, "protocol": quality.protocol(cache)}


def main():
  if bool(FLAGS.workdir) == bool(FLAGS.images):
    raise UserError("pass exactly one of --workdir (a run) or --images (with --ref)")
  from gen import metrics
  from gen.data import open_config_builder
  from gen.runs import run_dir
  from gen.train import evaluation, processes, sharding
  if FLAGS.images:
    names = metrics.parse(FLAGS.metrics or "")
    if not names:
      raise UserError("no metrics to compute: pass --metrics (e.g. --metrics fid_digits)")
    results = _evaluate_images(names)
    if processes.primary():
      print(json.dumps(results))
    return
  config, family, state = run_dir.restore_for_inference(
      FLAGS.workdir, FLAGS.member, runner.sampling_flags())
  if FLAGS.num_importance is not None:
    config.eval.num_importance = FLAGS.num_importance
  if FLAGS.num_samples is not None:
    config.eval.num_samples = FLAGS.num_samples
  config.eval.recompute_reference = FLAGS.recompute_reference
  if FLAGS.split:
    config.eval.split = FLAGS.split
  names = metrics.parse(FLAGS.metrics if FLAGS.metrics is not None else config.eval.metrics)
  if not names:
    raise UserError("no metrics to compute: pass --metrics (e.g. --metrics nll)")
  config.eval.best_metric = ""  # this run's choice of best checkpoint is not evaluate's business
  metrics.check(names, config, family)
  builder = open_config_builder(config)
  protocol = {}
  results = evaluation.evaluate(config, family, state, builder, sharding.make_mesh(), names, protocol)
  member = {"member": FLAGS.member} if FLAGS.member is not None else {}
  if processes.primary():
    print(json.dumps({"step": int(state.step), **member, **results,
                      **({"protocol": protocol} if protocol else {})}))
    sys.stdout.flush()


def cli() -> None:
  _define_flags()
  runner.define_sampling_flags()
  runner.run(main)


if __name__ == "__main__":
  cli()
