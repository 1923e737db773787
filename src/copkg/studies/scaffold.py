"""`copkg new-study`: study IDs and the scaffold of a new study bundle from the templates."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.pipeline.steps import DRAFT_MARKER
from copkg.rdf_io import fsync_dir, write_synced

#: A study ID: lower-case letters and digits in words joined by single hyphens.
STUDY_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

MAX_ID_LENGTH = 64

#: Segments of https://w3id.org/copkg/id/ that are not studies: the rules mint IRIs in
#: id/inferred/, the advisor in id/hypothetical/.
RESERVED_IDS = frozenset({"inferred", "hypothetical"})


def check_study_id(study_id: str) -> str:
    """The ID if it is a safe folder name and namespace segment; 400 saying why otherwise."""
    why = None
    if not study_id:
        why = "it is empty"
    elif any(c in study_id for c in "/\\") or ".." in study_id:
        why = "it is a path: an ID is one folder name, with no '/', '\\' or '..'"
    elif study_id != study_id.lower():
        why = "it has upper-case letters: use lower case"
    elif len(study_id) > MAX_ID_LENGTH:
        why = f"it is longer than {MAX_ID_LENGTH} characters"
    elif not STUDY_ID.fullmatch(study_id):
        why = "use lower-case letters, digits and single hyphens only"
    elif study_id in RESERVED_IDS:
        why = f"id/{study_id}/ is reserved for IRIs copkg mints itself"
    if why:
        raise CopkgError(
            f"{study_id!r} is not a valid study ID: {why} (e.g. smith2010 or smith2010-retail)",
            status=400,
        )
    return study_id


def studies_dir(settings: Settings) -> Path:
    return settings.data_dir / "studies"


def new_study(settings: Settings, study_id: str) -> Path:
    """Make data/studies/ID/ from the template: a commented study.ttl and a DRAFT marker that
    keeps `copkg build` off the folder until `copkg add` takes the study in."""
    check_study_id(study_id)
    parent = studies_dir(settings)
    parent.mkdir(parents=True, exist_ok=True)
    target = parent / study_id
    if target.exists():
        raise CopkgError(
            f"study {study_id} exists already ({target}): choose another ID", status=409
        )
    work = Path(tempfile.mkdtemp(prefix=f".new-{study_id}-", dir=parent))
    try:
        for template in sorted(_templates(), key=lambda t: t.name):
            text = template.read_text(encoding="utf-8").replace("{{ID}}", study_id)
            write_synced(work / template.name, text.encode("utf-8"))
        work.chmod(0o755)
        fsync_dir(work)
        os.rename(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    fsync_dir(parent)
    return target


def _templates() -> list[Any]:
    folder = resources.files("copkg").joinpath("templates", "study")
    return [t for t in folder.iterdir() if t.is_file() and not t.name.startswith(("_", "."))]


def is_draft(folder: Path) -> bool:
    return (folder / DRAFT_MARKER).exists()
