"""lk's benchmarks: every figure next to a baseline measured in the same run.

    nox -s bench                      # everything (boots VMs: a few minutes)
    nox -s bench -- --only cli        # one group: cli, boot, stop, disks, exec, checkpoint, libvirt
    python tests/bench/run.py --json out.json

Groups:
- cli:  ``lk --help`` (cached catalog and without), ``lk plugins``, ``lk ps`` (200 and
  1,000 records) vs ``python -c pass``
- boot: time to the guest's ready line: ``lk run -d`` vs the reference tool's
        QEMU argv (repaired just enough to boot) vs the best hand-written argv
- stop: ``lk stop`` vs the guest's own ACPI shutdown (QMP system_powerdown by hand)
- disks: time to the ready line of a qcow2 image: ``lk run -d`` on a per-container
        overlay (the default) vs ``lk run -d --in-place`` (the image itself), interleaved
- exec: ``lk exec ID -- true`` (multiplexed OpenSSH, and paramiko with LK_SSH_MUX=0) vs
        OpenSSH ``ssh -i KEY -p PORT root@127.0.0.1 true``; the supervisor's RSS per VM
- checkpoint: seconds to SSH of ``lk run -d --wait --from-checkpoint`` vs a cold
        ``lk run -d --wait`` of the same ISO (interleaved); ``lk checkpoint create`` time
        and the state's size

Prints a table (median seconds and the ratio to the baseline) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READY = b"lk-test: ready"
LK = [sys.executable, "-m", "lk_core"]


def lk_command() -> list[str]:
    """The installed ``lk`` script beside this Python (what users run)."""
    script = Path(sys.executable).with_name("lk")
    return [str(script)] if script.exists() else LK


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def median_of(fn: Callable[[], float], runs: int) -> tuple[float, list[float]]:
    samples = [fn() for _ in range(runs)]
    return statistics.median(samples), samples


def build_image() -> Path:
    out = subprocess.run(
        ["bash", str(ROOT / "tests/images/build.sh")], check=True, capture_output=True, text=True
    ).stdout
    return Path(out.strip().splitlines()[-1])


def wait_for_ready(log: Path, start: float, timeout: float = 180) -> float:
    while time.perf_counter() - start < timeout:
        try:
            if READY in log.read_bytes():
                return time.perf_counter() - start
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"no ready line in {log}")


def rss_mib(pid: int) -> float:
    """VmRSS of a process, in MiB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def qmp_powerdown(sock_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(sock_path))
        sock.recv(4096)
        sock.sendall(b'{"execute":"qmp_capabilities"}\n')
        sock.recv(4096)
        sock.sendall(b'{"execute":"system_powerdown"}\n')
        sock.recv(4096)


# -- argv of the baselines ----------------------------------------------------------
def reference_argv(iso: Path, log: Path, ssh_port: int) -> list[str]:
    """The reference tool's QEMU command for an ISO, repaired just enough to boot.

    The reference passes ``-nographic`` and ``-serial stdio`` together (QEMU
    refuses) and adds ``-enable-kvm`` when /dev/kvm exists (kvm-pvm here never
    boots). Repaired: the serial console goes to a file and no -enable-kvm;
    everything else (default machine and CPU, IDE CD-ROM, e1000-less
    virtio-net, forward on every interface) is kept as it was.
    """
    return [
        "qemu-system-x86_64",
        "-m",
        "1024",
        "-smp",
        "1",
        "-display",
        "none",
        "-serial",
        f"file:{log}",
        "-cdrom",
        str(iso),
        "-boot",
        "d",
        "-netdev",
        f"user,id=net0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
        "-device",
        "virtio-net-pci,netdev=net0",
    ]


def hand_argv(iso: Path, log: Path, ssh_port: int, qmp: Path) -> list[str]:
    """The best hand-written command we know for this image under TCG."""
    return [
        "qemu-system-x86_64",
        "-machine",
        "q35",
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-m",
        "1024",
        "-smp",
        "1",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        f"file:{log}",
        "-device",
        "virtio-rng-pci",
        "-qmp",
        f"unix:{qmp},server=on,wait=off",
        "-drive",
        f"file={iso},media=cdrom,if=none,id=cd0,readonly=on",
        "-device",
        "ide-cd,drive=cd0,bus=ide.0,bootindex=0",
        "-netdev",
        f"user,id=net0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
        "-device",
        "virtio-net-pci,netdev=net0",
    ]


DISTRIBUTIONS = ("lk_core", "lk_qemu", "lk_hyperkit", "lk_templates", "lk_libvirt")


class Bench:
    def __init__(self, runs: int) -> None:
        self.runs = runs
        self.rows: list[dict[str, object]] = []
        self.home = Path(tempfile.mkdtemp(prefix="lkb", dir="/tmp"))
        self.env = {**os.environ, "LK_HOME": str(self.home)}
        self.env.pop("LK_PLUGIN_MODULES", None)

    def add(
        self,
        group: str,
        what: str,
        value: float,
        baseline_name: str,
        baseline: float,
        samples: list[float] | None = None,
    ) -> None:
        self.rows.append(
            {
                "group": group,
                "what": what,
                "seconds": round(value, 4),
                "baseline": baseline_name,
                "baseline_seconds": round(baseline, 4),
                "ratio": round(value / baseline, 2) if baseline else None,
                "samples": [round(s, 4) for s in samples or []],
            }
        )
        print(
            f"  {what}: {value:.3f}s  ({baseline_name}: {baseline:.3f}s, x{value / baseline:.2f})",
            flush=True,
        )

    def lk(self, *args: str) -> list[str]:
        return [*lk_command(), *args]

    def run_detached(self, image: Path, *options: str) -> str:
        """``lk run -d [OPTIONS] IMAGE``; returns the new container's ID."""
        out = subprocess.run(
            self.lk("run", "-d", *options, str(image)),
            check=True,
            env=self.env,
            capture_output=True,
            text=True,
        ).stdout
        return out.strip().splitlines()[0]

    # -- groups ----------------------------------------------------------------------
    def cli(self) -> None:
        print("cli: start-up and listing (median of", max(self.runs, 10), "runs)", flush=True)
        runs = max(self.runs, 10)
        # Installed wheels are byte-compiled by pip; editable sources may not be (and
        # PYTHONDONTWRITEBYTECODE stops Python from caching them): compile them first.
        sources = [str(ROOT / d / "src") for d in DISTRIBUTIONS if (ROOT / d / "src").is_dir()]
        subprocess.run([sys.executable, "-m", "compileall", "-q", *sources], check=False)

        def python_pass() -> float:
            return timed([sys.executable, "-c", "pass"])

        def measure(what: str, fn: Callable[[], float]) -> None:
            """Alternate ``fn`` with ``python -c pass`` so both see the same machine."""
            pairs = [(python_pass(), fn()) for _ in range(runs)]
            base = statistics.median(p[0] for p in pairs)
            value = statistics.median(p[1] for p in pairs)
            self.add("cli", what, value, "python -c pass", base, [p[1] for p in pairs])

        measure("python -c pass", python_pass)
        for args in (["--help"], ["plugins"], ["hypervisors"]):
            measure(f"lk {' '.join(args)}", lambda a=args: timed(self.lk(*a), self.env))
        catalog = self.home / "cache" / "commands.json"

        def help_without_catalog() -> float:
            catalog.unlink(missing_ok=True)
            return timed(self.lk("--help"), self.env)

        measure("lk --help (no cached catalog)", help_without_catalog)
        for count in (200, 1000):
            self._fill_state(count)
            for args in (["ps"], ["ps", "-a"]) if count == 200 else (["ps", "-a"],):
                measure(
                    f"lk {' '.join(args)} ({count:,} records)",
                    lambda a=args: timed(self.lk(*a), self.env),
                )
        (self.home / "containers.json").unlink()

    def _fill_state(self, count: int) -> None:
        containers = {}
        for i in range(count):
            cid = f"{i:08x}"
            containers[cid] = {
                "id": cid,
                "name": f"vm{i}",
                "image": "/images/lk.iso",
                "format": "iso",
                "hypervisor": "qemu",
                "status": "stopped",
                "started_at": "2026-11-28T10:00:00Z",
                "finished_at": "2026-11-28T11:00:00Z",
                "exit_code": 0,
                "memory": 1024,
                "cpus": 1,
                "ports": [
                    {
                        "host_port": 8000 + i,
                        "guest_port": 80,
                        "host_ip": "127.0.0.1",
                        "protocol": "tcp",
                    }
                ],
            }
        (self.home / "containers.json").write_text(
            json.dumps({"schema": 1, "containers": containers})
        )

    def boot(self, image_dir: Path) -> None:
        iso = image_dir / "lk-test.iso"
        print(f"boot: seconds to the ready line (median of {self.runs})", flush=True)
        work = Path(tempfile.mkdtemp(prefix="lkbb", dir="/tmp"))

        def raw(argv_fn: Callable[..., list[str]]) -> float:
            log, qmp = work / "serial.log", work / "qmp.sock"
            log.unlink(missing_ok=True)
            port = free_port()
            args = [iso, log, port] + ([qmp] if argv_fn is hand_argv else [])
            start = time.perf_counter()
            proc = subprocess.Popen(
                argv_fn(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                return wait_for_ready(log, start)
            finally:
                proc.kill()
                proc.wait()

        def with_lk() -> float:
            start = time.perf_counter()
            cid = self.run_detached(iso)
            try:
                return wait_for_ready(self.home / "logs" / f"{cid}.log", start)
            finally:
                subprocess.run(self.lk("rm", "-f", cid), env=self.env, capture_output=True)

        hand, hand_s = median_of(lambda: raw(hand_argv), self.runs)
        self.add("boot", "hand-written argv", hand, "hand-written argv", hand, hand_s)
        ref, ref_s = median_of(lambda: raw(reference_argv), self.runs)
        self.add("boot", "reference argv (repaired)", ref, "hand-written argv", hand, ref_s)
        lk, lk_s = median_of(with_lk, self.runs)
        self.add("boot", "lk run -d", lk, "hand-written argv", hand, lk_s)
        self.add("boot", "lk run -d (vs reference)", lk, "reference argv (repaired)", ref, lk_s)
        shutil.rmtree(work, ignore_errors=True)

    def stop(self, image_dir: Path) -> None:
        iso = image_dir / "lk-test.iso"
        print(
            f"stop: seconds from the request to the VM's exit (median of {self.runs})", flush=True
        )
        work = Path(tempfile.mkdtemp(prefix="lkbs", dir="/tmp"))

        def by_hand() -> float:
            log, qmp = work / "serial.log", work / "qmp.sock"
            log.unlink(missing_ok=True)
            proc = subprocess.Popen(
                hand_argv(iso, log, free_port(), qmp),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_for_ready(log, time.perf_counter())
            time.sleep(1)  # let acpid settle, as a user would not stop within the first second
            start = time.perf_counter()
            qmp_powerdown(qmp)
            proc.wait(timeout=60)
            return time.perf_counter() - start

        def with_lk() -> float:
            cid = self.run_detached(iso)
            wait_for_ready(self.home / "logs" / f"{cid}.log", time.perf_counter())
            time.sleep(1)
            value = timed(self.lk("stop", cid), self.env)
            subprocess.run(self.lk("rm", "-f", cid), env=self.env, capture_output=True)
            return value

        guest, guest_s = median_of(by_hand, self.runs)
        self.add("stop", "guest shutdown (QMP by hand)", guest, "guest shutdown", guest, guest_s)
        lk, lk_s = median_of(with_lk, self.runs)
        self.add("stop", "lk stop", lk, "guest shutdown", guest, lk_s)
        shutil.rmtree(work, ignore_errors=True)

    def disks(self, image_dir: Path) -> None:
        print(
            f"disks: seconds to the ready line, qcow2 in place vs overlay (median of {self.runs})",
            flush=True,
        )
        work = Path(tempfile.mkdtemp(prefix="lkbd", dir="/tmp"))
        image = work / "lk-test.qcow2"
        shutil.copy(image_dir / "lk-test.qcow2", image)  # --in-place writes it

        def with_lk(*options: str) -> float:
            start = time.perf_counter()
            cid = self.run_detached(image, *options)
            try:
                return wait_for_ready(self.home / "logs" / f"{cid}.log", start)
            finally:
                subprocess.run(self.lk("rm", "-f", cid), env=self.env, capture_output=True)

        in_place_s: list[float] = []
        overlay_s: list[float] = []
        for _ in range(self.runs):  # interleaved: both see the same machine load
            in_place_s.append(with_lk("--in-place"))
            overlay_s.append(with_lk())
        in_place = statistics.median(in_place_s)
        self.add(
            "disks", "lk run -d --in-place (qcow2)", in_place, "in place", in_place, in_place_s
        )
        overlay = statistics.median(overlay_s)
        self.add(
            "disks", "lk run -d on an overlay (qcow2)", overlay, "in place", in_place, overlay_s
        )
        shutil.rmtree(work, ignore_errors=True)

    def exec(self, image_dir: Path) -> None:
        runs = max(self.runs, 10)
        print(f"exec: one command over SSH (median of {runs})", flush=True)
        cid = self.run_detached(image_dir / "lk-test.iso", "--wait")
        try:
            info = json.loads(
                subprocess.run(
                    self.lk("inspect", cid),
                    check=True,
                    env=self.env,
                    capture_output=True,
                    text=True,
                ).stdout
            )
            ssh = [
                "ssh",
                "-q",
                "-i",
                info["ssh_key"],
                "-p",
                str(info["ssh_port"]),
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "root@127.0.0.1",
                "true",
            ]
            timed(ssh)
            base, base_s = median_of(lambda: timed(ssh), runs)
            self.add("exec", "ssh ... true (OpenSSH)", base, "OpenSSH", base, base_s)
            value, samples = median_of(
                lambda: timed(self.lk("exec", cid, "--", "true"), self.env), runs
            )
            self.add("exec", "lk exec ID -- true", value, "OpenSSH", base, samples)
            paramiko_env = {**self.env, "LK_SSH_MUX": "0"}  # the connection-per-exec path
            value, samples = median_of(
                lambda: timed(self.lk("exec", cid, "--", "true"), paramiko_env), runs
            )
            self.add("exec", "lk exec (paramiko, LK_SSH_MUX=0)", value, "OpenSSH", base, samples)
            # Resident memory of the VM's supervisor (lives as long as the VM), QEMU's beside it.
            supervisor, qemu = rss_mib(info["supervisor_pid"]), rss_mib(info["pid"])
            self.rows.append(
                {
                    "group": "exec",
                    "what": "supervisor RSS per VM (MiB)",
                    "seconds": supervisor,
                    "baseline": "QEMU RSS (MiB)",
                    "baseline_seconds": qemu,
                    "ratio": round(supervisor / qemu, 2) if qemu else None,
                    "unit": "MiB",
                }
            )
            print(f"  supervisor RSS: {supervisor:.1f} MiB (QEMU: {qemu:.1f} MiB)", flush=True)
        finally:
            subprocess.run(self.lk("rm", "-f", cid), env=self.env, capture_output=True)

    def checkpoint(self, image_dir: Path) -> None:
        iso = image_dir / "lk-test.iso"
        print(f"checkpoint: seconds to SSH, resumed vs cold (median of {self.runs})", flush=True)

        def lk_ok(*args: str) -> str:
            return subprocess.run(
                self.lk(*args), check=True, env=self.env, capture_output=True, text=True
            ).stdout

        source = self.run_detached(iso, "--wait")
        lk_ok("exec", source, "--", "true")  # pins the host key, as --warm does
        saves, sizes = [], []
        for index in range(self.runs):
            saves.append(timed(self.lk("checkpoint", "create", source, f"b{index}"), self.env))
            sizes.append((self.home / "checkpoints" / f"b{index}" / "state").stat().st_size)
        subprocess.run(self.lk("rm", "-f", source), env=self.env, capture_output=True)

        def to_ssh(*options: str) -> float:
            start = time.perf_counter()
            out = lk_ok("run", "-d", "--wait", *options)
            value = time.perf_counter() - start
            subprocess.run(self.lk("rm", "-f", out.split()[0]), env=self.env, capture_output=True)
            return value

        cold_s: list[float] = []
        resumed_s: list[float] = []
        for _ in range(self.runs):  # interleaved: both see the same machine load
            cold_s.append(to_ssh(str(iso)))
            resumed_s.append(to_ssh("--from-checkpoint", "b0"))
        cold = statistics.median(cold_s)
        self.add("checkpoint", "lk run -d --wait (cold, to SSH)", cold, "cold", cold, cold_s)
        resumed = statistics.median(resumed_s)
        self.add(
            "checkpoint", "lk run --from-checkpoint (to SSH)", resumed, "cold", cold, resumed_s
        )
        save = statistics.median(saves)
        self.add("checkpoint", "lk checkpoint create", save, "cold", cold, saves)
        size = statistics.median(sizes) / 1e6
        self.rows.append(
            {
                "group": "checkpoint",
                "what": "checkpoint state size (MB, 1 GiB guest)",
                "seconds": round(size, 1),
                "baseline": "guest memory (MB)",
                "baseline_seconds": 1073.7,
                "ratio": round(size / 1073.7, 2),
                "unit": "MB",
            }
        )
        print(f"  state size: {size:.1f} MB for a 1 GiB guest", flush=True)
        for index in range(self.runs):
            subprocess.run(
                self.lk("checkpoint", "rm", f"b{index}"), env=self.env, capture_output=True
            )


def _libvirt_group(bench: Bench, image_dir: Path) -> None:
    """libvirt vs lk-qemu: ``lk run -d --wait`` to SSH, then ``lk stop`` (same run)."""
    if not Path("/run/libvirt/libvirt-sock").exists():
        print("libvirt: skipped (no libvirtd: run scripts/libvirt-up.sh as root)", flush=True)
        return
    print(f"libvirt: run -d --wait to SSH, and stop (median of {bench.runs})", flush=True)
    iso = image_dir / "lk-test.iso"
    samples: dict[str, dict[str, list[float]]] = {
        hv: {"boot": [], "stop": []} for hv in ("qemu", "libvirt")
    }
    for _ in range(bench.runs):  # interleaved: both see the same machine load
        for hv in samples:
            start = time.perf_counter()
            cid = bench.run_detached(iso, "--hypervisor", hv, "-m", "512", "--wait")
            samples[hv]["boot"].append(time.perf_counter() - start)
            start = time.perf_counter()
            subprocess.run(bench.lk("stop", cid), env=bench.env, check=True, capture_output=True)
            samples[hv]["stop"].append(time.perf_counter() - start)
            subprocess.run(bench.lk("rm", "-f", cid), env=bench.env, capture_output=True)
    for what in ("boot", "stop"):
        base = statistics.median(samples["qemu"][what])
        label = "run -d --wait to SSH" if what == "boot" else "stop (ACPI)"
        bench.add("libvirt", f"lk {label}, qemu", base, "lk-qemu", base, samples["qemu"][what])
        value = statistics.median(samples["libvirt"][what])
        bench.add(
            "libvirt", f"lk {label}, libvirt", value, "lk-qemu", base, samples["libvirt"][what]
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=ROOT / ".bench" / "results.json")
    parser.add_argument("--runs", type=int, default=3)
    names = ["cli", "boot", "stop", "disks", "exec", "checkpoint", "libvirt"]
    parser.add_argument("--only", action="append", choices=names)
    args = parser.parse_args()
    groups = args.only or names
    bench = Bench(args.runs)
    image_dir = build_image() if set(groups) - {"cli"} else None
    try:
        for group in groups:
            if group == "libvirt":
                assert image_dir is not None
                _libvirt_group(bench, image_dir)
                continue
            method = getattr(bench, group)
            method() if group == "cli" else method(image_dir)
    finally:
        shutil.rmtree(bench.home, ignore_errors=True)
    print()
    width = max(len(str(r["what"])) for r in bench.rows)
    print(f"{'benchmark'.ljust(width)}  {'median s':>9}  {'baseline':<28} {'base s':>8}  ratio")
    for r in bench.rows:
        print(
            f"{str(r['what']).ljust(width)}  {r['seconds']:>9.3f}  {r['baseline']!s:<28} "
            f"{r['baseline_seconds']:>8.3f}  x{r['ratio']}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                "results": bench.rows,
            },
            indent=2,
        )
    )
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
