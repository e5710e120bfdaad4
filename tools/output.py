"""What every command of the command line answers."""

from dataclasses import dataclass


@dataclass
class Output:
    """What a command answers: `document` for --json, `text` for people."""

    document: object
    text: list[str]
