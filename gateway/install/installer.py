"""Install nmvs-gateway on a pharmacy PC (Debian/Ubuntu with systemd), and remove it again.

What goes where (under ``--root``, ``/`` on the real box):

- ``/opt/nmvs-gateway/venv``: the application in its own virtual environment, and the
  ``/usr/local/bin/nmvs-gateway`` link to it;
- ``/etc/systemd/system/nmvs-gateway.service``, ``/etc/sysusers.d/nmvs-gateway.conf``,
  ``/etc/udev/rules.d/70-nmvs-gateway.rules``: from the checkout's ``systemd/`` folder;
- ``/etc/nmvs-gateway/gateway.toml``: the example configuration, only when there is none;
- ``/opt/nmvs-gateway/share/``: the example configuration, the mosquitto ACL and configuration
  examples, the README;
- ``/etc/credstore/`` (0700): where the technician puts the secrets the unit loads.

Every step compares before it writes, so a second run changes nothing (and says so). Uninstall
removes what install laid down but keeps the state directory, the secrets and an edited
configuration unless ``--purge``. This module uses the standard library only: it runs with the
system's ``python3`` from a checkout, before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = Path("/opt/nmvs-gateway")
VENV = PREFIX / "venv"
SHARE = PREFIX / "share"
COMMAND_LINK = Path("/usr/local/bin/nmvs-gateway")
CONFIG_DIR = Path("/etc/nmvs-gateway")
CONFIG = CONFIG_DIR / "gateway.toml"
EXAMPLE_CONFIG_SOURCE = "config/gateway.example.toml"
EXAMPLE_CONFIG = SHARE / "gateway.example.toml"
STATE_DIR = Path("/var/lib/nmvs-gateway")
CREDSTORE = Path("/etc/credstore")
# The unit's LoadCredential= names, which the daemon's configuration uses without a *_file key.
CREDENTIALS = (
    "nmvs-password",
    "nmvs-client.pem",
    "nmvs-client.key",
    "nmvs-client-secret",
    "mqtt-password",
    "mqtt-client.pem",
    "mqtt-client.key",
)
UNIT = "nmvs-gateway.service"
SYSUSERS = Path("/etc/sysusers.d/nmvs-gateway.conf")
SOURCE_STAMP = "nmvs-gateway-source.sha256"
MIN_PYTHON = (3, 11)


@dataclass(frozen=True, slots=True)
class InstalledFile:
    source: str  # relative to the checkout
    target: Path  # absolute on the target system
    mode: int = 0o644


FILES = (
    InstalledFile("systemd/nmvs-gateway.service", Path("/etc/systemd/system") / UNIT),
    InstalledFile("systemd/sysusers.d/nmvs-gateway.conf", SYSUSERS),
    InstalledFile(
        "systemd/udev/70-nmvs-gateway.rules", Path("/etc/udev/rules.d/70-nmvs-gateway.rules")
    ),
    InstalledFile(EXAMPLE_CONFIG_SOURCE, EXAMPLE_CONFIG),
    InstalledFile("systemd/mosquitto/nmvs-gateway.conf", SHARE / "mosquitto/nmvs-gateway.conf"),
    InstalledFile("systemd/mosquitto/nmvs-gateway.acl", SHARE / "mosquitto/nmvs-gateway.acl"),
    InstalledFile("README.md", SHARE / "README.md"),
)
DIRECTORIES = ((CONFIG_DIR, 0o755), (CREDSTORE, 0o700))


class InstallError(Exception):
    """Installing or removing cannot go on; the message says what to do."""


@dataclass
class Report:
    """What each step did, printed as it goes: ``installed``, ``unchanged``, ``kept``, …"""

    lines: list[str] = field(default_factory=list)

    def add(self, action: str, what: object) -> None:
        line = f"  {action:<10} {what}"
        self.lines.append(line)
        print(line, flush=True)


@dataclass(frozen=True, slots=True)
class Target:
    """The filesystem being installed into: ``/``, or a directory standing for it."""

    root: Path

    @property
    def is_live(self) -> bool:
        return self.root == Path("/")

    def path(self, absolute: Path) -> Path:
        return self.root / absolute.relative_to("/")


def default_source() -> Path:
    """The checkout this module runs from (``gateway/install/`` → the repository root)."""
    return Path(__file__).resolve().parents[2]


def check_source(source: Path) -> None:
    missing = [f.source for f in FILES if not (source / f.source).is_file()]
    if missing:
        raise InstallError(
            f"{source} is not a complete nmvs-gateway checkout ({', '.join(missing)} missing): "
            "run the installer from the repository, or pass --source DIR"
        )


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        metavar="DIR",
        help="install into DIR instead of / (for images and tests; skips systemctl, udevadm, "
        "systemd-sysusers)",
    )


# --- install ---------------------------------------------------------------------------------


def install(
    target: Target,
    source: Path,
    *,
    build_venv: bool = True,
    wheels: Path | None = None,
    python: str = sys.executable,
) -> Report:
    check_source(source)
    if target.is_live and os.geteuid() != 0:
        raise InstallError("installing into / needs root: run it with sudo")
    # Files and the venv must be readable by the service user whatever umask sudo passed on.
    umask = os.umask(0o022)
    try:
        return _install(target, source, build_venv, wheels, python)
    except OSError as exc:
        raise InstallError(_os_error(exc)) from None
    finally:
        os.umask(umask)


def _install(
    target: Target, source: Path, build_venv: bool, wheels: Path | None, python: str
) -> Report:
    report = Report()
    for directory, mode in DIRECTORIES:
        _ensure_directory(target.path(directory), mode, report)
    for installed in FILES:
        _install_file(
            (source / installed.source).read_bytes(),
            target.path(installed.target),
            installed.mode,
            report,
        )
    _install_config(target, report)
    if build_venv:
        _ensure_venv(target, source, python, wheels, report)
    else:
        report.add("skipped", f"{target.path(VENV)} (--no-venv)")
    _ensure_symlink(target.path(COMMAND_LINK), VENV / "bin/nmvs-gateway", report)
    if target.is_live:
        run_system_steps(AFTER_INSTALL, report)
    else:
        report.add(
            "skipped",
            f"systemd-sysusers, udevadm control --reload, systemctl daemon-reload: the root is "
            f"{target.root}, not /; run them on the target system",
        )
    return report


def next_steps(target: Target) -> str:
    config = CONFIG
    prefix = "" if target.is_live else f" (under {target.root})"
    return "\n".join(
        [
            f"nmvs-gateway is installed{prefix}. Next steps for the technician:",
            f"  1. edit {config}: [gateway] id, the [nmvs] identifiers, the [[scanner]] entries",
            f"  2. put the secrets in {CREDSTORE}/ (root, mode 0600): {', '.join(CREDENTIALS[:3])}"
            f" (and, if the broker wants them, {', '.join(CREDENTIALS[3:])})",
            "  3. plug in the scanners and check they are listed: ls -l /dev/nmvs/",
            f"  4. run the self-test: sudo nmvs-gateway selftest --config {config}",
            "  5. start the service: sudo systemctl enable --now nmvs-gateway",
        ]
    )


def _ensure_directory(path: Path, mode: int, report: Report) -> None:
    if path.is_dir():
        if _mode(path) == mode:
            report.add("unchanged", f"{path}/")
            return
        path.chmod(mode)
        report.add("updated", f"{path}/ (mode {mode:o})")
        return
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    report.add("installed", f"{path}/")


def _install_file(data: bytes, path: Path, mode: int, report: Report) -> None:
    if path.is_file() and not path.is_symlink():
        if path.read_bytes() == data and _mode(path) == mode:
            report.add("unchanged", path)
            return
        action = "updated"
    else:
        action = "installed"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.nmvs-install")
    temporary.write_bytes(data)
    temporary.chmod(mode)
    os.replace(temporary, path)
    report.add(action, path)


def _install_config(target: Target, report: Report) -> None:
    config = target.path(CONFIG)
    if config.exists():
        example = target.path(EXAMPLE_CONFIG).read_bytes()
        same = config.read_bytes() == example
        state = "same as the example" if same else f"differs from the example {EXAMPLE_CONFIG}"
        report.add("kept", f"{config} ({state})")
        return
    _install_file(target.path(EXAMPLE_CONFIG).read_bytes(), config, 0o644, report)


def _ensure_symlink(path: Path, points_to: Path, report: Report) -> None:
    if path.is_symlink() and Path(os.readlink(path)) == points_to:
        report.add("unchanged", f"{path} -> {points_to}")
        return
    if path.exists() and not path.is_symlink():
        report.add("kept", f"{path} (not a link made by this installer; use {points_to})")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.symlink_to(points_to)
    report.add("installed", f"{path} -> {points_to}")


def source_digest(source: Path) -> str:
    """A hash of everything that goes into the virtual environment: pyproject and the package."""
    digest = hashlib.sha256()
    package = sorted(
        path
        for path in (source / "gateway").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )
    files = [source / "pyproject.toml", *package]
    for path in files:
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _ensure_venv(
    target: Target, source: Path, python: str, wheels: Path | None, report: Report
) -> None:
    venv = target.path(VENV)
    stamp = venv / SOURCE_STAMP
    digest = source_digest(source)
    entry_point = venv / "bin/nmvs-gateway"
    if entry_point.is_file() and stamp.is_file() and stamp.read_text() == digest + "\n":
        report.add("unchanged", f"{venv} (same source)")
        return
    version = _python_version(python)
    if version < MIN_PYTHON:
        raise InstallError(
            f"{python} is Python {'.'.join(map(str, version))}; nmvs-gateway needs "
            f"{'.'.join(map(str, MIN_PYTHON))} or newer (Debian 12, Ubuntu 24.04): pass --python"
        )
    if not (venv / "bin/python").exists():
        _run([python, "-m", "venv", str(venv)], "create the virtual environment",
             hint="on Debian/Ubuntu install the package python3-venv")  # fmt: skip
    pip = [
        str(venv / "bin/python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]
    if wheels is not None:
        pip += ["--no-index", "--find-links", str(wheels)]
    _run([*pip, str(source)], f"install nmvs-gateway into {venv}",
         hint="check the network access to the package index, or pass --wheels DIR")  # fmt: skip
    stamp.write_text(digest + "\n")
    report.add("installed", f"{venv} (from {source})")


def _python_version(python: str) -> tuple[int, ...]:
    out = _run([python, "-c", "import sys; print(*sys.version_info[:2])"], "start " + python)
    return tuple(int(part) for part in out.split())


def _run(command: list[str], purpose: str, hint: str = "") -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise InstallError(f"cannot {purpose}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise InstallError(
            f"cannot {purpose}: `{' '.join(command)}` exited with {done.returncode}"
            + "".join(f"\n    {line}" for line in detail)
            + (f"\n  {hint}" if hint else "")
        )
    return done.stdout


@dataclass(frozen=True, slots=True)
class SystemStep:
    """A command acting on the running system, run only where it can work.

    ``needs`` is a path that exists only while the manager the command talks to runs (none in
    a container or chroot without systemd): the step is then skipped, not failed.
    """

    command: tuple[str, ...]
    needs: Path | None = None
    may_fail: bool = False


SYSTEMD_RUNNING = Path("/run/systemd/system")  # sd_booted(3)
UDEV_RUNNING = Path("/run/udev/control")
SUBSYSTEMS = ("input", "tty", "hidraw")  # where the udev rules put scanners
AFTER_INSTALL = (
    SystemStep(("systemd-sysusers", str(SYSUSERS))),
    SystemStep(("udevadm", "control", "--reload"), UDEV_RUNNING),
    # Apply the rules to scanners already plugged in.
    SystemStep(
        ("udevadm", "trigger", "--action=change", *(f"--subsystem-match={s}" for s in SUBSYSTEMS)),
        UDEV_RUNNING,
    ),
    SystemStep(("systemctl", "daemon-reload"), SYSTEMD_RUNNING),
)
BEFORE_UNINSTALL = (
    # Fails harmlessly when the unit is already gone.
    SystemStep(("systemctl", "disable", "--now", UNIT), SYSTEMD_RUNNING, may_fail=True),
)
AFTER_UNINSTALL = (
    SystemStep(("systemctl", "daemon-reload"), SYSTEMD_RUNNING),
    SystemStep(("udevadm", "control", "--reload"), UDEV_RUNNING),
)


def run_system_steps(
    steps: tuple[SystemStep, ...], report: Report, system: Path = Path("/")
) -> None:
    """Run ``steps`` in order; ``system`` is where the ``needs`` paths are looked up."""
    for step in steps:
        shown = " ".join(step.command)
        if shutil.which(step.command[0]) is None:
            report.add("skipped", f"{shown} ({step.command[0]} not found)")
        elif step.needs is not None and not (system / step.needs.relative_to("/")).exists():
            report.add("skipped", f"{shown} ({step.needs} missing: not running here)")
        elif step.may_fail:
            done = subprocess.run(step.command, capture_output=True, text=True, check=False)
            if done.returncode == 0:
                report.add("ran", shown)
            else:
                reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
                report.add("failed", f"{shown} (harmless: {reason})")
        else:
            _run(list(step.command), f"run {step.command[0]}")
            report.add("ran", shown)


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o7777


# --- uninstall -------------------------------------------------------------------------------


def uninstall(target: Target, *, purge: bool = False) -> Report:
    if target.is_live and os.geteuid() != 0:
        raise InstallError("removing from / needs root: run it with sudo")
    try:
        return _uninstall(target, purge)
    except OSError as exc:
        raise InstallError(_os_error(exc)) from None


def _uninstall(target: Target, purge: bool) -> Report:
    report = Report()
    if target.is_live:
        run_system_steps(BEFORE_UNINSTALL, report)
    config = target.path(CONFIG)
    example = target.path(EXAMPLE_CONFIG)
    if config.is_file():
        shipped = example.is_file() and config.read_bytes() == example.read_bytes()
        if shipped or purge:
            _remove(config, report)
        else:
            report.add("kept", f"{config} (differs from the example; --purge removes it)")
    for installed in FILES:
        _remove(target.path(installed.target), report)
    link = target.path(COMMAND_LINK)
    if link.is_symlink() and Path(os.readlink(link)) == VENV / "bin/nmvs-gateway":
        _remove(link, report)
    _remove(target.path(VENV), report)
    for directory in (target.path(SHARE / "mosquitto"), target.path(SHARE), target.path(PREFIX)):
        _remove_if_empty(directory, report)
    state = target.path(STATE_DIR)
    credstore = target.path(CREDSTORE)
    if purge:
        _remove(state, report)
        for name in CREDENTIALS:
            _remove(credstore / name, report)
    else:
        if state.exists():
            report.add("kept", f"{state}/ (the transaction database; --purge removes it)")
        kept = [name for name in CREDENTIALS if (credstore / name).exists()]
        if kept:
            report.add("kept", f"{credstore}/ {', '.join(kept)} (--purge removes them)")
    _remove_if_empty(target.path(CONFIG_DIR), report)
    _remove_if_empty(credstore, report)
    if target.is_live:
        run_system_steps(AFTER_UNINSTALL, report)
        report.add(
            "kept", "user nmvs-gateway and group nmvs-scanner (remove with userdel/groupdel)"
        )
    return report


def _remove(path: Path, report: Report) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    else:
        return
    report.add("removed", path)


def _remove_if_empty(directory: Path, report: Report) -> None:
    if directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        report.add("removed", f"{directory}/")
