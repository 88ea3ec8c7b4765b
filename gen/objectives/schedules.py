"""Learning-rate schedules the translation families share."""

import optax


def constant_then_linear(o, steps_per_epoch: int, lr):
  """pytorch-CycleGAN-and-pix2pix's `linear` policy: `lr` for `o.constant` steps (or epochs,
  with o.unit='epochs'), then linearly to 0 over `o.decay` more (CycleGAN and pix2pix: 100 +
  100 epochs)."""
  scale = steps_per_epoch if o.unit == "epochs" else 1
  constant, decay = int(o.constant * scale), int(o.decay * scale)
  if not decay:
    return lr
  return optax.join_schedules([optax.constant_schedule(lr),
                               optax.linear_schedule(lr, 0.0, decay)], [constant])
