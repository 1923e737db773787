"""Hostile study files: each is refused with a clear error (file, and line where there is one),
fast, without reading anything else or calling out, and the corpus is left byte for byte as it
was. Checked through rdf_io (parse_file, read_quads: the build's reader) and `copkg validate
FILE`; through `copkg add` once copkg.studies offers it (tests/test_robust_add.py)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from watchers import FifoWatch, Listener

from copkg import rdf_io
from copkg.cli import main
from copkg.config import Settings
from copkg.errors import CopkgError

PREFIX = "@prefix ex: <http://example.org/> .\n"
GOOD = PREFIX + 'ex:a ex:p "café" .\n'
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


def corpus_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file under data/studies and build/ (what must never change)."""
    hashes = {}
    for folder in (root / "data" / "studies", root / "build"):
        for path in sorted(folder.rglob("*")) if folder.exists() else ():
            if path.is_file():
                hashes[path.relative_to(root).as_posix()] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
    return hashes


def _billion_laughs() -> str:
    entities = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">\n' for i in range(1, 10))
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n<!ENTITY l0 "lol">\n{entities}]>\n'
        f'<rdf:RDF xmlns:rdf="{RDF_NS}" xmlns:ex="http://example.org/">'
        '<rdf:Description rdf:about="http://example.org/a"><ex:p>&l9;</ex:p>'
        "</rdf:Description></rdf:RDF>\n"
    )


def _external_entity(target: str) -> str:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [<!ENTITY x SYSTEM "{target}">]>\n'
        f'<rdf:RDF xmlns:rdf="{RDF_NS}" xmlns:ex="http://example.org/">'
        '<rdf:Description rdf:about="http://example.org/a"><ex:p>&x;</ex:p>'
        "</rdf:Description></rdf:RDF>\n"
    )


def _parameter_entity(target: str) -> str:
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY % p SYSTEM "{target}"> %p;]>\n'
        f'<rdf:RDF xmlns:rdf="{RDF_NS}"/>\n'
    )


#: (name, content, words the message must hold, line it must name or None)
Case = tuple[str, Callable[[Listener, FifoWatch], bytes], str, int | None]
CASES: list[Case] = [
    ("broken.ttl", lambda _l, _f: (PREFIX + "ex:a ex:p .\n").encode(), "expected", 2),
    ("unclosed.ttl", lambda _l, _f: (PREFIX + 'ex:a ex:p "open .\n').encode(), "", 2),
    ("latin1.ttl", lambda _l, _f: GOOD.encode("latin-1"), "not valid UTF-8", 2),
    ("utf16.ttl", lambda _l, _f: GOOD.encode("utf-16"), "UTF-16", 1),
    ("utf16be.ttl", lambda _l, _f: GOOD.encode("utf-16-be"), "UTF-16", None),
    ("utf32.ttl", lambda _l, _f: GOOD.encode("utf-32"), "UTF-32", 1),
    ("bom.ttl", lambda _l, _f: b"\xef\xbb\xbf" + GOOD.encode(), "byte order mark", 1),
    ("invalid.ttl", lambda _l, _f: PREFIX.encode() + b'ex:a ex:p "\xff\xfe\xc3" .\n', "UTF-8", 2),
    ("overlong.ttl", lambda _l, _f: PREFIX.encode() + b'ex:a ex:p "\xc0\xaf" .\n', "UTF-8", 2),
    ("xxe.rdf", lambda _l, f: _external_entity(f.path.as_uri()).encode(), "DTD", 2),
    ("xxe-passwd.rdf", lambda _l, _f: _external_entity("file:///etc/passwd").encode(), "DTD", 2),
    ("xxe-http.rdf", lambda li, _f: _external_entity(li.url + "x").encode(), "DTD", 2),
    ("param.owl", lambda _l, f: _parameter_entity(f.path.as_uri()).encode(), "DTD", 2),
    ("laughs.rdf", lambda _l, _f: _billion_laughs().encode(), "DTD", 2),
    (
        "context.jsonld",
        lambda li, _f: json.dumps({"@context": li.url + "ctx", "@id": "http://e/a"}).encode(),
        "@context",
        None,
    ),
    (
        "import.jsonld",
        lambda _l, f: json.dumps(
            {"@context": {"@import": f.path.as_uri()}, "@id": "http://e/a"}
        ).encode(),
        "@import",
        None,
    ),
    (
        "deep.jsonld",
        lambda _l, _f: (
            ('{"@id": "http://e/a", "http://e/p": ' + "[" * 50_000 + "]" * 50_000).encode() + b"}"
        ),
        "nested too deeply",
        None,
    ),
    (
        "prefixes.ttl",
        lambda _l, _f: "".join(
            f"@prefix p{i}: <http://e/{i}/> .\n" for i in range(100_000)
        ).encode(),
        "prefix declarations",
        None,
    ),
    (
        "namespaces.rdf",
        lambda _l, _f: (
            f'<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="{RDF_NS}" '
            + " ".join(f'xmlns:p{i}="http://e/{i}/"' for i in range(20_000))
            + "/>\n"
        ).encode(),
        "prefix declarations",
        None,
    ),
    ("nul.ttl", lambda _l, _f: b"\x00" * 8 + GOOD.encode(), "NUL", None),
    ("binary.ttl", lambda _l, _f: bytes(range(256)) * 4, "", None),
]

#: How much CPU refusing any of these may take (they are refused before any expensive
#: parsing); the wall clock may add the session's slack (a busy machine).
FAST = 3.0


@pytest.mark.parametrize(("name", "content", "words", "line"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("reader", ["parse_file", "read_quads"])
def test_hostile_files_are_refused_fast_and_clearly(
    tmp_path: Path,
    listener: Listener,
    fifo: FifoWatch,
    reader: str,
    name: str,
    content: Callable[[Listener, FifoWatch], bytes],
    words: str,
    line: int | None,
    slack: float,
) -> None:
    path = tmp_path / name
    path.write_bytes(content(listener, fifo))
    before = listener.connections
    start, cpu = time.monotonic(), time.process_time()
    with pytest.raises(CopkgError) as error:
        if reader == "parse_file":
            rdf_io.parse_file(path)
        else:
            rdf_io.read_quads(path, "http://example.org/graph")
    elapsed, used = time.monotonic() - start, time.process_time() - cpu
    assert used < FAST, f"refusing {name} took {used:.1f}s of CPU"
    assert elapsed < FAST + slack, f"refusing {name} took {elapsed:.1f}s"
    assert error.value.status == 400
    problem = error.value.problems[0]
    assert problem.file == str(path)
    assert words in problem.message, problem.message
    if line is not None:
        assert problem.line == line, problem
    assert "root:" not in str(error.value)  # nothing of /etc/passwd
    time.sleep(0.02)
    assert listener.connections == before, "a connection was attempted"
    assert not fifo.opened, "a file named in the input was opened"


def test_a_term_over_the_readers_bound_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.ttl"
    path.write_text(PREFIX + 'ex:a ex:p "' + "x" * (17 << 20) + '" .\n')
    with pytest.raises(CopkgError) as error:
        rdf_io.read_quads(path, "http://example.org/graph")
    assert error.value.status == 400 and "too long" in error.value.problems[0].message


@pytest.mark.parametrize("content", [b"", b"  \n\n# a comment only\n"])
def test_a_blank_file_reads_as_no_triples(tmp_path: Path, content: bytes) -> None:
    """A blank file is valid Turtle (no triples): refusing it is the job of `copkg add`."""
    path = tmp_path / "blank.ttl"
    path.write_bytes(content)
    assert len(rdf_io.parse_file(path)) == 0
    assert rdf_io.read_quads(path, "http://example.org/graph") == []


def test_usual_files_stay_readable(tmp_path: Path) -> None:
    """The guards leave ordinary files alone: prefixes, 'prefix' in text, deep-ish nesting."""
    text = (
        "".join(f"@prefix p{i}: <http://e/{i}/> .\n" for i in range(200))
        + 'p1:a p1:b "the prefix ex: <is> in a literal", "\\u0000 is fine escaped" ;\n'
        + "  p1:c "
        + "[ p1:d " * 40
        + "p1:e"
        + " ]" * 40
        + " .\n"
    )
    path = tmp_path / "ok.ttl"
    path.write_text(text, encoding="utf-8")
    assert len(rdf_io.parse_file(path)) == 43
    assert len(rdf_io.read_quads(path, "http://example.org/graph")) == 43


# -- copkg validate FILE ---------------------------------------------------------------------


VALIDATE_CASES = [
    c
    for c in CASES
    if c[0] in ("broken.ttl", "latin1.ttl", "utf16.ttl", "xxe.rdf", "laughs.rdf", "prefixes.ttl",
                "deep.jsonld")
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "content", "words", "line"), VALIDATE_CASES, ids=[c[0] for c in VALIDATE_CASES]
)
def test_copkg_validate_refuses_hostile_files_and_changes_nothing(
    settings: Settings,
    tmp_path: Path,
    listener: Listener,
    fifo: FifoWatch,
    name: str,
    content: Callable[[Listener, FifoWatch], bytes],
    words: str,
    line: int | None,
) -> None:
    path = tmp_path / name
    path.write_bytes(content(listener, fifo))
    before = corpus_hashes(settings.root)
    result = CliRunner().invoke(main, ["validate", str(path), "--root", str(settings.root)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    where = f"{path}:{line}:" if line is not None else f"{path}:"
    assert where in result.output and words in result.output, result.output
    assert corpus_hashes(settings.root) == before
    assert not fifo.opened
