"""The build pipeline: sources -> named graphs -> infer -> validate -> export (atomic)."""

from copkg.pipeline.build import Manifest, build, is_stale, load_build
from copkg.pipeline.check import check
from copkg.pipeline.steps import export, infer, load_sources, validate

__all__ = [
    "Manifest",
    "build",
    "check",
    "export",
    "infer",
    "is_stale",
    "load_build",
    "load_sources",
    "validate",
]
