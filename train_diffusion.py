"""Trains the diffusion family: `gen train` with gen/configs/diffusion.py as the default --config."""

from gen.tools import train

if __name__ == "__main__":
  train.cli("diffusion")
