"""What only the operator can fix stops ``nmvs-gateway run`` with exit 78 (systemd does not
restart it: ``RestartPreventExitStatus=78``) and one line naming the file, the TOML key and the
fix, and ``run --check`` finds the same before any start: unusable NMVS or MQTT certificates and
keys (real files: garbage PEM, wrong passphrase, garbage PKCS#12, missing, expired), a state
directory that is a file, a corrupt state database."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from gateway.configfile import ConfigError
from gateway.daemon.app import cancel_until_done
from gateway.daemon.config import load_config, open_backend
from gateway.engine.store import open_store
from tests.brokers import Broker, MqttProbe
from tests.daemon.harness import BASE, write_config
from tests.daemon.test_command import run
from tests.nmvs.conftest import KEY_PASSPHRASE, P12_PASSWORD, Pki, pki

__all__ = ["pki"]

NMVS_TLS_URL = "https://127.0.0.1:9"  # nothing listens: these tests never reach the NMVS
NMVS_URL = "http://127.0.0.1:9"


def nmvs_tls_config(tmp_path: Path, broker: Broker, files: str) -> Path:
    """The daemon's configuration with an https NMVS and ``files`` (TOML lines) in ``[nmvs]``."""
    config = write_config(tmp_path, broker, NMVS_TLS_URL)
    config.write_text(
        config.read_text().replace("read_timeout = 3.0", f"read_timeout = 3.0\n{files}")
    )
    return config


def secret_file(tmp_path: Path, name: str, value: str) -> Path:
    path = tmp_path / name
    path.write_text(value + "\n")
    return path


def assert_refused_with(config: Path, line: str) -> None:
    """``run --check`` and ``run`` both exit 78 with exactly ``line`` on stderr."""
    for extra in (("--check",), ()):
        proc = run(config, *extra)
        assert (proc.returncode, proc.stdout, proc.stderr) == (78, "", f"nmvs-gateway: {line}\n")


def garbage_pem_certificate(tmp_path: Path, pki: Pki) -> tuple[str, str]:
    cert = tmp_path / "client.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    return (
        f'cert_file = "{cert}"\nkey_file = "{pki.client_key}"',
        f"nmvs.cert_file: {cert} holds no PEM certificate",
    )


def pem_key_with_the_wrong_passphrase(tmp_path: Path, pki: Pki) -> tuple[str, str]:
    passphrase = secret_file(tmp_path, "key-passphrase", "Wrong-Passphrase-1")
    return (
        f'cert_file = "{pki.client_cert}"\nkey_file = "{pki.client_key_encrypted}"\n'
        f'key_password_file = "{passphrase}"',
        "nmvs.key_password_file: this passphrase does not decrypt the private key in "
        f"{pki.client_key_encrypted}",
    )


def garbage_pkcs12_file(tmp_path: Path, pki: Pki) -> tuple[str, str]:
    p12 = tmp_path / "client.p12"
    p12.write_bytes(b"not a keystore\n")
    password = secret_file(tmp_path, "p12-password", P12_PASSWORD)
    return (
        f'pkcs12_file = "{p12}"\npkcs12_password_file = "{password}"',
        f"nmvs.pkcs12_file: {p12} is not a PKCS#12 (.p12/.pfx) file",
    )


def missing_certificate_file(tmp_path: Path, pki: Pki) -> tuple[str, str]:
    missing = tmp_path / "absent.crt"
    return f'cert_file = "{missing}"', f"nmvs.cert_file: file not found: {missing}"


def expired_certificate(tmp_path: Path, pki: Pki) -> tuple[str, str]:
    """The NMVS would refuse it: only a new certificate helps, so the daemon does not start."""
    expired = x509.load_pem_x509_certificate(pki.expired_cert.read_bytes()).not_valid_after_utc
    return (
        f'cert_file = "{pki.expired_cert}"\nkey_file = "{pki.expired_key}"',
        f"nmvs.cert_file: the client certificate in {pki.expired_cert} expired on "
        f"{expired:%Y-%m-%d %H:%M} UTC: install the new one your NMVS issued",
    )


@pytest.mark.parametrize(
    "case",
    [
        garbage_pem_certificate,
        pem_key_with_the_wrong_passphrase,
        garbage_pkcs12_file,
        missing_certificate_file,
        expired_certificate,
    ],
)
def test_unusable_nmvs_tls_material(
    tmp_path: Path, broker: Broker, pki: Pki, case: Callable[[Path, Pki], tuple[str, str]]
) -> None:
    files, message = case(tmp_path, pki)
    config = nmvs_tls_config(tmp_path, broker, files)
    assert_refused_with(config, f"{config}: {message}")


def test_a_garbage_mqtt_ca_file(tmp_path: Path, broker: Broker) -> None:
    ca = tmp_path / "mqtt-ca.pem"
    ca.write_text("not a certificate\n")
    config = write_config(tmp_path, broker, NMVS_URL)
    config.write_text(
        config.read_text().replace(
            f'url = "{broker.url}"', f'url = "mqtts://127.0.0.1:8883"\nca_file = "{ca}"'
        )
    )
    for extra in (("--check",), ()):
        proc = run(config, *extra)
        assert proc.returncode == 78
        assert proc.stderr.startswith(
            f"nmvs-gateway: {config}: mqtt.ca_file: cannot load the CA file {ca}: "
        )
        assert proc.stderr.count("\n") == 1, proc.stderr


@pytest.mark.parametrize("kind", ["pem", "encrypted pem", "pkcs12"])
def test_usable_certificates_pass_the_check(tmp_path: Path, pki: Pki, kind: str) -> None:
    password = secret_file(tmp_path, "nmvs-password", "Simulator-Pass1")
    files = {
        "pem": f'cert_file = "{pki.client_cert}"\nkey_file = "{pki.client_key}"',
        "encrypted pem": f'cert_file = "{pki.client_cert}"\n'
        f'key_file = "{pki.client_key_encrypted}"\n'
        f'key_password_file = "{secret_file(tmp_path, "passphrase", KEY_PASSPHRASE)}"',
        "pkcs12": f'pkcs12_file = "{pki.client_p12}"\n'
        f'pkcs12_password_file = "{secret_file(tmp_path, "p12", P12_PASSWORD)}"',
    }[kind]
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'[gateway]\nid = "c1"\nstate_dir = "{tmp_path / "state"}"\n'
        f'[nmvs]\nurl = "{NMVS_TLS_URL}"\nclient_login_id = "P1"\nuser_id = "USER01"\n'
        f'password_file = "{password}"\nca_file = "{pki.ca_file}"\n{files}\n'
    )
    config = load_config(path)
    assert config.nmvs.uses_tls
    client = open_backend(config)
    assert client.certificate_expires_at is not None


def test_a_certificate_spoiled_after_loading_is_named_when_the_client_is_built(
    tmp_path: Path, broker: Broker, pki: Pki
) -> None:
    cert = tmp_path / "client.crt"
    cert.write_bytes(pki.client_cert.read_bytes())
    config_path = nmvs_tls_config(
        tmp_path, broker, f'cert_file = "{cert}"\nkey_file = "{pki.client_key}"'
    )
    config = load_config(config_path)
    cert.write_text("replaced by garbage\n")
    with pytest.raises(ConfigError) as caught:
        open_backend(config)
    assert str(caught.value) == f"{config_path}: nmvs.cert_file: {cert} holds no PEM certificate"


def test_a_state_directory_that_is_a_file(tmp_path: Path, broker: Broker) -> None:
    config = write_config(tmp_path, broker, NMVS_URL)
    state = tmp_path / "state"
    state.write_text("a file where the state directory should be")
    assert_refused_with(
        config,
        f"{config}: gateway.state_dir: {state} is not a directory: move it aside, or set "
        "gateway.state_dir to a directory",
    )


def test_a_corrupt_state_database(tmp_path: Path, broker: Broker) -> None:
    """``--check`` does not open the database (it may belong to the service's user); ``run``
    refuses to start on it: restarting cannot repair it."""
    config = write_config(tmp_path, broker, NMVS_URL)
    database = tmp_path / "state" / "engine.sqlite3"
    database.parent.mkdir()
    database.write_bytes(b"this is not an SQLite database, just bytes " * 100)
    checked = run(config, "--check")
    assert (checked.returncode, checked.stdout) == (0, f"{config}: configuration OK\n")
    proc = run(config)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        78,
        "",
        f"nmvs-gateway: the engine database {database} is corrupt or not a database (file is "
        "not a database); move it aside and restore a backup\n",
    )


def test_an_emptied_state_database_stops_the_daemon_until_reset_on_purpose(
    tmp_path: Path, broker: Broker
) -> None:
    """A 0-byte file would open as an empty database: every pack dispensed would look new."""
    config = write_config(tmp_path, broker, NMVS_URL)
    state = tmp_path / "state"
    open_store(state).close()  # the gateway ran here: database and marker
    database = state / "engine.sqlite3"
    database.write_bytes(b"")
    proc = run(config)
    assert proc.returncode == 78 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert (
        f"the engine database {database} is empty (0 bytes), but this state directory had one"
        in proc.stderr
    )
    assert f"nmvs-gateway reset-state --state-dir {state}" in proc.stderr
    reset = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "reset-state", "--state-dir", str(state)],
        capture_output=True,
        text=True,
    )
    assert reset.returncode == 0, reset.stderr
    kept = sorted(p.name for p in state.iterdir())
    assert [name.split(".kept-")[0] for name in kept] == ["engine.sqlite3", "engine.sqlite3.marker"]
    open_store(state).close()  # now a first start


async def test_a_daemon_whose_engine_cannot_open_never_says_online(
    tmp_path: Path, broker: Broker
) -> None:
    config = write_config(tmp_path, broker, NMVS_URL)
    database = tmp_path / "state" / "engine.sqlite3"
    database.parent.mkdir()
    database.write_bytes(b"not a database " * 100)
    async with MqttProbe(broker, (f"{BASE}/status",)) as lgo:
        proc = await asyncio.to_thread(run, config)
        await lgo.publish(f"{BASE}/probe-end", b"x")
        await asyncio.sleep(0.3)  # anything the daemon published has arrived by now
    assert proc.returncode == 78
    states = [json.loads(m.payload)["state"] for m in lgo.received if m.payload]
    assert "online" not in states


async def test_shutdown_cancels_until_the_task_ends_even_if_one_cancel_is_swallowed() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed == 1:
                    continue  # what wait_for on 3.11 can do when its answer arrives meanwhile
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await cancel_until_done(task, every=0.05)
    assert task.cancelled() and swallowed == 2
