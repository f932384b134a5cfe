"""Vigil: real-time surveillance event detection against standing natural-language queries."""

__version__ = "0.1.0"
