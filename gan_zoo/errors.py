"""Error types for bad input, so every CLI can print them as one line and exit with status 2."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A configuration is outside what the code supports; the message is one line."""


class ConfigValueError(ConfigError):
    """A configuration value is outside what the code supports.

    ``key`` is the constructor argument (the CLI prefixes the config group, e.g. ``model.``),
    ``value`` the rejected value and ``valid`` a short description of what is accepted.

    >>> str(ConfigValueError("n_critic", 0, "an integer >= 1"))
    'n_critic=0 is invalid: expected an integer >= 1'
    """

    def __init__(self, key: str, value: Any, valid: str) -> None:
        self.key, self.value, self.valid = key, value, valid
        super().__init__(f"{key}={value!r} is invalid: expected {valid}")

    def with_prefix(self, prefix: str) -> ConfigValueError:
        """The same error with ``prefix.`` in front of the key (used by CLIs for config groups)."""
        return ConfigValueError(f"{prefix}.{self.key}", self.value, self.valid)


class DataUnavailableError(RuntimeError):
    """A dataset is neither on disk nor downloadable; the message says how to get it."""


def check(condition: bool, key: str, value: Any, valid: str) -> None:
    """Raise :class:`ConfigValueError` unless ``condition`` holds."""
    if not condition:
        raise ConfigValueError(key, value, valid)
