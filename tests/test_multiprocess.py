"""Real multi-process runs: 2 processes on localhost, 2 fake CPU devices each (4 global
devices, JAX's gloo collectives between them), against 1 process on 1 device."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, TINY_CYCLEGAN, TINY_GAN, TINY_VAE, assert_same_training, metrics_rows, run


def _lines(path: str) -> int:
  with open(path) as f:
    return sum(1 for _ in f)


def _port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def start_processes(args, count: int = 2, devices: int = 2) -> list[subprocess.Popen]:
  """`python ARGS...` as `count` processes of one run, each with `devices` fake devices."""
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  address = f"localhost:{_port()}"
  return [subprocess.Popen([sys.executable, *args, f"--coordinator_address={address}",
                            f"--num_processes={count}", f"--process_id={i}"],
                           cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True) for i in range(count)]


def why(stderr: str) -> str:
  """A failed process's stderr for an assertion message: without gloo's connection chatter and
  the interpreter's list of extension modules, so the fatal message and stacks show."""
  keep = [l for l in stderr.splitlines()
          if l.strip() and not l.startswith(("[Gloo]", "Extension modules:"))]
  return "\n".join(keep[-60:])


def finish(procs, timeout: int = 300) -> list[tuple[int, str, str]]:
  out = []
  for p in procs:
    stdout, stderr = p.communicate(timeout=timeout)
    out.append((p.returncode, stdout, stderr))
  return out


def run_processes(args, **kw) -> list[tuple[int, str, str]]:
  results = finish(start_processes(args, **kw))
  for i, (rc, _, stderr) in enumerate(results):
    assert rc == 0, f"process {i} exited {rc}:\n{why(stderr)}"
  return results


def _wait_for_rows(workdir: str, rows: int, procs, timeout: float = 240) -> None:
  path = os.path.join(workdir, "metrics.jsonl")
  deadline = time.time() + timeout
  while time.time() < deadline:
    if os.path.exists(path) and _lines(path) >= rows:
      return
    assert all(p.poll() is None for p in procs), [p.communicate()[1][-2000:] for p in procs]
    time.sleep(0.2)
  raise AssertionError(f"no {rows} rows in {path} after {timeout} s")


@pytest.mark.slow
def test_gan_in_two_processes_equals_one_process_resumes_bitwise_and_the_tools_work(tmp_path):
  gan = ["train_gan.py", *TINY_GAN, "--config.num_steps=4", "--config.eval.metrics=fid_digits",
         "--config.eval.num_samples=64", "--config.eval.batch_size=104"]
  two, one, parts = (str(tmp_path / n) for n in ("two", "one", "parts"))
  run_processes([*gan, f"--workdir={two}"])
  single = run([*gan, f"--workdir={one}"])
  assert single.returncode == 0, single.stderr
  rows = metrics_rows(two)
  assert [r["step"] for r in rows] == [1, 2, 3, 4, 4]  # one metrics.jsonl, written once
  assert_same_training(rows, metrics_rows(one), "gan")  # losses and FID of 64 samples
  assert sorted(os.listdir(os.path.join(two, "samples"))) == [
      "samples_0000002.png", "samples_0000004.png"]  # one set of pictures, by process 0
  assert sorted(os.listdir(os.path.join(two, "checkpoints"))) == ["2", "4"]

  # Resumed by both processes from the step-2 checkpoint the two processes wrote (the run as a
  # kill after step 2 leaves it): bitwise the uninterrupted run.
  shutil.copytree(two, parts)
  shutil.rmtree(os.path.join(parts, "checkpoints", "4"))
  run_processes([*gan, f"--workdir={parts}"])
  assert metrics_rows(parts) == rows

  # The tools, in two processes: one output, the same numbers as in one process.
  npz, npz1 = str(tmp_path / "s2.npz"), str(tmp_path / "s1.npz")
  (_, out, _), (_, out1, _) = run_processes(
      ["-m", "gen", "evaluate", f"--workdir={two}", "--metrics=fid_digits"])
  assert out1 == "" and json.loads(out)["fid_digits"] == pytest.approx(
      rows[-1]["test_fid_digits"], rel=1e-6)  # stdout: process 0's JSON and nothing else
  (_, _, err), (_, _, err1) = run_processes(
      ["-m", "gen", "sample", f"--workdir={two}", "--num=12", f"--out={npz}"])
  assert f"wrote {npz}" in err and "wrote" not in err1  # process 0 writes, process 1 computes
  alone = run(["-m", "gen", "sample", f"--workdir={two}", "--num=12", f"--out={npz1}"])
  assert alone.returncode == 0, alone.stderr
  np.testing.assert_array_equal(np.load(npz)["images"], np.load(npz1)["images"])


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["train_vae.py", *TINY_VAE, "--config.num_steps=3", "--config.seeds=2",
     "--config.eval.batch_size=104"],  # nll, and two members
    ["train_cyclegan.py", *TINY_CYCLEGAN, "--config.num_steps=3", "--config.batch_size=4",
     "--config.eval.batch_size=104"],  # mae over testA/testB
    ["train_diffusion.py", "--config=gen/configs/diffusion.py:tiny", "--config.num_steps=3",
     "--config.eval.metrics=fid_digits", "--config.eval.num_samples=64",
     "--config.eval.batch_size=104"],  # sampling, and FID over both processes' samples
], ids=["vae", "cyclegan", "diffusion"])
def test_two_processes_equal_one_process(tmp_path, args):
  run_processes([*args, f"--workdir={tmp_path / 'two'}"])
  single = run([*args, f"--workdir={tmp_path / 'one'}"])
  assert single.returncode == 0, single.stderr
  rows = metrics_rows(str(tmp_path / "two"))
  assert any(k.startswith("test_") for r in rows for k in r)  # the evaluation is compared too
  family = args[0][len("train_"):-len(".py")]
  assert_same_training(rows, metrics_rows(str(tmp_path / "one")), family)


@pytest.mark.slow
def test_sigterm_to_both_processes_saves_one_checkpoint_and_exits_0(tmp_path):
  workdir = str(tmp_path / "run")
  procs = start_processes(["train_gan.py", *TINY_GAN, f"--workdir={workdir}",
                           "--config.num_steps=100000", "--config.steps_per_call=1",
                           "--config.checkpoint_every=100000", "--config.sample_every=100000"])
  _wait_for_rows(workdir, 3, procs)
  for p in procs:
    p.send_signal(signal.SIGTERM)
  results = finish(procs)
  assert [rc for rc, _, _ in results] == [0, 0], "\n---\n".join(why(e) for _, _, e in results)
  steps = os.listdir(os.path.join(workdir, "checkpoints"))
  assert len(steps) == 1 and int(steps[0]) >= 3
  assert f"saved a checkpoint at step {steps[0]}" in results[0][2]


@pytest.mark.slow
def test_a_process_that_dies_stops_the_other_with_one_line(tmp_path):
  workdir = str(tmp_path / "run")
  procs = start_processes(["train_gan.py", *TINY_GAN, f"--workdir={workdir}",
                           "--config.num_steps=100000", "--config.steps_per_call=1",
                           "--heartbeat_timeout=3"])
  _wait_for_rows(workdir, 2, procs)
  procs[1].kill()
  started = time.time()
  rc, _, stderr = finish(procs[:1], timeout=120)[0]
  procs[1].communicate()
  assert rc != 0 and time.time() - started < 60, stderr[-3000:]
  lines = [l for l in stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1 and lines[0].startswith("error: process 1 of this 2-process run stopped"), (
      stderr[-3000:])
  assert "Traceback" not in stderr


@pytest.mark.parametrize("flags,message", [
    (["--coordinator_address=localhost:1", "--num_processes=2"], "needs --num_processes and --process_id"),
    (["--coordinator_address=localhost:1", "--num_processes=2", "--process_id=2"], "must be in 0..1"),
    (["--num_processes=2", "--process_id=1"], "need --coordinator_address"),
])
def test_process_flag_mistakes_are_one_line(tmp_path, flags, message):
  result = run(["train_gan.py", *TINY_GAN, f"--workdir={tmp_path}", *flags])
  assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
  assert message in result.stderr
