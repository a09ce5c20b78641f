"""The one place that imports the ``libvirt`` bindings (lazily), and the event loop.

``libvirt-python`` ships inline annotations but no ``py.typed`` marker, so for
mypy its objects are ``Any``. The aliases below name what a value is meant to be
(:data:`Connection`, :data:`Domain`, ...) without pretending to check it.

Importing this module imports nothing of libvirt; :func:`libvirt_module` does,
the first time it is called, and turns a missing C library or missing bindings
into a one-line :class:`~lk_core.errors.HypervisorError`. It also replaces
libvirt's default error handler (which prints every error to stderr) with a
silent one: errors reach lk as exceptions, once.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

from lk_core.errors import HypervisorError
from lk_core.threads import start_helper_thread

__all__ = [
    "INSTALL_HINT",
    "Connection",
    "Domain",
    "StoragePool",
    "StorageVolume",
    "Stream",
    "ensure_event_loop",
    "error_code",
    "error_message",
    "is_libvirt_error",
    "libvirt_module",
    "libvirt_qemu_module",
]

#: What to do when the bindings cannot be imported.
INSTALL_HINT = "apt install libvirt-dev pkg-config gcc && pip install libvirt-python"

#: A ``libvirt.virConnect``.
Connection = Any
#: A ``libvirt.virDomain``.
Domain = Any
#: A ``libvirt.virStoragePool``.
StoragePool = Any
#: A ``libvirt.virStorageVol``.
StorageVolume = Any
#: A ``libvirt.virStream``.
Stream = Any

_lock = threading.Lock()
_module: ModuleType | None = None
_event_thread: threading.Thread | None = None


def _ignore_error(_context: object, _error: object) -> None:
    """libvirt error handler that prints nothing (errors are raised as exceptions)."""


def libvirt_module() -> ModuleType:
    """Import and return the ``libvirt`` module (once), or raise a one-line HypervisorError."""
    global _module
    with _lock:
        if _module is None:
            try:
                import libvirt  # type: ignore[import-untyped]
            except ImportError as error:
                raise HypervisorError(
                    f"libvirt bindings are not installed ({error}): {INSTALL_HINT}"
                ) from None
            libvirt.registerErrorHandler(_ignore_error, None)
            _module = libvirt
        return _module


def libvirt_qemu_module() -> ModuleType:
    """Import and return ``libvirt_qemu`` (QEMU monitor commands), or raise HypervisorError."""
    libvirt_module()
    try:
        import libvirt_qemu  # type: ignore[import-untyped]
    except ImportError as error:
        raise HypervisorError(
            f"libvirt bindings are not installed ({error}): {INSTALL_HINT}"
        ) from None
    module: ModuleType = libvirt_qemu
    return module


def is_libvirt_error(error: BaseException) -> bool:
    """True if ``error`` is a ``libvirt.libvirtError``."""
    return isinstance(error, libvirt_module().libvirtError)


def error_message(error: BaseException) -> str:
    """libvirt's own message of ``error`` on one line (``str(error)`` for other exceptions)."""
    text = ""
    if is_libvirt_error(error):
        text = str(error.get_error_message() or "")  # type: ignore[attr-defined]
    text = text or str(error) or type(error).__name__
    return " ".join(text.split())


def error_code(error: BaseException) -> int:
    """libvirt's error code of ``error`` (``VIR_ERR_*``), or -1 for other exceptions."""
    if is_libvirt_error(error):
        return int(error.get_error_code())  # type: ignore[attr-defined]
    return -1


def _run_event_loop(libvirt: ModuleType) -> None:
    """Run libvirt's default event loop forever (in a daemon thread)."""
    while True:
        libvirt.virEventRunDefaultImpl()


def ensure_event_loop() -> None:
    """Register libvirt's default event loop implementation and run it in a daemon thread.

    Must happen before connections are opened: it drives keepalive messages
    (which notice a dead remote host), stream callbacks (the console) and
    domain events. Idempotent and thread-safe.
    """
    global _event_thread
    libvirt = libvirt_module()
    with _lock:
        if _event_thread is not None:
            return
        libvirt.virEventRegisterDefaultImpl()
        # Signals go to the main thread, where Python runs their handlers (Ctrl-C).
        _event_thread = start_helper_thread(_run_event_loop, libvirt, name="libvirt-events")
