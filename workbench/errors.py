"""The workbench's errors: one family, each message meant for the user (what, where, how to fix).

Anything raised as a `WorkbenchError` is shown as its message alone, by the CLI and the panels alike;
any other exception is a bug and keeps its traceback.
"""

import traceback


class WorkbenchError(Exception):
    """A problem the user can fix; its message says what, where and how."""


class ConfigError(WorkbenchError, ValueError):
    """A recipe, override or panel value that cannot make a valid RunConfig."""


class DataError(WorkbenchError, ValueError):
    """A dataset that cannot be read or used; the message names file, row, field and fix."""


class ModelError(WorkbenchError, RuntimeError):
    """A model that cannot be found, fetched or loaded; the message says what, where and how to fix it."""


class DeviceError(WorkbenchError, RuntimeError):
    """The asked-for device, precision or backend cannot be used, and the recipe says not to fall back."""


class AdapterError(WorkbenchError, ValueError):
    """An adapter that cannot work with this model or device."""


class RewardError(WorkbenchError, ValueError):
    """A reward function that is missing, has the wrong signature, raises or returns the wrong thing."""


class ChatError(WorkbenchError, RuntimeError):
    """A run that has no result to talk to."""


class RunError(WorkbenchError, RuntimeError):
    """A run directory that cannot be made, written, resumed or attached to (a full disk, a live run)."""


def describe(error: BaseException) -> str:
    """A user's error by its message; anything else with where it happened, for a bug report."""
    if isinstance(error, WorkbenchError):
        return str(error)
    where = traceback.format_exception(error)[-3:]
    return f"{type(error).__name__}: {error}\n{''.join(where)}".rstrip()
