"""The one start-up path of every command-line tool: absl flags (with one-line errors for bad
ones), quiet library logs, optional multi-process start-up, and one-line errors for anything
a user can fix. `run(main)` is all a tool calls.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys

from absl import app, flags, logging

from gen.errors import UserError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter quiet


@contextlib.contextmanager
def user_errors():
  """UserError (and a bad config value) -> `error: ...` on stderr and exit 2, no traceback."""
  try:
    yield
  except UserError as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(2)
  except Exception:  # in a multi-process run most likely a dead peer: say that, if so
    if "jax" in sys.modules and sys.modules["jax"].process_count() > 1:
      from gen.train import processes
      processes.await_peer_verdict()
    raise


def _unknown_key(e: Exception, argv: list[str]) -> str:
  """`--config.model.ngff=3` -> 'unknown config key model.ngff in --config.model.ngff (did you
  mean model.ngf?)'. ml_collections' KeyError carries the key and its own suggestion."""
  text = str(e)
  found = re.search(r'Did you mean "([^"]+)" instead of "([^"]+)"', text)
  suggestion, key = found.groups() if found else (None, (re.findall(r"[A-Za-z_]\w*", text) or ["?"])[0])
  for arg in argv[1:]:
    if arg.startswith("--config."):
      flag = arg.split("=", 1)[0]
      parts = flag[len("--config."):].split(".")
      if key in parts:
        i = parts.index(key)
        hint = f" (did you mean {'.'.join(parts[:i] + [suggestion])}?)" if suggestion else ""
        return f"unknown config key {'.'.join(parts[:i + 1])} in {flag}{hint}"
  return f"unknown config key {key}" + (f" (did you mean {suggestion}?)" if suggestion else "")


def _flag_error(e: Exception, argv: list[str]) -> str:
  """One line for a flag or config-override error (absl and ml_collections raise several kinds)."""
  if isinstance(e, (AttributeError, KeyError)):  # config_flags: an override names no such field
    return _unknown_key(e, argv)
  lines = [line.strip() for line in str(e).splitlines() if line.strip()]
  if lines and "Failed loading config file" in lines[0]:  # the --config file itself
    return f"cannot load the --config file: {lines[-1]}"
  if isinstance(e, SyntaxError):  # --config names a file that is not Python
    return f"the --config file {e.filename} is not a Python config file: {e.msg} (line {e.lineno})"
  if len(lines) > 1 and lines[1].startswith("Traceback"):  # an exception inside get_config()
    return f"{lines[0]} {lines[-1]}"
  return lines[0] if lines else type(e).__name__


@contextlib.contextmanager
def flag_errors():
  """A bad flag or config override -> one `error:` line and exit 2."""
  try:
    yield
  except Exception as e:  # absl and ml_collections raise many kinds
    print(f"error: {_flag_error(e, sys.argv)}", file=sys.stderr, flush=True)
    sys.exit(2)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with flag_errors."""
  with flag_errors():
    return flags.FLAGS(argv)


def quiet_logs() -> None:
  """Library logs at ERROR only: orbax and TFDS log every file they touch, and warn about
  choices made on purpose (read-only checkpoint managers, unprepared dataset folders); what a
  user must know, gen prints itself."""
  logging.set_verbosity(logging.ERROR)


def define_process_flags() -> None:
  """The multi-process flags every entry point takes (see docs/devices.md)."""
  if "coordinator_address" in flags.FLAGS:
    return
  flags.DEFINE_bool("distributed", False, "Start jax.distributed with the cluster's own "
                    "settings (TPU pods, SLURM, Open MPI).")
  flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 for a multi-process "
                      "run (or $JAX_COORDINATOR_ADDRESS); needs --num_processes, --process_id.")
  flags.DEFINE_integer("num_processes", None, "Processes in the run (or $JAX_NUM_PROCESSES).")
  flags.DEFINE_integer("process_id", None, "This process, 0..num_processes-1 (or $JAX_PROCESS_ID).")
  flags.DEFINE_integer("heartbeat_timeout", 60, "Seconds without a sign of life from a process "
                       "before the others stop (multi-process runs).")


def define_sampling_flags() -> None:
  """How a diffusion run samples, for the tools that sample (its config's `sample` section)."""
  flags.DEFINE_string("sampler", None, "Diffusion: heun | euler | stochastic | ddim | flow_euler "
                      "| flow_heun (default: the run's config.sample.sampler).")
  flags.DEFINE_integer("nfe", None, "Diffusion: network evaluations per sample (default: the "
                       "run's config.sample.nfe).")
  flags.DEFINE_float("guidance", None, "Diffusion, class-conditional: classifier-free guidance "
                     "weight w, (1 + w) cond - w uncond (default: config.sample.guidance).")


def sampling_flags() -> dict:
  """{name: value} of the sampling flags given on the command line."""
  return {name: flags.FLAGS[name].value for name in ("sampler", "nfe", "guidance")
          if flags.FLAGS[name].value is not None}


def _from_env(value, name: str, kind=str):
  if value is not None or not os.environ.get(name):
    return value
  try:
    return kind(os.environ[name])
  except ValueError:
    raise UserError(f"${name}={os.environ[name]!r} is not a valid {kind.__name__}") from None


def start_processes() -> None:
  """jax.distributed.initialize from --coordinator_address/--num_processes/--process_id (or
  their JAX_* variables), or with auto-detection under --distributed; nothing otherwise.
  Must run before JAX touches a device. CPU processes talk over gloo collectives."""
  f = flags.FLAGS
  address = _from_env(f.coordinator_address, "JAX_COORDINATOR_ADDRESS")
  count = _from_env(f.num_processes, "JAX_NUM_PROCESSES", int)
  index = _from_env(f.process_id, "JAX_PROCESS_ID", int)
  if not address and not f.distributed:
    if count not in (None, 1) or index not in (None, 0):
      raise UserError("--num_processes/--process_id need --coordinator_address=HOST:PORT "
                      "(or --distributed on a cluster JAX detects)")
    return
  if address:
    if count is None or index is None:
      raise UserError("--coordinator_address needs --num_processes and --process_id "
                      "(or $JAX_NUM_PROCESSES and $JAX_PROCESS_ID)")
    if count < 1 or not 0 <= index < count:
      raise UserError(f"--process_id={index} must be in 0..{count - 1} (--num_processes={count})")
  from gen.train import processes
  processes.initialize(address, count, index, f.heartbeat_timeout)


def _finish_processes() -> None:
  import jax
  if jax.process_count() > 1:
    from gen.train import processes
    processes.finish()


def run(main, takes_args: bool = False, processes: bool = True) -> None:
  """Runs `main()` (or `main(args)`, the positional arguments) as a tool: absl flags (and, with
  `processes`, the multi-process ones), quiet logs, one-line errors."""
  if processes:
    define_process_flags()

  def wrapped(argv):
    quiet_logs()
    with user_errors():
      if processes:
        start_processes()
      if takes_args:
        main(argv[1:])
      elif len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
      else:
        main()
      if processes:
        _finish_processes()

  app.run(wrapped, flags_parser=parse_flags)
