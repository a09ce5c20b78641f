"""Building rendered templates into bootable images with the ``linuxkit`` tool.

What ``lk run --template NAME`` needs:

* :func:`find_linuxkit` - the ``linuxkit`` executable (``$LK_LINUXKIT`` or
  ``PATH``);
* :func:`build_image` - ``linuxkit build`` into a cache keyed by the rendered
  YAML and the output format: an unchanged template is never built twice;
* :func:`prune_unused_builds` - delete cached builds no container uses.

Cache layout (``<cache>`` is :func:`default_build_cache_dir`)::

    <cache>/<key>/lk-<key12>.iso          iso-bios output
    <cache>/<key>/lk-<key12>-kernel       kernel+initrd output (with -initrd.img, -cmdline)
    <cache>/<key>/lk-<key12>.yml          the rendered YAML that was built
    <cache>/<key>/build.json              format, linuxkit path, time
    <cache>/.tmp-<key>-XXXX/              a build in progress (renamed into place)
    <cache>/.lock-<key>                   serialises builds of one key

``<key>`` is the sha256 of the format and the rendered YAML.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import attrs
from lk_core.errors import LkError
from lk_core.locking import locked

__all__ = [
    "LINUXKIT_ENV",
    "LinuxKitError",
    "OutputFormat",
    "build_image",
    "choose_output_format",
    "default_build_cache_dir",
    "find_linuxkit",
    "prune_unused_builds",
]

#: Environment variable naming the linuxkit executable to use.
LINUXKIT_ENV = "LK_LINUXKIT"

INSTALL_HINT = (
    "install it with 'go install github.com/linuxkit/linuxkit/src/cmd/linuxkit@latest', "
    "'brew install linuxkit/linuxkit/linuxkit' (macOS), or download a release from "
    "https://github.com/linuxkit/linuxkit/releases and put it on PATH "
    f"(or set {LINUXKIT_ENV})"
)


class LinuxKitError(LkError):
    """The linuxkit tool is missing or a build failed."""


@attrs.frozen
class OutputFormat:
    """A ``linuxkit build --format`` and the files it produces.

    ``image_suffix`` is appended to ``NAME`` to get the path lk boots (empty
    for kernel+initrd, whose image is the ``NAME`` prefix); ``outputs`` are
    the files that must exist after the build.
    """

    name: str
    lk_format: str
    image_suffix: str
    outputs: tuple[str, ...]


#: In order of preference: the first one the hypervisor supports is used.
OUTPUT_FORMATS: tuple[OutputFormat, ...] = (
    OutputFormat("iso-bios", "iso", ".iso", (".iso",)),
    OutputFormat("kernel+initrd", "kernel+initrd", "", ("-kernel", "-initrd.img")),
    OutputFormat("raw-bios", "raw", "-bios.img", ("-bios.img",)),
    OutputFormat("qcow2-bios", "qcow2", ".qcow2", (".qcow2",)),
    OutputFormat("vmdk", "vmdk", ".vmdk", (".vmdk",)),
)


def find_linuxkit() -> Path:
    """Return the linuxkit executable: ``$LK_LINUXKIT`` if set, else ``linuxkit`` on PATH.

    Raises :class:`LinuxKitError` saying how to install linuxkit when there is
    none, or what is wrong with ``$LK_LINUXKIT``.
    """
    configured = os.environ.get(LINUXKIT_ENV, "").strip()
    if configured:
        path = Path(configured).expanduser()
        if os.sep not in configured and not path.exists():
            found = shutil.which(configured)
            if found:
                return Path(found)
        if not path.is_file() or not os.access(path, os.X_OK):
            raise LinuxKitError(f"{LINUXKIT_ENV}={configured} is not an executable file")
        return path.absolute()
    found = shutil.which("linuxkit")
    if not found:
        raise LinuxKitError(f"linuxkit not found: {INSTALL_HINT}")
    return Path(found)


def choose_output_format(
    formats_supported: frozenset[str] | set[str],
    preferred: str | None = None,
    preferred_formats: Sequence[str] = (),
) -> OutputFormat:
    """Pick the linuxkit output for a hypervisor that boots ``formats_supported``.

    ``preferred`` (a linuxkit format name such as ``"kernel+initrd"``) wins
    when the hypervisor supports what it produces. Then the hypervisor's own
    order, ``preferred_formats`` (image formats such as ``"kernel+initrd"``,
    ``"iso"``; :attr:`lk_core.hypervisor.Hypervisor.preferred_formats`): the
    first one linuxkit can build. Otherwise ``iso-bios`` when ISO is
    supported, else ``kernel+initrd``, else a raw, qcow2 or vmdk disk.
    Raises :class:`LinuxKitError` if nothing fits or ``preferred`` is unknown.
    """
    by_name = {fmt.name: fmt for fmt in OUTPUT_FORMATS}
    if preferred is not None:
        if preferred not in by_name:
            known = ", ".join(by_name)
            raise LinuxKitError(f"unknown linuxkit output format {preferred!r} (known: {known})")
        if by_name[preferred].lk_format in formats_supported:
            return by_name[preferred]
    for wanted in preferred_formats:
        for fmt in OUTPUT_FORMATS:
            if fmt.lk_format == wanted and wanted in formats_supported:
                return fmt
    for fmt in OUTPUT_FORMATS:
        if fmt.lk_format in formats_supported:
            return fmt
    known = ", ".join(sorted(formats_supported)) or "none"
    raise LinuxKitError(f"the hypervisor boots no format linuxkit can build (it supports: {known})")


def default_build_cache_dir() -> Path:
    """Where built templates are cached.

    ``$LK_HOME/cache/builds`` when ``LK_HOME`` is set, else
    ``<user cache dir>/lk/builds`` (platformdirs).
    """
    from lk_core.paths import lk_home

    home = lk_home()
    if home is not None:
        return home / "cache" / "builds"
    import platformdirs

    return Path(platformdirs.user_cache_dir("lk", appauthor=False)) / "builds"


def _key(yaml_text: str, fmt: OutputFormat) -> str:
    digest = hashlib.sha256()
    digest.update(fmt.name.encode())
    digest.update(b"\0")
    digest.update(yaml_text.encode("utf-8"))
    return digest.hexdigest()


def _image_path(entry: Path, name: str, fmt: OutputFormat) -> Path:
    return entry / f"{name}{fmt.image_suffix}"


def _complete(entry: Path, name: str, fmt: OutputFormat) -> bool:
    return all((entry / f"{name}{suffix}").is_file() for suffix in fmt.outputs)


def _last_error_line(output: str) -> str:
    lines = [" ".join(line.split()) for line in output.splitlines()]
    lines = [line for line in lines if line]
    for line in reversed(lines):
        lowered = line.lower()
        if "error" in lowered or "fatal" in lowered or lowered.startswith(("fata", "erro")):
            return line
    return lines[-1] if lines else "no output"


def build_image(
    yaml_text: str,
    formats_supported: frozenset[str],
    cache_dir: Path | None = None,
    *,
    output_format: str | None = None,
    preferred_formats: Sequence[str] = (),
    timeout: float | None = None,
    progress: bool = False,
) -> Path:
    """Build ``yaml_text`` with linuxkit and return the path of the bootable image.

    The output format is chosen by :func:`choose_output_format`
    (``output_format`` is its ``preferred``, ``preferred_formats`` the
    hypervisor's order). Builds are
    cached under ``cache_dir`` (default :func:`default_build_cache_dir`) by
    the sha256 of the format and ``yaml_text``: when that build exists it is
    returned at once, without running linuxkit. Otherwise linuxkit runs as
    ``linuxkit build --format FMT --dir TMP --name NAME TMP/NAME.yml`` in a
    temporary folder of the cache that is renamed into place when complete,
    so an interrupted build leaves nothing behind; concurrent builds of the
    same YAML wait for each other.

    Returns ``.../NAME.iso`` for iso-bios, the ``.../NAME`` prefix of
    ``NAME-kernel``/``NAME-initrd.img`` for kernel+initrd, or the disk file.
    Raises :class:`LinuxKitError` (one line: linuxkit's last error line) if
    linuxkit is missing, fails, times out or produces no image. With
    ``progress``, linuxkit's latest output line and the elapsed time are shown
    on one updating line of stderr while it builds (only on a terminal).
    """
    fmt = choose_output_format(formats_supported, output_format, preferred_formats)
    cache = (cache_dir or default_build_cache_dir()).absolute()
    key = _key(yaml_text, fmt)
    name = f"lk-{key[:12]}"
    entry = cache / key
    if _complete(entry, name, fmt):
        _touch(entry)
        return _image_path(entry, name, fmt)
    linuxkit = find_linuxkit()
    cache.mkdir(parents=True, exist_ok=True)
    with locked(cache / f".lock-{key}"):
        if _complete(entry, name, fmt):
            return _image_path(entry, name, fmt)
        work = Path(tempfile.mkdtemp(prefix=f".tmp-{key[:16]}-", dir=cache))
        try:
            _run_build(linuxkit, work, name, fmt, yaml_text, timeout, progress)
            if entry.exists():  # a broken leftover (incomplete): replace it
                shutil.rmtree(entry, ignore_errors=True)
            os.rename(work, entry)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
    return _image_path(entry, name, fmt)


def _linuxkit(
    argv: list[str], work: Path, timeout: float | None, progress: bool
) -> subprocess.CompletedProcess[str]:
    """Run linuxkit; with ``progress`` on a terminal, show its latest line as it builds."""
    from lk_core.progress import ProgressLine

    line = ProgressLine(enabled=progress)
    if not line.enabled:
        return subprocess.run(
            argv,
            cwd=work,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    proc = subprocess.Popen(
        argv,
        cwd=work,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    output: list[str] = []
    try:
        assert proc.stdout is not None
        for text in proc.stdout:  # linuxkit logs its steps on stderr, merged here
            output.append(text)
            if deadline is not None and time.monotonic() > deadline:
                proc.kill()
                raise subprocess.TimeoutExpired(argv, timeout or 0)
            if text.strip():
                line.show(
                    f"building with linuxkit: {time.monotonic() - started:3.0f}s  {text.strip()}"
                )
        returncode = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        line.clear()
    return subprocess.CompletedProcess(argv, returncode, "", "".join(output))


def _run_build(
    linuxkit: Path,
    work: Path,
    name: str,
    fmt: OutputFormat,
    yaml_text: str,
    timeout: float | None,
    progress: bool = False,
) -> None:
    source = work / f"{name}.yml"
    source.write_text(yaml_text, encoding="utf-8")
    argv = [str(linuxkit), "build", "--format", fmt.name, "--dir", str(work), "--name", name]
    argv.append(str(source))
    try:
        result = _linuxkit(argv, work, timeout, progress)
    except subprocess.TimeoutExpired:
        raise LinuxKitError(f"linuxkit build timed out after {timeout:g} s") from None
    except OSError as error:
        raise LinuxKitError(f"cannot run {linuxkit}: {error.strerror or error}") from error
    (work / "build.log").write_text(result.stdout + result.stderr, encoding="utf-8")
    if result.returncode != 0:
        detail = _last_error_line(result.stderr + "\n" + result.stdout)
        raise LinuxKitError(f"linuxkit build failed (exit {result.returncode}): {detail}")
    missing = [
        f"{name}{suffix}" for suffix in fmt.outputs if not (work / f"{name}{suffix}").is_file()
    ]
    if missing:
        raise LinuxKitError(
            f"linuxkit build --format {fmt.name} did not produce {', '.join(missing)}"
        )
    info = {
        "format": fmt.name,
        "linuxkit": str(linuxkit),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (work / "build.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def _touch(entry: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(entry)


def _is_under(image: str, entry: Path) -> bool:
    try:
        path = Path(image).expanduser().absolute()
    except (OSError, ValueError):
        return False
    for candidate in (path, path.parent):
        try:
            if candidate == entry or candidate.resolve() == entry.resolve():
                return True
        except OSError:
            continue
    return False


def prune_unused_builds(
    active_images: set[str],
    cache_dir: Path | None = None,
    *,
    min_age: float = 0.0,
) -> list[Path]:
    """Delete the cached builds that no container uses; return what was deleted.

    ``active_images`` are the image paths of the containers to keep (for
    example every container in the state, running or stopped); a build is kept
    when one of them lies in its folder. Builds used within the last
    ``min_age`` seconds are kept too (a build returned by :func:`build_image`
    whose container is not recorded yet), as are builds in progress. Leftover
    temporary folders older than an hour are removed.
    """
    cache = (cache_dir or default_build_cache_dir()).absolute()
    removed: list[Path] = []
    try:
        entries = sorted(cache.iterdir())
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        try:
            if not entry.is_dir() or entry.is_symlink():
                continue
            age = now - entry.stat().st_mtime
        except OSError:
            continue
        if entry.name.startswith(".tmp-"):
            if age > 3600:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
            continue
        if entry.name.startswith(".") or age < min_age:
            continue
        if any(_is_under(image, entry) for image in active_images):
            continue
        lock = cache / f".lock-{entry.name}"
        with locked(lock):
            shutil.rmtree(entry, ignore_errors=True)
        with contextlib.suppress(OSError):
            lock.unlink()
        removed.append(entry)
    return removed
