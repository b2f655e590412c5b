"""User-facing errors: a message that names the thing, where it came from and what to do.

fabfile.py turns these into `Exit(message)` (no traceback for a user's mistake); anything
else is a bug and keeps its traceback.
"""
import contextlib
import difflib


class NetfabError(Exception):
    """Base of every error a user can fix."""


class ConfigError(NetfabError):
    """A bad variant, key, value or environment variable."""


class DataError(NetfabError):
    """A dataset that cannot be read or does not match the config."""


class PackageError(NetfabError):
    """A model zip that is missing, incomplete or tampered with."""


class StorageError(NetfabError):
    """A URI that cannot be read or written: no credentials, permission denied, a bad checksum."""


class NotFoundError(StorageError):
    """A file, object or bucket that does not exist."""


class QueryError(NetfabError):
    """A query template, its parameters or the engine that runs it (BigQuery, DuckDB) failed."""


def closest(name: str, valid) -> str:
    """' (did you mean X?)' for the nearest valid name, or '' when nothing is near."""
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


@contextlib.contextmanager
def exit_on_user_error():
    """Re-raise a NetfabError as invoke's Exit: the message, exit code 1, no traceback.

    A reader that went away (`fab config | head -3`) ends the task quietly, as Unix tools do.
    """
    import os
    import sys

    from invoke.exceptions import Exit

    try:
        yield
    except NetfabError as error:
        raise Exit(f"error: {error}") from None
    except BrokenPipeError:
        # Later writes (and the flush at exit) must not fail again: stdout goes nowhere now.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise Exit(code=0) from None
