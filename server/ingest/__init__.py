"""Ingest: the Sentry envelope front door and the per-segment pipeline."""
