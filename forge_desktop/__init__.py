"""Forge Desktop: measure container runtimes on your own machine."""

__version__ = "0.1.0"
