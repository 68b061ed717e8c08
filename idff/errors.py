"""The project's user-facing error: a wrong config value, named by its key.

Its own module at the bottom of the package, so that every layer (data families included) can
raise it without importing the config module above them.
"""


class ConfigError(ValueError):
    """A config value is wrong; the message names the key and what is allowed."""
