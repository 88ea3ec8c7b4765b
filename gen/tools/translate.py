"""Translates images with a CycleGAN run's latest checkpoint.

  gen translate --workdir runs/cyclegan --direction AtoB --input IN --out OUT.npz [--member I]

IN is an .npz file with `images` (uint8 [N, H, W, C]) or a folder of PNG/JPEG
files (read in sorted name order; grayscale files give C = 1, others are read
as RGB). Images must have the model's size and channels: nothing is resized.
OUT gets `images` (uint8 [N, H, W, C], in input order) and, for a folder,
`names` (the file names).
"""

import sys

import numpy as np
from absl import flags

from gen.errors import UserError
from gen.tools import runner

FLAGS = flags.FLAGS


def _define_flags() -> None:
  flags.DEFINE_string("workdir", None, "Run directory written by train_cyclegan.py.", required=True)
  flags.DEFINE_enum("direction", "AtoB", ["AtoB", "BtoA"], "AtoB: G_AB(x); BtoA: G_BA(x).")
  flags.DEFINE_string("input", None, "An .npz with uint8 `images` [N, H, W, C], or a folder of PNG/JPEG.",
                      required=True)
  flags.DEFINE_integer("member", None, "With a run of several members (seeds, vary): which one.")
  flags.DEFINE_string("out", None, "Output .npz path.", required=True)


def main():
  from gen.images import read_images, write_npz
  images, names = read_images(FLAGS.input)
  from gen.families import Translator
  from gen.runs.run_dir import restore_for_inference
  config, family, state = restore_for_inference(FLAGS.workdir, FLAGS.member)
  if not isinstance(family, Translator):
    raise UserError(f"{FLAGS.workdir!r} holds a {config.family} run, which does not translate "
                    f"images: gen translate needs a translation model (cyclegan, pix2pix)")
  out = {"images": family.translate(state, images, FLAGS.direction)}
  if names is not None:
    out["names"] = np.asarray(names)
  from gen.train import processes
  if processes.primary():  # every process computed the same images; one writes them
    write_npz(FLAGS.out, out)
    print(f"wrote {FLAGS.out}: images {'x'.join(map(str, out['images'].shape))} uint8 "
          f"({FLAGS.direction})", file=sys.stderr)


def cli() -> None:
  _define_flags()
  runner.run(main)


if __name__ == "__main__":
  cli()
