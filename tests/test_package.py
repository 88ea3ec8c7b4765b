"""The package's shape: light imports, one name per class, no library module importing a tool,
the `gen` command."""

import ast
import os
import pathlib

from conftest import ROOT, run

GEN = pathlib.Path(ROOT) / "gen"


def test_import_gen_does_not_import_tensorflow():
  code = ("import sys, gen, gen.train.loop, gen.families.gan, gen.tools.sample, gen.runs.run_dir, "
          "gen.metrics; gen.metrics.names(); "
          "print(sorted(m for m in ('tensorflow', 'tensorflow_datasets') if m in sys.modules))")
  result = run(["-c", code])
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == "[]"


def _modules():
  for path in sorted(GEN.rglob("*.py")):
    yield path, ast.parse(path.read_text())


def test_no_library_module_imports_a_tool():
  for path, tree in _modules():
    if path.parent.name == "tools" or path.name == "__main__.py":
      continue
    for node in ast.walk(tree):
      names = ([a.name for a in node.names] if isinstance(node, ast.Import)
               else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
      assert not any(n == "gen.tools" or n.startswith("gen.tools.") for n in names), path


def test_every_class_has_its_own_name():
  seen = {}
  for path, tree in _modules():
    for node in ast.walk(tree):
      if isinstance(node, ast.ClassDef):
        assert node.name not in seen, f"{node.name} in {path} and {seen[node.name]}"
        seen[node.name] = path


def test_the_gen_command_lists_its_tools():
  result = run(["-m", "gen", "help"])
  assert result.returncode == 0, result.stderr
  listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
  assert listed == sorted(p.stem for p in (GEN / "tools").glob("*.py")
                          if p.stem not in ("__init__", "runner"))
  result = run(["-m", "gen", "trian"])
  assert result.returncode == 2 and result.stderr.startswith("error: no tool 'trian'")
  assert len(result.stderr.strip().splitlines()) == 1
  assert os.path.exists(os.path.join(ROOT, "train_gan.py"))
