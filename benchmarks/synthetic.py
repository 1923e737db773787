"""Synthetic study bundles shaped like the Josserand (2004) bundle, for benchmarks.

Each study gets its own namespace and named graph, is split into files as the real bundle is
(study, contexts, cases, enactments, themes, references) and holds the same kinds of resources in
roughly the same proportions, at about a tenth of its size (~1,000 triples a study, against
~11,000): a study record with a page range and a research stage, two cases each with an
organisation, a Table 1 cell, control-mode attributions, an organisational context assessed on
the five contingency factors, collectives, dated events, a quantity, interview sets and the five
role enactments; thematic findings; cited works with CiTO-characterised citation findings; one
cross-study relation to the previous synthetic study. Every documented thing rests on quotes
(about 70 a study, a tenth of them an informant's with the speaker's position and organisation).
The roles, risks and factors are the real ones of Josserand (2004), so the rules derive risky
roles across the whole corpus (and the paper's recommendations apply to the synthetic contexts).
Synthetic studies make no recommendations of their own: one applies to every context of its kind
in the corpus, which would grow the inferences with the square of the corpus.

Every bundle passes ontology/shapes.ttl alongside the Josserand bundle. Study `i` is the same
whatever the size of the corpus (deterministic for a given seed), so study N is the "new study"
added to a corpus of N.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Iterable
from pathlib import Path

from copkg.namespaces import ID

J04 = f"{ID}josserand2004/"
ROLES = ["stimulation", "facilitation", "support", "control", "recognition"]
RISKS = {
    "stimulation": "obligation",
    "facilitation": "imposed-topic",
    "support": "expected-return",
    "control": "threat-on-affect",
    "recognition": "expected-deliverables",
}
FACTORS = [
    "institutionalization",
    "decentralization",
    "resource-decentralization",
    "productivity-orientation",
    "short-termism",
]
MODES = ["Market", "Clan", "InputControl", "OutputControl", "Bureaucracy"]
DEGREES = ["MainMode", "InMostTeams", "LesserDegree"]
LEVELS = ["Low", "Medium", "High"]
FORMS = ["InformalNetworkForm", "CommunityOfPracticeForm", "WorkingGroupForm", "ProjectTeamForm"]
EVENT_TYPES = ["Reorganisation", "Launch", "Merger", "Retirement", "Appointment", "Emergence"]
THEMES = [
    "ContingentManagement",
    "FillingOrganisationalGaps",
    "FromLearningToDoing",
    "InterestAndAltruism",
    "ResilienceAndInformalNetworks",
]
CITATIONS = [
    "citesAsAuthority",
    "agreesWith",
    "confirms",
    "qualifies",
    "usesMethodIn",
    "disagreesWith",
    "extends",
]
RELATIONS = ["agreesWith", "confirms", "qualifies", "extends", "disputes", "supports"]
POSITIONS = [
    "Region Manager",
    "Unit Manager",
    "Club Facilitator",
    "Consultant",
    "Mission Manager",
    "Pilot",
    "Regional Director",
]
SECTORS = ["energy", "utilities", "consulting", "insurance", "banking", "telecoms"]
WORDS = [
    "community",
    "practice",
    "network",
    "club",
    "centre",
    "manager",
    "consultant",
    "knowledge",
    "exchange",
    "cooperation",
    "control",
    "rule",
    "resource",
    "deliverable",
    "pilot",
    "sponsor",
    "region",
    "unit",
    "project",
    "team",
    "group",
    "member",
    "meeting",
    "lunch",
    "topic",
    "agenda",
    "bureaucracy",
    "hierarchy",
    "autonomy",
    "learning",
    "objective",
    "result",
    "trust",
    "time",
]

CASES_PER_STUDY = 2
COLLECTIVES_PER_CASE = 2
EVENTS_PER_CASE = 2
THEMATIC_FINDINGS = 6
CITED_WORKS = 5
POSITIONS_PER_STUDY = 3
INFORMANT_SHARE = 0.12

PREFIXES = {
    "copkg": "https://w3id.org/copkg/ontology#",
    "cito": "http://purl.org/spar/cito/",
    "dcterms": "http://purl.org/dc/terms/",
    "fabio": "http://purl.org/spar/fabio/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "j04": J04,
    "prov": "http://www.w3.org/ns/prov#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}

Objects = str | Iterable[str]


def sentence(rng: random.Random, n: int = 14) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def text(value: str, lang: str | None = None) -> str:
    """A Turtle string literal (plain xsd:string, or with a language tag)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"' + (f"@{lang}" if lang else "")


def typed(value: object, datatype: str) -> str:
    return f'"{value}"^^xsd:{datatype}'


class StudyWriter:
    """Writes one synthetic study as Turtle files, one subject block at a time."""

    def __init__(self, study_id: str, index: int, rng: random.Random) -> None:
        self.id = study_id
        self.index = index
        self.rng = rng
        self.files: dict[str, list[str]] = {}
        self.quotes = 0
        self.triples = 0
        self.first_page = rng.randint(1, 400)
        self.last_page = self.first_page + 30
        self.positions: list[str] = []
        self.organisations: list[str] = []

    # -- writing ------------------------------------------------------------------------------

    def iri(self, local: str) -> str:
        return f"s:{local}"

    def block(self, file: str, subject: str, pairs: list[tuple[str, Objects]]) -> None:
        """One subject with its predicates and objects, in the Turtle style of the data."""
        lines = [subject]
        for predicate, objects in pairs:
            values = [objects] if isinstance(objects, str) else sorted(objects)
            if not values:
                continue
            self.triples += len(values)
            joined = " ,\n        ".join(values)
            lines.append(f"    {predicate} {joined} ;")
        lines.append(".\n")
        self.files.setdefault(file, []).append("\n".join(lines))

    def quote(self, file: str, voice: str = "AuthorVoice", **extra: str) -> str:
        """A new quote of the study (an informant's now and then); its IRI."""
        self.quotes += 1
        q = self.iri(f"q-{file}-{self.quotes}")
        words = sentence(self.rng, self.rng.randint(10, 30))
        page = self.rng.randint(self.first_page, self.last_page)
        start = " ".join(words.split()[:8])
        pairs: list[tuple[str, Objects]] = [
            ("a", "copkg:Quote"),
            ("rdfs:label", text(f"quote, page {page}: {start} …", "en")),
            ("copkg:page", typed(page, "positiveInteger")),
            ("copkg:quoteText", text(words)),
            ("copkg:quotedIn", self.iri("study")),
        ]
        if voice == "AuthorVoice" and self.positions and self.rng.random() < INFORMANT_SHARE:
            voice = "InformantVoice"
            pairs.append(("copkg:speakerPosition", self.rng.choice(self.positions)))
            pairs.append(("copkg:speakerOrganisation", self.rng.choice(self.organisations)))
        pairs += list(extra.items())
        pairs.append(("copkg:voice", f"copkg:{voice}"))
        self.block(file, q, pairs)
        return q

    def evidence(self, file: str, count: int | None = None) -> list[str]:
        count = count if count is not None else self.rng.choice((1, 2))
        return [self.quote(file) for _ in range(count)]

    def documented(
        self,
        file: str,
        local: str,
        classes: Objects,
        label: str,
        pairs: list[tuple[str, Objects]],
        *,
        finding: bool = True,
        quotes: int | None = None,
    ) -> str:
        """A documented resource of the study with its evidence (and, for a finding, a
        statement and a voice)."""
        subject = self.iri(local)
        head: list[tuple[str, Objects]] = [("a", classes), ("rdfs:label", text(label, "en"))]
        tail: list[tuple[str, Objects]] = [
            ("copkg:hasEvidence", self.evidence(file, quotes)),
            ("copkg:reportedIn", self.iri("study")),
        ]
        if finding:
            tail += [
                ("copkg:statement", text(sentence(self.rng, 24))),
                ("copkg:voice", "copkg:AuthorVoice"),
            ]
        self.block(file, subject, head + pairs + tail)
        return subject

    # -- the study ----------------------------------------------------------------------------

    def write(self) -> dict[str, str]:
        """The bundle: file name -> Turtle text."""
        rng = self.rng
        rng.randint(1995, 2024)  # drawn as before, so the rest of the bundle stays the same
        year = study_year(self.index)
        cases = [self.iri(f"case-{c}") for c in range(1, CASES_PER_STUDY + 1)]
        self.block(
            "study",
            self.iri("study"),
            [
                ("a", "copkg:Study"),
                ("rdfs:label", text(f"Synthetic study {self.index} ({year})", "en")),
                ("dcterms:title", text(sentence(rng, 8))),
                ("dcterms:creator", text(f"Author {self.index}")),
                ("dcterms:issued", typed(year, "gYear")),
                ("copkg:firstPage", typed(self.first_page, "positiveInteger")),
                ("copkg:lastPage", typed(self.last_page, "positiveInteger")),
                ("copkg:hasCase", cases),
                ("copkg:hasStage", self.iri("stage-1")),
                ("cito:cites", [self.iri(f"ref-{w}") for w in range(1, CITED_WORKS + 1)]),
            ],
        )
        self.block(
            "study",
            self.iri("bundle"),
            [
                ("a", "copkg:StudyBundle"),
                ("rdfs:label", text(f"copkg encoding of synthetic study {self.index}", "en")),
                ("prov:hadPrimarySource", self.iri("study")),
                ("prov:wasAttributedTo", self.iri("curator")),
                ("prov:generatedAtTime", typed("2025-01-01T00:00:00+00:00", "dateTime")),
            ],
        )
        self.block(
            "study",
            self.iri("curator"),
            [
                ("a", "prov:Person"),
                ("foaf:name", text(f"Curator {self.index}")),
            ],
        )
        for c in range(1, CASES_PER_STUDY + 1):
            self.organisation(c, year)
        for k in range(1, POSITIONS_PER_STUDY + 1):
            self.documented(
                "study",
                f"position-{k}",
                "copkg:Position",
                POSITIONS[k],
                [
                    ("skos:prefLabel", text(POSITIONS[k], "en")),
                    ("skos:definition", text(sentence(rng, 12), "en")),
                    ("copkg:positionIn", self.organisations[(k - 1) % len(self.organisations)]),
                ],
                finding=False,
                quotes=1,
            )
            self.positions.append(self.iri(f"position-{k}"))
        self.documented(
            "study",
            "stage-1",
            "copkg:ResearchStage",
            "stage one of the fieldwork",
            [
                ("copkg:startDate", typed(year - 3, "gYear")),
                ("copkg:endDate", typed(year - 1, "gYear")),
            ],
            finding=False,
            quotes=1,
        )
        self.documented(
            "study",
            "table-1",
            "copkg:Table",
            "Table 1: the cases",
            [
                ("copkg:tableNumber", typed(1, "positiveInteger")),
            ],
            finding=False,
            quotes=1,
        )
        for c in range(1, CASES_PER_STUDY + 1):
            self.case(c, year)
        for f in range(1, THEMATIC_FINDINGS + 1):
            self.theme(f)
        self.cross_study_relation()
        for w in range(1, CITED_WORKS + 1):
            self.reference(w)
        return {name: _prefixes(self.id) + "\n".join(blocks) for name, blocks in self.files.items()}

    def organisation(self, c: int, year: int) -> None:
        org = self.documented(
            "study",
            f"org-{c}",
            "copkg:Organisation",
            f"Organisation {c}",
            [
                ("copkg:sector", text(self.rng.choice(SECTORS))),
            ],
            finding=False,
            quotes=1,
        )
        self.organisations.append(org)

    def case(self, c: int, year: int) -> None:
        rng = self.rng
        case, org = self.iri(f"case-{c}"), self.organisations[c - 1]
        self.documented(
            "study",
            f"case-{c}",
            "copkg:Case",
            f"case {c}",
            [
                ("copkg:studiesOrganisation", org),
            ],
            finding=False,
            quotes=2,
        )
        modes = rng.sample(MODES, 2)
        for m, mode in enumerate(modes):
            degree = "MainMode" if m == 0 else rng.choice(DEGREES)
            self.documented(
                "contexts",
                f"case-{c}-mode-{m}",
                "copkg:ControlModeAttribution",
                f"case {c}: {mode} ({degree})",
                [
                    ("copkg:ofCase", case),
                    ("copkg:controlMode", f"copkg:{mode}"),
                    ("copkg:degree", f"copkg:{degree}"),
                ],
            )
        self.documented(
            "study",
            f"case-{c}-table-1",
            "copkg:TableCell",
            f"Table 1, Mode of control, case {c}",
            [
                ("copkg:cellAbout", case),
                ("copkg:cellText", text("; ".join(modes))),
                ("copkg:columnHeader", text(f"case {c}")),
                ("copkg:inTable", self.iri("table-1")),
                ("copkg:rowHeader", text("Mode of control")),
                ("copkg:rowIndex", typed(1, "positiveInteger")),
            ],
            quotes=1,
        )
        context = self.documented(
            "contexts",
            f"context-{c}",
            "copkg:OrganisationalContext",
            f"context of case {c}",
            [
                ("copkg:ofCase", case),
                ("copkg:scope", text(sentence(rng, 10))),
                ("copkg:startDate", typed(year - 6, "gYear")),
                ("copkg:endDate", typed(year - 1, "gYear")),
            ],
            finding=False,
        )
        for factor in FACTORS:
            level = rng.choice(LEVELS)
            self.documented(
                "contexts",
                f"context-{c}-{factor}",
                "copkg:ContingencyAssessment",
                f"case {c}: {factor} {level.lower()}",
                [
                    ("copkg:assessedContext", context),
                    ("copkg:onFactor", f"j04:{factor}"),
                    ("copkg:level", f"copkg:{level}"),
                ],
            )
        collectives = []
        for k in range(1, COLLECTIVES_PER_CASE + 1):
            collectives.append(
                self.documented(
                    "cases",
                    f"case-{c}-collective-{k}",
                    "copkg:Collective",
                    f"collective {k} of case {c}",
                    [
                        ("copkg:hostedBy", org),
                        ("copkg:hasForm", f"copkg:{rng.choice(FORMS)}"),
                        ("copkg:localName", text(rng.choice(("club", "network", "centre")))),
                        ("copkg:topic", text(" ".join(rng.sample(WORDS, 3)))),
                        ("copkg:facilitatedBy", rng.choice(self.positions)),
                    ],
                    finding=False,
                )
            )
        for e in range(1, EVENTS_PER_CASE + 1):
            self.documented(
                "cases",
                f"case-{c}-event-{e}",
                "copkg:Event",
                f"event {e} of case {c}",
                [
                    ("copkg:eventType", f"copkg:{rng.choice(EVENT_TYPES)}"),
                    ("copkg:date", typed(rng.randint(year - 6, year - 1), "gYear")),
                    ("copkg:eventOf", org),
                    ("copkg:affects", rng.choice(collectives)),
                ],
            )
        self.documented(
            "cases",
            f"case-{c}-members",
            "copkg:Quantity",
            f"members of collective 1 of case {c}",
            [
                ("copkg:quantityOf", text("members")),
                ("copkg:quantityAbout", collectives[0]),
                ("copkg:value", typed(rng.randint(5, 80), "integer")),
                ("copkg:approximate", typed("true", "boolean")),
                ("copkg:atDate", typed(year - 2, "gYear")),
                ("copkg:inCase", case),
            ],
            quotes=1,
        )
        self.documented(
            "study",
            f"case-{c}-interviews",
            "copkg:InterviewSet",
            f"interviewees of case {c}",
            [
                ("copkg:inCase", case),
                ("copkg:inStage", self.iri("stage-1")),
                ("copkg:interviewCount", typed(rng.randint(3, 20), "nonNegativeInteger")),
                ("copkg:intervieweePosition", rng.choice(self.positions)),
            ],
            quotes=1,
        )
        for role in ROLES:
            realised = rng.random() < 0.3
            pairs: list[tuple[str, Objects]] = [
                ("copkg:enactedRole", f"j04:{role}"),
                ("copkg:enactedBy", rng.choice(self.positions)),
                ("copkg:inCase", case),
                ("copkg:inContext", context),
                ("copkg:towards", rng.choice(collectives)),
                ("copkg:riskRealised", "true" if realised else "false"),
            ]
            if realised:
                pairs.append(("copkg:realisedRisk", f"j04:{RISKS[role]}"))
            self.documented(
                "enactments",
                f"case-{c}-{role}",
                "copkg:RoleEnactment",
                f"{role} in case {c}",
                pairs,
            )

    def theme(self, f: int) -> None:
        rng = self.rng
        role = rng.choice(ROLES)
        pairs: list[tuple[str, Objects]] = [
            ("copkg:theme", {f"copkg:{t}" for t in rng.sample(THEMES, rng.choice((1, 2)))}),
            ("copkg:concernsRole", f"j04:{role}"),
        ]
        if rng.random() < 0.4:
            pairs.append(("copkg:concernsRisk", f"j04:{RISKS[role]}"))
        if rng.random() < 0.5:
            pairs.append(("copkg:inCase", self.iri(f"case-{rng.randint(1, CASES_PER_STUDY)}")))
        self.documented(
            "themes", f"themes-{f}", "copkg:ThematicFinding", f"theme finding {f}", pairs
        )

    def cross_study_relation(self) -> None:
        """How a finding of this study bears on one of the previous synthetic study."""
        if self.index == 0:
            return
        previous = f"<{ID}{study_id(self.index - 1)}/themes-1>"
        self.documented(
            "themes",
            "link-1",
            "copkg:CrossStudyRelation",
            f"theme finding 1 of study {self.index} and of study {self.index - 1}",
            [
                ("copkg:subjectFinding", self.iri("themes-1")),
                ("copkg:objectFinding", previous),
                ("copkg:relationType", f"cito:{self.rng.choice(RELATIONS)}"),
            ],
        )

    def reference(self, w: int) -> None:
        rng = self.rng
        year = rng.randint(1970, 2003)
        author = f"{rng.choice(WORDS).capitalize()}, {chr(65 + rng.randint(0, 25))}."
        work = self.iri(f"ref-{w}")
        self.documented(
            "references",
            f"ref-{w}",
            {"copkg:CitedWork", "fabio:JournalArticle"},
            f"{author.split(',', maxsplit=1)[0]} ({year})",
            [
                ("dcterms:bibliographicCitation", text(f"{author} {year} {sentence(rng, 6)}")),
                ("dcterms:creator", text(author)),
                ("dcterms:issued", typed(year, "gYear")),
                ("dcterms:title", text(sentence(rng, 6), "en")),
            ],
            finding=False,
            quotes=1,
        )
        cited = self.quote("references", voice="CitedVoice", **{"copkg:citedWork": work})
        self.block(
            "references",
            self.iri(f"references-{w}"),
            [
                ("a", "copkg:CitationFinding"),
                ("rdfs:label", text(f"Cites reference {w}", "en")),
                ("cito:hasCitationCharacterization", f"cito:{rng.choice(CITATIONS)}"),
                ("cito:hasCitedEntity", work),
                ("cito:hasCitingEntity", self.iri("study")),
                ("copkg:hasEvidence", [cited, *self.evidence("references", 1)]),
                ("copkg:reportedIn", self.iri("study")),
                ("copkg:statement", text(sentence(rng, 20))),
                ("copkg:voice", "copkg:AuthorVoice"),
            ],
        )


def _prefixes(sid: str) -> str:
    lines = [f"PREFIX {p}: <{ns}>" for p, ns in sorted(PREFIXES.items())]
    lines.insert(0, f"PREFIX s: <{ID}{sid}/>")
    return "\n".join(lines) + "\n\n"


def study_year(index: int) -> int:
    """The year study `index` appeared: never before the study it links to (index - 1), as a
    study can only report a link to one published before it (CrossStudyReporterShape)."""
    return 1995 + index * 30 // 10_001


def study_id(index: int) -> str:
    return f"synthetic-{index:05d}"


def study_files(index: int, seed: int = 0) -> tuple[str, dict[str, str]]:
    """The id of synthetic study number `index` and its bundle (file stem -> Turtle)."""
    sid = study_id(index)
    rng = random.Random(f"{seed}-{index}")
    return sid, StudyWriter(sid, index, rng).write()


def write_study(target: Path, index: int, seed: int = 0) -> Path:
    """Write study `index` as target/<id>/*.ttl; return its folder."""
    sid, files = study_files(index, seed)
    folder = target / sid
    folder.mkdir(parents=True, exist_ok=True)
    for name, turtle in files.items():
        (folder / f"{name}.ttl").write_text(turtle, encoding="utf-8")
    return folder


def write_corpus(target: Path, n: int, seed: int = 0, start: int = 0) -> list[Path]:
    """Write studies start .. start+n-1 as data/studies/<id>/ folders under target."""
    return [write_study(target, i, seed) for i in range(start, start + n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path, help="folder to write study bundles into")
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--start", type=int, default=0, help="index of the first study")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    paths = write_corpus(args.target, args.n, args.seed, args.start)
    print(f"wrote {len(paths)} studies under {args.target}")


if __name__ == "__main__":
    main()
