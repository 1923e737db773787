"""The build pipeline: sources -> named graphs -> infer -> validate -> export (atomic)."""

from copkg.pipeline.build import Manifest, build, is_stale, load_build
from copkg.pipeline.steps import export, infer, load_sources, validate

__all__ = [
    "Manifest",
    "build",
    "export",
    "infer",
    "is_stale",
    "load_build",
    "load_sources",
    "validate",
]
