"""Reasoning over the graph: SPARQL CONSTRUCT rules run to a fixpoint, incremental inference,
rule analysis, OWL consistency (HermiT) and the contingency advisor built on the rules."""
