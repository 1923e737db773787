"""One exception type for every error a user can act on, and its JSON body."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Problem:
    """One thing that is wrong, and where."""

    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    focus: str | None = None
    path: str | None = None
    shape: str | None = None

    def where(self) -> str:
        parts = [p for p in (self.file, self.line, self.column) if p is not None]
        return ":".join(str(p) for p in parts)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def __str__(self) -> str:
        where = self.where()
        return f"{where}: {self.message}" if where else self.message


@dataclass
class CopkgError(Exception):
    """An error with an HTTP-like status, a message and the problems behind it."""

    message: str
    status: int = 400
    problems: list[Problem] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        lines = [self.message] + [f"  {p}" for p in self.problems]
        return "\n".join(lines)

    def body(self) -> dict[str, Any]:
        """The one JSON error shape of the service."""
        return {
            "ok": False,
            "status": self.status,
            "error": self.message,
            "errors": [p.as_dict() for p in self.problems],
        }
