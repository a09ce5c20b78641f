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


# -- the control-socket client against a fake master (OpenSSH's PROTOCOL.mux) --------
def _fake_master(path: Path, *, exit_status: int | None, output: bytes = b"out") -> object:
    import socket
    import threading

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    seen: dict[str, object] = {}

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(ssh_mux._packet(ssh_mux._u32(1) + ssh_mux._u32(4)))

            def exactly(size: int) -> bytes:
                data = b""
                while len(data) < size:
                    data += conn.recv(size - len(data))
                return data

            def packet() -> bytes:  # never reads past it: the fds follow
                return exactly(int.from_bytes(exactly(4), "big"))

            seen["hello"] = packet()
            seen["request"] = packet()
            fds = []
            for _ in range(3):
                _msg, got, _flags, _addr = socket.recv_fds(conn, 1, 1)
                fds.extend(got)
            import os

            os.write(fds[1], output)
            os.write(fds[2], b"err")
            for fd in fds:
                os.close(fd)
            reply = ssh_mux._packet(ssh_mux._u32(0x80000006) + ssh_mux._u32(1) + ssh_mux._u32(7))
            if exit_status is not None:  # in the same write: read together with the reply
                reply += ssh_mux._packet(
                    ssh_mux._u32(0x80000004) + ssh_mux._u32(7) + ssh_mux._u32(exit_status)
                )
            conn.sendall(reply)
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    seen["thread"] = thread
    return seen


def test_session_on_a_master_returns_status_and_separate_streams(tmp_path: Path) -> None:
    import os

    control = tmp_path / "ssh-x.ctl"
    seen = _fake_master(control, exit_status=3)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        result = ssh_mux.mux_exec(control, "echo 'a b'", null, capture=True)
    finally:
        os.close(null)
    assert result == (3, b"out", b"err")
    assert seen["hello"] == ssh_mux._u32(1) + ssh_mux._u32(4)  # type: ignore[index]
    assert seen["request"] == ssh_mux.new_session_request("echo 'a b'")[4:]  # type: ignore[index]


def test_a_session_without_exit_status_broke(tmp_path: Path) -> None:
    import os

    import pytest

    control = tmp_path / "ssh-x.ctl"
    _fake_master(control, exit_status=None)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        with pytest.raises(ssh_mux.SessionBroke):
            ssh_mux.mux_exec(control, "true", null, capture=True)
    finally:
        os.close(null)


def test_no_master_means_ssh_connects(tmp_path: Path) -> None:
    assert ssh_mux.mux_exec(tmp_path / "absent.ctl", "true", 0, capture=True) is None


def test_new_session_request_layout() -> None:
    request = ssh_mux.new_session_request("ls", request_id=9)
    payload = request[4:]
    assert int.from_bytes(request[:4], "big") == len(payload)
    assert payload[:8] == ssh_mux._u32(0x10000002) + ssh_mux._u32(9)
    assert payload.endswith(ssh_mux._string(b"") + ssh_mux._string(b"ls"))
