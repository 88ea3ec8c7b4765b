"""Trains a VAE. `python train_vae.py --workdir runs/vae [--config=gen/configs/vae.py:VARIANT]`."""

from gen.cli import train_main

if __name__ == "__main__":
  train_main("vae")
