"""What the page reads keep between requests, per store: a build's store never changes, so a
label map or a hub's link count read once serves every page of the build."""

from __future__ import annotations

import threading
import weakref
from typing import Any

from copkg.store import Store

_kept: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def store_identity(store: Store) -> str | None:
    """The identity of a store that cannot change: the identity of the build it was opened
    from (pipeline.load_build sets it from the manifest), else None."""
    if not getattr(store, "read_only", False):
        return None
    return getattr(store, "build_identity", None)


def kept(store: Store) -> dict[str, Any]:
    """What the reads keep for a store (for as long as the store is open)."""
    with _lock:
        found = _kept.get(store)
        if found is None:
            found = _kept[store] = {}
        return found
