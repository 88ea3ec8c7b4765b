"""Datasets and the one input pipeline shared by every family.

  info.py       DatasetInfo and image sizes (no TensorFlow)
  settings.py   the run's `data.*` settings, checked once
  builders.py   TFDS builders by name, prepared when they can be
  pipeline.py   the deterministic, resumable tf.data stream
  augment.py    per-example augmentation settings; image_ops.py their TensorFlow ops
  mnist5k.py, digits2bold.py, folder.py: the offline datasets and image folders
"""

from gen.data.builders import dataset_info, open_builder, splits_info
from gen.data.info import DatasetInfo, parse_image_size
from gen.data.pipeline import Pipeline, split_images
from gen.data.settings import DataSettings, open_config_builder

__all__ = ["DataSettings", "DatasetInfo", "Pipeline", "dataset_info", "open_builder",
           "open_config_builder", "parse_image_size", "split_images", "splits_info"]
