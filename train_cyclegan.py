"""Trains a CycleGAN. `python train_cyclegan.py --workdir runs/cyclegan [--config=gen/configs/cyclegan.py:VARIANT]`."""

from gen.cli import train_main

if __name__ == "__main__":
  train_main("cyclegan")
