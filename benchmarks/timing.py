"""What the benchmarks share: timing the trainer's jitted update function."""

import time

import jax


def calls_per_sec(run, carry, batches, seconds: float) -> tuple[float, float]:
  """(compile seconds, steady-state calls/s) of `run(carry, batches) -> (carry, outputs)`,
  the carry fed back (it is donated); timed for at least `seconds` and 2 calls."""
  started = time.perf_counter()
  carry, out = run(carry, batches)
  jax.block_until_ready(out)
  compile_seconds = time.perf_counter() - started
  calls, started = 0, time.perf_counter()
  while True:
    carry, out = run(carry, batches)
    calls += 1
    jax.block_until_ready(out)
    elapsed = time.perf_counter() - started
    if elapsed > seconds and calls >= 2:
      return compile_seconds, calls / elapsed


def machine_info() -> dict:
  """What a result was measured on: printed and stored beside every benchmark's rows."""
  import os
  import platform
  return {"jax": jax.__version__, "backend": jax.default_backend(),
          "device": jax.devices()[0].device_kind, "devices": jax.device_count(),
          "cpus": os.cpu_count(), "machine": platform.machine()}


def steps_per_sec(step, seconds: float, warmup: int = 1, sync=None, every: int = 1) -> tuple[float, float]:
  """(warm-up seconds, steady-state steps/s) of `step()` (an eager or compiled PyTorch step, say):
  `warmup` untimed steps, then steps in groups of `every` with `sync()` (e.g.
  torch.cuda.synchronize) after each group, for at least `seconds` and 2 groups."""
  sync = sync or (lambda: None)
  started = time.perf_counter()
  for _ in range(warmup):
    step()
  sync()
  warmup_seconds = time.perf_counter() - started
  steps, started = 0, time.perf_counter()
  while True:
    for _ in range(every):
      step()
    steps += every
    sync()
    elapsed = time.perf_counter() - started
    if elapsed > seconds and steps >= 2 * every:
      return warmup_seconds, steps / elapsed
