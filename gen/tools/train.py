"""Trains a family from its config file.

  gen train --workdir runs/mine --config=path/to/config.py[:variant] [--config.a.b=value ...]

`train_gan.py`, `train_vae.py`, `train_cyclegan.py` and `train_pix2pix.py` are this with their
family's config (gen/configs/<family>.py) as the default; any family that a config file
defines or imports trains the same way (docs/adding_a_family.md).
"""

from __future__ import annotations

import os

from absl import flags
from ml_collections import config_flags

from gen.errors import UserError
from gen.tools import runner

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
FLAGS = flags.FLAGS


def main(family: str | None) -> None:
  with runner.flag_errors():  # config_flags may load the file only now
    config = FLAGS.config
    config_family = config.get("family")
  if family and config_family != family:
    raise UserError(f"config {FLAGS['config'].config_filename!r} is for family "
                    f"{config_family!r}, not {family!r}")
  from gen.train import train
  train(config, FLAGS.workdir)


def cli(family: str | None = None) -> None:
  """`gen train` (any family; --config required), or a family's train_<family>.py."""
  flags.DEFINE_string("workdir", None, "Run directory: checkpoints, samples, metrics.jsonl.")
  default = os.path.join(CONFIG_DIR, f"{family}.py") if family else None
  with runner.flag_errors():  # config_flags applies --config.* overrides already here
    config_flags.DEFINE_config_file(
        "config", default, f"Config file, e.g. gen/configs/{family or 'gan'}.py[:variant].",
        lock_config=True)
  flags.mark_flags_as_required(["workdir"] + ([] if family else ["config"]))
  runner.run(lambda: main(family))


if __name__ == "__main__":
  cli()
