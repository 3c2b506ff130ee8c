"""Errors engines raise for things a user can fix. Engines never import t2i_sdk; the SDK turns
these into its own BundleError / InputError where it loads and calls them."""


class EngineError(Exception):
    """Base class of user-fixable engine errors."""


class ModelFilesError(EngineError):
    """A model folder is missing files or holds something this engine cannot load."""


class EngineSettingsError(EngineError, ValueError):
    """Bad runtime settings (sample count, temperature, ...)."""
