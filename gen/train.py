"""Trains any registered family from its config file: the entry point for families of your own.

  python -m gen.train --workdir runs/mine --config=path/to/my_family.py[:variant]

`train_gan.py`, `train_vae.py` and `train_cyclegan.py` are this with their config as default.
"""

from gen.cli import train_main

if __name__ == "__main__":
  train_main()
