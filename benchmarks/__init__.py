"""The benchmark scripts (run them as `python benchmarks/NAME.py`) and, below them, `harness/`: what every
script does alike. A package so that scripts and tests import the harness as `benchmarks.harness.*`, one
name wherever they run from; not part of the installed sincut package."""
