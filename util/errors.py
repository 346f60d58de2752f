"""Errors with a message meant for the user: the file or argument, and what is wrong.

Library code raises these (or OSError for files that cannot be read or written); only the
command-line wrappers (``util.cli.run``) turn them into one-line exits.
"""


class GSFMError(Exception):
    """Base class: the message names the file or argument and the problem."""


class ConfigError(GSFMError, ValueError):
    """An argument or configuration value that cannot be used."""


class DatasetError(GSFMError, ValueError):
    """A dataset file or folder that cannot be used."""


class UnreadableImage(DatasetError):
    """An image or mask file that cannot be opened or decoded (missing, truncated, corrupt):
    the one error a training set may skip."""


class CheckpointError(GSFMError, RuntimeError):
    """A checkpoint that cannot be read or does not fit the network."""
