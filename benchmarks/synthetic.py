"""Synthetic study bundles shaped like the Josserand (2004) bundle, for benchmarks.

Each study gets its own namespace and named graph and the same kinds of resources as the real
one: a study record with a page range, cases with control-mode attributions, contexts assessed on
the shared contingency factors, collectives, dated events, role enactments and findings, each
backed by quotes. The roles, risks and factors are the real ones of Josserand (2004), so the
rules derive risky roles across the whole corpus. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDF, RDFS, XSD

from copkg.namespaces import COPKG, ID

J04 = Namespace(f"{ID}josserand2004/")
ROLES = ["stimulation", "facilitation", "support", "control", "recognition"]
RISKS = {"stimulation": "obligation", "facilitation": "imposed-topic",
         "support": "expected-return", "control": "threat-on-affect",
         "recognition": "expected-deliverables"}
FACTORS = ["institutionalization", "decentralization", "resource-decentralization",
           "productivity-orientation", "short-termism"]
MODES = ["Market", "Clan", "InputControl", "OutputControl"]
DEGREES = ["MainMode", "InMostTeams", "LesserDegree"]
LEVELS = ["Low", "Medium", "High"]
FORMS = ["InformalNetworkForm", "CommunityOfPracticeForm", "WorkingGroupForm", "ProjectTeamForm"]
EVENT_TYPES = ["Reorganisation", "Launch", "Merger", "Retirement", "Appointment"]
WORDS = [
    "community", "practice", "network", "club", "centre", "manager", "consultant", "knowledge",
    "exchange", "cooperation", "control", "rule", "resource", "deliverable", "pilot", "sponsor",
    "region", "unit", "project", "team", "group", "member", "meeting", "lunch", "topic", "agenda",
]

CASES_PER_STUDY = 3
COLLECTIVES_PER_CASE = 4
EVENTS_PER_CASE = 4
FINDINGS_PER_STUDY = 12


def sentence(rng: random.Random, n: int = 14) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


class StudyWriter:
    """Writes one synthetic study into a graph."""

    def __init__(self, study_id: str, rng: random.Random) -> None:
        self.ns = Namespace(f"{ID}{study_id}/")
        self.study = self.ns.study
        self.rng = rng
        self.graph = Graph()
        self.quotes = 0
        self.first_page = rng.randint(1, 400)
        self.last_page = self.first_page + 30

    def add(self, s: URIRef, p: URIRef, o) -> None:
        self.graph.add((s, p, o))

    def quote(self, about: URIRef, voice: str = "AuthorVoice") -> None:
        self.quotes += 1
        q = self.ns[f"q-{self.quotes}"]
        self.add(q, RDF.type, COPKG.Quote)
        self.add(q, COPKG.quoteText, Literal(sentence(self.rng)))
        self.add(q, COPKG.page, Literal(self.rng.randint(self.first_page, self.last_page),
                                        datatype=XSD.positiveInteger))
        self.add(q, COPKG.quotedIn, self.study)
        self.add(q, COPKG.voice, COPKG[voice])
        self.add(about, COPKG.hasEvidence, q)

    def documented(self, iri: URIRef, cls: URIRef, label: str, *, finding: bool = False) -> URIRef:
        self.add(iri, RDF.type, cls)
        self.add(iri, RDFS.label, Literal(label, lang="en"))
        self.add(iri, COPKG.reportedIn, self.study)
        if finding:
            self.add(iri, COPKG.voice, COPKG.AuthorVoice)
            self.add(iri, COPKG.statement, Literal(sentence(self.rng)))
        self.quote(iri)
        return iri

    def write(self) -> Graph:
        rng, ns = self.rng, self.ns
        self.add(self.study, RDF.type, COPKG.Study)
        self.add(self.study, RDFS.label, Literal(f"Synthetic study {ns}", lang="en"))
        self.add(self.study, URIRef("http://purl.org/dc/terms/title"),
                 Literal(sentence(rng, 8)))
        self.add(self.study, URIRef("http://purl.org/dc/terms/issued"),
                 Literal(str(rng.randint(1995, 2024)), datatype=XSD.gYear))
        pages = XSD.positiveInteger
        self.add(self.study, COPKG.firstPage, Literal(self.first_page, datatype=pages))
        self.add(self.study, COPKG.lastPage, Literal(self.last_page, datatype=pages))
        for c in range(CASES_PER_STUDY):
            self.case(c)
        for f in range(FINDINGS_PER_STUDY):
            finding = self.documented(ns[f"finding-{f}"], COPKG.ThematicFinding,
                                      f"finding {f}", finding=True)
            self.add(finding, COPKG.concernsRole, J04[rng.choice(ROLES)])
        return self.graph

    def case(self, c: int) -> None:
        rng, ns = self.rng, self.ns
        org = self.documented(ns[f"org-{c}"], COPKG.Organisation, f"organisation {c}")
        case = self.documented(ns[f"case-{c}"], COPKG.Case, f"case {c}")
        self.add(self.study, COPKG.hasCase, case)
        self.add(case, COPKG.studiesOrganisation, org)
        for m, mode in enumerate(rng.sample(MODES, 2)):
            att = self.documented(ns[f"case-{c}-mode-{m}"], COPKG.ControlModeAttribution,
                                  f"mode {mode} of case {c}", finding=True)
            self.add(att, COPKG.ofCase, case)
            self.add(att, COPKG.controlMode, COPKG[mode])
            self.add(att, COPKG.degree, COPKG[rng.choice(DEGREES)])
        context = self.documented(ns[f"context-{c}"], COPKG.OrganisationalContext,
                                  f"context of case {c}")
        self.add(context, COPKG.ofCase, case)
        for factor in FACTORS:
            a = self.documented(ns[f"context-{c}-{factor}"], COPKG.ContingencyAssessment,
                                f"{factor} in case {c}", finding=True)
            self.add(a, COPKG.assessedContext, context)
            self.add(a, COPKG.onFactor, J04[factor])
            self.add(a, COPKG.level, COPKG[rng.choice(LEVELS)])
        collectives = []
        for k in range(COLLECTIVES_PER_CASE):
            col = self.documented(ns[f"case-{c}-collective-{k}"], COPKG.Collective,
                                  f"collective {k} of case {c}")
            self.add(col, COPKG.hostedBy, org)
            self.add(col, COPKG.initialForm, COPKG[rng.choice(FORMS)])
            collectives.append(col)
        for e in range(EVENTS_PER_CASE):
            ev = self.documented(ns[f"case-{c}-event-{e}"], COPKG.Event, f"event {e} of case {c}",
                                 finding=False)
            self.add(ev, COPKG.eventType, COPKG[rng.choice(EVENT_TYPES)])
            self.add(ev, COPKG.date, Literal(str(rng.randint(1990, 2024)), datatype=XSD.gYear))
            self.add(ev, COPKG.eventOf, org)
            self.add(ev, COPKG.voice, COPKG.AuthorVoice)
        for role in ROLES:
            en = self.documented(ns[f"case-{c}-{role}"], COPKG.RoleEnactment,
                                 f"{role} in case {c}", finding=True)
            realised = rng.random() < 0.3
            self.add(en, COPKG.enactedRole, J04[role])
            self.add(en, COPKG.inCase, case)
            self.add(en, COPKG.inContext, context)
            self.add(en, COPKG.towards, rng.choice(collectives))
            self.add(en, COPKG.riskRealised, Literal(realised))
            if realised:
                self.add(en, COPKG.realisedRisk, J04[RISKS[role]])


def study_graph(index: int, seed: int = 0) -> tuple[str, Graph]:
    """The id and graph of synthetic study number `index`."""
    study_id = f"synthetic-{index:05d}"
    rng = random.Random(f"{seed}-{index}")
    return study_id, StudyWriter(study_id, rng).write()


def write_corpus(target: Path, n: int, seed: int = 0) -> list[Path]:
    """Write n study bundles as data/studies/<id>/study.ttl under target."""
    paths = []
    for i in range(n):
        study_id, graph = study_graph(i, seed)
        folder = target / study_id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "study.ttl"
        graph.serialize(path, format="turtle")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path, help="folder to write study bundles into")
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    paths = write_corpus(args.target, args.n, args.seed)
    print(f"wrote {len(paths)} studies under {args.target}")


if __name__ == "__main__":
    main()
