"""The contingency advisor: which roles are risky in a context a user describes, and why.

context reads what the user says (control modes and contingency levels, checked against the
ontology's vocabulary); answer runs the rules over the store's facts plus that hypothetical
context (copkg.reasoning.rules.apply_rules) and reads the answer from what they derive."""
