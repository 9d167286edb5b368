"""Thresher: organic-data extraction, filtering, deduplication and quality scoring on Ray."""

__version__ = "0.1.0"
