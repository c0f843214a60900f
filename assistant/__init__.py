"""Offline room assistant that leads a group through an intervision session."""

__version__ = "0.1.0"
