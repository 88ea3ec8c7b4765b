"""`python -m gen TOOL ...` is the `gen TOOL ...` command."""

from gen.tools import main

main()
