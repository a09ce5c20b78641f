"""lk exec through OpenSSH: the argv (pinning, quoting, multiplexing) and failure triage."""

from __future__ import annotations

from pathlib import Path

from lk_core.ssh import remote_command

from lk_core import ssh_mux


def _argv(**overrides: object) -> list[str]:
    fields: dict[str, object] = {
        "ssh": "/usr/bin/ssh",
        "host": "127.0.0.1",
        "port": 2222,
        "user": "root",
        "key": "/k/id_ed25519",
        "known_hosts": Path("/run/abc/known_hosts"),
        "command": "true",
        "control": Path("/run/abc/ssh-0123456789.ctl"),
        "log": Path("/run/abc/ssh-1.log"),
        "tty": False,
        "first_contact": False,
    }
    fields.update(overrides)
    return ssh_mux.ssh_argv(**fields)  # type: ignore[arg-type]


def _options(argv: list[str]) -> dict[str, str]:
    return dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-o")


def test_host_key_is_pinned_in_the_runtime_known_hosts() -> None:
    argv = _argv()
    options = _options(argv)
    assert options["StrictHostKeyChecking"] == "yes"
    assert options["UserKnownHostsFile"] == '"/run/abc/known_hosts"'
    assert options["GlobalKnownHostsFile"] == "/dev/null"
    assert options["HashKnownHosts"] == "no"  # paramiko reads the same file
    assert options["IdentitiesOnly"] == "yes" and options["BatchMode"] == "yes"
    assert argv[1:3] == ["-F", "none"]  # no ~/.ssh/config, no /etc/ssh/ssh_config
    assert options["IdentityFile"] == '"/k/id_ed25519"'
    assert argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-l") + 1] == "root"
    assert _options(_argv(first_contact=True))["StrictHostKeyChecking"] == "accept-new"


def test_the_remote_command_string_is_passed_as_one_argument() -> None:
    command = remote_command(["echo", "a b;c", "$HOME", "`id`"], {"G": "hi there"}, "/tmp")
    argv = _argv(command=command)
    assert argv[-3:] == ["127.0.0.1", "--", command]
    assert command == "cd /tmp && env G='hi there' echo 'a b;c' '$HOME' '`id`'"


def test_multiplexing_and_tty() -> None:
    options = _options(_argv())
    assert options["ControlMaster"] == "auto"
    assert options["ControlPath"] == '"/run/abc/ssh-0123456789.ctl"'
    assert options["ControlPersist"] == str(ssh_mux.CONTROL_PERSIST)
    assert "ControlMaster" not in _options(_argv(control=None))
    assert "-T" in _argv() and "-tt" not in _argv()
    assert "-tt" in _argv(tty=True)


def test_a_master_is_only_shared_by_the_same_key_port_and_pin(tmp_path: Path) -> None:
    base = ssh_mux.control_path(tmp_path, 2222, "/k", b"pin", b"key")
    assert base == ssh_mux.control_path(tmp_path, 2222, "/k", b"pin", b"key")
    assert base.parent == tmp_path and base.name.startswith("ssh-")
    others = {
        ssh_mux.control_path(tmp_path, 2223, "/k", b"pin", b"key"),
        ssh_mux.control_path(tmp_path, 2222, "/other", b"pin", b"key"),
        ssh_mux.control_path(tmp_path, 2222, "/k", b"changed pin", b"key"),
        ssh_mux.control_path(tmp_path, 2222, "/k", b"pin", b"new key"),
    }
    assert base not in others and len(others) == 4


def test_pin_lookup() -> None:
    known = b"[127.0.0.1]:2222 ssh-ed25519 AAAA\n"
    assert ssh_mux._has_pin(known, "127.0.0.1", 2222)
    assert not ssh_mux._has_pin(known, "127.0.0.1", 2223)
    assert not ssh_mux._has_pin(b"", "127.0.0.1", 2222)


def test_only_failures_before_the_session_fall_back_to_paramiko() -> None:
    for early in (
        "Host key verification failed.",
        "root@127.0.0.1: Permission denied (publickey).",
        "ssh: connect to host 127.0.0.1 port 2222: Connection refused",
        "kex_exchange_identification: read: Connection reset by peer",
        "Connection closed by 127.0.0.1 port 2222",
    ):
        assert ssh_mux._before_session(early), early
    # The command may have run: never run it twice.
    assert not ssh_mux._before_session("Connection to 127.0.0.1 closed by remote host.")


def test_switch() -> None:
    assert ssh_mux.enabled({})
    assert not ssh_mux.enabled({"LK_SSH_MUX": "0"})


def test_paths_with_spaces_commas_and_percent_signs() -> None:
    argv = _argv(
        key="/my keys, v1/100%/id",
        known_hosts=Path("/lk home, 2/run/a/known_hosts"),
        control=Path("/lk home, 2/run/a/ssh-1.ctl"),
    )
    options = _options(argv)
    assert options["UserKnownHostsFile"] == '"/lk home, 2/run/a/known_hosts"'
    assert options["ControlPath"] == '"/lk home, 2/run/a/ssh-1.ctl"'
    assert options["IdentityFile"] == '"/my keys, v1/100%%/id"'  # ssh expands % tokens


def test_paths_ssh_cannot_take_verbatim_go_to_paramiko() -> None:
    import pytest

    for bad in ('/a"b/k', "/a\\b/k", "/a${HOME}/k", "/a\nb/k", "relative/k"):
        with pytest.raises(ValueError):
            _argv(key=bad)
