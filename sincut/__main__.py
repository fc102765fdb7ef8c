"""`python -m sincut ...` (also what `torchrun -m sincut` runs)."""

from .cli import main

main(prog_name="sincut")
