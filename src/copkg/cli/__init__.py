"""The `copkg` command: a thin click shell, each command one library call.

`main` is the click group (copkg.cli.base); importing this package registers every command
on it (copkg.cli.commands, copkg.cli.scholarly).
"""

from __future__ import annotations

from copkg.cli import commands, scholarly
from copkg.cli.base import main

__all__ = ["commands", "main", "scholarly"]
