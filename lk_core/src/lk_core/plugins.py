"""Plugin discovery and the typed facade over the hooks.

Plugins are entry points of group ``lk``; lk-core's own built-ins are
registered the same way. Two environment variables choose what loads:

- ``LK_PLUGINS``: comma-separated allow-list of plugin (entry point) names;
  when set, only those load;
- ``LK_DISABLE_PLUGINS``: comma-separated block-list;
- ``LK_PLUGIN_MODULES``: comma-separated modules to load as plugins without
  installing them (for plugin development and tests).

A plugin that fails to import is remembered (``Plugins.failures``) and
reported, and lk carries on without it. A plugin that implements a hook that
does not exist (a misspelling) or with wrong arguments is a hard error that
names the plugin.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import pluggy

from lk_core import hookspecs
from lk_core.errors import HypervisorError, NotFoundError, PluginError

if TYPE_CHECKING:
    import click

    from lk_core.hypervisor import Hypervisor
    from lk_core.model import Container, RunRequest
    from lk_core.options import DeclaredOption
    from lk_core.state import StateStore, StoreOperations
    from lk_core.template_source import TemplateSource

ENTRY_POINT_GROUP = "lk"


class PluginInfo(NamedTuple):
    """What ``lk plugins`` shows about one loaded plugin."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    module: str


class PluginFailure(NamedTuple):
    """A plugin that could not be loaded, and why."""

    name: str
    distribution: str
    error: str


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None or not value.strip():
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


class Plugins:
    """The loaded plugins, with one typed method per hook."""

    def __init__(self, manager: pluggy.PluginManager) -> None:
        self.manager = manager
        self.infos: dict[str, PluginInfo] = {}
        self.failures: list[PluginFailure] = []
        self._hypervisors: dict[str, Hypervisor] | None = None
        self._options: dict[str, DeclaredOption] | None = None
        self._store: StoreOperations | None = None

    # -- loading -------------------------------------------------------------
    def register(
        self, plugin: object, name: str, distribution: str = "", version: str = ""
    ) -> None:
        """Register a plugin object (module or instance) under ``name``.

        Raises :class:`PluginError` if it implements an unknown hook or a
        hook with the wrong arguments.
        """
        try:
            self.manager.register(plugin, name=name)
            self.manager.check_pending()
        except (pluggy.PluginValidationError, ValueError) as exc:
            if self.manager.is_registered(plugin):
                self.manager.unregister(plugin)
            raise PluginError(f"plugin {name!r} is broken: {_one_line(exc)}") from exc
        hooks = tuple(
            sorted(impl_caller.name for impl_caller in self.manager.get_hookcallers(plugin) or [])
        )
        module = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__
        self.infos[name] = PluginInfo(name, distribution, version, hooks, module)
        self._hypervisors = None
        self._options = None

    def load_entry_points(self) -> None:
        """Load every entry point of group ``lk`` allowed by the environment."""
        from lk_core.entry_points import entry_points_of

        allow = _names_from_env("LK_PLUGINS")
        block = _names_from_env("LK_DISABLE_PLUGINS") or set()
        for ep in entry_points_of(ENTRY_POINT_GROUP):
            if ep.name in block or (allow is not None and ep.name not in allow):
                continue
            if self.manager.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                self.failures.append(PluginFailure(ep.name, ep.distribution, _one_line(exc)))
                continue
            self.register(plugin, ep.name, ep.distribution, ep.version)

    def load_modules_from_env(self) -> None:
        """Load the modules named in ``LK_PLUGIN_MODULES`` as plugins.

        For developing and testing a plugin without installing it: the
        variable holds comma-separated importable module names.
        """
        import importlib

        for module_name in sorted(_names_from_env("LK_PLUGIN_MODULES") or ()):
            if self.manager.has_plugin(module_name):
                continue
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:
                self.failures.append(PluginFailure(module_name, "", _one_line(exc)))
                continue
            self.register(module, module_name, "(LK_PLUGIN_MODULES)", "")

    # -- the hooks -----------------------------------------------------------
    def hypervisors(self) -> dict[str, Hypervisor]:
        """Every contributed hypervisor by (lower-case) name, available or not."""
        if self._hypervisors is None:
            from lk_core.hypervisor import as_hypervisor

            found: dict[str, Hypervisor] = {}
            for batch in reversed(self.manager.hook.register_hypervisors()):
                for candidate in batch or []:
                    hv = as_hypervisor(candidate)
                    key = hv.name.lower()
                    if key in found:
                        raise PluginError(f"two plugins provide a hypervisor named {key!r}")
                    found[key] = hv
            self._hypervisors = found
        return self._hypervisors

    def get_hypervisor(self, name: str) -> Hypervisor:
        """The hypervisor called ``name`` (case-insensitive), available or not."""
        hypervisors = self.hypervisors()
        try:
            return hypervisors[name.lower()]
        except KeyError:
            known = ", ".join(sorted(hypervisors)) or "none (install lk-qemu)"
            raise NotFoundError(f"unknown hypervisor {name!r}; known: {known}") from None

    def detect_hypervisor(self, image_format: str | None = None) -> Hypervisor:
        """The best available hypervisor (highest priority first).

        With ``image_format``, only hypervisors that can boot that format count.
        """
        ranked = sorted(self.hypervisors().values(), key=lambda h: (-h.priority, h.name))
        reasons = []
        for hv in ranked:
            availability = hv.availability()
            if not availability.available:
                reasons.append(f"{hv.name}: {availability.reason}")
            elif image_format is not None and image_format not in hv.formats:
                reasons.append(f"{hv.name}: cannot boot {image_format} images")
            else:
                return hv
        detail = f" ({'; '.join(reasons)})" if reasons else ""
        raise HypervisorError(f"no hypervisor available: install qemu or hyperkit (macOS){detail}")

    def detect_image_format(self, path: Path) -> str | None:
        """The first detector's answer for ``path``, or None."""
        result: str | None = self.manager.hook.detect_image_format(path=path)
        return result

    def template_sources(self) -> list[TemplateSource]:
        """Every contributed template source, highest priority first."""
        sources = [s for batch in self.manager.hook.register_template_sources() for s in batch]
        return sorted(sources, key=lambda s: -s.priority)

    def state_store(self, path: Path) -> StateStore:
        """The store provided by the first plugin that answers."""
        store: StateStore | None = self.manager.hook.open_state_store(path=path)
        if store is None:
            raise PluginError(
                "no state store plugin is loaded (is 'json-state' disabled by "
                "LK_PLUGINS/LK_DISABLE_PLUGINS?)"
            )
        return store

    def store(self) -> StoreOperations:
        """Record operations on the state store (opened once per :class:`Plugins`)."""
        if self._store is None:
            from lk_core.paths import default_state_path
            from lk_core.state import StoreOperations

            self._store = StoreOperations(self.state_store(default_state_path()))
        return self._store

    def add_commands(self, cli: click.Group) -> None:
        """Let every plugin add its commands to ``cli``."""
        self.manager.hook.register_commands(cli=cli)

    def options(self) -> dict[str, DeclaredOption]:
        """Every option plugins add to lk's commands, merged by name.

        Hypervisors' options (one flag for all hypervisors that declare it)
        and those of the ``register_options`` hook.
        """
        if self._options is None:
            from lk_core.options import merge_options

            declarations = [
                (hv.name, spec, True) for hv in self.hypervisors().values() for spec in hv.options()
            ]
            for plugin_name, specs in self._per_plugin(self.manager.hook.register_options):
                declarations += [(plugin_name, spec, False) for spec in specs or []]
            self._options = merge_options(declarations, reserved=_RESERVED_OPTIONS)
        return self._options

    def _per_plugin(self, hook: Any, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call ``hook`` plugin by plugin, oldest registration first: (plugin name, answer)."""
        answers = []
        for impl in reversed(hook.get_hookimpls()):
            name = self.manager.get_name(impl.plugin) or impl.plugin_name
            answers.append((name, impl.function(**{k: kwargs[k] for k in impl.argnames})))
        return answers

    def prepare_run(self, request: RunRequest) -> RunRequest:
        """Pass ``request`` through every plugin's ``prepare_run``, each seeing the last answer."""
        for impl in reversed(self.manager.hook.prepare_run.get_hookimpls()):
            args = {"plugins": self, "request": request}
            answer = impl.function(**{k: args[k] for k in impl.argnames})
            if answer is not None:
                request = cast("RunRequest", answer)
        return request

    def notify(self, event: str, container: Container) -> None:
        """Call the lifecycle hook ``container_<event>``; a failing plugin is only a warning."""
        import copy

        hook = getattr(self.manager.hook, f"container_{event}")
        for impl in reversed(hook.get_hookimpls()):
            args = {"plugins": self, "container": copy.deepcopy(container)}
            try:
                impl.function(**{k: args[k] for k in impl.argnames})
            except Exception as exc:  # a plugin's bug must not break lk's lifecycle
                print(
                    f"lk: warning: plugin {impl.plugin_name!r} failed on container_{event}: "
                    f"{_one_line(exc)}",
                    file=sys.stderr,
                )


#: Option names of lk's own commands, which plugins may not declare.
_RESERVED_OPTIONS = frozenset(
    {
        "name", "detach", "memory", "cpus", "publish", "volume", "hypervisor", "ssh_port",
        "ssh_key", "no_metadata", "metadata_file", "wait", "wait_timeout", "help", "all",
        "format", "json", "quiet", "force", "time", "follow", "tail", "rm", "disk",
        "in_place", "from_checkpoint", "warm",
    }
)  # fmt: skip


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def new_plugins(extra: Iterable[tuple[str, Any]] = (), entry_points: bool = True) -> Plugins:
    """Build a fresh :class:`Plugins`: entry points first, then ``extra`` (name, plugin)."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(manager)
    if entry_points:
        plugins.load_entry_points()
        plugins.load_modules_from_env()
    for name, plugin in extra:
        plugins.register(plugin, name)
    return plugins


_current: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugins, loaded on first use."""
    global _current
    if _current is None:
        _current = new_plugins()
    return _current


def set_plugins(plugins: Plugins | None) -> None:
    """Replace the process-wide plugins (tests; embedding applications)."""
    global _current
    _current = plugins


def report_failures(plugins: Plugins) -> None:
    """Print one warning line per plugin that failed to load."""
    for failure in plugins.failures:
        where = f" (from {failure.distribution})" if failure.distribution else ""
        print(
            f"lk: warning: plugin {failure.name!r}{where} failed to load: {failure.error}",
            file=sys.stderr,
        )
