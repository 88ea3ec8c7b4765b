"""The family contract: a family of one's own (tests/toy_family.py) trains on the unedited trainer,
registration rejects incomplete families, and every config mistake surfaces before step 0."""

import os
import signal

import chex
import jax
import pytest
import toy_family
from conftest import metrics_rows, run

from gen import families
from gen.configs.gan import get_config as gan_config
from gen.errors import UserError
from gen.families import Family, register
from gen.runs.run_dir import restore_for_inference
from gen.train import step as step_lib
from gen.train import train

TOY = ["-m", "gen", "train", "--config=tests/toy_family.py"]


def test_a_fourth_family_trains_resumes_exactly_and_draws_pictures(tmp_path):
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  train(toy_family.get_config(), straight)
  short = toy_family.get_config()
  short.num_steps = 4
  train(short, resumed)
  train(toy_family.get_config(), resumed)
  a, b = restore_for_inference(straight)[2], restore_for_inference(resumed)[2]
  assert int(a.step) == int(b.step) == 6
  chex.assert_trees_all_equal(a, b)
  rows = metrics_rows(straight)
  assert rows == metrics_rows(resumed)
  assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
  assert set(rows[0]) == {"step", "loss", "grad_norm"}
  assert rows[-1]["loss"] < rows[0]["loss"]  # it learns
  assert sorted(os.listdir(os.path.join(straight, "checkpoints"))) == ["2", "4", "6"]
  assert os.path.exists(os.path.join(straight, "samples", "reconstructions_0000006.png"))


def test_a_fourth_family_stops_on_nan(tmp_path):
  c = toy_family.get_config()
  c.optim.lr = 1e30
  c.num_steps, c.checkpoint_every, c.steps_per_call = 50, 1, 1
  with pytest.raises(UserError, match=r"non-finite loss or gradient at step (\d+) \((loss|grad_norm)="):
    train(c, str(tmp_path))


def test_a_fourth_family_from_the_command_line_saves_on_sigterm(tmp_path):
  import subprocess
  import sys
  import time

  from conftest import ROOT
  workdir = str(tmp_path / "run")
  proc = subprocess.Popen([sys.executable, *TOY, f"--workdir={workdir}", "--config.num_steps=100000",
                           "--config.checkpoint_every=100000", "--config.sample_every=100000"],
                          cwd=ROOT, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 120
  while time.time() < deadline and not (os.path.exists(os.path.join(workdir, "metrics.jsonl"))
                                        and len(metrics_rows(workdir)) >= 2):
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=60)
  assert proc.returncode == 0, err[-2000:]
  assert "SIGTERM: saved a checkpoint at step" in err and "Traceback" not in err
  result = run([*TOY, f"--workdir={workdir}", "--config.num_steps=3"])  # done already: resumes
  assert result.returncode == 0 and "resumed from step" in result.stderr, result.stderr[-2000:]


def test_sigterm_before_the_first_step_of_a_fresh_run_saves_step_0(tmp_path, monkeypatch, capsys):
  real = step_lib.compile_steps

  def compile_then_signal(*args):  # the signal lands after set-up, before any step
    os.kill(os.getpid(), signal.SIGTERM)
    return real(*args)

  monkeypatch.setattr(step_lib, "compile_steps", compile_then_signal)
  train(toy_family.get_config(), str(tmp_path))
  assert "SIGTERM: saved a checkpoint at step 0" in capsys.readouterr().err
  assert os.listdir(tmp_path / "checkpoints") == ["0"]
  assert int(restore_for_inference(str(tmp_path))[2].step) == 0


def test_an_incomplete_family_fails_at_registration_in_one_line():
  class NoStep(Family):
    value_range = (0.0, 1.0)

    def init_state(self, key):
      return None

  with pytest.raises(UserError, match=r"^family 'nostep' \(.*NoStep\) lacks pictures, update: "):
    register("nostep")(NoStep)
  with pytest.raises(UserError, match="is not a subclass of gen.families.Family"):
    register("plain")(object)
  families.get("gan")
  with pytest.raises(UserError, match="family name 'gan' is taken by gen.families.gan.GAN"):
    register("gan")(toy_family.ToyAutoencoder)
  with pytest.raises(UserError, match="unknown model family 'nope'"):
    families.get("nope")


def test_capabilities_are_types_not_attributes():
  from gen.families import LikelihoodModel, Sampler, Translator
  gan, vae, cyclegan = (families.get(n) for n in ("gan", "vae", "cyclegan"))
  assert issubclass(gan, Sampler) and not issubclass(gan, (Translator, LikelihoodModel))
  assert issubclass(vae, Sampler) and issubclass(vae, LikelihoodModel)
  assert issubclass(cyclegan, Translator) and not issubclass(cyclegan, Sampler)
  assert not issubclass(toy_family.ToyAutoencoder, (Sampler, Translator, LikelihoodModel))


def _before_step_0(tmp_path, config, message):
  with pytest.raises(UserError, match=message):
    train(config, str(tmp_path))
  assert not os.path.exists(tmp_path / "checkpoints") and not os.path.exists(tmp_path / "metrics.jsonl")


def test_eval_mistakes_are_found_before_the_first_step(tmp_path, monkeypatch):
  c = gan_config("tiny")
  c.eval.metrics, c.eval.best_metric = "fid_digits", "kid_digits"
  _before_step_0(tmp_path, c, r"eval.best_metric='kid_digits' is not an output of "
                              r"eval.metrics='fid_digits' \(outputs: fid_digits\)")
  c.eval.metrics, c.eval.best_metric, c.eval.num_samples = "fid_digits", "", 1
  _before_step_0(tmp_path, c, r"eval.num_samples=1 must be >= 2")
  c.eval.num_samples = 100
  c.eval.metrics = "acc_digits"
  _before_step_0(tmp_path, c, "needs class-conditional samples")
  c.eval.metrics = "nll"
  _before_step_0(tmp_path, c, r"metric 'nll' needs a family that is a LikelihoodModel")
  c.eval.metrics = "mae"
  _before_step_0(tmp_path, c, r"metric 'mae' needs a family that is a Translator")
  toy = toy_family.get_config()
  toy.eval.metrics = "fid_digits"
  _before_step_0(tmp_path, toy, r"needs a family that is a Sampler .*'toy_autoencoder' is not")
  # On 4 devices an eval batch of 6 cannot be split: found now, not at the first evaluation.
  from gen.train import sharding
  mesh = sharding.make_mesh()
  monkeypatch.setattr(sharding, "make_mesh", lambda *_: mesh)
  monkeypatch.setattr(jax, "device_count", lambda: 4)
  c = gan_config("tiny")
  c.eval.metrics, c.eval.batch_size = "fid_digits", 6
  _before_step_0(tmp_path, c, r"eval.batch_size=6 must be a positive multiple of the device count \(4\)")
  c.eval.batch_size, c.eval.split = 100, "validation"
  monkeypatch.undo()
  _before_step_0(tmp_path, c, r"has no split 'validation'")
