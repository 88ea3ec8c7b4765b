"""Trains pix2pix. `python train_pix2pix.py --workdir runs/pix2pix [--config=gen/configs/pix2pix.py:VARIANT]`."""

from gen.cli import train_main

if __name__ == "__main__":
  train_main("pix2pix")
