"""Run directories written by gen at 760d5cb (tests/fixtures/runs_760d5cb) restore, resume and
sample with today's code, and continue exactly as that version continued them."""

import json
import math
import os
import shutil

import jax
import numpy as np
import pytest
from conftest import ROOT, metrics_rows

from gen.runs.run_dir import RunDir, restore_for_inference
from gen.train import train

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "runs_760d5cb")
SAMPLERS = {"gan": None, "gan_lecam_ada": None, "gan_members": 1, "vae": None}  # run: --member
TRANSLATORS = ("cyclegan", "pix2pix")


def _copy(name: str, tmp_path) -> str:
  workdir = str(tmp_path / name)
  shutil.copytree(os.path.join(FIXTURES, name), workdir)
  return workdir


def _close(got, want) -> bool:
  # The same program on the same checkpoint: bitwise on one machine. Another CPU may let XLA
  # sum in another order (vector width); float32 reassociation moves a sum by ~1e-7 relative,
  # and two Adam steps from identical states keep that far below 1e-4.
  if isinstance(want, (int, float)) and not isinstance(want, bool):
    return math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-6)
  return got == want


@pytest.mark.parametrize("name", [*SAMPLERS, *TRANSLATORS])
def test_an_old_run_resumes_and_continues_as_its_version_did(tmp_path, name):
  workdir = _copy(name, tmp_path)
  config = RunDir(workdir).read_config()
  config.num_steps = 4
  train(config, workdir)
  with open(os.path.join(FIXTURES, name, "expected_after_resume.json")) as f:
    want = json.load(f)
  got = [r for r in metrics_rows(workdir) if r["step"] > 2]
  assert [sorted(r) for r in got] == [sorted(r) for r in want]
  for mine, theirs in zip(got, want):
    for key, value in theirs.items():
      assert _close(mine[key], value), (name, mine["step"], key, mine[key], value)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints")), key=int)[-1] == "4"


@pytest.mark.parametrize("name", SAMPLERS)
def test_an_old_run_samples_as_its_version_did(name):
  _, family, state = restore_for_inference(os.path.join(FIXTURES, name), SAMPLERS[name])
  images = family.sample(state, jax.random.key(0), 8)["images"]
  with np.load(os.path.join(FIXTURES, name, "expected_samples.npz")) as f:
    want = f["images"]
  # uint8 after rounding: a float32 difference in the last place may move a pixel by one level.
  assert images.shape == want.shape and np.abs(images.astype(int) - want).max() <= 1
  assert np.mean(images == want) > 0.99


@pytest.mark.parametrize("name", TRANSLATORS)
def test_an_old_translation_run_translates_as_its_version_did(name):
  _, family, state = restore_for_inference(os.path.join(FIXTURES, name))
  with np.load(os.path.join(FIXTURES, "translate_input.npz")) as f:
    x = f["images"]
  out = family.translate(state, x, "AtoB")
  with np.load(os.path.join(FIXTURES, name, "expected_translation.npz")) as f:
    want = f["images"]
  assert out.shape == want.shape and np.abs(out.astype(int) - want).max() <= 1
  assert np.mean(out == want) > 0.99
