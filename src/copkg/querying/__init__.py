"""Querying a store: safety analysis, the killable executor and its sandboxed workers, the answer
memo, named queries and paging. No Flask here: query worker processes import this package and
must start fast."""
