"""The pages' data read from the store, without Flask or templates, so that a query worker can
read it: a resource with its statements, evidence and links (resource, reading, rows,
citation, explanations), the timeline and matrix (charts), the landing page, graphs, rules,
VoID counts and the ontology (overview); `reads` names each read a worker may be asked for."""
