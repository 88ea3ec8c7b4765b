"""Datasets and the one input pipeline shared by every family."""

from gen.data.pipeline import (DatasetInfo, Pipeline, dataset_info, open_builder,
                               open_config_builder, parse_image_size)

__all__ = ["DatasetInfo", "Pipeline", "dataset_info", "open_builder", "open_config_builder",
           "parse_image_size"]
