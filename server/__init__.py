"""replayd's service: configuration, ingest, storage, index and the read API."""

__version__ = "0.1.0"
