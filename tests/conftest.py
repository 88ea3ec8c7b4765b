"""Test set-up: a private TFDS data_dir and a shared JAX compilation cache for subprocesses."""

import json
import os
import subprocess
import sys
import tempfile

import pytest

try:  # before any test module imports TensorFlow: torchvision loads triton (through
  # torch._dynamo), whose library segfaults the process when TensorFlow is already loaded
  # (torch 2.14.1 / triton 3.8.0 / tensorflow-cpu 2.x). Loaded first, both work.
  import torchvision  # pylint: disable=unused-import
except ImportError:  # without the test extra: the tests that need it skip
  pass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TMP = tempfile.mkdtemp(prefix="gen-tests-")

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


def run(args, devices: int = 1, timeout: int = 600) -> subprocess.CompletedProcess:
  """Runs `python ARGS...` from the repo root, with `devices` fake CPU devices."""
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=timeout, check=False)


def metrics_rows(workdir: str) -> list[dict]:
  """metrics.jsonl of a run, without the timing fields (the only ones that vary run to run)."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [{k: v for k, v in json.loads(line).items() if not k.endswith("_per_sec")} for line in f]


@pytest.fixture
def optimized_jax():
  """Full XLA optimisation for a test that computes more than it compiles."""
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_disable_most_optimizations", False)
  yield
  jax.config.update("jax_disable_most_optimizations",
                    os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] not in ("", "0", "false", "False"))


@pytest.fixture(scope="session")
def mnist5k_builder():
  from gen.data import open_builder
  return open_builder("mnist5k")
