"""Settings every family shares: the trainer's loop, logging, checkpointing and data."""

import ml_collections

from gen.data.builders import FOLDER_TEST_FRACTION


def trainer_config(*, family: str, batch_size: int, num_steps: int, log_every: int,
                   sample_every: int, checkpoint_every: int,
                   eval_every: int) -> ml_collections.ConfigDict:
  """The loop's settings; the arguments have no default that fits every family."""
  c = ml_collections.ConfigDict()
  c.family = family  # gan | vae | cyclegan | pix2pix | diffusion | one's own (docs/adding_a_family.md)
  c.seed = 0  # the run's base PRNG key and the data order
  c.batch_size = batch_size  # global, over all devices and processes
  c.num_steps = num_steps
  c.compute_dtype = "float32"  # or bfloat16: activations and convolutions (GPU/TPU); state float32
  c.steps_per_call = 10  # train steps fused into one jitted lax.scan call
  c.log_every = log_every  # metrics.jsonl / TensorBoard / console, averaged over the interval
  c.sample_every = sample_every  # PNG grids under <run>/samples/
  c.checkpoint_every = checkpoint_every
  c.keep_checkpoints = 3
  c.debug_nans = False  # jax_debug_nans: raise at the first operation that makes a NaN (slow)
  c.eval_every = eval_every  # evaluate eval.metrics every N steps (0: only when training ends)
  c.sample_grid = 64  # images in each sampled PNG grid (families that sample)

  # Members (gen.train.members): K models trained side by side in one program.
  c.seeds = 1  # members per combination of `vary`, seeded seed, seed+1, ...
  c.vary = ""  # per-member numbers, e.g. 'optim.g_lr=1e-4,2e-4;loss.r1_gamma=0,1' (their product)
  c.nan_policy = "stop"  # with members: stop the run (naming the member) | drop (freeze it)
  c.member_shards = 0  # devices the member axis splits over (0: gcd(members, devices))
  c.member_map = "auto"  # vmap | loop over members in the program (auto: gen/train/step.py)

  c.data = ml_collections.ConfigDict()
  c.data.name = "mnist5k"  # a TFDS name (with /config), prepared in data_dir or downloadable,
  # or folder:PATH, a directory of images (gen/data/folder.py: layouts, classes, conversions)
  c.data.data_dir = ""  # "" = $TFDS_DATA_DIR or ~/tensorflow_datasets
  c.data.split = "train"
  # "" = the dataset's own size; "64" = 64x64; "32,48" = 32 rows x 48 columns. Evaluation (and
  # training with train_crop=center) crops the image's centre to that aspect, then resizes;
  # train_crop=random resizes the shorter side and takes a random window.
  c.data.image_size = ""
  c.data.train_crop = "auto"  # center | random | auto (random for folder:, else center)
  c.data.folder_test_fraction = FOLDER_TEST_FRACTION  # folder: without train/ test/: seeded split
  c.data.shuffle_buffer = 10_000
  c.data.load_size = 0  # > 0: resize to load_size, then a random image_size crop (CycleGAN)
  c.data.random_flip = False
  # Augmentations for little data (gen.data.augment.ExampleAugment), all off; per example
  # after the crop, in this order: rotation, resized crop, flip, colour jitter. Each is drawn
  # statelessly from (seed, example index), so a resumed run sees the same images.
  c.data.rotation = 0.0  # max degrees a: uniform in [-a, a], bilinear, corners reflected
  c.data.resized_crop_scale = ""  # e.g. '0.8,1': random crop of that area fraction, resized back
  c.data.resized_crop_ratio = "3/4,4/3"  # its width/height range (with resized_crop_scale)
  # Colour jitter as torchvision's ColorJitter (in this fixed order): a factor uniform in
  # [max(0, 1-b), 1+b] scales brightness, contrast (towards the mean grey), saturation (towards
  # each pixel's grey); hue shifts by uniform [-h, h] of the circle (h <= 0.5). Saturation and
  # hue need RGB images (set on greyscale data they are an error).
  c.data.brightness = 0.0
  c.data.contrast = 0.0
  c.data.saturation = 0.0
  c.data.hue = 0.0
  c.data.cache = True  # keep the encoded split in memory (fine up to a few GB)
  c.data.member_order = False  # members: each seed its own data order (default: the same batches)

  c.eval = eval_config()
  return c


def eval_config() -> ml_collections.ConfigDict:
  """`eval.*`: what the metrics read (gen evaluate scores image files with these alone)."""
  e = ml_collections.ConfigDict()
  e.metrics = ""  # comma-separated names from gen.metrics (e.g. nll); "" = no evaluation
  e.split = "test"  # also the images `pictures` shows (reconstructions, translations)
  e.batch_size = 100  # global; the last partial batch is padded and masked
  e.num_importance = 1000  # nll: importance samples K per example
  e.seed = 0  # evaluation's own randomness (binarisation, importance samples, samples)
  e.num_samples = 0  # fid/kid/is/pr: generated images compared with the eval split
  e.inception_weights = ""  # converted FID Inception ("" = $GEN_INCEPTION_WEIGHTS or cache)
  e.fid_resize = "bilinear"  # Inception input resize: bilinear (pytorch-fid) | clean (clean-fid)
  e.recompute_reference = False  # recompute cached reference features
  e.best_metric = ""  # e.g. fid_digits: also keep the best checkpoint in checkpoints_best/
  e.best_mode = "min"  # min | max
  return e


def constant_then_linear_optim() -> ml_collections.ConfigDict:
  """Adam(2e-4, 0.5, 0.999) with the translation papers' lr: constant, then linearly to 0
  (gen.objectives.schedules.constant_then_linear); CycleGAN's and pix2pix's `optim`."""
  o = ml_collections.ConfigDict()
  o.lr = 2e-4
  o.b1 = 0.5
  o.b2 = 0.999
  o.unit = "steps"  # steps | epochs (of the training split; CycleGAN: of its larger domain)
  o.constant = 1000  # lr constant for this many units ...
  o.decay = 1000  # ... then linear decay to 0 over this many
  return o


def shrink_to_tiny(c: ml_collections.ConfigDict, batch_size: int) -> None:
  """The trainer's half of every `:tiny` variant: 2 steps, each event at least once, a small
  batch and grid; the family's config shrinks its own model."""
  c.batch_size = batch_size
  c.num_steps = 2
  c.log_every = 1
  c.sample_every = c.checkpoint_every = 2
  c.eval_every = 0  # evaluates eval.metrics once, at the end
  c.sample_grid = 4
