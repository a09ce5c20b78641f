"""The conformance kit catches broken hypervisors, and says what is wrong in plain words.

Each broken hypervisor of tests/lk_core/broken_hypervisor.py breaks one rule;
the kit runs against it in a nested pytest (the ``pytester`` fixture) and
must fail exactly the checks that rule is about, with messages that name the
hypervisor and what was expected. The correct toy engine passes, which also
covers the kit's engine path (a :class:`Hypervisor` that is not a process
hypervisor).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import broken_hypervisor
import pytest

pytest_plugins = ["pytester"]

HERE = Path(__file__).resolve().parent

KIT = """
import sys

import pytest

sys.path.insert(0, {here!r})
import broken_hypervisor as bh
from lk_core.testing import HypervisorConformance


class TestKit(HypervisorConformance):
    ready_line = b"lk-test: ready"
    boot_timeout = 5.0
    stop_timeout = 1.5
    liveness_timeout = 2.0

    @pytest.fixture
    def hypervisor(self):
        return bh.{cls}()

    @pytest.fixture
    def image(self, tmp_path):
        return bh.iso_image(tmp_path)
"""


@pytest.fixture
def run_kit(pytester: pytest.Pytester) -> Iterator[object]:
    """Run the kit against a class of broken_hypervisor; returns the RunResult."""

    def run(cls: str) -> pytest.RunResult:
        pytester.makepyfile(test_kit=KIT.format(here=str(HERE), cls=cls))
        # In a subprocess: an in-process run re-imports modules (cryptography among
        # them), which breaks isinstance checks in the tests that run after it.
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rfEs", "-q")

    yield run
    broken_hypervisor.kill_all()


def expect(result: pytest.RunResult, outcome: str, test: str, message: str) -> None:
    """``test`` ended with ``outcome`` (FAILED, ERROR) and its traceback shows ``message``."""
    result.stdout.fnmatch_lines([f"{outcome} test_kit.py::TestKit::{test}*"])
    result.stdout.fnmatch_lines([f"E * {message}"])


def test_the_correct_toy_engine_passes(run_kit) -> None:
    result = run_kit("ToyEngine")
    result.assert_outcomes(passed=19, skipped=1)  # build_command: an engine has none
    result.stdout.fnmatch_lines(["*hypervisor toy is an engine: it has no command line*"])


def test_ignoring_the_graceful_stop_fails_the_graceful_stop_check(run_kit) -> None:
    result = run_kit("IgnoresGracefulStop")
    result.assert_outcomes(failed=1, passed=18, skipped=1)
    expect(
        result,
        "FAILED",
        "test_graceful_stop",
        "hypervisor ignores-stop: the graceful stop needed a kill: request_stop was delivered * "
        "time(s) but the VM still ran after the 1.5 s timeout",
    )


def test_a_state_that_lies_fails_every_stop_and_liveness_check(run_kit) -> None:
    result = run_kit("LyingState")
    result.assert_outcomes(failed=4, passed=15, skipped=1)
    expect(
        result,
        "FAILED",
        "test_forced_stop",
        "hypervisor lying-state: after a forced stop, lk reports the container running *expected "
        "stopped",
    )
    expect(
        result,
        "FAILED",
        "test_graceful_stop",
        "hypervisor lying-state: the graceful stop needed a kill*",
    )
    expect(
        result,
        "FAILED",
        "test_liveness_after_the_vm_dies",
        "hypervisor lying-state: kill() was called behind lk's back, yet lk still reports "
        "running after 2 s, expected stopped or error",
    )
    expect(
        result,
        "FAILED",
        "test_remove_leaves_no_record",
        "hypervisor lying-state: after a forced stop lk reports running, so it cannot be removed",
    )


def test_a_start_that_returns_no_handle_fails_every_check_that_boots(run_kit) -> None:
    result = run_kit("WrongStartType")
    # The checks sharing one running VM error in its fixture; the others fail.
    result.assert_outcomes(failed=5, errors=4, passed=10, skipped=1)
    expect(
        result,
        "FAILED",
        "test_start_returns_a_handle",
        "hypervisor wrong-start: start() returned dict {'pid': *, 'token': '*'}, expected an "
        "lk_core.vm.Handle",
    )
    expect(
        result,
        "ERROR",
        "test_run_reaches_running",
        "hypervisor wrong-start: start() returned dict *",
    )


def test_a_console_never_written_fails_the_ready_line_check(run_kit) -> None:
    result = run_kit("SilentConsole")
    # The graceful stop waits for the ready line too.
    result.assert_outcomes(failed=2, passed=17, skipped=1)
    expect(
        result,
        "FAILED",
        "test_console_log_shows_ready_line",
        "hypervisor silent-console: the console log (lk logs) did not show b'lk-test: ready' "
        "within 5 s; its last bytes: b''",
    )


def test_bad_declarations_fail_the_declaration_checks_and_skip_the_rest(run_kit) -> None:
    result = run_kit("BadDeclarations")
    result.assert_outcomes(failed=5, passed=1, skipped=14)
    expect(
        result,
        "FAILED",
        "test_availability_is_an_availability",
        "hypervisor Bad Name: availability() says not available but gives no reason*",
    )
    expect(
        result,
        "FAILED",
        "test_name_and_description",
        "hypervisor 'Bad Name': the name must be lower case without spaces*",
    )
    expect(
        result,
        "FAILED",
        "test_formats",
        "hypervisor Bad Name: formats is frozenset(), expected a non-empty frozenset of image "
        "format names",
    )
    expect(
        result,
        "FAILED",
        "test_capabilities",
        "hypervisor Bad Name: capabilities must be Capability members, not 'ports'",
    )
    expect(
        result,
        "FAILED",
        "test_options_are_valid",
        "hypervisor Bad Name: a wrong option declaration: option 'speed': unknown kind 'fast'*",
    )
    result.stdout.fnmatch_lines(
        ["SKIPPED * hypervisor Bad Name is not available here: (no reason given)"]
    )


def test_a_plain_lk_0_1_class_runs_wrapped_but_is_not_a_hypervisor(run_kit) -> None:
    result = run_kit("PlainClass")
    # Wrapped in LegacyProcessHypervisor it passes every check that runs a VM.
    result.assert_outcomes(failed=2, passed=15, skipped=3)
    expect(
        result,
        "FAILED",
        "test_is_a_hypervisor",
        "hypervisor 'plain': PlainClass does not subclass lk_core.hypervisor.Hypervisor*",
    )
    expect(
        result,
        "FAILED",
        "test_capabilities",
        "hypervisor plain: capabilities is None, expected a frozenset*",
    )
