"""CycleGAN (Zhu et al. 2017) configs.

Default (no arg): `digits2bold`, an offline unpaired task with an exact answer
(A: mnist5k digits; B: T(x) = 1 - maxfilter3x3(x), a bold inverted digit;
see gen/data/digits2bold.py). The paper's recipe (ResNet generator with 6
blocks, 70x70 PatchGAN, instance norm, LSGAN, lambda = 10, identity 0.5, pool
of 50, Adam(2e-4, 0.5, 0.999), constant then linearly decaying lr) at 28x28
with narrower nets (ngf = ndf = 32) and batch 4, so it trains in about 10
minutes on 2 CPU cores:

  python train_cyclegan.py --workdir runs/cyclegan
  python -m gen.translate --workdir runs/cyclegan --direction AtoB --input digits.npz --out bold.npz

At the end it evaluates `test_mae_AtoB` (mean |G_AB(a) - T(a)|, pixels in [0, 1])
and `test_mae_BtoA` against the trivial baselines `test_mae_identity` and
`test_mae_AtoB_meanB`, and the unpaired translation FIDs `test_fid_AtoB_digits`,
`test_fid_BtoA_digits` (translated test A vs test B on the digit classifier's features;
see gen/metrics/translation.py).

Variants (`--config=gen/configs/cyclegan.py:NAME`): `tiny` (4-channel nets, one residual
block, 2 steps: a smoke run in seconds, the tests use it), or any TFDS `cycle_gan` config,
e.g. `horse2zebra`, `monet2photo`, `summer2winter_yosemite`, `apple2orange`:
the paper's setup (256x256 after resize 286 + random crop + flip, 9 blocks,
batch 1, 100 epochs at 2e-4 then 100 decaying to 0), evaluated by `fid_AtoB` / `fid_BtoA`
(translated test images vs the other domain's test split, FID Inception; needs its weights,
see README Metrics).

Reproduction, horse2zebra (needs `cycle_gan/horse2zebra` prepared in the TFDS data_dir):

  python train_cyclegan.py --workdir runs/h2z --config=gen/configs/cyclegan.py:horse2zebra

Expected: test_fid_AtoB (horse -> zebra) about 62: the official CycleGAN model's FID is
62.1, and 77.2 without the identity loss (`--config.loss.identity_weight=0`); OpenMMLab's
re-trained models score 64.5 and 74.8 under the same protocol (translated test A against
test B at 256x256; open-mmlab/mmgeneration configs/cyclegan/README.md). Not run here (no
network to fetch the dataset).
"""

import ml_collections

from gen.configs.common import constant_then_linear_optim, shrink_to_tiny, trainer_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = trainer_config()
  c.family = "cyclegan"
  c.data.name = "digits2bold"
  c.data.split = "train"  # reads trainA and trainB
  c.eval.split = "test"  # testA and testB
  c.eval.metrics = "mae,fid_AtoB_digits,fid_BtoA_digits"
  c.eval.batch_size = 100
  c.batch_size = 4
  c.num_steps = 2000
  c.steps_per_call = 1  # a CycleGAN step is big enough; unrolling more only slows compilation
  c.log_every = 100
  c.sample_every = 500
  c.checkpoint_every = 500
  c.eval_every = 1000

  c.model = ml_collections.ConfigDict()
  c.model.ngf = 32
  c.model.ndf = 32
  c.model.blocks = 6  # residual blocks; 0 = the paper's choice (9 at >= 256 px, else 6)
  c.model.d_layers = 3  # 3 = the 70x70 PatchGAN

  c.loss = ml_collections.ConfigDict()
  c.loss.cycle_weight = 10.0  # lambda, each way
  c.loss.identity_weight = 0.5  # times lambda; 0 disables the identity loss

  c.pool = ml_collections.ConfigDict()
  c.pool.size = 50  # history of fakes per domain shown to the discriminators (0: none)

  c.optim = constant_then_linear_optim()  # Adam(2e-4, 0.5, 0.999); 1000 + 1000 steps

  arg = arg or "digits2bold"
  if arg == "tiny":  # every moving part in seconds: tests and smoke runs
    c.model.ngf = c.model.ndf = 4
    c.model.blocks = 1
    shrink_to_tiny(c, batch_size=2)
    c.pool.size = 3
    c.eval.batch_size = 500
    c.eval.metrics = "mae"
  elif arg != "digits2bold":
    c.data.name = f"cycle_gan/{arg}"
    c.data.image_size = "256"
    c.data.load_size = 286
    c.data.random_flip = True
    c.eval.metrics = "fid_AtoB,fid_BtoA"  # no paired ground truth: the translation FIDs
    c.batch_size = 1
    c.model.ngf = c.model.ndf = 64
    c.model.blocks = 0
    c.optim.unit = "epochs"
    c.optim.constant = c.optim.decay = 100
    c.num_steps = 200 * 1334  # horse2zebra: 1,334 zebras per epoch; set per dataset
    c.steps_per_call = 1
    c.log_every = 100
    c.sample_every = c.checkpoint_every = 5000
    c.eval_every = 0
  return c
