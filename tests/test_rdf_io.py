"""Reading RDF safely (errors with file and line; no DTD, no remote context, UTF-8 only) and
writing deterministic Turtle atomically."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Dataset, Graph

from copkg import rdf_io
from copkg.errors import CopkgError

GOOD_TTL = """@prefix ex: <http://example.org/> .
ex:a ex:p "one" ;
  ex:q [ ex:r ( 1 2 3 ) ] .
ex:b ex:p _:x . _:x ex:p _:x .
"""


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def problem_of(path: Path) -> tuple[str | None, int | None, str]:
    with pytest.raises(CopkgError) as error:
        rdf_io.parse_file(path)
    assert error.value.status == 400
    problem = error.value.problems[0]
    return problem.file, problem.line, problem.message


@pytest.mark.parametrize(
    "name, text, line, words",
    [
        (
            "unterminated.ttl",
            '@prefix ex: <http://example.org/> .\nex:a ex:p ex:b .\nex:a ex:p "oops .\n',
            3,
            "newline",
        ),
        (
            "prefix.ttl",
            "@prefix ex: <http://example.org/> .\n\n\nex:a nope:p ex:b .\n",
            4,
            "nope",
        ),
        ("graph.trig", "<http://example.org/g> {\n  <http://e/a> <http://e/b> \n}", 3, ""),
        (
            "triples.nt",
            "<http://e/a> <http://e/b> <http://e/c> .\n<http://e/a> <http://e/b> .\n",
            2,
            "",
        ),
        ("quads.nq", "<http://e/a> <http://e/b> <http://e/c> <http://e/g> .\nbroken\n", 2, ""),
        ("doc.jsonld", '{\n  "@id": "http://e/a",\n  "http://e/p": [1,\n}\n', 4, "JSON"),
        (
            "doc.rdf",
            '<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
            '22-rdf-syntax-ns#">\n<rdf:Description>\n</rdf:RDF>\n',
            4,
            "",
        ),
    ],
)
def test_syntax_errors_say_file_and_line(
    tmp_path: Path, name: str, text: str, line: int, words: str
) -> None:
    path = write(tmp_path, name, text)
    file, got_line, message = problem_of(path)
    assert file == str(path)
    assert got_line == line, message
    assert words in message


def test_the_message_quotes_the_offending_line(tmp_path: Path) -> None:
    path = write(tmp_path, "x.ttl", "@prefix ex: <http://example.org/> .\nex:a nope:p ex:b .\n")
    _, _, message = problem_of(path)
    assert "ex:a nope:p ex:b" in message


def test_a_dtd_is_refused_before_any_entity_is_read(tmp_path: Path) -> None:
    secret = write(tmp_path, "secret.txt", "TOP SECRET")
    path = write(
        tmp_path,
        "evil.rdf",
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE rdf:RDF [ <!ENTITY leak SYSTEM "{secret.as_uri()}"> ]>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="http://e/a"><rdf:value>&leak;</rdf:value>'
        "</rdf:Description></rdf:RDF>\n",
    )
    file, line, message = problem_of(path)
    assert (file, line) == (str(path), 2)
    assert "DTD" in message
    assert "TOP SECRET" not in message


def test_entity_expansion_is_refused(tmp_path: Path) -> None:
    lol = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 9))
    path = write(
        tmp_path,
        "bomb.owl",
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY l0 "lol">{lol}]>'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>',
    )
    _, _, message = problem_of(path)
    assert "DTD" in message


def test_plain_rdf_xml_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ok.rdf",
        '<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        ' xmlns:ex="http://example.org/"><rdf:Description rdf:about="http://example.org/a">'
        "<ex:p>one</ex:p></rdf:Description></rdf:RDF>\n",
    )
    assert len(rdf_io.parse_file(path)) == 1


def test_a_remote_json_ld_context_is_not_fetched(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "remote.jsonld",
        '{"@context": "http://127.0.0.1:9/context.jsonld", "@id": "http://e/a"}',
    )
    _, _, message = problem_of(path)
    assert "@context" in message


def test_inline_json_ld_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ok.jsonld",
        '{"@context": {"ex": "http://example.org/"}, "@id": "ex:a", "ex:p": "one"}',
    )
    assert len(rdf_io.parse_file(path)) == 1


def test_invalid_utf8_is_refused_with_the_byte_offset(tmp_path: Path) -> None:
    data = b'@prefix ex: <http://example.org/> .\nex:a ex:p "caf' + b'\xe9" .\n'
    path = write(tmp_path, "latin1.ttl", data)
    file, line, message = problem_of(path)
    assert (file, line) == (str(path), 2)
    offset = data.index(b"\xe9")
    assert "UTF-8" in message and f"byte offset {offset}" in message


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CopkgError, match="unknown RDF file type"):
        rdf_io.parse_file(write(tmp_path, "data.txt", GOOD_TTL))


def test_dataset_formats_give_a_dataset(tmp_path: Path) -> None:
    path = write(tmp_path, "d.trig", "<http://e/g> { <http://e/a> <http://e/b> <http://e/c> . }")
    assert isinstance(rdf_io.parse_file(path), Dataset)
    assert len(rdf_io.parse_graph(path)) == 1


def test_read_quads_into_a_store_reports_like_parse(tmp_path: Path) -> None:
    store = ox.Store()
    good = write(tmp_path, "good.ttl", GOOD_TTL)
    store.extend(rdf_io.read_quads(good, "http://e/graph"))
    assert len(store) == len(rdf_io.parse_file(good))
    bad = write(tmp_path, "bad.ttl", GOOD_TTL + "ex:c ex:p .\n")
    with pytest.raises(CopkgError) as error:
        store.extend(rdf_io.read_quads(bad, "http://e/other"))
    assert error.value.problems[0].file == str(bad)
    assert error.value.problems[0].line == 5
    assert ox.NamedNode("http://e/other") not in list(store.named_graphs())


SORT_SCRIPT = """
import sys
from copkg import rdf_io
graph = rdf_io.parse_graph(sys.argv[1])
sys.stdout.buffer.write(rdf_io.sorted_turtle(graph))
"""


def test_sorted_turtle_is_the_same_in_every_process(tmp_path: Path) -> None:
    path = write(tmp_path, "g.ttl", GOOD_TTL)
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", SORT_SCRIPT, str(path)],
            capture_output=True,
            check=True,
            env=env,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert Graph().parse(data=outputs.pop(), format="turtle").isomorphic(rdf_io.parse_graph(path))


def test_write_sorted_turtle_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.ttl"
    target.write_text("previous")
    graph = rdf_io.parse_graph(write(tmp_path, "g.ttl", GOOD_TTL))

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        rdf_io.write_sorted_turtle(graph, target)
    assert target.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.ttl", "out.ttl"]
    monkeypatch.undo()
    rdf_io.write_sorted_turtle(graph, target)
    assert Graph().parse(target).isomorphic(graph)
