"""The README's quick start is what CI runs, so a green CI proves a newcomer's two commands work."""

from __future__ import annotations

import re

from .conftest import ROOT


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Quick start\s+```bash\n(.*?)```", text, re.S)
    assert block, "README.md needs a Quick start section with a bash block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_two_commands_and_ci_runs_them_in_order():
    commands = quick_start_commands()
    assert commands == ['pip install . && sincut demo', 'pip install -e ".[test]" && pytest']
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    positions = [ci.index("\n" + c + "\n") for c in commands]
    assert positions == sorted(positions)


def test_every_cli_command_is_documented():
    from sincut.cli import main

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in main.commands:
        assert f"`sincut {name}" in text, name
