"""What the families optimise and draw, independent of any one family.

  losses.py         adversarial losses, D's regularisers (GP, R1, LeCam, bCR), translation losses
  augment.py        differentiable augmentation of what D sees (DiffAugment, ADA, bCR's transform)
  distributions.py  log-densities and KLs of the VAE's likelihoods and posteriors
  image_pool.py     CycleGAN's history of fakes, in the train state
  latents.py        the truncation trick and spherical interpolation of latents
  schedules.py      learning-rate schedules
"""
