"""Linked-data pages: the landing page, one page per resource (with RDF and JSON twins), the
ontology, an organisation's timeline, the role x context risk matrix and the query page.

One blueprint (`bp`, in links) whose routes the concern modules add when imported here."""

from copkg.web.pages import charts, landing, ontology, resources
from copkg.web.pages.links import bp

__all__ = ["bp", "charts", "landing", "ontology", "resources"]
