"""Trains a GAN. `python train_gan.py --workdir runs/gan [--config=gen/configs/gan.py:VARIANT]`."""

from gen.cli import train_main

if __name__ == "__main__":
  train_main("gan")
