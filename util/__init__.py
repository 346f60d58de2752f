"""Shared utilities: configuration, distributed helpers, I/O, palettes, metrics, logging."""
