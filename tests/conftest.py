"""Test set-up: a private TFDS data_dir, JAX compilation cache and gen cache, shared by the
pytest-xdist workers of one run and the subprocesses they start; `run` for command lines."""

import contextlib
import fcntl
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

import numpy as np
import pytest

# Before any test module imports TensorFlow: torchvision loads triton (through torch._dynamo),
# whose library segfaults the process when TensorFlow is already loaded (torch 2.14.1 / triton
# 3.8.0 / tensorflow-cpu 2.x). Loaded first, both work. Without the test extra the tests that
# need it skip.
with contextlib.suppress(ImportError):
  import torchvision  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # the same in every worker of one run
_TMP = (os.path.join(tempfile.gettempdir(), f"gen-tests-{_RUN}") if _RUN
        else tempfile.mkdtemp(prefix="gen-tests-"))
os.makedirs(_TMP, exist_ok=True)

# Set before anything imports jax or tfds; subprocesses inherit them.
os.environ["TFDS_DATA_DIR"] = os.path.join(_TMP, "tfds")
os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.join(_TMP, "jax-cache")
os.environ["GEN_CACHE_DIR"] = os.path.join(_TMP, "gen-cache")  # digit network, reference features
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
# Tiny models: compiling dominates, and unoptimised XLA compiles ~2x faster (the flax examples'
# tests do the same). Results are compared only between runs under the same setting.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The configs' `:tiny` variants: every moving part, a few seconds of compute.
TINY_GAN = ["--config=gen/configs/gan.py:tiny"]
TINY_VAE = ["--config=gen/configs/vae.py:tiny"]
TINY_CYCLEGAN = ["--config=gen/configs/cyclegan.py:tiny"]


OFFLINE_DATASETS = ("mnist5k", "digits2bold", "digits2bold_pairs")


@pytest.fixture(scope="session", autouse=True)
def offline_datasets():
  """The offline datasets, prepared once for the run: by the first worker to get here while the
  others wait (TFDS must not prepare one data_dir twice at once)."""
  with open(os.path.join(_TMP, "prepare.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    from gen.data import open_builder
    for name in OFFLINE_DATASETS:
      open_builder(name)


def shared_run(name: str, make) -> str:
  """A run directory made once per test run and shared by every xdist worker: the first worker
  to ask calls `make(workdir)` while the others wait. Tests only read it."""
  workdir = os.path.join(_TMP, "runs", name)
  os.makedirs(os.path.dirname(workdir), exist_ok=True)
  with open(workdir + ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not os.path.exists(workdir + ".done"):
      shutil.rmtree(workdir, ignore_errors=True)
      make(workdir)
      open(workdir + ".done", "w").close()
  return workdir


def pytest_collection_modifyitems(items):
  """Slow tests (marked `slow`: tens of seconds on 2 cores) first, so that the workers end on
  short tests instead of one waiting for another's long one; `-m "not slow"` is a fast local
  subset. A module's tests stay together (module fixtures are set up once)."""
  slow = lambda item: item.get_closest_marker("slow") is not None
  modules = {}
  for item in items:
    modules[item.module] = modules.get(item.module, 0) + slow(item)
  order = {m: i for i, m in enumerate(modules)}
  items.sort(key=lambda item: (-modules[item.module], order[item.module], not slow(item)))


def pytest_unconfigure(config):
  if not hasattr(config, "workerinput"):  # the controller, once every worker is done
    shutil.rmtree(_TMP, ignore_errors=True)


def run(args, devices: int = 1, timeout: int = 600,
        subprocess_only: bool = False) -> subprocess.CompletedProcess:
  """`python ARGS...` from the repo root with `devices` fake CPU devices -> (returncode, stdout,
  stderr). A gen command line (`-m gen TOOL ...` or a train_*.py script) on one device runs in
  this process, through the same flags, runner and error handling, without a new
  interpreter's imports and compilations; anything else, or `subprocess_only`, runs in a new
  process."""
  if devices == 1 and not subprocess_only and _gen_command(args):
    return _run_here(args)
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=timeout, check=False)


def _gen_command(args) -> bool:
  return (args[:2] == ["-m", "gen"] and len(args) > 2) or (
      args[0].startswith("train_") and args[0].endswith(".py"))


def _run_here(args) -> subprocess.CompletedProcess:
  from absl import flags

  import gen.tools
  from gen.tools import train as train_tool
  defined, argv, cwd = set(flags.FLAGS), sys.argv, os.getcwd()
  out, err = io.StringIO(), io.StringIO()
  code = 0
  try:
    os.chdir(ROOT)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
      if args[0] == "-m":
        sys.argv = ["gen", *args[2:]]
        gen.tools.main()
      else:
        sys.argv = list(args)
        train_tool.cli(args[0][len("train_"):-len(".py")])
  except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
  except Exception:  # what a real process would print and exit 1 with
    code = 1
    err.write(traceback.format_exc())
  finally:
    sys.argv = argv
    os.chdir(cwd)
    for name in set(flags.FLAGS) - defined:  # the next command line defines its own
      delattr(flags.FLAGS, name)
  return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def metrics_rows(workdir: str) -> list[dict]:
  """metrics.jsonl of a run, without the timing fields (the only ones that vary run to run)."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [{k: v for k, v in json.loads(line).items() if not k.endswith("_per_sec")} for line in f]


# Equality of one training computed two ways: K members in one program against K separate
# runs, several devices or processes against one. Both do the same float32 arithmetic in
# another order (vmapped or sharded convolutions and reductions): reassociation moves a sum by
# ~1e-7 relative, and over the few steps compared (<= 6, from bitwise-equal initial states)
# losses stay within ~5e-6 (measured, GAN, VAE, CycleGAN, pix2pix): RTOL = 1e-4 leaves 20x, and
# ATOL covers values that are means of O(1) terms near 0 (D's mean logits).
RTOL, ATOL = 1e-4, 1e-5
# L1 losses (CycleGAN's cycle and identity terms, pix2pix's L1) have the gradient
# sign(residual) / N: where a residual lies within that rounding of 0 the sign can flip, and
# one flipped pixel moves G's gradient norm by ~2 lambda / N |d pixel / d params|: 1.0e-4
# relative, measured for the tiny CycleGAN (N = 2 x 28 x 28). Its gradient norms get room for
# 20 such pixels.
L1_GRAD_NORM_RTOL = 2e-3
L1_FAMILIES = ("cyclegan", "pix2pix")


def assert_same_training(a: list[dict], b: list[dict], family: str, names=None) -> None:
  """metrics.jsonl rows of one training computed two ways agree (see RTOL): the same rows and
  tags, and every float (or those in `names`) within the bounds above."""
  assert [r["step"] for r in a] == [r["step"] for r in b]
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for k, v in x.items():
      if names is not None and k not in names:
        continue
      if not isinstance(v, float):
        assert v == y[k], k
        continue
      grad_norm_with_l1 = family in L1_FAMILIES and k.endswith("grad_norm")
      np.testing.assert_allclose(y[k], v, rtol=L1_GRAD_NORM_RTOL if grad_norm_with_l1 else RTOL,
                                 atol=ATOL, err_msg=f"{family} step {x['step']} {k}")


@pytest.fixture
def optimized_jax():
  """Full XLA optimisation for a test that computes more than it compiles."""
  import jax
  jax.config.update("jax_disable_most_optimizations", False)
  yield
  jax.config.update("jax_disable_most_optimizations",
                    os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] not in ("", "0", "false", "False"))


@pytest.fixture(scope="session")
def mnist5k_builder():
  from gen.data import open_builder
  return open_builder("mnist5k")
