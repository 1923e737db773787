"""The build pipeline: sources -> named graphs -> infer -> validate -> export (atomic)."""

from copkg.pipeline.build import Manifest, build, build_state, is_stale, load_build, locked
from copkg.pipeline.check import check
from copkg.pipeline.extend import extend_build
from copkg.pipeline.steps import export, infer, load_sources, validate

__all__ = [
    "Manifest",
    "build",
    "build_state",
    "check",
    "export",
    "extend_build",
    "infer",
    "is_stale",
    "load_build",
    "load_sources",
    "locked",
    "validate",
]
