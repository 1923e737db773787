"""Named (competency) queries: grlc-style queries/*.rq files, parameters bound as RDF terms."""

from copkg.querying.named_queries.binding import (
    Prepared,
    bind,
    enumerated_values,
    expand_iri,
    prepare,
    run_page,
    to_term,
)
from copkg.querying.named_queries.model import (
    NamedQuery,
    Parameter,
    load_named_queries,
    parse_named_query,
    parse_variable,
)
from copkg.querying.named_queries.paging import Page

__all__ = [
    "NamedQuery",
    "Page",
    "Parameter",
    "Prepared",
    "bind",
    "enumerated_values",
    "expand_iri",
    "load_named_queries",
    "parse_named_query",
    "parse_variable",
    "prepare",
    "run_page",
    "to_term",
]
