"""Validation: the SHACL engine and its report, ontology quality checks, and fidelity to the
paper (pages and quotes)."""
