"""The data settings of a run (config `data.*`), parsed and checked here, and only here."""

from __future__ import annotations

import dataclasses

from gen.configs import checks
from gen.data import builders
from gen.data.augment import ExampleAugment
from gen.data.info import parse_image_size
from gen.errors import UserError


@dataclasses.dataclass(frozen=True)
class DataSettings:
  """What `config.data` asks of the input pipeline (gen/configs/common.py documents each key)."""
  name: str
  data_dir: str | None
  split: str
  image_size: tuple[int, int] | None  # None: the dataset's own size
  random_crop: bool  # training takes a random window of the resized image (data.train_crop)
  load_size: int  # > 0: resize to a load_size square, then a random image_size crop
  random_flip: bool
  shuffle_buffer: int
  cache: bool
  augment: ExampleAugment
  folder_test_fraction: float
  member_order: bool  # members: each seed its own data order

  @classmethod
  def from_config(cls, config) -> DataSettings:
    data = config.data
    checks.non_negative(config, "data.load_size", "data.shuffle_buffer")
    checks.one_of(config, "data.train_crop", ("auto", "center", "random"))
    size = parse_image_size(data.image_size)
    if data.load_size and not (size and size[0] == size[1] and size[0] <= data.load_size):
      raise UserError(f"data.load_size={data.load_size} (resize, then random crop) needs a square "
                      f"0 < data.image_size <= load_size, not {data.image_size!r}: for other "
                      f"shapes use data.train_crop=random")
    # auto: a random window for image folders (any aspect), the centre otherwise
    crop = data.train_crop
    random_crop = crop == "random" or (crop == "auto" and data.name.startswith(builders.FOLDER_PREFIX))
    return cls(name=data.name, data_dir=data.data_dir or None, split=data.split, image_size=size,
               random_crop=bool(random_crop and size), load_size=int(data.load_size),
               random_flip=bool(data.random_flip), shuffle_buffer=int(data.shuffle_buffer),
               cache=bool(data.cache), augment=ExampleAugment.from_config(config),
               folder_test_fraction=float(data.folder_test_fraction),
               member_order=bool(data.member_order))

  def open_builder(self):
    """The prepared TFDS builder of `name` (see gen.data.builders.open_builder)."""
    return builders.open_builder(self.name, self.data_dir, self.folder_test_fraction)


def open_config_builder(config):
  """The prepared TFDS builder of a run's `config.data`."""
  return DataSettings.from_config(config).open_builder()
