"""gen sweep (one run per structural combination, resumable, failures isolated) and gen report
(tables over seeds, curves, one offline HTML page)."""

import csv
import json
import os

import numpy as np
import pytest
from conftest import TINY_VAE, run

from gen.configs import vae
from gen.tools import report
from gen.train import train

SWEEP = ["-m", "gen", "sweep", *TINY_VAE, "--seeds=2", "--config.num_steps=2",
         "--config.eval.num_importance=2"]


def _nll_by_hand(run_dir):
  """{varied values: [final test nll per seed]} from metrics.jsonl."""
  out = {}
  with open(os.path.join(run_dir, "metrics.jsonl")) as f:
    for row in map(json.loads, f):
      if "test_nll_nats" in row:
        out.setdefault(json.dumps({k: v for k, v in row.items() if "." in k}), {})[row["member"]] = \
            row["test_nll_nats"]
  return {k: list(v.values()) for k, v in out.items()}


@pytest.mark.slow
def test_sweep_runs_each_combination_resumes_and_reports(tmp_path):
  workdir = str(tmp_path / "abl")
  args = [*SWEEP, f"--workdir={workdir}", "--grid=objective.train_k=1,2"]
  p = run(args)
  assert p.returncode == 0, p.stderr[-3000:]
  runs = sorted(d for d in os.listdir(workdir) if os.path.isdir(os.path.join(workdir, d)))
  assert runs == ["objective.train_k=1", "objective.train_k=2"]
  for d in runs:
    with open(os.path.join(workdir, d, "config.json")) as f:
      config = json.load(f)
    assert (config["objective"]["train_k"], config["seeds"], config["num_steps"]) == (int(d[-1]), 2, 2)

  # A sweep killed during its second run: run the same command, the first is skipped and the
  # second resumes from its checkpoint.
  second = os.path.join(workdir, runs[1])
  os.remove(os.path.join(second, "sweep_done.json"))
  p = run(args)
  assert p.returncode == 0, p.stderr[-3000:]
  assert f"{runs[0]}: finished earlier, skipped" in p.stderr
  with open(os.path.join(second, "train.log")) as f:
    assert "resumed from step 2" in f.read()

  p = run(["-m", "gen", "report", workdir])
  assert p.returncode == 0, p.stderr[-3000:]
  table = p.stdout
  lines = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
  header, rows = lines[0], lines[1:]
  assert "final nll_nats" in header and "best nll_nats" in header and "| n |" in header
  assert len(rows) == 2 and all("| 2 | 2 |" in r for r in rows)  # n = 2 seeds, 2 steps
  cols = [c.strip() for c in header.strip("|").split("|")]
  for r, d in zip(rows, runs):
    cells = [c.strip() for c in r.strip("|").split("|")]
    mean, std = map(float, cells[cols.index("final nll_nats")].strip("*").split(" ± "))
    (values,) = _nll_by_hand(os.path.join(workdir, d)).values()
    assert mean == pytest.approx(np.mean(values), rel=1e-3)
    assert std == pytest.approx(np.std(values, ddof=1), rel=2e-2, abs=1e-3)
  assert table.count("**") == 2 * sum(1 for c in cols if c.startswith(("final ", "best ")))
  with open(os.path.join(workdir, "results.csv")) as f:
    parsed = list(csv.DictReader(f))
  assert [r["objective.train_k"] for r in parsed] == ["1", "2"]
  assert float(parsed[0]["final nll_nats mean"]) == pytest.approx(np.mean(
      next(iter(_nll_by_hand(os.path.join(workdir, runs[0])).values()))), rel=1e-6)
  with open(os.path.join(workdir, "curves.png"), "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  with open(os.path.join(workdir, "report.html")) as f:
    page = f.read()
  assert "<table>" in page and page.count("data:image/png;base64,") >= 3  # curves + samples
  assert "http://" not in page and "https://" not in page and "src=\"/" not in page  # offline


@pytest.mark.slow
def test_a_failing_run_is_reported_and_the_others_go_on(tmp_path):
  workdir = str(tmp_path / "abl")
  p = run([*SWEEP, f"--workdir={workdir}", "--grid=model.likelihood=bernoulli,poisson"])
  assert p.returncode == 2
  assert ("model.likelihood=poisson: FAILED (exit 2): error: model.likelihood='poisson' is not "
          "one of") in p.stderr
  assert "model.likelihood=bernoulli: finished" in p.stderr
  assert p.stderr.strip().splitlines()[-1].startswith("error: 1 of 2 runs failed")
  assert os.path.exists(os.path.join(workdir, "model.likelihood=bernoulli", "sweep_done.json"))


@pytest.mark.parametrize("grid,message", [
    ("model.latentz=2,4",
     "--grid names model.latentz, which is not a config key (did you mean model.latents?)"),
    ("seeds=1,2", "--grid seeds: use --seeds and --config.vary for members inside each run"),
    ("model.binarize=maybe", "--grid model.binarize: 'maybe' is not True or False"),
    ("model.latents=2.5", "--grid model.latents: '2.5' is not a whole number"),
])
def test_sweep_mistakes_are_one_line(tmp_path, grid, message):
  p = run([*SWEEP, f"--workdir={tmp_path}", f"--grid={grid}"])
  assert p.returncode == 2 and "Traceback" not in p.stderr
  assert p.stderr.strip().splitlines()[-1] == f"error: {message}"


def test_report_of_one_run_with_members_pools_seeds_per_value(tmp_path):
  c = vae.get_config("tiny")
  c.update(dict(num_steps=2, seeds=2, vary="objective.beta=0.5,1"))
  c.eval.num_importance = 2
  train(c, str(tmp_path))
  columns, rows, best = report.table(report.load(str(tmp_path))[0])
  assert columns[:5] == ["objective.beta", "n", "steps", "train time (s)", "final bits_per_dim"]
  assert [(r["objective.beta"], r["n"]) for r in rows] == [(0.5, 2), (1.0, 2)]
  by_hand = _nll_by_hand(str(tmp_path))
  for r in rows:
    values = by_hand[json.dumps({"objective.beta": r["objective.beta"]})]
    assert r["final nll_nats"][:2] == pytest.approx((np.mean(values), np.std(values, ddof=1)))
  assert best["final nll_nats"] == int(np.argmin([r["final nll_nats"][0] for r in rows]))
  report.report(str(tmp_path))
  assert {"results.md", "results.csv", "curves.png", "report.html"} <= set(os.listdir(tmp_path))


def test_a_sweep_with_a_missing_config_file_starts_nothing(tmp_path):
  p = run(["-m", "gen", "sweep", f"--workdir={tmp_path / 'abl'}", "--config=nonexist.py"])
  assert p.returncode == 2 and "Traceback" not in p.stderr
  assert p.stderr.strip().splitlines()[-1] == (
      "error: cannot load the --config file: [Errno 2] No such file or directory: 'nonexist.py'")
  assert not (tmp_path / "abl").exists()
