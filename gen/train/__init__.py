"""The shared trainer.

  loop.py        train(): set-up, then one method per event (log, pictures, checkpoint, eval)
  step.py        the compiled update, its mapping over members, the NaN policy
  evaluation.py  evaluation on the eval split, and the examples pictures show
  state.py       what train states are made of (ModelState, step keys, EMA)
  members.py     K models in one program: seeds and varied settings
  sharding.py    the member x data mesh and the shardings of state and batches
  processes.py   multi-process runs through jax.distributed
"""


def train(config, workdir: str) -> None:
  """gen.train.loop.train, imported when first called (the package stays light to import)."""
  from gen.train.loop import train as train_loop
  train_loop(config, workdir)
