"""A conformance kit for hypervisor plugins: lk's own checks, run by a plugin's test suite.

Subclass :class:`HypervisorConformance` in a pytest test module and give it
two fixtures, ``hypervisor`` (the object under test) and ``image`` (a path to
an image it boots)::

    import pytest
    from lk_core.testing import HypervisorConformance

    from my_plugin.hypervisor import MyHypervisor


    class TestMyHypervisor(HypervisorConformance):
        ready_line = b"lk-test: ready"  # what the console prints once booted (or None)
        boot_timeout = 60.0

        @pytest.fixture
        def hypervisor(self):
            return MyHypervisor()

        @pytest.fixture
        def image(self, tmp_path):
            return build_or_copy_a_bootable_image(tmp_path)

Every check drives the hypervisor the way ``lk`` does: through
:class:`lk_core.manager.Manager`, with a :class:`~lk_core.plugins.Plugins`
holding lk's JSON state store, lk's image-format detection and the hypervisor
under test (nothing else installed is loaded), in a private ``LK_HOME``. The
checks cover both levels of the contract: a :class:`ProcessHypervisor` (one
local process per VM, owned by lk's supervisor) and an engine (a
:class:`Hypervisor` that starts, stops and watches its VMs itself).

A hypervisor that is not available here (:meth:`Hypervisor.availability`)
skips every check that needs a VM, with its reason. VMs a check starts are
stopped (forced) and removed when the check ends, whatever its outcome; the
read-only checks share one running VM per test class.

This module imports pytest: lk never imports it, only test modules do.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from lk_core.errors import HypervisorError, LkError, UsageError
from lk_core.hookspecs import hookimpl
from lk_core.hypervisor import Capability, Hypervisor, ProcessHypervisor, as_hypervisor
from lk_core.manager import Manager
from lk_core.model import (
    Availability,
    Container,
    HypervisorOptions,
    PortMapping,
    RunOptions,
    Status,
    VolumeMapping,
)
from lk_core.options import OptionSpec
from lk_core.vm import Handle, SshEndpoint

__all__ = ["ConformanceSandbox", "HypervisorConformance", "make_image"]

#: The statuses of a VM that may still run.
ACTIVE = (Status.STARTING, Status.RUNNING, Status.BROKEN)
#: A name no hypervisor declares as an option.
UNDECLARED_OPTION = "no_such_option_xyz"


def make_image(folder: Path, fmt: str) -> Path:
    """A small file lk's detector takes for an image of built-in format ``fmt``.

    Not bootable: for the checks that an image is refused before anything
    starts. ``fmt`` is one of ``iso``, ``qcow2``, ``vmdk``, ``raw`` and
    ``kernel+initrd`` (the ``NAME-kernel`` path is returned).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "kernel+initrd":
        (folder / "vm-initrd.img").write_bytes(b"\0" * 512)
        kernel = folder / "vm-kernel"
        kernel.write_bytes(b"\0" * 512)
        return kernel
    if fmt == "iso":
        data = bytearray(0x8800)
        data[0x8001:0x8006] = b"CD001"
        path = folder / "image.iso"
        path.write_bytes(bytes(data))
        return path
    heads = {
        "qcow2": ("disk.qcow2", b"QFI\xfb" + bytes(508)),
        "vmdk": ("disk.vmdk", b"KDMV" + bytes(508)),
        "raw": ("disk.img", bytes(510) + b"\x55\xaa"),
    }
    if fmt not in heads:
        raise ValueError(f"no sample image for format {fmt!r}")
    name, head = heads[fmt]
    path = folder / name
    path.write_bytes(head)
    return path


#: The formats :func:`make_image` can make, in the order the refusal check tries them.
SAMPLE_FORMATS = ("vmdk", "qcow2", "raw", "iso", "kernel+initrd")


class _Contribute:
    """A plugin object contributing one hypervisor (the one under test)."""

    def __init__(self, hypervisor: object) -> None:
        self.hypervisor = hypervisor

    @hookimpl
    def register_hypervisors(self) -> list[object]:
        return [self.hypervisor]


class ConformanceSandbox:
    """A private ``LK_HOME`` shared by one test class, and the VM its read-only checks share."""

    def __init__(self) -> None:
        base = "/tmp" if os.path.isdir("/tmp") else None  # unix socket paths must stay short
        self.home = Path(tempfile.mkdtemp(prefix="lkc", dir=base))
        #: The running VM shared by the read-only checks ("" until one is booted).
        self.shared_id = ""
        #: The latest manager, used to clean up when the class ends.
        self.manager: Manager | None = None

    def apply(self, patch: pytest.MonkeyPatch) -> None:
        """Point lk (and the supervisors it starts) at this sandbox."""
        patch.setenv("LK_HOME", str(self.home))
        # lk's supervisor (a subprocess) needs only the state store.
        patch.setenv("LK_PLUGINS", "json-state")
        patch.delenv("LK_DISABLE_PLUGINS", raising=False)
        patch.delenv("LK_PLUGIN_MODULES", raising=False)

    def close(self) -> None:
        """Stop and remove every container left, kill what survives, delete the folder."""
        with pytest.MonkeyPatch.context() as patch:
            self.apply(patch)
            manager = self.manager
            if manager is not None:
                with contextlib.suppress(Exception):
                    for container in manager.list(all=True):
                        _discard(manager, container.id)
                with contextlib.suppress(Exception):
                    for record in manager.ops.all():
                        _kill_processes(record)
        shutil.rmtree(self.home, ignore_errors=True)


def _kill_processes(record: Container) -> None:
    from lk_core.process import signal_process

    signal_process(record.pid, record.pid_started, signal.SIGKILL)
    signal_process(record.supervisor_pid, record.supervisor_started, signal.SIGKILL)


def _discard(manager: Manager, container_id: str) -> None:
    """Force-stop and remove a container, whatever state it is in; never raises."""
    record: Container | None = None
    with contextlib.suppress(Exception):
        record = manager.ops.get(container_id)
    with contextlib.suppress(Exception):
        manager.stop(container_id, force=True)
    with contextlib.suppress(Exception):
        manager.remove([container_id], force=True)
    if record is not None:
        _kill_processes(record)
    with contextlib.suppress(Exception):
        manager.cleanup(container_id)


def _wait(condition: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    from lk_core.waiting import wait_until

    return wait_until(condition, timeout, step)


class HypervisorConformance:
    """The checks every hypervisor plugin should pass; subclass it in a test module.

    Provide the fixtures ``hypervisor`` (the object under test) and ``image``
    (a path it boots; for a disk format that is written in place, a fresh
    copy per test). Set the class attributes below to fit the hypervisor.
    """

    #: Bytes the console prints once the guest is up (None: do not look for any).
    ready_line: ClassVar[bytes | None] = None
    #: Seconds a boot may take (until :attr:`ready_line`), and a graceful stop.
    boot_timeout: ClassVar[float] = 60.0
    #: Seconds a graceful stop may take (default: :attr:`boot_timeout`).
    stop_timeout: ClassVar[float | None] = None
    #: Seconds lk may take to notice a VM that died behind its back.
    liveness_timeout: ClassVar[float] = 10.0
    #: Extra :class:`RunOptions` fields for every run (``memory``, ``hypervisor_options``...).
    run_options: ClassVar[dict[str, Any]] = {}
    #: Other plugins to load, as ``(name, plugin)`` (e.g. your image-format detector).
    #: They must not contribute the hypervisor under test again.
    extra_plugins: ClassVar[tuple[tuple[str, object], ...]] = ()

    # -- fixtures ------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def conformance_sandbox(cls) -> Iterator[ConformanceSandbox]:
        """The test class's private ``LK_HOME``; cleaned up when the class ends."""
        sandbox = ConformanceSandbox()
        try:
            yield sandbox
        finally:
            sandbox.close()

    @pytest.fixture
    def conformance_manager(
        self,
        hypervisor: object,
        conformance_sandbox: ConformanceSandbox,
        monkeypatch: pytest.MonkeyPatch,
    ) -> Manager:
        """lk's :class:`Manager` over the sandbox, with only the hypervisor under test.

        Skips the test when the hypervisor is not available here.
        """
        from lk_core.builtins import image_formats, json_state
        from lk_core.plugins import new_plugins

        hv = as_hypervisor(hypervisor)
        availability = hv.availability()
        if isinstance(availability, Availability) and not availability.available:
            pytest.skip(
                f"hypervisor {hv.name} is not available here: "
                f"{availability.reason or '(no reason given)'}"
            )
        conformance_sandbox.apply(monkeypatch)
        plugins = new_plugins(
            extra=[
                ("json-state", json_state),
                ("image-formats", image_formats),
                *self.extra_plugins,
                ("hypervisor-under-test", _Contribute(hypervisor)),
            ],
            entry_points=False,
        )
        monkeypatch.setattr("lk_core.plugins._current", plugins)
        manager = Manager(plugins)
        conformance_sandbox.manager = manager
        return manager

    @pytest.fixture
    def conformance_hv(self, conformance_manager: Manager, hypervisor: object) -> Hypervisor:
        """The hypervisor as lk sees it (the object itself, or its lk 0.1 wrapper)."""
        return conformance_manager.plugins.get_hypervisor(as_hypervisor(hypervisor).name)

    @pytest.fixture
    def conformance_vms(self, conformance_manager: Manager) -> Iterator[list[str]]:
        """IDs of the containers a test started: force-stopped and removed when it ends."""
        started: list[str] = []
        yield started
        for container_id in started:
            _discard(conformance_manager, container_id)

    @pytest.fixture
    def conformance_running(
        self,
        conformance_manager: Manager,
        conformance_hv: Hypervisor,
        conformance_sandbox: ConformanceSandbox,
        image: Path,
    ) -> Container:
        """A running VM shared by the read-only checks of the class (booted on first use)."""
        manager = conformance_manager
        if conformance_sandbox.shared_id:
            with contextlib.suppress(LkError):
                current = manager.get(conformance_sandbox.shared_id)
                if current.status is Status.RUNNING:
                    return current
            _discard(manager, conformance_sandbox.shared_id)
        shared: list[str] = []
        container = self.boot(manager, conformance_hv, image, shared)
        conformance_sandbox.shared_id = container.id
        return container

    # -- helpers -------------------------------------------------------------------
    def options_for(self, hv: Hypervisor, **changes: Any) -> RunOptions:
        """The :class:`RunOptions` of a run on ``hv``: :attr:`run_options`, then ``changes``."""
        values: dict[str, Any] = {"hypervisor": hv.name, **self.run_options, **changes}
        return RunOptions(**values)

    def boot(
        self,
        manager: Manager,
        hv: Hypervisor,
        image: Path,
        started: list[str],
        **changes: Any,
    ) -> Container:
        """``Manager.run`` ``image`` on ``hv``; fail readably if it does not start.

        The container's ID is appended to ``started`` (for clean-up).
        """
        answers: list[object] = []
        original_start = hv.start

        def spy(*args: Any, **kwargs: Any) -> Handle:
            answer = original_start(*args, **kwargs)
            answers.append(answer)
            return answer

        before = {c.id for c in manager.ops.all()}
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(hv, "start", spy)
            try:
                container = manager.run(str(image), self.options_for(hv, **changes))
            except Exception as exc:
                started.extend(c.id for c in manager.ops.all() if c.id not in before)
                wrong = [a for a in answers if not isinstance(a, Handle)]
                if wrong:
                    pytest.fail(
                        f"hypervisor {hv.name}: start() returned {type(wrong[0]).__name__} "
                        f"{wrong[0]!r}, expected an lk_core.vm.Handle"
                    )
                pytest.fail(
                    f"hypervisor {hv.name}: lk run of {image} failed: {type(exc).__name__}: {exc}"
                )
        started.append(container.id)
        return container

    def wait_until_ready(self, manager: Manager, hv: Hypervisor, container: Container) -> bytes:
        """Wait for :attr:`ready_line` in the console log (read through lk); return the log."""
        log = b""

        def ready() -> bool:
            nonlocal log
            with contextlib.suppress(LkError):
                log = b"".join(manager.logs(container.id))
            return self.ready_line is None or self.ready_line in log

        if not _wait(ready, self.boot_timeout, 0.2):
            pytest.fail(
                f"hypervisor {hv.name}: the console log (lk logs) did not show "
                f"{self.ready_line!r} within {self.boot_timeout:g} s; its last bytes: "
                f"{log[-1500:]!r}"
            )
        return log

    def assert_stopped(self, manager: Manager, hv: Hypervisor, container_id: str, how: str) -> None:
        """The container is recorded ``stopped`` and the hypervisor says its VM is not active."""
        final = manager.get(container_id)
        assert final.status is Status.STOPPED, (
            f"hypervisor {hv.name}: after {how}, lk reports the container {final.status} "
            f"({final.status_reason or 'no reason'}), expected stopped"
        )
        state = hv.state(final)
        assert state.status not in ACTIVE, (
            f"hypervisor {hv.name}: after {how}, state() says {state.status} "
            f"({state.reason or 'no reason'}), expected a VM that is not active"
        )
        if isinstance(hv, ProcessHypervisor):
            from lk_core.liveness import hypervisor_alive

            assert not hypervisor_alive(final), (
                f"hypervisor {hv.name}: after {how}, its process (pid {final.pid}) still runs"
            )

    def refused(
        self, manager: Manager, hv: Hypervisor, image: Path, expected: type[LkError], **changes: Any
    ) -> LkError:
        """Run ``image`` with ``changes``: assert an ``expected`` refusal that leaves nothing."""
        before = {c.id for c in manager.ops.all()}
        try:
            container = manager.run(str(image), self.options_for(hv, **changes))
        except LkError as exc:
            error = exc
        else:
            _discard(manager, container.id)
            pytest.fail(
                f"hypervisor {hv.name}: a run with {changes} started (container "
                f"{container.id}); expected {expected.__name__}"
            )
        after = {c.id for c in manager.ops.all()}
        for container_id in after - before:
            _discard(manager, container_id)
        assert isinstance(error, expected), (
            f"hypervisor {hv.name}: a run with {changes} was refused with "
            f"{type(error).__name__} ({error}), expected {expected.__name__}"
        )
        assert after == before, (
            f"hypervisor {hv.name}: a refused run left records behind: {sorted(after - before)}"
        )
        return error

    # -- what it is ----------------------------------------------------------------
    def test_availability_is_an_availability(self, hypervisor: object) -> None:
        """``availability()`` answers an :class:`Availability`; "no" comes with a reason."""
        name = getattr(hypervisor, "name", repr(hypervisor))
        availability = hypervisor.availability()  # type: ignore[attr-defined]
        assert isinstance(availability, Availability), (
            f"hypervisor {name}: availability() returned {type(availability).__name__}, "
            "expected lk_core.model.Availability"
        )
        if not availability.available:
            assert isinstance(availability.reason, str) and availability.reason.strip(), (
                f"hypervisor {name}: availability() says not available but gives no reason "
                "(lk hypervisors and lk run show it to the user)"
            )

    def test_is_a_hypervisor(self, hypervisor: object) -> None:
        """The object subclasses :class:`Hypervisor` (or :class:`ProcessHypervisor`)."""
        assert isinstance(hypervisor, Hypervisor), (
            f"hypervisor {getattr(hypervisor, 'name', hypervisor)!r}: "
            f"{type(hypervisor).__name__} does not subclass lk_core.hypervisor.Hypervisor "
            "(subclass ProcessHypervisor for one local process per VM; a plain class only "
            "runs wrapped in LegacyProcessHypervisor)"
        )

    def test_name_and_description(self, hypervisor: object) -> None:
        """A lower-case name users can type, and a one-line description."""
        name = getattr(hypervisor, "name", None)
        assert isinstance(name, str) and name, f"hypervisor {hypervisor!r}: it has no name"
        assert name == name.lower() and name.strip() == name and " " not in name, (
            f"hypervisor {name!r}: the name must be lower case without spaces "
            "(users type it after --hypervisor)"
        )
        description = getattr(hypervisor, "description", "")
        assert isinstance(description, str) and description.strip(), (
            f"hypervisor {name}: it has no description (lk hypervisors shows it)"
        )
        assert "\n" not in description.strip(), (
            f"hypervisor {name}: the description must be one line"
        )

    def test_formats(self, hypervisor: object) -> None:
        """Non-empty ``formats`` of strings; ``preferred_formats`` among them."""
        name = getattr(hypervisor, "name", hypervisor)
        formats = getattr(hypervisor, "formats", None)
        assert isinstance(formats, (set, frozenset)) and formats, (
            f"hypervisor {name}: formats is {formats!r}, expected a non-empty frozenset "
            "of image format names"
        )
        assert all(isinstance(fmt, str) and fmt for fmt in formats), (
            f"hypervisor {name}: formats must be strings, got {sorted(map(repr, formats))}"
        )
        preferred = tuple(getattr(hypervisor, "preferred_formats", ()))
        stray = [fmt for fmt in preferred if fmt not in formats]
        assert not stray, (
            f"hypervisor {name}: preferred_formats names formats it cannot boot: {stray}"
        )

    def test_capabilities(self, hypervisor: object) -> None:
        """``capabilities`` is a set of :class:`Capability` members."""
        name = getattr(hypervisor, "name", hypervisor)
        capabilities = getattr(hypervisor, "capabilities", None)
        assert isinstance(capabilities, (set, frozenset)), (
            f"hypervisor {name}: capabilities is {capabilities!r}, expected a frozenset of "
            "lk_core.hypervisor.Capability"
        )
        wrong = sorted(repr(c) for c in capabilities if not isinstance(c, Capability))
        assert not wrong, (
            f"hypervisor {name}: capabilities must be Capability members, not {', '.join(wrong)}"
        )

    def test_options_are_valid(self, hypervisor: object) -> None:
        """``options()`` returns :class:`OptionSpec` that pass ``check()``, names unique."""
        name = getattr(hypervisor, "name", hypervisor)
        options = as_hypervisor(hypervisor).options()
        assert isinstance(options, list), (
            f"hypervisor {name}: options() returned {type(options).__name__}, expected a list"
        )
        seen: set[str] = set()
        for spec in options:
            assert isinstance(spec, OptionSpec), (
                f"hypervisor {name}: options() holds {spec!r}, expected lk_core.options.OptionSpec"
            )
            try:
                spec.check()
            except LkError as exc:
                pytest.fail(f"hypervisor {name}: a wrong option declaration: {exc}")
            assert spec.name not in seen, f"hypervisor {name}: option {spec.flag} declared twice"
            seen.add(spec.name)

    # -- starting ------------------------------------------------------------------
    def test_build_command(
        self, conformance_manager: Manager, conformance_hv: Hypervisor, image: Path
    ) -> None:
        """A process hypervisor's argv: a non-empty list of str whose program exists."""
        hv = conformance_hv
        if not isinstance(hv, ProcessHypervisor):
            pytest.skip(f"hypervisor {hv.name} is an engine: it has no command line")
        from lk_core.images import detect_image_format
        from lk_core.paths import ensure_private_dir, log_path, runtime_dir
        from lk_core.ports import free_port

        container_id = "c0f0c0f0"
        rdir = ensure_private_dir(runtime_dir(container_id))
        try:
            spec = HypervisorOptions(
                id=container_id,
                image=Path(image).absolute(),
                format=detect_image_format(image, conformance_manager.plugins),
                console_log=log_path(container_id),
                runtime_dir=rdir,
                ssh_port=free_port(),
                options={},
            )
            argv = hv.build_command(spec)
        finally:
            shutil.rmtree(rdir, ignore_errors=True)
        assert isinstance(argv, list) and argv, (
            f"hypervisor {hv.name}: build_command() returned {argv!r}, expected a non-empty list"
        )
        wrong = [arg for arg in argv if not isinstance(arg, str)]
        assert not wrong, f"hypervisor {hv.name}: build_command() argv holds non-strings: {wrong}"
        assert shutil.which(argv[0]) is not None, (
            f"hypervisor {hv.name}: build_command()'s program {argv[0]!r} is not an "
            "executable file (nor a command on PATH)"
        )

    def test_start_returns_a_handle(
        self,
        conformance_manager: Manager,
        conformance_hv: Hypervisor,
        conformance_vms: list[str],
        image: Path,
    ) -> None:
        """An engine's ``start`` answers a :class:`Handle` (lk records it)."""
        hv = conformance_hv
        if isinstance(hv, ProcessHypervisor):
            pytest.skip(f"hypervisor {hv.name} is a process hypervisor: lk's supervisor starts it")
        container = self.boot(conformance_manager, hv, image, conformance_vms)
        assert container.status in ACTIVE, (
            f"hypervisor {hv.name}: right after start lk reports {container.status} "
            f"({container.status_reason or 'no reason'})"
        )

    # -- a running VM (shared, read-only) --------------------------------------------
    def test_run_reaches_running(
        self,
        conformance_manager: Manager,
        conformance_hv: Hypervisor,
        conformance_running: Container,
    ) -> None:
        """``Manager.run`` returns a running container, and ``state()`` agrees."""
        hv = conformance_hv
        current = conformance_manager.get(conformance_running.id)
        assert current.status is Status.RUNNING, (
            f"hypervisor {hv.name}: after lk run, lk reports {current.status} "
            f"({current.status_reason or 'no reason'}), expected running"
        )
        state = hv.state(current)
        assert state.status is Status.RUNNING, (
            f"hypervisor {hv.name}: state() of a running VM says {state.status} "
            f"({state.reason or 'no reason'}), expected running"
        )

    def test_console_log_shows_ready_line(
        self,
        conformance_manager: Manager,
        conformance_hv: Hypervisor,
        conformance_running: Container,
    ) -> None:
        """``lk logs`` reads the console, which shows :attr:`ready_line` within the boot timeout."""
        log = self.wait_until_ready(conformance_manager, conformance_hv, conformance_running)
        assert isinstance(log, bytes)

    def test_listed_while_running(
        self,
        conformance_manager: Manager,
        conformance_hv: Hypervisor,
        conformance_running: Container,
    ) -> None:
        """``lk ps`` lists the running container."""
        listed = [c.id for c in conformance_manager.list()]
        assert conformance_running.id in listed, (
            f"hypervisor {conformance_hv.name}: lk ps does not list the running container "
            f"{conformance_running.id} (it lists {listed})"
        )

    def test_ssh_endpoint(
        self,
        conformance_manager: Manager,
        conformance_hv: Hypervisor,
        conformance_running: Container,
    ) -> None:
        """``ssh_endpoint()`` answers an :class:`SshEndpoint` with a host and a port."""
        hv = conformance_hv
        endpoint = hv.ssh_endpoint(conformance_manager.get(conformance_running.id))
        assert isinstance(endpoint, SshEndpoint), (
            f"hypervisor {hv.name}: ssh_endpoint() returned {type(endpoint).__name__}, "
            "expected lk_core.vm.SshEndpoint"
        )
        assert endpoint.host and isinstance(endpoint.port, int) and endpoint.port > 0, (
            f"hypervisor {hv.name}: ssh_endpoint() returned {endpoint!r}, "
            "expected a host and a port"
        )

    # -- stopping ------------------------------------------------------------------
    def test_graceful_stop(
        self,
        conformance_manager: Manager,
        conformance_hv: Hypervisor,
        conformance_vms: list[str],
        image: Path,
    ) -> None:
        """``lk stop`` powers the VM off through ``request_stop``, without a kill."""
        manager, hv = conformance_manager, conformance_hv
        container = self.boot(manager, hv, image, conformance_vms)
        self.wait_until_ready(manager, hv, container)
        delivered: list[None] = []
        failures: list[str] = []
        kills: list[None] = []
        original_request, original_kill = hv.request_stop, hv.kill

        def request_stop(record: Container) -> None:
            try:
                original_request(record)
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                raise
            delivered.append(None)

        def kill(record: Container) -> None:
            kills.append(None)
            original_kill(record)

        timeout = self.stop_timeout if self.stop_timeout is not None else self.boot_timeout
        began = time.monotonic()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(hv, "request_stop", request_stop)
            patch.setattr(hv, "kill", kill)
            manager.stop(container.id, timeout=timeout)
        took = time.monotonic() - began
        assert delivered or failures, (
            f"hypervisor {hv.name}: lk stop never called request_stop (took {took:.1f} s)"
        )
        assert not kills, (
            f"hypervisor {hv.name}: the graceful stop needed a kill: request_stop was "
            f"delivered {len(delivered)} time(s)"
            + (f" and failed {len(failures)} time(s) (last: {failures[-1]})" if failures else "")
            + f" but the VM still ran after the {timeout:g} s timeout"
        )
        self.assert_stopped(manager, hv, container.id, "a graceful lk stop")
        if isinstance(hv, ProcessHypervisor):
            final = manager.get(container.id)
            assert final.exit_code == 0, (
                f"hypervisor {hv.name}: after a graceful stop its process exited with status "
                f"{final.exit_code}, expected 0"
            )

    def test_forced_stop(
        self,
        conformance_manager: Manager,
        conformance_hv: Hypervisor,
        conformance_vms: list[str],
        image: Path,
    ) -> None:
        """``lk stop --force`` (``kill``) stops a running VM at once."""
        manager, hv = conformance_manager, conformance_hv
        container = self.boot(manager, hv, image, conformance_vms)
        manager.stop(container.id, force=True)
        self.assert_stopped(manager, hv, container.id, "a forced stop")

    def test_liveness_after_the_vm_dies(
        self,
        conformance_manager: Manager,
        conformance_hv: Hypervisor,
        conformance_vms: list[str],
        image: Path,
    ) -> None:
        """A VM that dies behind lk's back is soon reported not active (stopped or error)."""
        manager, hv = conformance_manager, conformance_hv
        container = self.boot(manager, hv, image, conformance_vms)
        if isinstance(hv, ProcessHypervisor):
            from lk_core.process import signal_process

            how = f"its process (pid {container.pid}) was killed with SIGKILL"
            assert signal_process(container.pid, container.pid_started, signal.SIGKILL), (
                f"hypervisor {hv.name}: the recorded process (pid {container.pid}) is not "
                "running right after lk run"
            )
        else:
            how = "kill() was called behind lk's back"
            hv.kill(manager.get(container.id))
        status: list[Status] = []

        def noticed() -> bool:
            status.append(manager.get(container.id).status)
            return status[-1] not in ACTIVE

        assert _wait(noticed, self.liveness_timeout, 0.2), (
            f"hypervisor {hv.name}: {how}, yet lk still reports {status[-1]} after "
            f"{self.liveness_timeout:g} s, expected stopped or error"
        )
        state = hv.state(manager.get(container.id))
        assert state.status not in ACTIVE, (
            f"hypervisor {hv.name}: {how}, yet state() says {state.status}"
        )

    # -- refusing what it cannot do --------------------------------------------------
    def test_undeclared_option_is_refused(
        self, conformance_manager: Manager, conformance_hv: Hypervisor, image: Path
    ) -> None:
        """An option the hypervisor did not declare is a usage error, and nothing starts."""
        hv = conformance_hv
        given = {**self.run_options.get("hypervisor_options", {}), UNDECLARED_OPTION: "1"}
        error = self.refused(conformance_manager, hv, image, UsageError, hypervisor_options=given)
        assert "no-such-option-xyz" in str(error), (
            f"hypervisor {hv.name}: the refusal does not name the option: {error}"
        )

    def test_unbootable_format_is_refused(
        self, conformance_manager: Manager, conformance_hv: Hypervisor, tmp_path: Path
    ) -> None:
        """An image of a format the hypervisor does not boot is refused before anything starts."""
        hv = conformance_hv
        missing = [fmt for fmt in SAMPLE_FORMATS if fmt not in hv.formats]
        if not missing:
            pytest.skip(f"hypervisor {hv.name} boots every built-in format")
        fmt = missing[0]
        sample = make_image(tmp_path / "unbootable", fmt)
        error = self.refused(conformance_manager, hv, sample, LkError)
        assert fmt in str(error) or hv.name in str(error), (
            f"hypervisor {hv.name}: refusing a {fmt} image, the message names neither the "
            f"format nor the hypervisor: {error}"
        )

    def test_ports_refused_without_the_capability(
        self, conformance_manager: Manager, conformance_hv: Hypervisor, image: Path
    ) -> None:
        """``-p`` on a hypervisor without ``Capability.PORTS``: one line naming it."""
        hv = conformance_hv
        if Capability.PORTS in hv.capabilities:
            pytest.skip(f"hypervisor {hv.name} publishes ports")
        from lk_core.ports import free_port

        ports = (PortMapping(free_port(), 80),)
        error = self.refused(conformance_manager, hv, image, HypervisorError, ports=ports)
        assert hv.name in str(error), f"hypervisor {hv.name}: the refusal does not name it: {error}"

    def test_volumes_refused_without_the_capability(
        self,
        conformance_manager: Manager,
        conformance_hv: Hypervisor,
        image: Path,
        tmp_path: Path,
    ) -> None:
        """``-v`` on a hypervisor without ``Capability.VOLUMES``: one line naming it."""
        hv = conformance_hv
        if Capability.VOLUMES in hv.capabilities:
            pytest.skip(f"hypervisor {hv.name} shares folders")
        share = tmp_path / "share"
        share.mkdir()
        volumes = (VolumeMapping(str(share), "/mnt/share"),)
        error = self.refused(conformance_manager, hv, image, HypervisorError, volumes=volumes)
        assert hv.name in str(error), f"hypervisor {hv.name}: the refusal does not name it: {error}"

    # -- removing ------------------------------------------------------------------
    def test_remove_leaves_no_record(
        self,
        conformance_manager: Manager,
        conformance_hv: Hypervisor,
        conformance_vms: list[str],
        image: Path,
    ) -> None:
        """``lk rm`` of a stopped container leaves no record, log or runtime folder."""
        from lk_core.paths import log_path, runtime_dir

        manager, hv = conformance_manager, conformance_hv
        container = self.boot(manager, hv, image, conformance_vms)
        manager.stop(container.id, force=True)
        stopped = manager.get(container.id)
        assert stopped.status not in ACTIVE, (
            f"hypervisor {hv.name}: after a forced stop lk reports {stopped.status}, "
            "so it cannot be removed"
        )
        manager.remove([container.id])
        records = [c.id for c in manager.records()]
        assert container.id not in records, (
            f"hypervisor {hv.name}: lk rm left the record of {container.id}"
        )
        if hv.owns_records:
            listed = [c.id for c in hv.list_containers().containers]
            assert container.id not in listed, (
                f"hypervisor {hv.name}: list_containers() still lists {container.id} after lk rm"
            )
        assert not log_path(container.id).exists(), (
            f"hypervisor {hv.name}: lk rm left the console log {log_path(container.id)}"
        )
        assert not runtime_dir(container.id).exists(), (
            f"hypervisor {hv.name}: lk rm left the runtime folder {runtime_dir(container.id)}"
        )
