"""`python cli.py ...` behaves exactly like the installed `sincut` command: the same Click group."""

from sincut.cli import main

if __name__ == "__main__":
    main(prog_name="sincut")
