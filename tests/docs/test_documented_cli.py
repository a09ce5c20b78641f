"""What the user guide, exit-codes page and CLI reference promise, checked on the real CLI.

Runs ``python -m lk_core`` in the shared ``sandbox`` (a fresh LK_HOME with the
fake hypervisor of tests/helpers).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_listings_take_format_json_and_the_json_alias(run_lk) -> None:
    for command in ("plugins", "hypervisors"):
        as_format = run_lk(command, "--format", "json", check=True).stdout
        as_alias = run_lk(command, "--json", check=True).stdout
        assert as_format == as_alias
        json.loads(as_format)
        table = run_lk(command, check=True).stdout
        assert table.startswith("NAME")
    hypervisors = json.loads(run_lk("hypervisors", "--format", "json", check=True).stdout)
    fake = next(h for h in hypervisors if h["name"] == "fake")
    assert set(fake) == {
        "name",
        "available",
        "default",
        "reason",
        "formats",
        "details",
        "description",
    }
    assert json.loads(run_lk("ps", "--format", "json", check=True).stdout) == []


def test_lk_version_prints_what_lk_dash_dash_version_prints(run_lk) -> None:
    version = run_lk("version", check=True).stdout
    assert version == run_lk("--version", check=True).stdout
    lines = version.splitlines()
    assert lines[0].startswith("lk ")
    assert any(line.strip().startswith("lk-core ") for line in lines[1:])
    assert "fake_hypervisor" in version  # plugins from LK_PLUGIN_MODULES are listed too


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("ps",), 0, ""),
        (("--help",), 0, ""),
        (("stop", "nothing-here"), 1, "lk: error: no such container: nothing-here"),
        (("logs", "nothing-here"), 1, "lk: error: no such container: nothing-here"),
        (("run", "--hypervisor", "nope", "IMAGE"), 1, "lk: error: unknown hypervisor 'nope'"),
        (("ps", "--bogus"), 2, "--bogus"),
        (("ps", "--format", "xml"), 2, "Invalid value for '--format'"),
        (("stop",), 2, "Missing argument 'REF...'"),
        (("frobnicate",), 2, "No such command 'frobnicate'"),
        (("run", "-p", "99999:80", "IMAGE"), 2, "lk: error: invalid port mapping '99999:80'"),
        (("run", "-m", "lots", "IMAGE"), 2, "lk: error: invalid memory size 'lots'"),
        (("stop", " "), 2, "lk: error: empty container reference"),
        (("exec", "-e", "novalue", "x", "--", "true"), 2, "lk: error: invalid -e 'novalue'"),
        (("completion", "tcsh"), 2, "Invalid value for '{bash|zsh|fish}'"),
    ],
)
def test_exit_codes(
    run_lk, iso_image: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    args = tuple(str(iso_image) if a == "IMAGE" else a for a in args)
    result = run_lk(*args)
    assert result.returncode == code, result.stderr
    assert message in result.stderr


def test_rm_of_a_running_container_is_refused_with_1_and_removes_nothing(
    run_lk, iso_image: Path
) -> None:
    cid = run_lk("run", "-d", "--hypervisor", "fake", "--name", "web", str(iso_image), check=True)
    cid_text = cid.stdout.strip()
    refused = run_lk("rm", "web")
    assert refused.returncode == 1
    assert "stop it first or use 'lk rm -f web'" in refused.stderr
    assert run_lk("ps", "-q", check=True).stdout.split() == [cid_text]
    assert run_lk("stop", "web", check=True).stdout.strip() == "web"
    assert run_lk("stop", "web").returncode == 0  # stopping a stopped container is fine
    assert run_lk("rm", "web", check=True).stdout.strip() == "web"
