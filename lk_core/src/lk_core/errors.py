"""The lk error hierarchy.

Every error lk raises on purpose is an :class:`LkError`. Its message is one
line that says what was wrong and, where it helps, what to do. The CLI prints
it to stderr and exits non-zero (no traceback unless ``--debug``).
"""

from __future__ import annotations


class LkError(Exception):
    """Base class of every error lk reports to a user.

    ``exit_code`` is the process exit status the CLI uses for it.
    """

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(LkError):
    """The user's input was invalid (bad flag value, bad syntax)."""

    exit_code = 2


class NotFoundError(LkError):
    """A container, image, template or hypervisor named by the user does not exist."""


class PathArgumentNotFoundError(NotFoundError, UsageError):
    """A path given as an option's value does not exist (``-v``, ``--ssh-key``).

    Still a :class:`NotFoundError`, but a bad option value: exit status 2,
    like every other value lk rejects.
    """


class AmbiguousReferenceError(LkError):
    """A container reference matches more than one container."""


class TemplateError(LkError):
    """A template could not be found, parsed or rendered."""


class MissingVariablesError(TemplateError):
    """Required template variables were not given.

    ``names`` lists each missing name once, in order of first appearance.
    """

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        super().__init__(
            "missing required template variables: "
            + ", ".join(self.names)
            + " (pass them with --var NAME=VALUE)"
        )


class ImageFormatError(LkError):
    """An image's format could not be recognised or is not supported."""


class StateError(LkError):
    """The state file is unreadable, corrupt, or could not be written."""


class HypervisorError(LkError):
    """A hypervisor is unavailable or failed to start or stop a VM."""


class PluginError(LkError):
    """A plugin failed to load or implements a hook incorrectly."""


class ContainerStateError(LkError):
    """A container is not in a state that allows the requested operation."""


class SSHError(LkError):
    """SSH to a container failed (not reachable, key refused, host key changed)."""
