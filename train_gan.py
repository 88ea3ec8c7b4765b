"""Trains the gan family: `gen train` with gen/configs/gan.py as the default --config."""

from gen.tools import train

if __name__ == "__main__":
  train.cli("gan")
