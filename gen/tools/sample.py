"""Samples from a run's latest checkpoint (the EMA generator where the family has one).

  gen sample --workdir runs/gan --num 1000 --out samples.npz [--seed 0] [--member I]
      [--truncation PSI] [--grid grid.png [--per_class K]] [--sampler S] [--nfe N] [--guidance W]

--out writes `images` (uint8 [N, H, W, C]) and, for class-conditional models, `labels`
(int32 [N], balanced over the classes: i % num_classes) to the .npz file.

--truncation PSI (GAN and VAE, whose images come from latents z ~ N(0, I)): BigGAN's truncation
trick, every latent coordinate with |z| > PSI redrawn until it is inside (gen.objectives.latents); smaller
PSI, less variety and more typical images. Left out, the latents (and images) are exactly the
untruncated ones.

--sampler, --nfe and --guidance (diffusion runs) replace the run's config.sample settings:
the sampler, its network evaluations per image, and the classifier-free guidance weight
(docs/diffusion.md).

--grid FILE.png writes a picture: for a class-conditional model one row per class, K images
each (--per_class, default 8: the draw of `--num C*K` with the same seed, sorted by class);
for an unconditional one the --num images in a square-ish grid. --out, --grid or both.
"""

import sys

from absl import flags

from gen.errors import UserError
from gen.tools import runner

FLAGS = flags.FLAGS


def _define_flags() -> None:
  flags.DEFINE_string("workdir", None, "Run directory written by a train_*.py script.", required=True)
  flags.DEFINE_integer("num", 64, "How many images to sample (--out; --grid of an unconditional model).")
  flags.DEFINE_string("out", None, "Output .npz path.")
  flags.DEFINE_integer("member", None, "With a run of several members (seeds, vary): which one.")
  flags.DEFINE_integer("seed", 0, "Sampling seed (independent of the training seed).")
  flags.DEFINE_float("truncation", None, "Truncation trick: redraw latent coordinates with |z| > "
                     "this (> 0) until inside. Left out: no truncation.")
  flags.DEFINE_string("grid", None, "Output .png: a grid of samples, one row per class for a "
                      "class-conditional model.")
  flags.DEFINE_integer("per_class", None, "--grid of a class-conditional model: images per class "
                       "(row). Default 8.")


PER_CLASS = 8


def main():
  if FLAGS.out is None and FLAGS.grid is None:
    raise UserError("nothing to write: give --out FILE.npz, --grid FILE.png or both")
  if FLAGS.num < 1:
    raise UserError(f"--num={FLAGS.num} must be >= 1")
  if FLAGS.truncation is not None and not FLAGS.truncation > 0:
    raise UserError(f"--truncation={FLAGS.truncation} must be > 0 (the threshold on |z|; leave it "
                    f"out for no truncation)")
  if FLAGS.per_class is not None and FLAGS.per_class < 1:
    raise UserError(f"--per_class={FLAGS.per_class} must be >= 1")
  if FLAGS.per_class is not None and FLAGS.grid is None:
    raise UserError("--per_class sets the --grid picture's rows: give --grid FILE.png")
  if FLAGS.out is not None and not FLAGS.out.endswith(".npz"):
    raise UserError(f"--out {FLAGS.out!r} must end in .npz")
  if FLAGS.grid is not None and not FLAGS.grid.lower().endswith(".png"):
    raise UserError(f"--grid {FLAGS.grid!r} must end in .png")
  import jax

  from gen import images
  from gen.families import LatentSampler, Sampler, Translator
  from gen.objectives import latents
  from gen.runs.run_dir import restore_for_inference
  config, family, state = restore_for_inference(
      FLAGS.workdir, FLAGS.member, runner.sampling_flags())
  if not isinstance(family, Sampler):
    raise UserError(f"{FLAGS.workdir!r} holds a {config.family} run, which does not sample images"
                    + (": use gen translate" if isinstance(family, Translator) else ""))
  options = {}
  if FLAGS.truncation is not None:  # left out: exactly the untruncated latents
    if not isinstance(family, LatentSampler):
      raise UserError(f"--truncation needs a model that draws images from latents z ~ N(0, I) "
                      f"(gan, vae); {FLAGS.workdir!r} holds a {config.family} run")
    options["truncation"] = FLAGS.truncation
  classes = family.num_classes
  if FLAGS.per_class is not None and not classes:
    raise UserError(f"--per_class is for class-conditional models; {FLAGS.workdir!r} holds an "
                    f"unconditional one (--num sets how many images the grid shows)")
  key = jax.random.key(FLAGS.seed)
  out = family.sample(state, key, FLAGS.num, **options) if FLAGS.out is not None else None
  picture = None
  if FLAGS.grid is not None:
    if classes:  # one row per class: the same draw as `--num C*K`, sorted by class
      per_class = FLAGS.per_class or PER_CLASS
      n = classes * per_class
      drawn = out if out is not None and FLAGS.num == n else family.sample(state, key, n, **options)
      picture = images.grid(latents.rows_by_class(drawn["images"], drawn["labels"], classes),
                            cols=per_class)
      shown = f"{classes} rows (classes 0..{classes - 1}) of {per_class}"
    else:
      drawn = out if out is not None else family.sample(state, key, FLAGS.num, **options)
      picture = images.grid(drawn["images"])
      shown = f"{FLAGS.num} images"
  from gen.train import processes
  if processes.primary():  # every process computed the same images; one writes them
    truncated = f", truncation {FLAGS.truncation:g}" if FLAGS.truncation is not None else ""
    if out is not None:
      images.write_npz(FLAGS.out, out)
      shape = "x".join(map(str, out["images"].shape))
      print(f"wrote {FLAGS.out}: images {shape} uint8" + (", labels" if "labels" in out else "")
            + truncated, file=sys.stderr)
    if picture is not None:
      try:
        images.save_png(FLAGS.grid, picture)
      except OSError as e:
        raise UserError(f"cannot write {FLAGS.grid!r}: {e.strerror or e}") from None
      print(f"wrote {FLAGS.grid}: {shown}{truncated}", file=sys.stderr)


def cli() -> None:
  _define_flags()
  runner.define_sampling_flags()
  runner.run(main)


if __name__ == "__main__":
  cli()
