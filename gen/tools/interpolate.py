"""A walk through a generator's latent space, as an animated GIF and a PNG strip.

  gen interpolate --workdir runs/gan --out walk.gif [--seeds 0,1,2] [--steps 16]
      [--truncation PSI] [--label C] [--member I] [--noloop] [--frame_ms 100]

Each seed gives one latent, the one `gen sample --seed S --num 1` draws (with the same
--truncation); the walk goes from each to the next along the great circle (spherical
interpolation, gen.objectives.latents.slerp), --steps frames per leg, the first frame of a leg being its
seed's image, and back to the first seed (left out with --noloop, which ends on the last seed).
A class-conditional model draws every frame as class --label (default 0).

Writes the GIF (looping; GIF stores durations in 10 ms units, and Pillow merges consecutive
frames that are identical into one longer one) and, beside it with the same stem, a .png strip
of every frame side by side (height H, width frames x W).
"""

import os
import sys

from absl import flags

from gen.errors import UserError
from gen.tools import runner

FLAGS = flags.FLAGS


def _define_flags() -> None:
  flags.DEFINE_string("workdir", None, "Run directory of a GAN (or VAE) run.", required=True)
  flags.DEFINE_string("out", None, "Output .gif path; the strip goes to the same path with .png.",
                      required=True)
  flags.DEFINE_string("seeds", "0,1,2", "Comma-separated sampling seeds, one latent each (>= 2).")
  flags.DEFINE_integer("steps", 16, "Frames per leg (from one seed's latent towards the next), >= 2.")
  flags.DEFINE_float("truncation", None, "Truncation trick for the seeds' latents (as gen sample).")
  flags.DEFINE_integer("label", None, "Class of every frame, for a class-conditional model (default 0).")
  flags.DEFINE_integer("member", None, "With a run of several members (seeds, vary): which one.")
  flags.DEFINE_bool("loop", True, "Walk back to the first seed (a seamless loop); --noloop ends on "
                    "the last seed.")
  flags.DEFINE_integer("frame_ms", 100, "Milliseconds per GIF frame.")


def parse_seeds(text: str) -> list[int]:
  """'0,1,2' -> [0, 1, 2]; anything else is one line."""
  parts = [p.strip() for p in text.split(",")]
  try:
    seeds = [int(p) for p in parts]
  except ValueError:
    raise UserError(f"--seeds={text!r} must be comma-separated integers, e.g. 0,1,2") from None
  if len(seeds) < 2:
    raise UserError(f"--seeds={text!r} must name at least 2 seeds to walk between, e.g. 0,1")
  if any(s < 0 for s in seeds):
    raise UserError(f"--seeds={text!r}: seeds must be >= 0")
  return seeds


def frame_count(seeds: int, steps: int, loop: bool) -> int:
  return seeds * steps if loop else (seeds - 1) * steps + 1


def write_gif(path: str, frames, frame_ms: int) -> None:
  """uint8 [T, H, W, C] -> an animated GIF that loops forever (written whole, then renamed)."""
  from PIL import Image
  pictures = [Image.fromarray(f[..., 0] if f.shape[-1] == 1 else f) for f in frames]
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + ".tmp.gif"
  pictures[0].save(tmp, save_all=True, append_images=pictures[1:], duration=frame_ms, loop=0)
  os.replace(tmp, path)


def main():
  seeds = parse_seeds(FLAGS.seeds)
  if FLAGS.steps < 2:
    raise UserError(f"--steps={FLAGS.steps} must be >= 2 (frames per leg, the seed's own included)")
  if FLAGS.truncation is not None and not FLAGS.truncation > 0:
    raise UserError(f"--truncation={FLAGS.truncation} must be > 0 (the threshold on |z|; leave it "
                    f"out for no truncation)")
  if FLAGS.frame_ms < 1:
    raise UserError(f"--frame_ms={FLAGS.frame_ms} must be >= 1")
  if not FLAGS.out.lower().endswith(".gif"):
    raise UserError(f"--out {FLAGS.out!r} must end in .gif (the PNG strip goes beside it)")
  import jax
  import jax.numpy as jnp
  import numpy as np

  from gen import images
  from gen.families import LatentSampler
  from gen.objectives import latents
  from gen.runs.run_dir import restore_for_inference
  config, family, state = restore_for_inference(
      FLAGS.workdir, FLAGS.member, runner.sampling_flags())
  if not isinstance(family, LatentSampler):
    raise UserError(f"{FLAGS.workdir!r} holds a {config.family} run: gen interpolate needs a "
                    f"model that draws images from latents z ~ N(0, I) (gan, vae)")
  classes = family.num_classes
  if classes:
    label = 0 if FLAGS.label is None else FLAGS.label
    if not 0 <= label < classes:
      raise UserError(f"--label={label} is not a class of this model: 0..{classes - 1}")
  elif FLAGS.label is not None:
    raise UserError(f"--label is for class-conditional models; {FLAGS.workdir!r} holds an "
                    f"unconditional one")
  # Each seed's latent is the one gen sample --seed S --num 1 draws.
  z = jnp.concatenate([family.draw_latents(jax.random.key(s), 1, FLAGS.truncation) for s in seeds])
  path = latents.loop_path(z, FLAGS.steps, FLAGS.loop)
  labels = np.full(len(path), label, np.int32) if classes else None
  frames = family.generate_images(state, path, labels)
  strip_path = os.path.splitext(FLAGS.out)[0] + ".png"
  from gen.train import processes
  if processes.primary():  # every process computed the same frames; one writes them
    try:
      write_gif(FLAGS.out, frames, FLAGS.frame_ms)
      images.save_png(strip_path, images.grid(frames, cols=len(frames), pad=0))
    except OSError as e:
      raise UserError(f"cannot write {e.filename or FLAGS.out!r}: {e.strerror or e}") from None
    n, h, w, c = frames.shape
    print(f"wrote {FLAGS.out} ({n} frames of {h}x{w}x{c}, {len(seeds)} seeds x {FLAGS.steps} steps"
          f"{', looped' if FLAGS.loop else ''}) and {strip_path} ({h}x{n * w})", file=sys.stderr)


def cli() -> None:
  _define_flags()
  runner.define_sampling_flags()
  runner.run(main)


if __name__ == "__main__":
  cli()
