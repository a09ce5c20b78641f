"""The plugin author guide's worked example, installed for real into a fresh virtualenv.

A new venv (without system site-packages) gets ``./lk_core`` and
``tests/plugins/lk-example-hypervisor`` from their local paths with pip, and
nothing else from lk: no lk-qemu, no lk-templates. lk must then find the
plugin through its ``lk`` entry point alone, list it, offer its hypervisor,
and drive a VM through ``run -d``, ``ps``, ``logs``, ``stop`` and ``rm``.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests" / "plugins" / "lk-example-hypervisor"
READY = "example-vm: ready"
SHUTDOWN = "example-vm: power button pressed, shutting down"
EXAMPLE_HOOKS = [
    "detect_image_format",
    "register_commands",
    "register_hypervisors",
    "register_template_sources",
]

Lk = Callable[..., subprocess.CompletedProcess[str]]


def clean_env() -> dict[str, str]:
    """The test's environment minus anything that would leak the outer installation in."""
    drop = ("LK_", "PYTHON", "VIRTUAL_ENV", "FAKE_VM")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding lk-core and lk-example-hypervisor, nothing else of lk."""
    where = tmp_path_factory.mktemp("example-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=300)
    python = where / "bin" / "python"
    config = subprocess.run(
        [str(python), "-c", "import sys; print(sys.prefix != sys.base_prefix)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert config.stdout.strip() == "True"
    cfg = (where / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = false" in cfg
    result = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(ROOT / "lk_core"),
            str(EXAMPLE),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=clean_env(),
    )
    if result.returncode != 0:
        pytest.fail(f"pip install failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return where


def make_lk(venv: Path, home: Path, extra_env: dict[str, str] | None = None) -> Lk:
    """A function running the venv's ``lk`` script with LK_HOME=home."""
    env = {**clean_env(), "LK_HOME": str(home), **(extra_env or {})}

    def lk(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(venv / "bin" / "lk"), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"lk {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
            )
        return result

    return lk


@pytest.fixture
def home(sandbox: Path) -> Path:
    """The shared ``sandbox``: a short LK_HOME (unix socket paths must fit in 104 bytes),
    whose leftover processes are killed after the test."""
    return sandbox


@pytest.fixture
def lk(venv: Path, home: Path) -> Iterator[Lk]:
    """The venv's lk; every container left at the end is removed with ``lk rm -f``."""
    run = make_lk(venv, home)
    yield run
    leftovers = run("ps", "-a", "-q", check=False).stdout.split()
    if leftovers:
        run("rm", "-f", *leftovers, check=False)


def iso_image(folder: Path, label: bytes = b"LK_EXAMPLE") -> Path:
    """A file lk takes for an ISO: ``CD001`` at 0x8001 and a volume label at 0x8028."""
    data = bytearray(0x8800)
    data[0x8001:0x8006] = b"CD001"
    data[0x8028 : 0x8028 + len(label)] = label
    path = folder / "image.iso"
    path.write_bytes(bytes(data))
    return path


def wait_for(condition: Callable[[], object], timeout: float = 20.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ps_json(lk: Lk, *args: str) -> list[dict]:
    return json.loads(lk("ps", "--format", "json", *args).stdout)


def test_the_venv_holds_only_lk_core_and_the_example(venv: Path) -> None:
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    ).stdout
    names = {p["name"].lower() for p in json.loads(listed)}
    assert {"lk-core", "lk-example-hypervisor"} <= names
    assert not names & {"lk-qemu", "lk-hyperkit", "lk-templates", "lk"}


def test_lk_plugins_finds_the_example_through_its_entry_point(lk: Lk) -> None:
    data = json.loads(lk("plugins", "--json").stdout)
    assert data["failed"] == []
    by_name = {p["name"]: p for p in data["plugins"]}
    assert set(by_name) == {"core-commands", "image-formats", "json-state", "example"}
    example = by_name["example"]
    # Found as an installed distribution's entry point, not through LK_PLUGIN_MODULES.
    assert example["distribution"] == "lk-example-hypervisor"
    assert example["version"] == "0.1.0"
    assert example["hooks"] == EXAMPLE_HOOKS
    assert json.loads(lk("plugins", "--format", "json").stdout) == data
    table = lk("plugins").stdout
    assert "example" in table and "lk-example-hypervisor" in table


def test_lk_hypervisors_shows_the_example_available(lk: Lk) -> None:
    rows = json.loads(lk("hypervisors", "--format", "json").stdout)
    assert [r["name"] for r in rows] == ["example"]
    (example,) = rows
    assert example["available"] is True and example["default"] is True
    assert example["formats"] == ["example", "iso", "raw"]
    assert example["details"]["python"].endswith("python")
    table = lk("hypervisors").stdout
    assert "example *" in table and "yes" in table


def test_lk_disable_plugins_removes_the_example(venv: Path, home: Path) -> None:
    lk = make_lk(venv, home, {"LK_DISABLE_PLUGINS": "example"})
    assert json.loads(lk("hypervisors", "--json").stdout) == []
    result = lk("run", "-d", "--hypervisor", "example", str(iso_image(home)), check=False)
    assert result.returncode == 1
    assert "unknown hypervisor 'example'" in result.stderr


def test_run_ps_logs_stop_rm_with_the_example_hypervisor(lk: Lk, home: Path) -> None:
    port = free_port()
    image = iso_image(home)
    run = lk("run", "-d", "--hypervisor", "example", "--name", "web", "-p", f"{port}:7", str(image))
    cid = run.stdout.strip()
    assert len(cid) == 8 and int(cid, 16) >= 0

    # ps: the table and the JSON agree that it runs on the example hypervisor.
    table = lk("ps").stdout
    assert cid in table and "web" in table and "running" in table
    assert f"127.0.0.1:{port}->7/tcp" in table
    (record,) = ps_json(lk)
    assert record["id"] == cid and record["status"] == "running"
    assert record["hypervisor"] == "example" and record["format"] == "iso"

    # logs: the VM's console, written by the plugin's own VM program.
    logs = str(wait_for(lambda: (out := lk("logs", "web").stdout) and READY in out and out))
    assert "example-vm: booting image.iso (iso, 34816 bytes)" in logs
    assert "example-vm: ISO 9660 volume LK_EXAMPLE" in logs
    assert "example-vm: metadata CD attached" in logs  # lk's SSH-key CD reached the VM
    assert lk("logs", "-n", "1", "web").stdout == f"{READY}\n"

    # The published port reaches the "guest" (an echo service), on loopback.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"ping\n")
        assert sock.recv(64) == b"ping\n"

    # The plugin's own command talks to the VM through its control socket.
    status = lk("example-status", "web").stdout  # an exact name (name prefixes match nothing)
    assert status.startswith("web: running, up ")

    # stop: a graceful power-off through request_shutdown, recorded as stopped (0).
    assert lk("stop", "web").stdout.strip() == "web"
    (stopped,) = ps_json(lk, "-a")
    assert stopped["status"] == "stopped" and stopped["exit_code"] == 0
    assert lk("ps", "-q").stdout == ""
    assert SHUTDOWN in lk("logs", cid).stdout
    assert not (home / "run" / cid / "control.sock").exists()

    # rm: record, log and runtime folder are gone.
    assert lk("rm", "web").stdout.strip() == "web"
    assert lk("ps", "-a", "-q").stdout == ""
    assert not (home / "logs" / f"{cid}.log").exists()
    assert not (home / "run" / cid).exists()
    gone = lk("logs", "web", check=False)
    assert gone.returncode == 1 and "no such container: web" in gone.stderr


def test_the_example_refuses_what_it_cannot_do_and_leaves_nothing(lk: Lk, home: Path) -> None:
    image = iso_image(home)
    share = home / "share"
    share.mkdir()
    refused = lk(
        "run", "-d", "--hypervisor", "example", "-v", f"{share}:/data", str(image), check=False
    )
    assert refused.returncode == 1
    assert "hypervisor example cannot share folders (-v)" in refused.stderr
    # No plugin here declares --accel (lk-qemu is not installed): not an option of lk run.
    accel = lk("run", "-d", "--hypervisor", "example", "--accel", "kvm", str(image), check=False)
    assert accel.returncode == 2 and "--accel" in accel.stderr
    qcow2 = home / "disk.qcow2"
    qcow2.write_bytes(b"QFI\xfb" + bytes(508))
    wrong = lk("run", "-d", "--hypervisor", "example", str(qcow2), check=False)
    assert wrong.returncode == 1 and "cannot boot qcow2 images" in wrong.stderr
    assert lk("ps", "-a", "-q").stdout == ""


def test_the_example_image_format_and_template_source(lk: Lk, venv: Path, home: Path) -> None:
    image = home / "hello.img"
    image.write_text("#!lk-example\nHello from an example image\n")
    cid = lk("run", "-d", "--hypervisor", "example", str(image)).stdout.strip()
    assert json.loads(lk("inspect", cid).stdout)["format"] == "example"
    logs = str(wait_for(lambda: (out := lk("logs", cid).stdout) and READY in out and out))
    assert "Hello from an example image" in logs
    lk("stop", cid)
    lk("rm", cid)

    script = (
        "import json; from lk_core.plugins import get_plugins; "
        "from lk_core.templating import list_templates, apply_template; "
        "p = get_plugins(); "
        "print(json.dumps([[t.name, t.source, t.description] for t in list_templates(p)])); "
        "print(apply_template(p, 'example-hello', {'GREETING': 'hi: there'}))"
    )
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**clean_env(), "LK_HOME": str(home)},
    ).stdout
    listing, rendered = out.split("\n", 1)
    assert json.loads(listing) == [
        [
            "example-hello",
            "example",
            "A minimal LinuxKit VM that prints a greeting on its serial console",
        ]
    ]
    assert 'command: ["echo", "hi: there"]' in rendered


def test_the_opt_in_sqlite_state_store(venv: Path, home: Path) -> None:
    lk = make_lk(venv, home, {"LK_PLUGIN_MODULES": "lk_example_hypervisor.sqlite_store"})
    plugins = {p["name"]: p for p in json.loads(lk("plugins", "--json").stdout)["plugins"]}
    assert plugins["lk_example_hypervisor.sqlite_store"]["hooks"] == ["open_state_store"]
    try:
        cid = lk("run", "-d", "--hypervisor", "example", "--name", "db", str(iso_image(home)))
        cid_text = cid.stdout.strip()
        assert [r["name"] for r in ps_json(lk)] == ["db"]
        with sqlite3.connect(home / "containers.sqlite") as conn:
            rows = conn.execute("SELECT id FROM containers").fetchall()
        assert rows == [(cid_text,)]
        assert not (home / "containers.json").exists()
        assert lk("stop", "db").stdout.strip() == "db"
        assert ps_json(lk, "-a")[0]["status"] == "stopped"
        lk("rm", "db")
        assert lk("ps", "-a", "-q").stdout == ""
    finally:
        leftovers = lk("ps", "-a", "-q", check=False).stdout.split()
        if leftovers:
            lk("rm", "-f", *leftovers, check=False)
