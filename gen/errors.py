"""Errors a user can cause. Entry points print them as one line and exit non-zero."""


class UserError(Exception):
  """A bad config, dataset, checkpoint or input file: reported without a traceback."""
