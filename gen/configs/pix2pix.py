"""pix2pix (Isola et al. 2017) configs.

  python train_pix2pix.py --workdir runs/pix2pix
  gen translate --workdir runs/pix2pix --direction AtoB --input digits.npz --out bold.npz

Default: `digits2bold_pairs`, an offline paired task with an exact answer (each mnist5k digit
x beside T(x) = 1 - maxfilter3x3(x)), with the authors' recipe (U-Net G with skips and
dropout, 70x70 PatchGAN on [input, output], batch norm, BCE GAN loss + 100 x L1, Adam(2e-4,
0.5, 0.999), lr constant then linearly to 0) at 28x28 (a 5-level U-Net on the input padded to
32x32) with ngf = ndf = 32 and batch 16. At the end: test MAE against T and the translation
FID on digit features. Time and scores: docs/families.md.

Variants: `tiny` (tests) and `paper`, the authors' facades / maps setup for a folder of A|B
images in their layout (`train/`, `val/` or `test/`): 256x256 after resize 286 + random crop
+ flip, U-Net-256, batch 1, 100 + 100 epochs:

  python train_pix2pix.py --workdir runs/facades --config=gen/configs/pix2pix.py:paper \\
      --config.data.name=folder:/data/facades --config.direction=BtoA
"""

import ml_collections

from gen.configs.common import constant_then_linear_optim, shrink_to_tiny, trainer_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = trainer_config(family="pix2pix", batch_size=16, num_steps=2000, log_every=100,
                     sample_every=500, checkpoint_every=500, eval_every=1000)
  c.data.name = "digits2bold_pairs"
  c.data.split = "train"
  c.eval.split = "test"
  c.eval.metrics = "mae,fid_AtoB_digits"
  c.direction = "AtoB"  # the A (left) halves are the input, B (right) the output; or BtoA

  c.model = ml_collections.ConfigDict()
  c.model.ngf = 32
  c.model.ndf = 32
  c.model.num_downs = 0  # U-Net levels; 0 = ceil(log2(smaller side)): 8 at 256 (unet_256)
  c.model.d_layers = 3  # 3 = the 70x70 PatchGAN
  c.model.norm = "batch"  # batch | instance
  c.model.dropout = 0.5  # in the U-Net's innermost 512-wide up blocks (num_downs >= 6)

  c.loss = ml_collections.ConfigDict()
  c.loss.kind = "ns"  # ns (BCE, the authors' 'vanilla') | lsgan (MSE), as their GANLoss
  c.loss.l1_weight = 100.0  # lambda

  c.optim = constant_then_linear_optim()  # Adam(2e-4, 0.5, 0.999); 1000 + 1000 steps

  variant = arg or "digits2bold_pairs"
  if variant == "tiny":  # every moving part in seconds: tests and smoke runs
    c.model.ngf = c.model.ndf = 4
    c.model.num_downs = 2
    c.model.d_layers = 1
    shrink_to_tiny(c, batch_size=4)
    c.eval.batch_size = 500
    c.eval.metrics = "mae"
  elif variant == "paper":
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
  elif variant != "digits2bold_pairs":
    raise ValueError(f"unknown pix2pix config variant {variant!r}: digits2bold_pairs, tiny, paper")
  return c
