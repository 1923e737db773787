"""copkg: a knowledge graph and query service for research on communities of practice."""

__version__ = "0.1.0"
