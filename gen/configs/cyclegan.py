"""CycleGAN (Zhu et al. 2017) configs.

  python train_cyclegan.py --workdir runs/cyclegan
  gen translate --workdir runs/cyclegan --direction AtoB --input digits.npz --out bold.npz

Default: `digits2bold`, an offline unpaired task with an exact answer (A: mnist5k digits; B:
T(x) = 1 - maxfilter3x3(x), gen/data/digits2bold.py), with the paper's recipe (ResNet G with 6
blocks, 70x70 PatchGAN, instance norm, LSGAN, lambda 10, identity 0.5, a pool of 50,
Adam(2e-4, 0.5, 0.999), lr constant then linearly to 0) at 28x28 with ngf = ndf = 32 and
batch 4. At the end: test MAE against T (and its trivial baselines) and the translation
FIDs on digit features (gen/metrics/translation.py). Time and scores: docs/families.md.

Variants: `tiny` (tests), or any TFDS `cycle_gan` config (`horse2zebra`, `monet2photo`, ...):
the paper's 256x256 setup; reproduction and published numbers in docs/reproductions.md.
"""

import ml_collections

from gen.configs.common import constant_then_linear_optim, shrink_to_tiny, trainer_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = trainer_config(family="cyclegan", batch_size=4, num_steps=2000, log_every=100,
                     sample_every=500, checkpoint_every=500, eval_every=1000)
  c.data.name = "digits2bold"
  c.data.split = "train"  # reads trainA and trainB
  c.eval.split = "test"  # testA and testB
  c.eval.metrics = "mae,fid_AtoB_digits,fid_BtoA_digits"
  c.steps_per_call = 1  # a CycleGAN step is big enough; unrolling more only slows compilation

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

  variant = arg or "digits2bold"
  if variant == "tiny":  # every moving part in seconds: tests and smoke runs
    c.model.ngf = c.model.ndf = 4
    c.model.blocks = 1
    c.model.d_layers = 1
    shrink_to_tiny(c, batch_size=2)
    c.pool.size = 3
    c.eval.batch_size = 500
    c.eval.metrics = "mae"
  elif variant != "digits2bold":  # a TFDS cycle_gan config: the paper's setup
    c.data.name = f"cycle_gan/{variant}"
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
    c.sample_every = c.checkpoint_every = 5000
    c.eval_every = 0
  return c
