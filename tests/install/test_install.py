"""The installer against a temporary root: the files it lays down, twice, then uninstall.

The virtual environment is not built here (``--no-venv``: pip would fetch every dependency);
everything else runs as on the box, except the commands that act on the running system
(systemd-sysusers, udevadm, systemctl), which the installer skips for a root other than ``/``.
systemd-sysusers is run by the test itself on the temporary root, for real.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.install.installer import (
    AFTER_INSTALL,
    AFTER_UNINSTALL,
    COMMAND_LINK,
    CONFIG,
    CREDSTORE,
    EXAMPLE_CONFIG,
    FILES,
    STATE_DIR,
    VENV,
    InstallError,
    Report,
    SystemStep,
    default_source,
    run_system_steps,
)

SOURCE = default_source()
Manifest = dict[str, tuple[str, int, str]]


def manifest(root: Path) -> Manifest:
    """Every path under ``root``: kind, mode, and content hash or link target."""
    entries: Manifest = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            relative = "/" + str(path.relative_to(root))
            mode = path.lstat().st_mode & 0o7777
            if path.is_symlink():
                entries[relative] = ("link", mode, os.readlink(path))
            elif path.is_dir():
                entries[relative] = ("dir", mode, "")
            else:
                entries[relative] = ("file", mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return entries


def install(root: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["install", "--root", str(root), "--no-venv"]) == 0
    return capsys.readouterr().out


def uninstall(root: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert main(["uninstall", "--root", str(root), *extra]) == 0
    return capsys.readouterr().out


def actions(out: str) -> set[str]:
    """The verbs of the installer's report lines (``  installed  /etc/…``)."""
    return {match[1] for match in re.finditer(r"^  ([a-z]+) ", out, re.MULTILINE)}


def under(root: Path, absolute: Path) -> Path:
    return root / absolute.relative_to("/")


def test_install_lays_down_every_file_with_its_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = install(tmp_path, capsys)
    for installed in FILES:
        path = under(tmp_path, installed.target)
        assert path.read_bytes() == (SOURCE / installed.source).read_bytes()
        assert path.stat().st_mode & 0o777 == 0o644
    config = under(tmp_path, CONFIG)
    assert config.read_bytes() == (SOURCE / "config/gateway.example.toml").read_bytes()
    assert under(tmp_path, CREDSTORE).stat().st_mode & 0o777 == 0o700
    assert os.readlink(under(tmp_path, COMMAND_LINK)) == str(VENV / "bin/nmvs-gateway")
    assert not under(tmp_path, VENV).exists()
    assert f"skipped    {under(tmp_path, VENV)} (--no-venv)" in out
    assert (
        f"systemd-sysusers, udevadm control --reload, systemctl daemon-reload: the root is "
        f"{tmp_path}, not /; run them on the target system" in out
    )
    assert (
        "4. run the self-test: sudo nmvs-gateway selftest --config /etc/nmvs-gateway/gateway.toml"
        in out
    )
    assert set(manifest(tmp_path)) == {
        "/etc", "/etc/systemd", "/etc/systemd/system", "/etc/systemd/system/nmvs-gateway.service",
        "/etc/sysusers.d", "/etc/sysusers.d/nmvs-gateway.conf",
        "/etc/udev", "/etc/udev/rules.d", "/etc/udev/rules.d/70-nmvs-gateway.rules",
        "/etc/nmvs-gateway", "/etc/nmvs-gateway/gateway.toml", "/etc/credstore",
        "/opt", "/opt/nmvs-gateway", "/opt/nmvs-gateway/share",
        "/opt/nmvs-gateway/share/README.md", "/opt/nmvs-gateway/share/gateway.example.toml",
        "/opt/nmvs-gateway/share/mosquitto", "/opt/nmvs-gateway/share/mosquitto/nmvs-gateway.conf",
        "/opt/nmvs-gateway/share/mosquitto/nmvs-gateway.acl",
        "/usr", "/usr/local", "/usr/local/bin", "/usr/local/bin/nmvs-gateway",
    }  # fmt: skip


def test_second_install_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    install(tmp_path, capsys)
    before = manifest(tmp_path)
    out = install(tmp_path, capsys)
    assert manifest(tmp_path) == before
    assert actions(out) == {"unchanged", "kept", "skipped"}
    assert f"kept       {under(tmp_path, CONFIG)} (same as the example)" in out


def test_install_repairs_a_changed_file_and_keeps_an_edited_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install(tmp_path, capsys)
    unit = under(tmp_path, FILES[0].target)
    unit.write_text("[Service]\nExecStart=/bin/false\n")
    unit.chmod(0o600)
    config = under(tmp_path, CONFIG)
    config.write_text('[gateway]\nid = "counter-2"\n')
    out = install(tmp_path, capsys)
    assert f"updated    {unit}" in out
    assert unit.read_bytes() == (SOURCE / FILES[0].source).read_bytes()
    assert unit.stat().st_mode & 0o777 == 0o644
    assert config.read_text() == '[gateway]\nid = "counter-2"\n'
    assert f"kept       {config} (differs from the example {EXAMPLE_CONFIG})" in out


def test_uninstall_removes_what_install_laid_down(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install(tmp_path, capsys)
    uninstall(tmp_path, capsys)
    assert manifest(tmp_path) == {
        "/etc": ("dir", 0o755, ""),
        "/etc/systemd": ("dir", 0o755, ""),
        "/etc/systemd/system": ("dir", 0o755, ""),
        "/etc/sysusers.d": ("dir", 0o755, ""),
        "/etc/udev": ("dir", 0o755, ""),
        "/etc/udev/rules.d": ("dir", 0o755, ""),
        "/opt": ("dir", 0o755, ""),
        "/usr": ("dir", 0o755, ""),
        "/usr/local": ("dir", 0o755, ""),
        "/usr/local/bin": ("dir", 0o755, ""),
    }
    assert actions(uninstall(tmp_path, capsys)) == set()  # twice: nothing left to do


def test_uninstall_keeps_state_secrets_and_edited_config_unless_purge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    install(tmp_path, capsys)
    config = under(tmp_path, CONFIG)
    config.write_text('[gateway]\nid = "counter-2"\n')
    database = under(tmp_path, STATE_DIR) / "gateway.sqlite3"
    database.parent.mkdir(parents=True)
    database.write_bytes(b"SQLite format 3\0")
    secret = under(tmp_path, CREDSTORE) / "nmvs-password"
    secret.write_text("not-a-real-password\n")
    out = uninstall(tmp_path, capsys)
    assert config.is_file() and database.is_file() and secret.is_file()
    assert f"kept       {config} (differs from the example; --purge removes it)" in out
    assert "not-a-real-password" not in out
    assert not under(tmp_path, VENV.parent).exists()
    out = uninstall(tmp_path, capsys, "--purge")
    assert not config.exists() and not database.exists() and not secret.exists()
    assert not under(tmp_path, CREDSTORE).exists()
    assert not under(tmp_path, CONFIG.parent).exists()


def test_installing_from_an_incomplete_checkout_names_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "checkout"
    source.mkdir()
    code = main(["install", "--root", str(tmp_path / "root"), "--no-venv", "--source", str(source)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(
        f"nmvs-gateway install: {source} is not a complete nmvs-gateway checkout ("
    )
    assert "systemd/nmvs-gateway.service" in err and "Traceback" not in err
    assert not (tmp_path / "root").exists()


def test_a_root_that_cannot_be_written_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    assert main(["install", "--root", str(blocker), "--no-venv"]) == 1
    assert capsys.readouterr().err == (
        f"nmvs-gateway install: {blocker}/etc/nmvs-gateway: Not a directory\n"
    )
    assert main(["uninstall", "--root", str(blocker), "--purge"]) == 0  # nothing of ours there


def test_standalone_installer_runs_with_the_standard_library_only(tmp_path: Path) -> None:
    # As on a fresh box: the system python3, no virtual environment, only the checkout.
    python = shutil.which("python3", path="/usr/bin:/usr/local/bin") or "python3"
    done = subprocess.run(
        [
            python,
            "-E",
            "-s",
            "-m",
            "gateway.install",
            "install",
            "--root",
            str(tmp_path),
            "--no-venv",
        ],
        cwd=SOURCE,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert under(tmp_path, FILES[0].target).is_file()


def test_sysusers_creates_the_user_and_the_scanner_group(tmp_path: Path) -> None:
    if shutil.which("systemd-sysusers") is None:
        pytest.skip("systemd-sysusers not installed (Debian package systemd)")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    subprocess.run(
        [
            "systemd-sysusers",
            f"--root={root}",
            str(SOURCE / "systemd/sysusers.d/nmvs-gateway.conf"),
        ],
        check=True,
        capture_output=True,
    )
    groups = {
        line.split(":")[0]: line.split(":")
        for line in (root / "etc/group").read_text().splitlines()
    }
    users = {
        line.split(":")[0]: line.split(":")
        for line in (root / "etc/passwd").read_text().splitlines()
    }
    assert groups["nmvs-scanner"][3] == "nmvs-gateway"
    assert "input" not in groups and "dialout" not in groups
    assert users["nmvs-gateway"][5:] == ["/var/lib/nmvs-gateway", "/usr/sbin/nologin"]


@pytest.fixture
def system_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-ins for systemctl, udevadm and systemd-sysusers on PATH that log their arguments
    (the real ones would act on this machine); ``fail`` in an argument makes them fail."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("systemctl", "udevadm", "systemd-sysusers"):
        tool = tools / name
        tool.write_text(
            f'#!/bin/sh\necho "{name} $*" >> {tmp_path}/calls\n'
            'case "$*" in *fail*) echo "Failed to do it: no such unit" >&2; exit 1;; esac\n'
        )
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    return tmp_path


def calls(system_tools: Path) -> list[str]:
    log = system_tools / "calls"
    return log.read_text().splitlines() if log.exists() else []


def test_system_steps_run_where_systemd_and_udev_run(system_tools: Path) -> None:
    system = system_tools / "system"
    (system / "run/systemd/system").mkdir(parents=True)
    (system / "run/udev").mkdir(parents=True)
    (system / "run/udev/control").touch()
    run_system_steps(AFTER_INSTALL, Report(), system)
    assert calls(system_tools) == [
        "systemd-sysusers /etc/sysusers.d/nmvs-gateway.conf",
        "udevadm control --reload",
        "udevadm trigger --action=change --subsystem-match=input --subsystem-match=tty "
        "--subsystem-match=hidraw",
        "systemctl daemon-reload",
    ]


def test_system_steps_skip_managers_that_do_not_run(
    system_tools: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    system = system_tools / "container"  # no /run/systemd/system, no /run/udev/control
    system.mkdir()
    run_system_steps(AFTER_INSTALL + AFTER_UNINSTALL, Report(), system)
    assert calls(system_tools) == ["systemd-sysusers /etc/sysusers.d/nmvs-gateway.conf"]
    out = capsys.readouterr().out
    assert (
        "  skipped    systemctl daemon-reload (/run/systemd/system missing: not running here)"
        in out
    )
    assert (
        "  skipped    udevadm control --reload (/run/udev/control missing: not running here)" in out
    )


def test_failing_system_step_stops_with_its_error_unless_harmless(system_tools: Path) -> None:
    system = system_tools / "system"
    (system / "run/systemd/system").mkdir(parents=True)
    report = Report()
    run_system_steps((SystemStep(("systemctl", "disable", "fail"), may_fail=True),), report, system)
    assert report.lines == [
        "  failed     systemctl disable fail (harmless: Failed to do it: no such unit)"
    ]
    with pytest.raises(InstallError) as raised:
        run_system_steps((SystemStep(("systemctl", "fail")),), report, system)
    assert str(raised.value) == (
        "cannot run systemctl: `systemctl fail` exited with 1\n    Failed to do it: no such unit"
    )


def test_a_missing_tool_is_skipped_and_named(
    system_tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(system_tools / "empty"))
    report = Report()
    run_system_steps(AFTER_UNINSTALL, report, system_tools)
    assert report.lines == [
        "  skipped    systemctl daemon-reload (systemctl not found)",
        "  skipped    udevadm control --reload (udevadm not found)",
    ]


def test_too_old_python_is_refused_before_anything_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old_python = tmp_path / "python3.9"
    old_python.write_text("#!/bin/sh\necho 3 9\n")
    old_python.chmod(0o755)
    code = main(["install", "--root", str(tmp_path / "root"), "--python", str(old_python)])
    assert code == 1
    assert capsys.readouterr().err == (
        f"nmvs-gateway install: {old_python} is Python 3.9; nmvs-gateway needs 3.11 or newer "
        "(Debian 12, Ubuntu 24.04): pass --python\n"
    )
    assert not under(tmp_path / "root", VENV).exists()
