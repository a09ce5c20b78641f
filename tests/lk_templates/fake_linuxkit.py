"""A fake ``linuxkit`` for tests: checks its arguments like the real tool, then writes outputs.

Usage (what lk runs)::

    fake_linuxkit.py build --format FMT --dir DIR --name NAME FILE.yml

Flags may come in any order before FILE and use one or two dashes, as with
the real (Go) tool. The YAML must parse and have ``kernel`` and ``init``.
Outputs, like linuxkit's:

* ``iso-bios``: ``NAME.iso``, a copy of ``$FAKE_LINUXKIT_IMAGES/lk-test.iso``
  when that is set (the project's real test image), else a tiny file with the
  ISO 9660 magic ``CD001`` at 0x8001;
* ``kernel+initrd``: ``NAME-kernel``, ``NAME-initrd.img``, ``NAME-cmdline``
  (copies of ``lk-test-*`` from ``$FAKE_LINUXKIT_IMAGES`` when set);
* ``raw-bios``: ``NAME-bios.img``; ``qcow2-bios``: ``NAME.qcow2``; ``vmdk``:
  ``NAME.vmdk``.

Environment knobs: ``FAKE_LINUXKIT_LOG`` (append one JSON line per run: the
argv), ``FAKE_LINUXKIT_FAIL`` (fail with this message, logrus style),
``FAKE_LINUXKIT_NO_OUTPUT`` (succeed without writing anything),
``FAKE_LINUXKIT_SLEEP`` (seconds to sleep before building).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

FORMATS = {
    "iso-bios": [(".iso", "lk-test.iso")],
    "kernel+initrd": [
        ("-kernel", "lk-test-kernel"),
        ("-initrd.img", "lk-test-initrd.img"),
        ("-cmdline", "lk-test-cmdline"),
    ],
    "raw-bios": [("-bios.img", "lk-test-bios.img")],
    "qcow2-bios": [(".qcow2", "lk-test.qcow2")],
    "vmdk": [(".vmdk", "lk-test.vmdk")],
}


def fail(message: str, code: int = 1) -> None:
    print(f'time="2024-01-01T00:00:00Z" level=fatal msg="{message}"', file=sys.stderr)
    sys.exit(code)


def parse(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    if not argv or argv[0] != "build":
        fail(f"unknown command {argv[:1]}", 2)
    options: dict[str, str] = {}
    positional: list[str] = []
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-") and not positional:
            name, sep, value = arg.lstrip("-").partition("=")
            if name not in ("format", "dir", "name"):
                fail(f"flag provided but not defined: -{name}", 2)
            if not sep:
                i += 1
                if i >= len(argv):
                    fail(f"flag needs an argument: -{name}", 2)
                value = argv[i]
            options[name] = value
        else:
            positional.append(arg)
        i += 1
    return options, positional


def tiny(path: Path, suffix: str) -> None:
    if suffix == ".iso":
        data = bytearray(0x8800)
        data[0x8001:0x8006] = b"CD001"
        path.write_bytes(bytes(data))
    elif suffix == "-cmdline":
        path.write_text("console=ttyS0\n")
    elif suffix.endswith(".img") and not suffix.endswith("initrd.img"):
        path.write_bytes(bytes(510) + b"\x55\xaa")  # a raw disk: a boot sector
    elif suffix == ".qcow2":
        path.write_bytes(b"QFI\xfb" + bytes(508))
    elif suffix == ".vmdk":
        path.write_bytes(b"KDMV" + bytes(508))
    else:
        path.write_bytes(b"fake " + suffix.encode() + b"\n")


def main() -> None:
    argv = sys.argv[1:]
    log = os.environ.get("FAKE_LINUXKIT_LOG")
    if log:
        with open(log, "a") as handle:
            handle.write(json.dumps(argv) + "\n")
    options, positional = parse(argv)
    if len(positional) != 1 or not positional[0].endswith((".yml", ".yaml")):
        fail(f"expected one .yml file, got {positional}", 2)
    fmt = options.get("format", "kernel+initrd")
    if fmt not in FORMATS:
        fail(f"Unknown format: {fmt}")
    for required in ("dir", "name"):
        if required not in options:
            fail(f"this fake wants --{required}", 2)
    time.sleep(float(os.environ.get("FAKE_LINUXKIT_SLEEP", "0")))
    print(f"Extract kernel image: linuxkit/kernel (fake)\nAdd init containers: ({fmt})")
    if os.environ.get("FAKE_LINUXKIT_FAIL"):
        print("Process init image: linuxkit/init", file=sys.stderr)
        fail(os.environ["FAKE_LINUXKIT_FAIL"])
    import yaml

    try:
        config = yaml.safe_load(Path(positional[0]).read_text())
    except yaml.YAMLError as error:
        fail(f"Invalid config: {' '.join(str(error).split())}")
    if not isinstance(config, dict) or "kernel" not in config or "init" not in config:
        fail("Invalid config: kernel and init are required")
    if os.environ.get("FAKE_LINUXKIT_NO_OUTPUT"):
        return
    out = Path(options["dir"])
    out.mkdir(parents=True, exist_ok=True)
    images = os.environ.get("FAKE_LINUXKIT_IMAGES")
    for suffix, real in FORMATS[fmt]:
        target = out / f"{options['name']}{suffix}"
        source = Path(images) / real if images else None
        if source is not None and source.is_file():
            shutil.copyfile(source, target)
        else:
            tiny(target, suffix)
    print(f"Create outputs:\n  {out / options['name']}")


if __name__ == "__main__":
    main()
