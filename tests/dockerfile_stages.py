"""A reader of this repository's Dockerfile: its stages and instructions, for the checks that run without Docker."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from conftest import ROOT


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)
    """(INSTRUCTION, arguments) in order, continuation lines joined."""

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]

    def last(self, instruction: str) -> str:
        found = self.all(instruction)
        assert found, f"stage {self.name or self.base} has no {instruction}"
        return found[-1]


def read_stages(path: Path = ROOT / "Dockerfile") -> list[Stage]:
    stages: list[Stage] = []
    for instruction, args in _instructions(path.read_text()):
        if instruction == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append((instruction, args))
    return stages


def exec_form(args: str) -> list[str]:
    """The JSON array of ENTRYPOINT/CMD/HEALTHCHECK CMD; shell form fails the check."""
    value = json.loads(args)
    assert isinstance(value, list), f"expected the exec (JSON) form, got {args!r}"
    return value


def _instructions(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        instruction, _, args = whole.partition(" ")
        found.append((instruction.upper(), " ".join(args.split())))
    return found
