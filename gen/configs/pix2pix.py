"""pix2pix (Isola et al. 2017) configs.

Default (no arg): `digits2bold_pairs`, an offline paired task with an exact answer (each
mnist5k digit x beside T(x) = 1 - maxfilter3x3(x); see gen/data/digits2bold.py). The paper's
recipe (U-Net generator with skips and dropout, 70x70 PatchGAN conditioned on the input,
batch norm, BCE GAN loss + 100 x L1, Adam(2e-4, 0.5, 0.999), lr constant then linearly to 0)
at 28x28 (a 5-level U-Net on the input padded to 32x32, so no dropout layer) with
ngf = ndf = 32 and batch 16:

  python train_pix2pix.py --workdir runs/pix2pix
  python -m gen.translate --workdir runs/pix2pix --direction AtoB --input digits.npz --out bold.npz

At the end it evaluates `test_mae_AtoB` (mean |G(a) - T(a)|, pixels in [0, 1], against
`test_mae_identity` and `test_mae_AtoB_meanB`) and `test_fid_AtoB_digits`. Measured on 2 CPU
cores: see README (pix2pix).

Variants (`--config=gen/configs/pix2pix.py:NAME`): `tiny` (a smoke run in seconds, the tests
use it) and `paper`: the authors' facades / maps setup for a folder of A|B images in
pix2pix's layout (`train/`, `val/` or `test/`), 256x256 after resize 286 + random crop +
flip, U-Net-256, batch 1, 100 + 100 epochs:

  python train_pix2pix.py --workdir runs/facades --config=gen/configs/pix2pix.py:paper \\
      --config.data.name=folder:/data/facades --config.direction=BtoA

(facades: the photos are the A halves and the labels the B halves, hence BtoA.)
"""

import ml_collections

from gen.configs.common import constant_then_linear_optim, shrink_to_tiny, trainer_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = trainer_config()
  c.family = "pix2pix"
  c.data.name = "digits2bold_pairs"
  c.data.split = "train"
  c.eval.split = "test"
  c.eval.metrics = "mae,fid_AtoB_digits"
  c.eval.batch_size = 100
  c.direction = "AtoB"  # the A (left) halves are the input, B (right) the output; or BtoA
  c.batch_size = 16
  c.num_steps = 2000
  c.steps_per_call = 10
  c.log_every = 100
  c.sample_every = 500
  c.checkpoint_every = 500
  c.eval_every = 1000

  c.model = ml_collections.ConfigDict()
  c.model.ngf = 32
  c.model.ndf = 32
  c.model.num_downs = 0  # U-Net levels; 0 = ceil(log2(smaller side)): 8 at 256 (unet_256)
  c.model.d_layers = 3  # 3 = the 70x70 PatchGAN
  c.model.norm = "batch"  # batch | instance
  c.model.dropout = 0.5  # in the U-Net's innermost 512-wide up blocks (num_downs >= 6)

  c.loss = ml_collections.ConfigDict()
  c.loss.kind = "ns"  # ns (BCE, the authors' 'vanilla') | lsgan
  c.loss.l1_weight = 100.0  # lambda

  c.optim = constant_then_linear_optim()  # Adam(2e-4, 0.5, 0.999); 1000 + 1000 steps

  arg = arg or "digits2bold_pairs"
  if arg == "tiny":  # every moving part in seconds: tests and smoke runs
    c.model.ngf = c.model.ndf = 4
    c.model.num_downs = 2
    shrink_to_tiny(c, batch_size=4)
    c.eval.batch_size = 500
    c.eval.metrics = "mae"
  elif arg == "paper":
    c.data.name = ""  # folder:PATH of A|B images (train/ and val/ or test/)
    c.eval.split = "val"
    c.data.image_size = "256"
    c.data.load_size = 286
    c.data.random_flip = True
    c.eval.metrics = "mae"
    c.batch_size = 1
    c.model.ngf = c.model.ndf = 64
    c.optim.unit = "epochs"
    c.optim.constant = c.optim.decay = 100
    c.num_steps = 200 * 400  # facades: 400 training pairs per epoch; set per dataset
    c.steps_per_call = 1
    c.sample_every = c.checkpoint_every = 5000
    c.eval_every = 0
  elif arg != "digits2bold_pairs":
    raise ValueError(f"unknown pix2pix config {arg!r}: tiny, paper or none")
  return c
