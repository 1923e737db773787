"""Scholarly formats: bibliography import, nanopublications, ORKG CSV, compacted JSON-LD."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from rdflib import Dataset, Graph, Literal, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCTERMS, RDF, RDFS

from copkg.cli import main
from copkg.config import Settings
from copkg.errors import CopkgError
from copkg.namespaces import CITO, COPKG, FABIO, study_base
from copkg.scholarly import jsonld, orkg
from copkg.scholarly.bibliography import import_bibliography, read_entries
from copkg.scholarly.corpus import load_study, normalise_doi
from copkg.scholarly.nanopub import (
    NP,
    check_nanopubs,
    export_nanopubs,
    split,
    to_trig,
)

ROOT = Path(__file__).resolve().parents[1]
WS = study_base("wenger-snyder2000")
J04 = study_base("josserand2004")
BIB = r"""@article{barley1990,
  title = {Images of Imaging: Notes on Doing Longitudinal Field Work},
  author = {Barley, Stephen R.},
  journal = {Organization Science},
  year = {1990}, volume = {1}, number = {3}, pages = {220--247},
  doi = {https://doi.org/10.1287/ORSC.1.3.220}
}

@book{wenger1998,
  title = {Communities of Practice: Learning, Meaning, and Identity},
  author = {Wenger, Etienne},
  publisher = {Cambridge University Press}, year = 1998
}

@article{argyris,
  title = {Organizational Learning},
  author = {Argyris, Chris and Sch{\"o}n, Donald A.},
  journal = {Reading}, year = {1978}, month = mar
}
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- bibliography ------------------------------------------------------------------------------


def test_doi_normalisation() -> None:
    assert normalise_doi("https://doi.org/10.1287/ORSC.1.3.220") == "10.1287/orsc.1.3.220"
    assert normalise_doi(" doi:10.3917/MANA.073.0307 ") == "10.3917/mana.073.0307"
    assert normalise_doi("not a doi") is None


def test_bibtex_import_writes_fabio_works_cited_by_the_study(
    settings: Settings, tmp_path: Path
) -> None:
    outcome = import_bibliography(settings, _write(tmp_path / "refs.bib", BIB), "wenger-snyder2000")
    assert outcome.path == settings.data_dir / "studies/wenger-snyder2000/references-imported.ttl"
    graph = Graph().parse(outcome.path)
    barley = WS["ref-barley1990"]
    assert (barley, RDF.type, FABIO.JournalArticle) in graph
    assert (WS["ref-wenger1998"], RDF.type, FABIO.Book) in graph
    assert graph.value(barley, DCTERMS.identifier) == Literal("10.1287/orsc.1.3.220")
    assert (barley, RDFS.seeAlso, URIRef("https://doi.org/10.1287/orsc.1.3.220")) in graph
    assert graph.value(barley, DCTERMS.isPartOf) == Literal("Organization Science")
    argyris = WS["ref-argyris"]
    assert graph.value(argyris, DCTERMS.creator) == Literal("Argyris, Chris, and Donald A. Schön")
    assert str(graph.value(argyris, DCTERMS.issued)) == "1978-03"
    cited = set(graph.objects(WS["study"], CITO.cites))
    assert cited == {barley, WS["ref-wenger1998"], argyris}
    first = outcome.path.read_bytes()
    import_bibliography(settings, tmp_path / "refs.bib", "wenger-snyder2000")
    assert outcome.path.read_bytes() == first  # deterministic, and re-import is not a duplicate


def test_imported_bibliography_passes_the_shapes(settings: Settings, tmp_path: Path) -> None:
    from copkg.pipeline import check

    outcome = import_bibliography(settings, _write(tmp_path / "refs.bib", BIB), "josserand2004")
    # the Josserand bundle links findings of the bundles it cites: validate them together
    files = sorted((settings.data_dir / "studies").glob("*/*.ttl"))
    assert outcome.path in files
    result = check(settings, files, "sparql")
    assert result.conforms, result.text


def test_a_work_in_the_corpus_is_linked_by_doi_not_duplicated(
    settings: Settings, tmp_path: Path
) -> None:
    # another study knows the work under its own IRI, with the DOI in another case and form
    known = settings.data_dir / "studies/josserand2004/doi-fixture.ttl"
    _write(
        known,
        "@prefix dcterms: <http://purl.org/dc/terms/> .\n"
        f'<{J04["ref-barley-1990"]}> dcterms:identifier "doi:10.1287/Orsc.1.3.220" .\n',
    )
    csl = [
        {"id": "barley", "type": "article-journal", "title": "Images of Imaging",
         "DOI": "10.1287/ORSC.1.3.220", "issued": {"date-parts": [[1990]]}},
        {"id": "new-one", "type": "book", "title": "A Book",
         "author": [{"family": "Doe", "given": "Jane"}], "issued": {"date-parts": [[2001, 5]]}},
    ]  # fmt: skip
    source = _write(tmp_path / "refs.json", json.dumps(csl, indent=1))
    outcome = import_bibliography(settings, source, "wenger-snyder2000")
    graph = Graph().parse(outcome.path)
    assert outcome.linked == [J04["ref-barley-1990"]]
    assert (WS["study"], CITO.cites, J04["ref-barley-1990"]) in graph
    assert not list(graph.predicate_objects(J04["ref-barley-1990"]))
    assert WS["ref-barley"] not in set(graph.subjects())
    assert (WS["ref-new-one"], RDF.type, FABIO.Book) in graph


def test_bad_bibtex_is_refused_with_file_and_line_and_nothing_written(
    settings: Settings, tmp_path: Path, runner: CliRunner
) -> None:
    bad = _write(
        tmp_path / "bad.bib",
        "@article{a,\n title={X},\n year={19x0}, doi={nope}\n}\n"
        "@article{b, title={Y}\n@book{c, title={Z}}\n@book{d, author={A, B}}\n",
    )
    result = runner.invoke(
        main,
        ["cite", "import", str(bad), "--study", "wenger-snyder2000", "--root", str(settings.root)],
    )
    assert result.exit_code == 2
    assert f"{bad}:1: entry a: 'nope' is not a DOI" in result.output
    assert f"{bad}:1: entry a: year '19x0' is not a four-digit year" in result.output
    assert f"{bad}:5: cannot read this block" in result.output
    assert f"{bad}:7: entry d: no title" in result.output
    assert not (settings.data_dir / "studies/wenger-snyder2000/references-imported.ttl").exists()


def test_bad_csl_json_gives_the_item_line(tmp_path: Path) -> None:
    source = _write(tmp_path / "c.json", '[\n {"id": "a", "title": "T"},\n {"id": "b"}\n]\n')
    with pytest.raises(CopkgError) as caught:
        read_entries(source)
    assert [str(p) for p in caught.value.problems] == [f"{source}:3: entry b: no title"]
    broken = _write(tmp_path / "d.json", '[\n {"id": "a",\n')
    with pytest.raises(CopkgError) as caught:
        read_entries(broken)
    assert caught.value.problems[0].line == 3


def test_a_key_colliding_with_a_described_resource_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    source = _write(tmp_path / "r.bib", "@article{barley-1990, title={Clash}, year=1990}\n")
    with pytest.raises(CopkgError) as caught:
        import_bibliography(settings, source, "josserand2004")
    assert "already described" in caught.value.problems[0].message


# -- nanopublications --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def josserand_nanopubs() -> Dataset:
    settings = Settings.load(ROOT, environ={})
    return export_nanopubs(settings, "josserand2004", created=datetime(2025, 1, 1, tzinfo=UTC))


@pytest.mark.slow
def test_josserand_nanopubs_pass_the_nanopub_library_checks(josserand_nanopubs: Dataset) -> None:
    settings = Settings.load(ROOT, environ={})
    findings = set(load_study(settings, "josserand2004").subjects(RDF.type, COPKG.Finding))
    count = check_nanopubs(josserand_nanopubs)
    assert count >= len(findings) > 100
    # the TriG written, read back, holds the very quads checked (so it passes too; no blank
    # node: the quads compare as they are)
    again = Dataset()
    again.parse(data=to_trig(josserand_nanopubs).decode("utf-8"), format="trig")
    assert set(again.quads()) == set(josserand_nanopubs.quads())


def test_a_nanopub_carries_the_finding_its_quotes_voice_and_study(
    josserand_nanopubs: Dataset,
) -> None:
    finding = J04["references-barley-1990-method"]
    ns = "https://w3id.org/copkg/np/josserand2004/references-barley-1990-method/"
    assertion = josserand_nanopubs.graph(URIRef(ns + "assertion"))
    provenance = josserand_nanopubs.graph(URIRef(ns + "provenance"))
    pubinfo = josserand_nanopubs.graph(URIRef(ns + "pubinfo"))
    assert (finding, CITO.hasCitedEntity, J04["ref-barley-1990"]) in assertion
    assert (finding, COPKG.hasEvidence, None) not in assertion
    about = assertion.identifier
    quote = J04["q-references-85"]
    assert (about, URIRef("http://www.w3.org/ns/prov#wasDerivedFrom"), quote) in provenance
    assert (quote, COPKG.page, None) in provenance and (quote, COPKG.quoteText, None) in provenance
    assert (about, COPKG.voice, COPKG.AuthorVoice) in provenance
    assert (about, URIRef("http://www.w3.org/ns/prov#hadPrimarySource"), J04["study"]) in provenance
    assert str(pubinfo.value(URIRef(ns), DCTERMS.created)).startswith("2025-01-01")
    assert pubinfo.value(URIRef(ns), DCTERMS.license) is not None


def test_a_malformed_nanopub_is_caught(josserand_nanopubs: Dataset) -> None:
    np_iri, one = next(iter(split(josserand_nanopubs).items()))
    provenance = one.graph(one.graph(URIRef(str(np_iri) + "Head")).value(np_iri, NP.hasProvenance))
    provenance.remove((None, None, None))
    with pytest.raises(CopkgError) as caught:
        check_nanopubs(one)
    assert "provenance graph is empty" in caught.value.problems[0].message


def test_signed_nanopubs_have_a_valid_signature(settings: Settings, tmp_path: Path) -> None:
    from Crypto.PublicKey import RSA

    from copkg.scholarly.nanopub import Signer, _library_nanopub, sign_nanopubs

    key = tmp_path / "key.pem"
    key.write_bytes(RSA.generate(2048).export_key("PEM", pkcs=8))
    signer = Signer.from_pem(key, "https://orcid.org/0000-0002-1825-0097", "J. Carberry")
    unsigned = export_nanopubs(settings, "wenger-snyder2000")
    signed = sign_nanopubs(unsigned, signer)
    parts = split(signed)
    assert len(parts) == len(split(unsigned))
    for np_iri, one in list(parts.items())[:3]:
        assert "/RA" in str(np_iri)
        assert _library_nanopub(one).has_valid_signature


def test_export_nanopub_cli(settings: Settings, runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "np.trig"
    result = runner.invoke(
        main,
        ["export", "nanopub", "--study", "wenger-snyder2000", "-o", str(out),
         "--root", str(settings.root)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "well-formed" in result.output
    data = Dataset()
    data.parse(out, format="trig")
    assert check_nanopubs(data) > 0


# -- ORKG --------------------------------------------------------------------------------------


def test_orkg_csv_has_one_contribution_a_finding(settings: Settings, runner: CliRunner) -> None:
    result = runner.invoke(
        main, ["export", "orkg", "--study", "wenger-snyder2000", "--root", str(settings.root)]
    )
    assert result.exit_code == 0, result.output
    text = result.stdout
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert header[:8] == orkg.PAPER_COLUMNS
    assert "statement" in header and "evidence" in header
    graph = load_study(settings, "wenger-snyder2000")
    from copkg.scholarly.nanopub import finding_classes

    findings = {s for c in finding_classes(settings) for s in graph.subjects(RDF.type, c)}
    assert len(rows) - 1 == len(findings) > 0
    first = dict(zip(header, rows[1], strict=False))
    assert first["paper:title"] == "Communities of Practice: The Organizational Frontier"
    assert first["paper:publication_year"] == "2000"
    assert first["paper:published_in"] == "Harvard Business Review"
    statements = {dict(zip(header, r, strict=False))["statement"] for r in rows[1:]}
    assert statements == {str(graph.value(f, COPKG.statement) or "") for f in findings}
    evidence = [c for r in rows[1:] for h, c in zip(header, r, strict=True) if h == "evidence"]
    assert any(c.startswith("p. 3") for c in evidence)


# -- JSON-LD -----------------------------------------------------------------------------------


def test_shipped_context_is_the_ontologys() -> None:
    settings = Settings.load(ROOT, environ={})
    shipped = (ROOT / "src/copkg/scholarly/context.jsonld").read_text(encoding="utf-8")
    assert shipped == jsonld.context_text(jsonld.build_context(jsonld.ontology_graph(settings))), (
        "regenerate src/copkg/scholarly/context.jsonld from the ontology (copkg.scholarly.jsonld)"
    )


def test_jsonld_export_is_compact_and_round_trips(settings: Settings, runner: CliRunner) -> None:
    result = runner.invoke(
        main, ["export", "jsonld", "--study", "wenger-snyder2000", "--root", str(settings.root)]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["@context"] == jsonld.CONTEXT_URL
    assert document["@id"] == "https://w3id.org/copkg/graph/study/wenger-snyder2000"
    study = next(n for n in document["@graph"] if n["@id"].endswith("/study"))
    assert "title" in study and "@type" in study and "firstPage" in study
    document["@context"] = jsonld.shipped_context()["@context"]
    back = Dataset()
    back.parse(data=json.dumps(document), format="json-ld")
    graph = Graph()
    for s, p, o, _ in back.quads((None, None, None, None)):
        graph.add((s, p, o))
    assert isomorphic(graph, load_study(settings, "wenger-snyder2000"))


def test_the_web_app_serves_the_context() -> None:
    from copkg.store.embedded import OxigraphStore
    from copkg.web.app import create_app

    app = create_app({"STORE": OxigraphStore(), "QUERY_WORKERS": 0, "TESTING": True})
    response = app.test_client().get("/ns/context.jsonld")
    assert response.status_code == 200
    assert response.mimetype == "application/ld+json"
    assert response.get_json() == jsonld.shipped_context()
