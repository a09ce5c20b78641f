"""A foreground ``lk run``: stream the console, turn Ctrl-C into a graceful stop."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import click

from lk_core.manager import Manager
from lk_core.model import Container, RunRequest, Status
from lk_core.threads import HANDLED_SIGNALS, start_helper_thread


def _remove(manager: Manager, container: Container) -> None:
    """Remove an exited container's record, log and runtime files (``--rm``)."""
    import contextlib

    from lk_core.errors import LkError

    hv = manager.hypervisor_of(container)
    if hv is not None:
        with contextlib.suppress(LkError):
            hv.remove(container)
    manager.cleanup(container.id)
    manager.plugins.notify("removed", container)


def run_attached(manager: Manager, request: RunRequest) -> int:
    """Run ``request``'s image attached to the terminal; return the VM's exit status.

    The first Ctrl-C (or SIGTERM/SIGHUP) asks the guest to power off (ACPI);
    a second one forces it.
    """
    current: list[Container] = []
    threads: list[threading.Thread] = []
    interrupts = [0]

    def stream(container: Container) -> None:
        out = sys.stdout.buffer
        for chunk in manager.logs(container.id, follow=True):
            out.write(chunk)
            out.flush()

    def on_ready(container: Container) -> None:
        current.append(container)
        threads.append(start_helper_thread(stream, container, name="lk-console"))
        if interrupts[0]:  # interrupted while starting: stop as soon as it runs
            start_stop(force=interrupts[0] > 1)

    def start_stop(force: bool) -> None:
        start_helper_thread(manager.stop, current[0].id, force=force, name="lk-stop")

    def on_interrupt(_signum: int, _frame: FrameType | None) -> None:
        interrupts[0] += 1
        if not current:
            click.echo("\nlk: stopping as soon as the VM has started...", err=True)
            return
        force = interrupts[0] > 1
        message = "forcing power-off" if force else "stopping (Ctrl-C again to force)"
        click.echo(f"\nlk: {message}...", err=True)
        start_stop(force)

    # Ctrl-C, a closed terminal (SIGHUP) or a plain kill (SIGTERM) all stop the VM
    # gracefully instead of leaving it running without its owner.
    previous = {sig: signal.signal(sig, on_interrupt) for sig in HANDLED_SIGNALS}
    try:
        final = manager.run_foreground(
            request.image, request.options, on_ready=on_ready, request=request
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for thread in threads:
        thread.join(timeout=5)
    if final.auto_remove:  # lk run --rm: this process ran the VM, it removes it
        _remove(manager, final)
    if final.status is Status.ERROR:
        click.echo(f"lk: {final.display_name}: {final.status_reason}", err=True)
        return final.exit_code or 1
    return 0
