"""What every benchmark script does alike, so that a script holds its own question and nothing else.

Layers, each importing only from those above it in this list (and from sincut's public names), never from a
script:

- paths: the repository, the results folder, the bundled samples, the data beside the checkout;
- args: argument parsing the scripts share (--json, WxH sizes, step counts, seeds, the one-line error);
  report: atomic JSON with the command line, markdown tables; machine: the machine a figure was measured on;
  timing: repeats with warm-up, median and range, a command or child interpreter run to its end;
- flops: the FLOP counter, the measured peak and the floor it sets; pairs: the photo/painting pairs and the
  inputs of each preset; charts: median-and-band line charts; training_runs: `sincut train` in a fresh
  process and what a finished run holds;
- baselines: the photo and its colour transfers, scored like a run; steps: one training step timed phase
  by phase; translation: `sincut translate`'s Translator timed in a fresh interpreter.

Nothing is imported here, so a script (or the paper's code, through paper_probe.py) loads only what it uses.
"""
