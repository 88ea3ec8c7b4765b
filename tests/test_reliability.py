"""Faults a week-long run must survive: preemption signals, kill -9, corrupt checkpoints, NaNs."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import chex
import jax
import numpy as np
import pytest
from conftest import ROOT, TINY_GAN, run
from conftest import TINY_VAE as VAE_TINY

from gen.configs.vae import get_config
from gen.data import open_config_builder, splits_info
from gen.errors import UserError
from gen.families import get as get_family
from gen.runs.run_dir import restore_for_inference
from gen.train import sharding, train

TINY_VAE = [*VAE_TINY, "--config.steps_per_call=1", "--config.eval.metrics=",
            "--config.sample_every=1000000"]


def vae_config(num_steps, **top):
  c = get_config("tiny")
  c.eval.metrics = ""
  c.update({**dict(steps_per_call=1, log_every=1, sample_every=10**6, checkpoint_every=2,
                   num_steps=num_steps), **top})
  return c


def start(args):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout=300):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return
    time.sleep(0.2)
  raise TimeoutError("the run did not get there in time")


def logged_steps(workdir):
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line)["step"] for line in f if line.strip()]


def checkpoints(workdir):
  return sorted(os.listdir(os.path.join(workdir, "checkpoints")))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_at_the_current_step_and_exits_0(tmp_path, sig):
  workdir = str(tmp_path / "run")
  proc = start(["train_vae.py", f"--workdir={workdir}", *TINY_VAE, "--config.num_steps=100000",
                "--config.log_every=1", "--config.checkpoint_every=100000"])
  wait_for(lambda: len(logged_steps(workdir)) >= 3)
  proc.send_signal(sig)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 0, err[-2000:]
  line = [l for l in err.splitlines() if "saved a checkpoint at step" in l]
  assert len(line) == 1 and line[0].startswith(sig.name), err[-2000:]
  step = int(line[0].split("at step ")[1].split()[0])
  assert checkpoints(workdir) == [str(step)] and step >= 3
  # The next start resumes there.
  result = run(["train_vae.py", f"--workdir={workdir}", *TINY_VAE, f"--config.num_steps={step + 2}",
                "--config.log_every=1", "--config.checkpoint_every=100000"])
  assert result.returncode == 0, result.stderr[-2000:]
  assert f"resumed from step {step}" in result.stderr
  assert str(step + 2) in checkpoints(workdir)


def test_kill_9_resumes_from_the_last_complete_checkpoint(tmp_path):
  workdir = str(tmp_path / "run")
  proc = start(["train_vae.py", f"--workdir={workdir}", *TINY_VAE, "--config.num_steps=100000",
                "--config.log_every=1", "--config.checkpoint_every=3"])
  wait_for(lambda: os.path.isdir(os.path.join(workdir, "checkpoints"))
           and any(n.isdigit() for n in checkpoints(workdir)))
  proc.kill()  # SIGKILL: no handler runs, an async save may be cut anywhere
  proc.communicate()
  # A save cut short looks like this: orbax's temporary directory, never a step directory.
  partial = os.path.join(workdir, "checkpoints", "999999.orbax-checkpoint-tmp-1")
  os.makedirs(os.path.join(partial, "state"))
  complete = max(int(n) for n in checkpoints(workdir) if n.isdigit())
  result = run(["train_vae.py", f"--workdir={workdir}", *TINY_VAE,
                f"--config.num_steps={complete + 3}", "--config.log_every=1",
                "--config.checkpoint_every=3"])
  assert result.returncode == 0, result.stderr[-2000:]
  assert f"resumed from step {complete}" in result.stderr
  assert not os.path.exists(partial)  # cleaned up
  assert str(complete + 3) in checkpoints(workdir)


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
  straight, broken = str(tmp_path / "straight"), str(tmp_path / "broken")
  train(vae_config(6), straight)
  train(vae_config(4), broken)  # checkpoints 2 and 4
  _truncate_state(broken, 4)
  capsys.readouterr()
  train(vae_config(6), broken)
  err = capsys.readouterr().err
  assert "warning: checkpoint 4 in" in err and "is unreadable" in err
  assert "resumed from step 2" in err
  assert os.path.isdir(os.path.join(broken, "checkpoints", "4.corrupt"))  # kept, not deleted
  a = restore_for_inference(straight)[2]
  b = restore_for_inference(broken)[2]
  chex.assert_trees_all_equal(a, b)  # still exact


def test_no_usable_checkpoint_is_one_clear_error(tmp_path):
  workdir = str(tmp_path / "run")
  train(vae_config(2), workdir)
  shutil.rmtree(os.path.join(workdir, "checkpoints", "2", "state"))
  with pytest.raises(UserError, match="no usable checkpoint"):
    train(vae_config(4), workdir)


def test_nan_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path):
  workdir = str(tmp_path / "run")
  c = vae_config(50, checkpoint_every=1)
  c.optim.lr = 1e30  # Adam steps of ~1e30: the loss overflows within a few steps
  with pytest.raises(UserError, match=r"non-finite loss or gradient at step (\d+)") as e:
    train(c, workdir)
  bad = int(str(e.value).split("at step ")[1].split()[0])
  assert f"the last checkpoint is step {bad - 1}" in str(e.value)
  assert max(map(int, checkpoints(workdir))) == bad - 1  # the bad state was not saved
  assert max(logged_steps(workdir)) == bad - 1  # nothing of the bad step was logged


def test_checkpoint_from_another_config_or_family(tmp_path):
  workdir = str(tmp_path / "run")
  train(vae_config(2), workdir)
  other = vae_config(4)
  other.model.hidden_units = 64
  with pytest.raises(UserError, match="written for a different model or config"):
    train(other, workdir)
  with open(os.path.join(workdir, "config.json")) as f:  # the run's config is left as it was
    assert json.load(f)["model"]["hidden_units"] == 32
  result = run(["train_gan.py", f"--workdir={workdir}", *TINY_GAN])
  assert result.returncode == 2 and "is of family 'vae', not 'gan'" in result.stderr


@pytest.mark.parametrize("module,args,message", [
    ("translate", ["--direction=AtoB", "--input=x.npz", "--out=y.npz"], "does not exist"),
    ("evaluate", ["--metrics=nll"], "does not exist"),
    ("sample", ["--out=y.npz"], "does not exist"),
])
def test_tools_with_a_missing_workdir(tmp_path, module, args, message):
  result = run(["-m", "gen", module, f"--workdir={tmp_path / 'missing'}", *args])
  assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_translate_with_a_malformed_input_file(tmp_path):
  garbage = tmp_path / "garbage.npz"
  garbage.write_bytes(b"not a zip file at all")
  result = run(["-m", "gen", "translate", f"--workdir={tmp_path}", f"--input={garbage}",
                f"--out={tmp_path / 'o.npz'}"])
  assert result.returncode == 2 and "is not an .npz file" in result.stderr
  assert "Traceback" not in result.stderr


def _truncate_state(workdir, step):
  """Truncates every file of checkpoint `step`'s state to a third."""
  state_dir = os.path.join(workdir, "checkpoints", str(step), "state")
  for d, _, fs in os.walk(state_dir):
    for f in fs:
      with open(os.path.join(d, f), "r+b") as fh:
        fh.truncate(max(0, os.path.getsize(os.path.join(d, f)) // 3))


@pytest.mark.parametrize("fault", [OSError(5, "Input/output error"), MemoryError("out of memory")])
def test_a_transient_restore_error_moves_nothing(tmp_path, monkeypatch, fault):
  import orbax.checkpoint as ocp
  workdir = str(tmp_path / "run")
  train(vae_config(4), workdir)
  real = ocp.CheckpointManager.restore

  def flaky(self, step, args=None, **kw):
    if "state" in args.keys():  # noqa: SIM118  an orbax Composite  # the state read fails, the meta read works
      raise fault
    return real(self, step, args=args, **kw)

  monkeypatch.setattr(ocp.CheckpointManager, "restore", flaky)
  with pytest.raises(UserError, match=r"cannot restore checkpoint 4 .*nothing was moved"):
    train(vae_config(6), workdir)
  assert checkpoints(workdir) == ["2", "4"]  # both still there, neither set aside


def test_read_only_tools_fall_back_without_moving_anything(tmp_path, capsys):
  workdir = str(tmp_path / "run")
  train(vae_config(4), workdir)
  _truncate_state(workdir, 4)
  before = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
  capsys.readouterr()
  state = restore_for_inference(workdir)[2]
  assert int(state.step) == 2
  err = capsys.readouterr().err
  assert "warning: checkpoint 4" in err and "using the previous one (left in place)" in err
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == before  # nothing moved
  out = str(tmp_path / "s.npz")
  result = run(["-m", "gen", "sample", f"--workdir={workdir}", "--num=3", f"--out={out}"])
  assert result.returncode == 0 and "using the previous one" in result.stderr, result.stderr[-2000:]
  assert len(result.stderr.strip().splitlines()) == 2, result.stderr  # the warning and `wrote`
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == before


def test_with_several_processes_only_process_0_renames_after_all_agree(tmp_path, monkeypatch):
  from jax.experimental import multihost_utils

  from gen.runs import checkpointing
  workdir = str(tmp_path / "run")
  train(vae_config(4), workdir)
  _truncate_state(workdir, 4)
  family = get_family("vae")(vae_config(4), splits_info(open_config_builder(vae_config(4)),
                                                        ("train",)))
  shapes = jax.eval_shape(family.init_state, jax.random.key(0))
  abstract = checkpointing.abstract_like(shapes, sharding.replicated(sharding.make_mesh()))
  ckpt, again = (checkpointing.Checkpointer(os.path.join(workdir, "checkpoints")) for _ in "12")
  barriers = []  # orbax's own multi-host machinery is not under test: pretend for gen's code only
  monkeypatch.setattr(checkpointing.jax, "process_count", lambda: 2)
  monkeypatch.setattr(checkpointing.jax, "process_index", lambda: 1)  # not process 0
  monkeypatch.setattr(multihost_utils, "sync_global_devices", barriers.append)
  monkeypatch.setattr(multihost_utils, "process_allgather", lambda x: np.array([x, x]))
  state, _ = ckpt.restore_latest_usable(abstract, "vae")
  assert int(state.step) == 2
  assert [b for b in barriers if b.startswith("gen-")] == ["gen-set-aside-4"]  # it waited ...
  # ... for process 0 to rename the corrupt checkpoint
  assert checkpoints(workdir) == ["2", "4"]  # ... and renamed nothing itself
  # Processes that disagree (one reads the checkpoint, the other not) move nothing.
  monkeypatch.setattr(multihost_utils, "process_allgather", lambda x: np.array([x, not x]))
  with pytest.raises(UserError, match=r"checkpoint 4 is unreadable on processes \[\d\] only"):
    again.restore_latest_usable(abstract, "vae")
  assert checkpoints(workdir) == ["2", "4"]


def test_a_mistyped_config_key_is_one_readable_line(tmp_path):
  result = run(["train_gan.py", "--workdir", str(tmp_path / "w"), "--config.model.ngff=3"])
  assert result.returncode == 2
  assert result.stderr.strip() == ("error: unknown config key model.ngff in --config.model.ngff "
                                   "(did you mean model.ngf?)")
