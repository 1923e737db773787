"""Settings (project paths and limits) from defaults, then COPKG_* environment, then overrides."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copkg.errors import CopkgError

ENV_PREFIX = "COPKG_"


def _find_root(environ: Mapping[str, str]) -> Path:
    """COPKG_ROOT, else the working directory if it holds ontology/ and data/."""
    if environ.get(ENV_PREFIX + "ROOT"):
        return Path(environ[ENV_PREFIX + "ROOT"]).expanduser().resolve()
    cwd = Path.cwd()
    if (cwd / "ontology").is_dir() and (cwd / "data").is_dir():
        return cwd.resolve()
    raise CopkgError(
        f"no copkg project here ({cwd} has no ontology/ and data/): "
        "run from the project folder, set COPKG_ROOT or pass --root",
        status=500,
    )


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(item for item in (v.strip() for v in value.replace(",", " ").split()) if item)


@dataclass(frozen=True)
class Settings:
    """Where the sources and the build are, and the limits of a query."""

    root: Path
    build_dir: Path
    query_timeout: float = 10.0
    max_rows: int = 100_000
    max_body: int = 1024 * 1024
    update_token: str | None = None
    allowed_service_endpoints: tuple[str, ...] = ()
    store_url: str | None = None
    #: How a remote store (store_url http(s)) is sent its own time limit with each query:
    #: `virtuoso`, `fuseki`, `NAME:ms`, `NAME:s`, or None (copkg.store.http.timeout_parameter).
    remote_timeout_param: str | None = None
    #: What one study bundle may hold (`copkg add`): characters in one literal, triples, bytes.
    max_literal: int = 64 * 1024
    max_bundle_triples: int = 200_000
    max_bundle_bytes: int = 64 * 1024 * 1024
    #: Folders where source texts kept apart from their bundles are found by SHA-256.
    source_texts: tuple[str, ...] = ()

    @classmethod
    def load(
        cls,
        root: str | os.PathLike[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Defaults, then COPKG_* variables of `environ` (default os.environ), then overrides."""
        env = os.environ if environ is None else environ
        root_path = Path(root).expanduser().resolve() if root is not None else _find_root(env)
        values: dict[str, Any] = {"root": root_path}
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values.update(read_environment(SETTING_TYPES, env))
        for name, value in overrides.items():
            if name not in fields or name == "root":
                raise TypeError(f"unknown setting {name!r}")
            if value is not None or name in ("update_token", "store_url"):
                values[name] = value
        if values.get("build_dir") is None:
            values["build_dir"] = root_path / "build"
        values["build_dir"] = Path(values["build_dir"]).expanduser().resolve()
        values["allowed_service_endpoints"] = tuple(values.get("allowed_service_endpoints", ()))
        values["source_texts"] = tuple(values.get("source_texts", ()))
        return cls(**values)

    @property
    def ontology_dir(self) -> Path:
        return self.root / "ontology"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def rules_dir(self) -> Path:
        return self.root / "rules"

    @property
    def queries_dir(self) -> Path:
        return self.root / "queries"

    @property
    def shapes_file(self) -> Path:
        return self.ontology_dir / "shapes.ttl"

    def ontology_files(self) -> list[Path]:
        """The files of the ontology named graph: the ontology and the shared vocabularies."""
        return [self.ontology_dir / "copkg.ttl", self.ontology_dir / "vocabularies.ttl"]

    def source_text_dirs(self, study_id: str) -> list[Path]:
        """Where the source text of a study is looked for (by its SHA-256): the study's
        source/ folder, then the folders of COPKG_SOURCE_TEXTS."""
        return [self.data_dir / "studies" / study_id / "source"] + [
            Path(p).expanduser() for p in self.source_texts
        ]

    def study_dirs(self) -> list[Path]:
        """One folder a study bundle: data/studies/ID/, sorted by ID."""
        studies = self.data_dir / "studies"
        if not studies.is_dir():
            return []
        return sorted(p for p in studies.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_environment(
    types: Mapping[str, type], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The COPKG_<NAME> variables of `environ` (default os.environ) for the names of `types`,
    each as its type; the one reader of copkg's environment (Settings, the web app, serve).

    An empty value of a number, flag, list or path is as if unset; of a text, None."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, kind in types.items():
        key = ENV_PREFIX + name.upper()
        raw = env.get(key)
        if raw is None or (raw == "" and kind is not str):
            continue
        values[name] = _convert(key, kind, raw)
    return values


def _convert(key: str, kind: type, raw: str) -> Any:
    """One COPKG_* value as `kind` (a clear error if it cannot be)."""
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError as exc:
            raise CopkgError(f"{key}={raw!r} is not a number", status=500) from exc
    if kind is bool:
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise CopkgError(f"{key}={raw!r} is not true or false", status=500)
    if kind is tuple:
        return _split_list(raw)
    if kind is Path:
        return Path(raw).expanduser()
    return raw or None


#: The type of each Settings field read from COPKG_* (root is found apart: see _find_root).
SETTING_TYPES: dict[str, type] = {
    "build_dir": Path,
    "query_timeout": float,
    "max_rows": int,
    "max_body": int,
    "update_token": str,
    "allowed_service_endpoints": tuple,
    "store_url": str,
    "remote_timeout_param": str,
    "max_literal": int,
    "max_bundle_triples": int,
    "max_bundle_bytes": int,
    "source_texts": tuple,
}

#: What the web service reads from COPKG_* besides the Settings.
WEB_TYPES: dict[str, type] = {
    "root": Path,
    "query_workers": int,
    "overview_timeout": float,
    "response_cache_bytes": int,
    "cors_origins": str,
    "warm_up": bool,
}

#: What `copkg serve` reads from COPKG_* for gunicorn.
SERVE_TYPES: dict[str, type] = {
    "client_timeout": float,
    "client_min_rate": float,
    "front_buffer": float,
}
