"""The command-line tools: `gen <tool> [flags]`, or `python -m gen <tool>`, or
`python -m gen.tools.<tool>`. Each is a module here with a `cli()`; all start up through
`runner.run`. `gen help` lists them.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import pkgutil
import sys

_NOT_TOOLS = ("runner",)


def available() -> list[str]:
  return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in _NOT_TOOLS)


def _usage() -> str:
  lines = ["usage: gen TOOL [--flags]   (gen TOOL --help for its flags)", "", "tools:"]
  for name in available():  # read, not imported: each tool imports what it needs when it runs
    source = (pathlib.Path(__file__).parent / f"{name}.py").read_text()
    doc = (ast.get_docstring(ast.parse(source)) or "").splitlines()
    lines.append(f"  {name:18s} {doc[0] if doc else ''}")
  return "\n".join(lines)


def main() -> None:
  """The `gen` command."""
  if len(sys.argv) < 2 or sys.argv[1] in ("help", "-h", "--help"):
    print(_usage())
    return
  name = sys.argv[1]
  if name not in available():
    print(f"error: no tool {name!r}; one of {', '.join(available())} (gen help)", file=sys.stderr)
    sys.exit(2)
  sys.argv = [f"gen {name}", *sys.argv[2:]]
  importlib.import_module(f"gen.tools.{name}").cli()
