"""What every command of the command line answers."""

from dataclasses import dataclass

PROG = ".venv/bin/python -m tools.cli"  # how the help and hints name the command line


@dataclass
class Output:
    """What a command answers: `document` for --json, `text` for people."""

    document: object
    text: list[str]
