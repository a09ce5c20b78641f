"""The hooks lk plugins implement.

A plugin is a module (or object) registered under an entry point of group
``lk``. It implements any of the hooks below with functions of the same name
and signature, decorated with :data:`hookimpl`::

    from lk_core import hookimpl

    @hookimpl
    def register_hypervisors():
        return [MyHypervisor()]

Pluggy calls the most recently registered implementation first; lk's own
built-ins are marked ``trylast`` so that a third-party plugin can override
them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from lk_core.hypervisor import Hypervisor
    from lk_core.model import Container, RunRequest
    from lk_core.options import OptionSpec
    from lk_core.plugins import Plugins
    from lk_core.state import StateStore
    from lk_core.template_source import TemplateSource

PROJECT_NAME = "lk"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Decorate a plugin's hook functions with this marker.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_hypervisors() -> list[Hypervisor]:
    """Contribute hypervisors.

    Receives nothing. Returns a list of objects implementing
    :class:`lk_core.hypervisor.Hypervisor` (possibly empty). Every plugin's
    answer is used; names must be unique (case-insensitive), and a later
    duplicate is reported as a plugin error. Return hypervisors even when they
    are not available here: ``lk hypervisors`` shows them with the reason.
    """


@hookspec(firstresult=True)
def detect_image_format(path: Path) -> str | None:
    """Name the format of the image at ``path``, or pass.

    Receives the absolute path the user gave (it may be a LinuxKit
    kernel+initrd prefix that is not itself a file). Returns a format name
    (``"iso"``, ``"qcow2"``, ``"vmdk"``, ``"raw"``, ``"kernel+initrd"`` or
    one the plugin defines) or ``None`` to let the next detector try.
    The first non-``None`` answer wins. Look at the content (magic bytes)
    before the extension.
    """


@hookspec
def register_template_sources() -> list[TemplateSource]:
    """Contribute template sources.

    Receives nothing. Returns a list of objects implementing
    :class:`lk_core.template_source.TemplateSource`. Every plugin's answer is
    used; when two sources offer the same template name the one with the
    higher ``priority`` wins and the other is shown as shadowed.
    """


@hookspec(firstresult=True)
def open_state_store(path: Path) -> StateStore | None:
    """Provide the store that keeps container records.

    Receives the default state file path (under ``$LK_HOME`` when set).
    Returns an object implementing :class:`lk_core.state.StateStore`, or
    ``None`` to pass. The first non-``None`` answer wins; lk-core's JSON store
    answers last.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``lk`` command line.

    Receives the root :class:`click.Group`; call ``cli.add_command(...)`` or
    decorate functions with ``@cli.command()``. Returns nothing. Every plugin
    is called. Keep imports inside the command functions so that ``lk --help``
    stays fast, or add the command by where it lives with
    ``lk_core.cli.root.add_lazy_command(cli, NAME, "module:attribute")``: its
    module is then imported only when that command is used.
    """


@hookspec
def register_options() -> list[OptionSpec]:
    """Add options to lk's commands (``lk run --template``...).

    Receives nothing. Returns a list of :class:`lk_core.options.OptionSpec`;
    each names the commands that get it (``run`` by default). Every plugin is
    called; an option name may be declared by one plugin only, and never one
    of lk's own. The values the user gave reach :func:`prepare_run` in
    ``request.plugin_options[<plugin name>]`` and are kept in the container
    record under the plugin's name. Hypervisor options (``--accel``) are
    declared by the hypervisor itself (:meth:`lk_core.hypervisor.Hypervisor.options`),
    not here.
    """


@hookspec
def prepare_run(plugins: Plugins, request: RunRequest) -> RunRequest | None:
    """Adjust a run before lk checks it: supply the image, defaults for memory, CPUs, disks.

    Receives the loaded plugins and the :class:`lk_core.model.RunRequest`
    (the image the user named, or "", the run options, and each plugin's
    option values). Returns a changed request (``attrs.evolve``) or ``None``
    to leave it as it is. Every plugin is called in turn, each seeing the
    previous answer; lk's own checks run on the final request. Raise
    :class:`lk_core.errors.LkError` to refuse the run in one line.
    """


@hookspec
def container_created(plugins: Plugins, container: Container) -> None:
    """A container's record was created (status ``starting``), before its VM starts.

    Receives the plugins and a copy of the record. Returns nothing. Every
    plugin is called; an exception is reported as a warning and does not stop
    the run.
    """


@hookspec
def container_started(plugins: Plugins, container: Container) -> None:
    """A container's VM was started (``lk run`` or ``lk start``).

    Receives the plugins and a copy of the record. Returns nothing. Every
    plugin is called; an exception is reported as a warning.
    """


@hookspec
def container_stopped(plugins: Plugins, container: Container) -> None:
    """A container's VM stopped (``lk stop``, a guest power-off, or a crash seen by lk).

    Receives the plugins and a copy of the final record (``status`` says
    how it ended). Returns nothing. Every plugin is called; an exception is
    reported as a warning.
    """


@hookspec
def container_removed(plugins: Plugins, container: Container) -> None:
    """A container was removed (``lk rm``): its record, log and runtime files are gone.

    Receives the plugins and the last record. Returns nothing. Every plugin
    is called; an exception is reported as a warning. (lk-templates prunes
    its build cache here.)
    """
