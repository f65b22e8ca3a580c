"""Hatchery: a self-hosted, Egg API compatible server for asynchronous media generation."""

__version__ = "0.1.0"
