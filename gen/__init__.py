"""gen: JAX/Flax image generation (GANs, VAEs, CycleGAN) on one shared trainer.

Importing `gen` is cheap: TensorFlow and TFDS are imported only by `gen.data`
when a dataset is actually opened.
"""

__version__ = "0.1.0"
