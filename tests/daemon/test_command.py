"""``nmvs-gateway run`` as an operator meets it: exit 78 with one clear line for configuration
mistakes (missing or unusable certificate included, more in ``test_startup_errors.py``), never
a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trustme

from tests.brokers import Broker
from tests.daemon.harness import write_config

NMVS_URL = "http://127.0.0.1:9"  # nothing listens: these tests never reach the NMVS


def run(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "run", "--config", str(config), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_configuration_mistake_exits_78_with_the_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\nid = "c1"\n[mqtt]\nport = 1883\n')
    proc = run(config)
    assert proc.returncode == 78
    assert proc.stderr == f"nmvs-gateway: {config}: mqtt.port: unknown setting\n"
    missing = run(tmp_path / "absent.toml")
    assert missing.returncode == 78
    assert missing.stderr == (
        f"nmvs-gateway: {tmp_path / 'absent.toml'}: cannot read the configuration: "
        "No such file or directory\n"
    )


def test_check_validates_without_starting(tmp_path: Path, broker: Broker) -> None:
    config = write_config(tmp_path, broker, NMVS_URL)
    proc = run(config, "--check")
    assert (proc.returncode, proc.stdout) == (0, f"{config}: configuration OK\n")


def test_missing_certificate_file_exits_78(tmp_path: Path, broker: Broker) -> None:
    config = write_config(tmp_path, broker, NMVS_URL)
    text = config.read_text().replace(
        f'url = "{broker.url}"', 'url = "mqtts://127.0.0.1:8883"\nca_file = "/nonexistent/ca.pem"'
    )
    config.write_text(text)
    proc = run(config)
    assert proc.returncode == 78
    assert (
        proc.stderr
        == f"nmvs-gateway: {config}: mqtt.ca_file: file not found: /nonexistent/ca.pem\n"
    )


def test_unusable_certificate_exits_78_naming_it(tmp_path: Path, broker: Broker) -> None:
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    key = tmp_path / "client.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    config = write_config(tmp_path, broker, NMVS_URL)
    config.write_text(
        config.read_text().replace(
            f'url = "{broker.url}"',
            f'url = "mqtts://127.0.0.1:8883"\ncert_file = "{ca}"\nkey_file = "{key}"',
        )
    )
    for extra in (("--check",), ()):
        proc = run(config, *extra)
        assert proc.returncode == 78
        assert proc.stderr.startswith(
            f"nmvs-gateway: {config}: mqtt.cert_file: cannot load the client certificate {ca} "
            f"with key {key}: "
        )
        assert "Traceback" not in proc.stderr + proc.stdout
