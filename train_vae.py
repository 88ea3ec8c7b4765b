"""Trains the vae family: `gen train` with gen/configs/vae.py as the default --config."""

from gen.tools import train

if __name__ == "__main__":
  train.cli("vae")
