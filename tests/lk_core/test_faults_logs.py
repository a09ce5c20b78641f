"""Issue 15, faults 8 and 9: a deleted console log, and Ctrl-C on ``lk logs -f``."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lk_core.logs import interrupt_on_sigint

from lk_core import cli


def start(run_lk, image) -> str:
    return str(run_lk("run", "-d", "--hypervisor", "fake", str(image), check=True).stdout.strip())


@pytest.mark.parametrize("follow", [[], ["-f"]], ids=["logs", "logs -f"])
def test_deleted_log_is_an_error(
    run_lk, sandbox: Path, iso_image: Path, capsys: pytest.CaptureFixture[str], follow: list[str]
) -> None:
    cid = start(run_lk, iso_image)
    log = sandbox / "logs" / f"{cid}.log"
    assert log.exists()
    log.unlink()
    code = cli.main(["logs", "-n", "5", *follow, cid])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err == f"lk: error: the console log {log} is gone (was it deleted?): nothing to show\n"
    run_lk("rm", "-f", cid, check=True)


def test_interrupt_on_sigint_restores_an_ignored_sigint() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        interrupt_on_sigint()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_ctrl_c_stops_logs_follow_even_if_sigint_was_inherited_ignored(
    run_lk, iso_image: Path
) -> None:
    # The cause of the test_ctrl_c_exits_130 flake: started from a background job
    # (bash '&' without job control) the process inherits SIGINT ignored, Python then
    # installs no KeyboardInterrupt handler, and 'lk logs -f' ignores Ctrl-C.
    cid = start(run_lk, iso_image)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lk_core", "logs", "-f", cid],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint,
    )
    try:
        assert proc.stdout is not None
        assert "lk-test: ready" in proc.stdout.readline() + proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    run_lk("rm", "-f", cid, check=True)
