"""What every entry point shares: flags, optional multi-host start-up, one-line errors."""

from __future__ import annotations

import contextlib
import os
import sys

from gen.errors import UserError

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


@contextlib.contextmanager
def user_errors():
  """UserError (and a bad config value) -> `error: ...` on stderr and exit 2, no traceback."""
  try:
    yield
  except UserError as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(2)


def train_main(family: str) -> None:
  """`train_<family>.py`: --workdir, --config=<file>[:variant] and --config.a.b=value overrides."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter quiet
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top

  flags.DEFINE_string("workdir", None, "Run directory: checkpoints, samples, metrics.jsonl.")
  flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-host runs).")
  config_flags.DEFINE_config_file("config", os.path.join(CONFIG_DIR, f"{family}.py"),
                                  f"Config file, e.g. gen/configs/{family}.py[:variant].",
                                  lock_config=True)
  flags.mark_flags_as_required(["workdir"])
  flags_ = flags.FLAGS

  def main(argv):
    from absl import logging  # pylint: disable=g-import-not-at-top
    logging.set_verbosity(logging.WARNING)  # orbax and TFDS log every file they touch at INFO
    with user_errors():
      if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
      import jax  # pylint: disable=g-import-not-at-top
      if flags_.distributed:
        jax.distributed.initialize()
      config = flags_.config
      if config.family != family:
        raise UserError(f"config {flags_['config'].config_filename!r} is for family "
                        f"{config.family!r}, not {family!r}")
      from gen import trainer  # pylint: disable=g-import-not-at-top
      trainer.train(config, flags_.workdir)

  app.run(main)
