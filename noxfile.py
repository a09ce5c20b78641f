"""Every developer task: tests, e2e, isolation, lint, typecheck, docs, bench, demo.

nox -s tests        unit, plugin and lifecycle tests, and the end-to-end
                    tests that boot real VMs under QEMU
nox -s lint         ruff check + ruff format --check
nox -s typecheck    mypy (strict on lk_core)
nox -s isolation    each distribution installed alone from its wheel
nox -s docs         mkdocs build --strict
nox -s bench        benchmarks against baselines measured in the same run
nox -s demo         boot the demo VM end to end
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "typecheck", "isolation", "docs"]

ROOT = Path(__file__).parent
DISTRIBUTIONS = ["lk_core", "lk_qemu", "lk_hyperkit", "lk_templates", "lk_libvirt"]
PLUGIN_DISTRIBUTIONS = {
    "lk_qemu": {"qemu"},
    "lk_hyperkit": {"hyperkit"},
    "lk_templates": {"templates"},
    "lk_libvirt": {"libvirt"},
}
#: Options of ``lk run`` each plugin adds (and that must vanish without it).
PLUGIN_RUN_OPTIONS = {
    "lk_qemu": {"--accel", "--qemu-args"},
    "lk_hyperkit": {"--firmware", "--network", "--vpnkit"},
    "lk_templates": {"--template", "--var", "--var-file"},
    "lk_libvirt": {"--accel", "--host"},
}
CORE_PLUGINS = {"json-state", "image-formats", "core-commands"}
TEST_DEPS = ["pytest>=8", "hypothesis>=6.100", "mkdocs", "mkdocs-material"]


def install_all(session: nox.Session, editable: bool = True) -> None:
    args = []
    for dist in DISTRIBUTIONS:
        args += ["-e", f"./{dist}"] if editable else [f"./{dist}"]
    session.install(*args)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite (pass pytest arguments after --)."""
    install_all(session)
    session.install(*TEST_DEPS)
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy: strict on lk_core, typed throughout the plugins."""
    install_all(session)
    session.install("mypy", "types-PyYAML", "types-psutil", "pytest")
    session.run("mypy", *(f"{dist}/src/{dist}" for dist in DISTRIBUTIONS))


def _plugin_names(python: Path, env: dict[str, str]) -> set[str]:
    out = subprocess.run(
        [str(python), "-m", "lk_core", "plugins", "--json"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    data = json.loads(out)
    if data["failed"]:
        raise AssertionError(f"plugins failed to load: {data['failed']}")
    return {p["name"] for p in data["plugins"]}


@nox.session
def isolation(session: nox.Session) -> None:
    """Build a wheel per distribution; install lk-core with each plugin alone and check."""
    import os
    import tempfile
    import venv

    session.install("build")
    wheels = Path(session.create_tmp()) / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    for dist in DISTRIBUTIONS:
        session.run("python", "-m", "build", "--wheel", "--outdir", str(wheels), f"./{dist}")

    def wheel(dist: str) -> str:
        name = dist + "-"
        (found,) = [w for w in wheels.iterdir() if w.name.startswith(name)]
        return str(found)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LK_", "VIRTUAL_ENV"))}
    combos = [["lk_core", p] for p in PLUGIN_DISTRIBUTIONS] + [
        ["lk_core", "lk_qemu", "lk_hyperkit"]
    ]
    for combo in combos:
        with tempfile.TemporaryDirectory() as tmp:
            venv.create(tmp, with_pip=True)
            python = Path(tmp) / "bin" / "python"
            session.run(
                str(python), "-m", "pip", "install", "-q", *map(wheel, combo), external=True
            )
            expected = set(CORE_PLUGINS)
            for dist in combo[1:]:
                expected |= PLUGIN_DISTRIBUTIONS[dist]
            found = _plugin_names(python, {**env, "LK_HOME": tmp})
            if found != expected:
                session.error(f"{combo}: expected plugins {sorted(expected)}, got {sorted(found)}")
            session.log(f"{' + '.join(combo)}: plugins {sorted(found)}")
            lk = Path(tmp) / "bin" / "lk"
            session.run(str(lk), "--help", external=True, silent=True)
            _check_run_options(session, lk, combo, {**env, "LK_HOME": tmp})
            hv = subprocess.run(
                [str(lk), "hypervisors", "--json"],
                capture_output=True,
                text=True,
                check=True,
                env={**env, "LK_HOME": tmp},
            ).stdout
            session.log(
                f"hypervisors: {[(h['name'], h['available'], h['reason']) for h in json.loads(hv)]}"
            )
            if "lk_hyperkit" in combo and sys.platform != "darwin":
                hyperkit = next(h for h in json.loads(hv) if h["name"] == "hyperkit")
                if hyperkit["available"] or not hyperkit["reason"]:
                    session.error(f"hyperkit should be unavailable with a reason: {hyperkit}")
            if combo == ["lk_core", "lk_qemu"]:
                disabled = subprocess.run(
                    [str(lk), "hypervisors", "--json"],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**env, "LK_HOME": tmp, "LK_DISABLE_PLUGINS": "qemu"},
                ).stdout
                if any(h["name"] == "qemu" for h in json.loads(disabled)):
                    session.error("LK_DISABLE_PLUGINS=qemu did not remove qemu")


def _check_run_options(
    session: nox.Session, lk: Path, combo: list[str], env: dict[str, str]
) -> None:
    """``lk run --help`` offers exactly the options of the installed plugins."""
    import re

    help_text = subprocess.run(
        [str(lk), "run", "--help"], capture_output=True, text=True, check=True, env=env
    ).stdout
    shown = set(re.findall(r"(--[a-z][a-z-]*)", help_text))
    expected = set().union(*(PLUGIN_RUN_OPTIONS[d] for d in combo[1:]))
    absent = set().union(*PLUGIN_RUN_OPTIONS.values()) - expected
    if expected - shown:
        session.error(f"{combo}: lk run --help lacks {sorted(expected - shown)}")
    if absent & shown:
        session.error(f"{combo}: lk run --help shows {sorted(absent & shown)} of a missing plugin")
    session.log(f"lk run options from plugins: {sorted(expected)}")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site strictly."""
    install_all(session)
    session.install("mkdocs", "mkdocs-material")
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", str(Path(session.create_tmp()) / "site")
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: print a table of lk against baselines measured in the same run."""
    install_all(session)
    session.install("fabric")
    out = ROOT / ".bench" / "results.json"
    session.run("python", "tests/bench/run.py", "--json", str(out), *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Build the test image and boot it end to end with lk."""
    install_all(session)
    session.run("bash", "scripts/demo-steps.sh", external=True)


if __name__ == "__main__":
    sys.exit("run with: nox -s <session>")
