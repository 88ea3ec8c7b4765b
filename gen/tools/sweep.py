"""A sweep: one run per combination of structural settings, seeds and `vary` inside each run.

  gen sweep --workdir runs/abl --config gen/configs/gan.py \\
      --grid loss.kind=ns,hinge --grid model.spectral_norm=False,True --seeds 3 \\
      [--config.num_steps=1000 ...] [--parallel 2]
  gen report runs/abl          # results.md / .csv, curves.png, report.html

Each combination of the --grid lists is a `gen train` run in its own
sub-directory (`loss.kind=ns,model.spectral_norm=False/`, with its config.json
and train.log); --seeds and --config.vary become members inside every run (one
program per combination; see gen.train.members). Any other --config.* override
applies to every run. Runs go one after another, or --parallel N at a time.

Resumable: the sweep records itself in sweep.json; run the same command again
after a kill and finished runs are skipped while the others resume from their
checkpoints. A run that fails is reported with its error line and the others
go on; the sweep then exits non-zero. SIGTERM / SIGINT reach the running runs, which
save a checkpoint and stop.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time

from absl import flags
from ml_collections import config_flags

from gen.errors import UserError
from gen.tools import runner

FLAGS = flags.FLAGS


def _define_flags() -> None:
  flags.DEFINE_string("workdir", None, "Sweep directory: one sub-directory per run.", required=True)
  flags.DEFINE_multi_string("grid", [], "NAME=V1,V2,...: a structural setting to compare (repeatable).")
  flags.DEFINE_integer("seeds", None, "Members per run, seeded seed, seed+1, ... (config.seeds).")
  flags.DEFINE_integer("parallel", 1, "Runs at a time (each its own process).")
  with runner.flag_errors():
    config_flags.DEFINE_config_file("config", None, "Config file, e.g. gen/configs/gan.py[:variant].",
                                    lock_config=True)
  flags.mark_flag_as_required("config")


DONE = "sweep_done.json"


def _config_args(argv: list[str]) -> list[str]:
  """The sweep's own --config and --config.* arguments, as given: every run gets them."""
  out, i = [], 1
  while i < len(argv):
    arg = argv[i]
    if arg == "--":
      break
    if arg.startswith("--config"):
      if "=" in arg or i + 1 >= len(argv):
        out.append(arg)
      else:  # --config.x VALUE
        out.append(f"{arg}={argv[i + 1]}")
        i += 1
    i += 1
  return out


def parse_value(name: str, text: str, old):
  """A grid value in the type of the config field it sets."""
  if isinstance(old, bool):
    if text.lower() in ("true", "1", "yes"):
      return True
    if text.lower() in ("false", "0", "no"):
      return False
    raise UserError(f"--grid {name}: {text!r} is not True or False")
  if isinstance(old, (int, float)):
    try:
      v = float(text) if isinstance(old, float) or not text.lstrip("-").isdigit() else int(text)
    except ValueError:
      raise UserError(f"--grid {name}: {text!r} is not a number") from None
    if isinstance(old, int) and isinstance(v, float):
      raise UserError(f"--grid {name}: {text!r} is not a whole number")
    return v
  return text


def parse_grid(grid: list[str], config) -> list[tuple[str, list]]:
  from gen.train import members
  out = []
  for item in grid:
    name, sep, values = item.partition("=")
    texts = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not texts:
      raise UserError(f"--grid {item!r} is not NAME=V1,V2,... (e.g. --grid loss.kind=ns,hinge)")
    if name in ("seeds", "seed", "vary"):
      raise UserError(f"--grid {name}: use --seeds and --config.vary for members inside each run")
    old = members.lookup(config, name, "--grid")
    if hasattr(old, "items"):
      raise UserError(f"--grid {name} is a config section, not a setting")
    if name in (n for n, _ in out):
      raise UserError(f"--grid names {name} twice")
    out.append((name, [parse_value(name, t, old) for t in texts]))
  return out


def run_name(values: dict) -> str:
  return ",".join(f"{k}={v}" for k, v in values.items()).replace("/", "_") or "run"


def _finished(run_dir: str) -> bool:
  return os.path.exists(os.path.join(run_dir, DONE))


def _last_error(log_path: str) -> str:
  try:
    with open(log_path) as f:
      lines = [line.strip() for line in f if line.strip()]
  except OSError:
    return ""
  errors = [line for line in lines if line.startswith("error:")]
  return (errors or lines or [""])[-1]


def main():
  with runner.flag_errors():  # config_flags reports a file it could not load on first use
    config = FLAGS.config
    config.get("family")
  if FLAGS.parallel < 1:
    raise UserError(f"--parallel={FLAGS.parallel} must be >= 1")
  if FLAGS.seeds is not None and FLAGS.seeds < 1:
    raise UserError(f"--seeds={FLAGS.seeds} must be >= 1")
  grid = parse_grid(FLAGS.grid, config)
  forwarded = _config_args(sys.argv)
  if FLAGS.seeds is not None:
    forwarded.append(f"--config.seeds={FLAGS.seeds}")
  runs = []
  for combo in itertools.product(*(values for _, values in grid)):
    values = dict(zip((n for n, _ in grid), combo))
    runs.append({"dir": run_name(values), "values": values})
  record = {"config": forwarded, "grid": [[n, vs] for n, vs in grid], "runs": runs}
  os.makedirs(FLAGS.workdir, exist_ok=True)
  path = os.path.join(FLAGS.workdir, "sweep.json")
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    if old != record:
      raise UserError(f"{FLAGS.workdir!r} holds another sweep (its sweep.json differs: "
                      f"{old['config']} {old['grid']}): use a new --workdir")
  else:
    with open(path, "w") as f:
      json.dump(record, f, indent=2)

  todo = []
  for r in runs:
    run_dir = os.path.join(FLAGS.workdir, r["dir"])
    if _finished(run_dir):
      print(f"{r['dir']}: finished earlier, skipped", file=sys.stderr, flush=True)
      continue
    args = [sys.executable, "-m", "gen", "train", f"--workdir={run_dir}", *forwarded,
            *(f"--config.{k}={v}" for k, v in r["values"].items())]
    todo.append((r["dir"], run_dir, args))

  running: dict = {}
  failed, stopping = [], []

  def forward(signum, frame):
    stopping.append(signum)
    for proc, *_ in running.values():
      proc.send_signal(signum)

  previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
  try:
    queue = list(todo)
    while queue or running:
      while queue and len(running) < FLAGS.parallel and not stopping:
        name, run_dir, args = queue.pop(0)
        os.makedirs(run_dir, exist_ok=True)
        log = open(os.path.join(run_dir, "train.log"), "a")  # noqa: SIM115  closed when it ends
        print(f"{name}: started", file=sys.stderr, flush=True)
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        running[name] = (proc, log, run_dir, time.time())
      if stopping and not running:
        break
      time.sleep(0.2)
      for name in [n for n, (p, *_) in running.items() if p.poll() is not None]:
        proc, log, run_dir, started = running.pop(name)
        log.close()
        seconds = time.time() - started
        if proc.returncode == 0 and not stopping:
          with open(os.path.join(run_dir, DONE), "w") as f:
            json.dump({"seconds": round(seconds, 1)}, f)
          print(f"{name}: finished in {seconds:.0f} s", file=sys.stderr, flush=True)
        elif proc.returncode == 0:
          print(f"{name}: stopped and saved; run the sweep again to resume", file=sys.stderr,
                flush=True)
        else:
          line = _last_error(os.path.join(run_dir, "train.log"))
          failed.append(name)
          print(f"{name}: FAILED (exit {proc.returncode}): {line} (see {run_dir}/train.log)",
                file=sys.stderr, flush=True)
  finally:
    for s, h in previous.items():
      signal.signal(s, h)
  if stopping:
    print("sweep stopped: run the same command again to continue", file=sys.stderr, flush=True)
    return
  if failed:
    raise UserError(f"{len(failed)} of {len(runs)} runs failed: {', '.join(failed)}; the others "
                    f"finished (gen report {FLAGS.workdir})")
  print(f"sweep finished: {len(runs)} runs in {FLAGS.workdir} (gen report "
        f"{FLAGS.workdir})", file=sys.stderr, flush=True)


def cli() -> None:
  _define_flags()
  runner.run(main, processes=False)


if __name__ == "__main__":
  cli()
