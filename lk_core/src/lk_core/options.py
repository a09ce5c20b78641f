"""Options that plugins add to lk's commands.

A plugin declares options as :class:`OptionSpec` data: hypervisors through
:meth:`lk_core.hypervisor.Hypervisor.options`, other plugins through the
``register_options`` hook. lk turns them into Click options on the named
commands, so ``lk run --help`` shows exactly what the installed plugins
offer, and hands the parsed values back to their owner, typed.

Two hypervisors may declare the same option (``--accel`` for QEMU and
libvirt): it is one flag, routed to the hypervisor that runs the container.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from lk_core.errors import PluginError, UsageError

#: The value types an option may have.
KINDS = ("str", "int", "float", "flag", "choice", "multiple")


@attrs.frozen
class OptionSpec:
    """One command-line option a plugin adds.

    ``name`` is the option's key (``accel`` gives ``--accel``; ``var_file``
    gives ``--var-file``). ``kind`` is its type: ``str``, ``int``,
    ``float``, ``flag`` (a boolean switch), ``choice`` (one of
    ``choices``) or ``multiple`` (a repeatable string, a tuple of values).
    ``commands`` names the lk commands that get it (``run`` by default).
    ``metavar`` and ``help`` are shown by ``--help``; ``short`` adds a
    one-letter alias (``"-t"``). ``envvar`` lets an environment variable
    give the value. ``complete`` names a Click ``shell_complete`` function
    as ``"module:function"``, imported only when the user presses Tab.
    """

    name: str
    help: str
    kind: str = "str"
    choices: tuple[str, ...] = ()
    metavar: str = ""
    short: str = ""
    envvar: str = ""
    commands: tuple[str, ...] = ("run",)
    complete: str = ""

    @property
    def flag(self) -> str:
        """The long flag: ``--`` and the name with ``_`` as ``-``."""
        return "--" + self.name.replace("_", "-")

    @property
    def empty(self) -> Any:
        """The value meaning "not given"."""
        return {"flag": False, "multiple": (), "int": None, "float": None}.get(self.kind, "")

    def check(self) -> None:
        """Raise :class:`PluginError` if the declaration itself is wrong."""
        if self.kind not in KINDS:
            raise PluginError(f"option {self.name!r}: unknown kind {self.kind!r} (use {KINDS})")
        if not self.name.replace("_", "").isalnum() or not self.name[:1].isalpha():
            raise PluginError(f"option name {self.name!r} must be letters, digits and '_'")
        if self.kind == "choice" and not self.choices:
            raise PluginError(f"option {self.name!r} is a choice but has no choices")

    def same_meaning(self, other: OptionSpec) -> bool:
        """Whether two declarations can share one flag (same type and choices)."""
        return (self.kind, self.short) == (other.kind, other.short) and (
            self.kind != "choice" or set(self.choices) == set(other.choices)
        )


@attrs.frozen
class DeclaredOption:
    """An option with the plugins that declared it (several, for a shared flag)."""

    spec: OptionSpec
    owners: tuple[str, ...]
    #: True when the owners are hypervisors: the value goes to the one in use.
    for_hypervisors: bool = False

    @property
    def help(self) -> str:
        """The help text, naming the hypervisors that take it."""
        if self.for_hypervisors:
            return f"{self.spec.help} [{', '.join(self.owners)}]"
        return self.spec.help


def merge_options(
    declarations: Iterable[tuple[str, OptionSpec, bool]], reserved: Iterable[str] = ()
) -> dict[str, DeclaredOption]:
    """Merge ``(owner, spec, is_hypervisor)`` declarations into one option per name.

    Raises :class:`PluginError` when two plugins declare one name with
    different meanings, when a non-hypervisor plugin's option is declared
    twice, or when an option would replace one of lk's own (``reserved``).
    """
    merged: dict[str, DeclaredOption] = {}
    taken = set(reserved)
    for owner, spec, is_hv in declarations:
        spec.check()
        if spec.name in taken:
            raise PluginError(f"plugin {owner!r} declares option {spec.flag}, which lk owns")
        known = merged.get(spec.name)
        if known is None:
            merged[spec.name] = DeclaredOption(spec, (owner,), is_hv)
            continue
        if not (is_hv and known.for_hypervisors and known.spec.same_meaning(spec)):
            raise PluginError(
                f"plugins {known.owners[0]!r} and {owner!r} both declare option {spec.flag} "
                "with different meanings"
            )
        merged[spec.name] = attrs.evolve(known, owners=(*known.owners, owner))
    return merged


def is_given(spec: OptionSpec, value: Any) -> bool:
    """True when the user gave the option (its value is not the empty one)."""
    return value is not None and value != spec.empty


def route_hypervisor_options(
    declared: Mapping[str, DeclaredOption], values: Mapping[str, Any], hypervisor: str
) -> dict[str, Any]:
    """The given hypervisor options that belong to ``hypervisor``.

    Raises :class:`UsageError` in one line for an option the user gave that
    this hypervisor did not declare, or that no hypervisor declares (a
    misspelt key in ``RunOptions.hypervisor_options`` from the Python API).
    """
    for name, value in values.items():
        known = declared.get(name)
        if (known is None or not known.for_hypervisors) and value not in (None, "", (), [], False):
            flag = "--" + name.replace("_", "-")
            raise UsageError(
                f"hypervisor {hypervisor} does not take {flag} (no plugin declares it)"
            )
    routed: dict[str, Any] = {}
    for name, option in declared.items():
        if not option.for_hypervisors or not is_given(option.spec, values.get(name)):
            continue
        if hypervisor not in option.owners:
            takers = ", ".join(option.owners)
            raise UsageError(
                f"hypervisor {hypervisor} does not take {option.spec.flag} (it is for: {takers})"
            )
        value = values[name]
        routed[name] = list(value) if isinstance(value, tuple) else value
    return routed


def plugin_values(
    declared: Mapping[str, DeclaredOption], values: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """The given values of non-hypervisor options, grouped by the plugin that owns them."""
    grouped: dict[str, dict[str, Any]] = {}
    for name, option in declared.items():
        if option.for_hypervisors:
            continue
        value = values.get(name, option.spec.empty)
        if is_given(option.spec, value):
            owner = option.owners[0]
            grouped.setdefault(owner, {})[name] = list(value) if isinstance(value, tuple) else value
    return grouped


def click_options(declared: Mapping[str, DeclaredOption], command: str) -> list[Any]:
    """Click options for the ``declared`` options that ``command`` gets, in name order."""
    import click

    params: list[Any] = []
    for name in sorted(declared):
        option = declared[name]
        spec = option.spec
        if command not in spec.commands:
            continue
        flags = [spec.flag] + ([spec.short] if spec.short else [])
        kwargs: dict[str, Any] = {"help": option.help}
        if spec.envvar:
            kwargs["envvar"] = spec.envvar
        if spec.metavar:
            kwargs["metavar"] = spec.metavar
        if spec.complete:
            kwargs["shell_complete"] = _lazy_completion(spec.complete)
        if spec.kind == "flag":
            kwargs.update(is_flag=True, default=False)
        elif spec.kind == "multiple":
            kwargs.update(multiple=True, default=())
        elif spec.kind == "choice":
            kwargs.update(type=click.Choice(list(spec.choices)), default=None)
        elif spec.kind == "int":
            kwargs.update(type=int, default=None)
        elif spec.kind == "float":
            kwargs.update(type=float, default=None)
        else:
            kwargs.update(default="")
        params.append(click.Option([*flags, name], **kwargs))
    return params


def _lazy_completion(target: str) -> Callable[..., Any]:
    """A ``shell_complete`` callback that imports ``module:function`` on first use."""

    def complete(ctx: Any, param: Any, incomplete: str) -> Any:
        import importlib

        module, _, function = target.partition(":")
        try:
            found = getattr(importlib.import_module(module), function)
        except (ImportError, AttributeError):
            return []
        return found(ctx, param, incomplete)

    return complete


def install_options(name: str, command: Any, declared: Mapping[str, DeclaredOption]) -> None:
    """Give the Click ``command`` called ``name`` the plugin options it gets.

    Idempotent: the command's own parameters are remembered the first time,
    so calling it again (another set of plugins) leaves no stale option.
    """
    own = getattr(command, "_lk_own_params", None)
    if own is None:
        own = list(command.params)
        command._lk_own_params = own
    command.params = [*own, *click_options(declared, name)]
