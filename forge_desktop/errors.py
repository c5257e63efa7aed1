"""One exception root; every message says what is wrong and what to do about it."""

from __future__ import annotations


class ForgeError(Exception):
    """Root of every error the user may see. The message is one line, ready to print."""

    exit_code = 1


class UsageError(ForgeError):
    """The user asked for something that cannot be done as asked (bad option, unknown name)."""

    exit_code = 2


class ConfigError(ForgeError):
    """config.toml is malformed or holds a value of the wrong type."""

    exit_code = 2


class RuntimeUnavailable(ForgeError):
    """A runtime exists in name but cannot be used now (daemon stopped, socket denied, ...)."""


class EngineError(ForgeError):
    """An engine answered with an error, or did not answer within its timeout."""


class EngineTimeout(EngineError):
    """An engine did not answer within its timeout: it is hung, not merely failing. The run
    stops using it at once (no retries, no cleanup calls that would hang too)."""


class ImageError(ForgeError):
    """The benchmark image is missing and could not be prepared."""


class StoreError(ForgeError):
    """Results cannot be read or written ($FORGE_HOME unwritable, disk full, corrupt file)."""


class Interrupted(ForgeError):
    """The run was stopped by a signal (SIGINT/SIGTERM); cleanup has run."""

    exit_code = 130


class Busy(ForgeError):
    """Another benchmark holds this FORGE_HOME's lock; two never run at once, since each would
    spoil the other's figures. EX_TEMPFAIL: trying again later (or ``--wait``) succeeds."""

    exit_code = 75


class TargetNotFound(ForgeError):
    """The process to profile does not exist."""


class RegistryUnavailable(ForgeError):
    """The registry for ``--source pull`` does not answer (or refuses anonymous use)."""


def failure_reason(exc: Exception) -> str:
    """One line for a failure that must cost one runtime, not the run: a ForgeError's own
    message, an OSError's file and cause, else the bug's type and message."""
    if isinstance(exc, ForgeError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"cannot use {exc.filename}: {exc.strerror or exc}"
    return f"internal error: {type(exc).__name__}: {exc}"
