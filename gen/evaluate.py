"""Evaluates a run's latest checkpoint, or a set of images, and prints the metrics as JSON.

  python -m gen.evaluate --workdir runs/vae --metrics nll --num-importance 1000
  python -m gen.evaluate --workdir runs/gan --metrics fid_digits,kid_digits,pr_digits
  python -m gen.evaluate --workdir runs/abl --member 2      # one member of a run with members
  python -m gen.evaluate --images samples.npz --ref mnist5k:test --metrics fid_digits
  python -m gen.evaluate --images mnist5k:train --ref mnist5k:test --metrics fid_digits

With --workdir, --metrics defaults to the run's own `eval.metrics`; the data,
split and options come from the run's config.json unless a flag overrides
them. With --images (an .npz with uint8 `images`, or DATASET:SPLIT), the
sample-quality metrics compare those images with the --ref split.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # pylint: disable=g-import-not-at-top

from gen.cli import run_tool  # pylint: disable=g-import-not-at-top
from gen.errors import UserError  # pylint: disable=g-import-not-at-top

flags.DEFINE_string("workdir", None, "Run directory written by a train_*.py script.")
flags.DEFINE_string("images", None, "Images to score: an .npz with uint8 `images`, or DATASET:SPLIT.")
flags.DEFINE_string("ref", None, "With --images: the reference, DATASET:SPLIT (e.g. mnist5k:test).")
flags.DEFINE_integer("num-samples", None, "Generated images for fid/kid/is/pr (--workdir).")
flags.DEFINE_bool("recompute-reference", False, "Recompute cached reference features.")
flags.DEFINE_string("metrics", None, "Comma-separated metric names (default: the run's eval.metrics).")
flags.DEFINE_integer("num-importance", None, "nll: importance samples K per example.")
flags.DEFINE_integer("member", None, "With a run of several members (seeds, vary): which one.")
flags.DEFINE_string("split", None, "Split to evaluate on (default: the run's eval.split).")
FLAGS = flags.FLAGS


def _split_images(spec: str):
  """DATASET:SPLIT -> (uint8 images, labels or None)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from gen.data import Pipeline, open_builder  # pylint: disable=g-import-not-at-top
  name, sep, split = spec.rpartition(":")
  if not sep or not name or not split:
    raise UserError(f"{spec!r} is not DATASET:SPLIT (e.g. mnist5k:test)")
  parts = list(Pipeline(open_builder(name), split, batch_size=1000, repeat=False,
                        value_range=(0.0, 255.0)))
  images = np.concatenate([p["image"] for p in parts]).round().astype(np.uint8)
  labels = np.concatenate([p["label"] for p in parts]) if "label" in parts[0] else None
  return images, labels


def _evaluate_images(names):
  from gen.configs.common import trainer_config  # pylint: disable=g-import-not-at-top
  from gen.metrics import quality  # pylint: disable=g-import-not-at-top
  from gen.images import read_images  # pylint: disable=g-import-not-at-top
  if not FLAGS.ref:
    raise UserError("--images needs --ref DATASET:SPLIT")
  unknown = [n for n in names if n not in quality.INCEPTION + quality.DIGITS]
  if unknown:
    raise UserError(f"with --images only sample-quality metrics apply, not {', '.join(unknown)}")
  config = trainer_config()
  config.eval.recompute_reference = FLAGS["recompute-reference"].value
  if ":" in FLAGS.images and not FLAGS.images.endswith(".npz"):
    images, labels = _split_images(FLAGS.images)
  else:
    images, labels = read_images(FLAGS.images)[0], None
  from gen import metrics  # pylint: disable=g-import-not-at-top
  metrics.check(names, config)
  reference, _ = _split_images(FLAGS.ref)
  cache = {}
  results = quality.quality(names, images, labels, reference, config, cache, FLAGS.ref)
  return {**results, "protocol": quality.protocol(cache)}


def main():
  if bool(FLAGS.workdir) == bool(FLAGS.images):
    raise UserError("pass exactly one of --workdir (a run) or --images (with --ref)")
  from gen import metrics, processes, run_dir, sharding, trainer  # pylint: disable=g-import-not-at-top
  from gen.data import open_config_builder  # pylint: disable=g-import-not-at-top
  if FLAGS.images:
    names = metrics.parse(FLAGS.metrics or "")
    if not names:
      raise UserError("no metrics to compute: pass --metrics (e.g. --metrics fid_digits)")
    results = _evaluate_images(names)
    if processes.primary():
      print(json.dumps(results))
    return
  config, family, state = run_dir.restore_for_inference(FLAGS.workdir, FLAGS.member)
  if FLAGS["num-importance"].value is not None:
    config.eval.num_importance = FLAGS["num-importance"].value
  if FLAGS["num-samples"].value is not None:
    config.eval.num_samples = FLAGS["num-samples"].value
  config.eval.recompute_reference = FLAGS["recompute-reference"].value
  if FLAGS.split:
    config.eval.split = FLAGS.split
  names = metrics.parse(FLAGS.metrics if FLAGS.metrics is not None else config.eval.metrics)
  if not names:
    raise UserError("no metrics to compute: pass --metrics (e.g. --metrics nll)")
  config.eval.best_metric = ""  # this run's choice of best checkpoint is not evaluate's business
  metrics.check(names, config, family)
  builder = open_config_builder(config)
  protocol = {}
  results = trainer.evaluate(config, family, state, builder, sharding.make_mesh(), names, protocol)
  member = {"member": FLAGS.member} if FLAGS.member is not None else {}
  if processes.primary():
    print(json.dumps({"step": int(state.step), **member, **results,
                      **({"protocol": protocol} if protocol else {})}))
    sys.stdout.flush()


if __name__ == "__main__":
  run_tool(main)
