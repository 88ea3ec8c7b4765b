"""Trains the pix2pix family: `gen train` with gen/configs/pix2pix.py as the default --config."""

from gen.tools import train

if __name__ == "__main__":
  train.cli("pix2pix")
