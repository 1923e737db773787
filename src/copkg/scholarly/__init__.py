"""Scholarly formats: bibliographies in (BibTeX, CSL-JSON), nanopublications, ORKG CSV and
compacted JSON-LD out."""
