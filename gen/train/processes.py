"""Multi-process runs: start-up through jax.distributed, a clean end for a process whose peer
died, and the one agreement the loop needs (stop together).

On one machine, `--coordinator_address=localhost:PORT --num_processes=2 --process_id=I`
makes a real multi-host run: CPU processes exchange data over JAX's gloo collectives.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import jax
import numpy as np

from gen.errors import UserError

POLL_SECONDS = 1.0
_finishing = threading.Event()  # set once this process is done: a peer that exits is then fine
_heartbeat_timeout = [60]

def initialize(address: str | None = None, count: int | None = None, index: int | None = None,
               heartbeat_timeout: int = 60) -> None:
  """jax.distributed.initialize (auto-detected when `address` is None), then the watchdog."""
  # Recoverable: the service tells the survivors that a process died instead of aborting them
  # with a fatal log and a C++ stack trace; the watchdog turns that into one line and an exit.
  jax.config.update("jax_enable_recoverability", True)
  settings = dict(heartbeat_timeout_seconds=heartbeat_timeout)
  _heartbeat_timeout[0] = heartbeat_timeout
  _native_stdout_to_stderr()
  if address:
    settings.update(coordinator_address=address, num_processes=count, process_id=index)
  try:
    jax.distributed.initialize(**settings)
  except Exception as e:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
    where = f" as process {index} of {count} at {address}" if address else ""
    raise UserError(f"cannot start jax.distributed{where}: {first}") from None
  if jax.process_count() > 1:
    threading.Thread(target=_watch, args=(jax.process_count(),), daemon=True,
                     name="gen-process-watchdog").start()


def _native_stdout_to_stderr() -> None:
  """gloo prints its connection chatter to the process's stdout, where the tools write their
  results (gen evaluate's JSON): native code's fd 1 goes to stderr, Python's stdout keeps the
  real one."""
  sys.stdout.flush()
  real = os.dup(1)
  os.dup2(2, 1)
  sys.stdout = os.fdopen(real, "w", buffering=1)


def _watch(count: int) -> None:
  """Every POLL_SECONDS asks the coordination service which processes are alive. When one is
  not (it missed heartbeats for --heartbeat_timeout seconds), this process says so and exits
  instead of waiting forever in a collective with a peer that will never answer. (When the
  coordinator, process 0, itself dies, the runtime ends the others at once with its own
  fatal message; that path cannot be intercepted from Python.)"""
  from jax._src import distributed
  client, everyone, me = distributed.global_state.client, list(range(count)), jax.process_index()
  while True:
    time.sleep(POLL_SECONDS)
    try:
      live = set(client.get_live_nodes(everyone))
    except Exception:  # shut down, or the coordinator is gone
      return
    missing = sorted(set(everyone) - live - {me})
    if missing and not _finishing.is_set():
      print(f"error: process {', '.join(map(str, missing))} of this {count}-process run stopped "
            f"(died or lost contact); process {me} stops too; run the "
            f"same commands again to resume from the last checkpoint", file=sys.stderr, flush=True)
      os._exit(3)  # a normal exit would wait on the dead peer


def await_peer_verdict() -> None:
  """After an unexpected error in a multi-process run: a collective with a dead peer fails at
  once (its connection resets) while the service declares the peer dead only after the
  heartbeat timeout, so wait that long for the watchdog to name it and exit with its line; if
  every peer is alive, return (the error is this process's own)."""
  if jax.process_count() == 1:
    return
  time.sleep(_heartbeat_timeout[0] + 3 * POLL_SECONDS)


def finish() -> None:
  """Waits until every process is done (a peer may still be writing or evaluating), so no
  process exits while others need it; a peer that dies meanwhile ends this with one line."""
  if jax.process_count() == 1:
    return
  from jax._src import distributed
  _finishing.set()
  client, me = distributed.global_state.client, jax.process_index()
  try:
    client.wait_at_barrier("gen-finish", _heartbeat_timeout[0] * 1000 + 600_000)
  except Exception as e:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    print(f"error: process {me} finished, but not every process of the run did ({first})",
          file=sys.stderr, flush=True)
    os._exit(3)
  # The others disconnect first; the coordinator (process 0) leaves last. (A recoverable
  # service does not hold its own shutdown for them, and a client that disconnects from a
  # vanished service is aborted by the runtime.) A process other than 0 then leaves at once:
  # the coordinator exits as soon as it sees the disconnect, and the runtime aborts a process
  # whose collectives' peer vanishes while it is still tearing them down.
  if me:
    sys.stdout.flush()
    sys.stderr.flush()
    jax.distributed.shutdown()
    os._exit(0)
  deadline = time.monotonic() + 60
  while time.monotonic() < deadline:
    try:
      if set(client.get_live_nodes(list(range(jax.process_count())))) <= {0}:
        return
    except Exception:
      return
    time.sleep(0.05)


def primary() -> bool:
  """Process 0 writes a run's files and the tools' outputs; every process computes."""
  return jax.process_index() == 0


def any_process(flag: bool) -> bool:
  """Whether `flag` holds on any process (every process gets the same answer)."""
  if jax.process_count() == 1:
    return bool(flag)
  from jax.experimental import multihost_utils
  return bool(np.asarray(multihost_utils.process_allgather(np.asarray(flag))).any())
