"""One `Settings` for every process (API, worker, tools), read from the environment.

Production code imports it from here, never from `stack/` (the development launcher)."""

from config.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
