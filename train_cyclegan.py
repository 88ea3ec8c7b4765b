"""Trains the cyclegan family: `gen train` with gen/configs/cyclegan.py as the default --config."""

from gen.tools import train

if __name__ == "__main__":
  train.cli("cyclegan")
