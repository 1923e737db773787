"""Named (competency) queries: grlc-style queries/*.rq files, parameters bound as RDF terms."""

from copkg.querying.named_queries.binding import (
    FACT_READS,
    Prepared,
    allowed_values,
    bind,
    enumerated_values,
    expand_iri,
    facts_needed,
    prepare,
    prepare_bound,
    read_facts,
    run_page,
    to_term,
    values_fact,
)
from copkg.querying.named_queries.model import (
    NamedQuery,
    Parameter,
    load_named_queries,
    parse_named_query,
    parse_variable,
)
from copkg.querying.named_queries.paging import Fact, Page

__all__ = [
    "FACT_READS",
    "Fact",
    "NamedQuery",
    "Page",
    "Parameter",
    "Prepared",
    "allowed_values",
    "bind",
    "enumerated_values",
    "expand_iri",
    "facts_needed",
    "load_named_queries",
    "parse_named_query",
    "parse_variable",
    "prepare",
    "prepare_bound",
    "read_facts",
    "run_page",
    "to_term",
    "values_fact",
]
