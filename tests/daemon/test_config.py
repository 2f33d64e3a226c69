"""The TOML configuration: the minimal file, the example file, defaults, secrets, and
one exact error message per kind of mistake."""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from gateway import configfile as config_module
from gateway.configfile import ConfigError
from gateway.daemon.config import (
    EXIT_CONFIG,
    GATEWAY_KEYS,
    MQTT_KEYS,
    POLICY_KEYS,
    load_config,
    load_gateway_settings,
)
from gateway.engine.model import Outcome
from gateway.engine.rules import EMPTY_LEDGER, Send, decide, ledger_after
from gateway.nmvs.arvato.section import KEYS as ARVATO_KEYS
from gateway.nmvs.arvato.section import default_bulk_url
from gateway.vocabulary import Operation

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = """\
[gateway]
id = "counter-1"
state_dir = "/var/lib/nmvs-gateway"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[nmvs]
backend = "arvato-soap"
url = "http://127.0.0.1:8443"
client_login_id = "PHARM01"
user_id = "USER01"
password_file = "/etc/nmvs-gateway/nmvs-password"
[policy]
on_scan = "verify"
"""
PASSWORD = "Pa55word-for-NMVS"
NMVS_URL = 'url = "http://127.0.0.1:8443"'


@pytest.fixture
def secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    # the system credstores stand for /etc/credstore… (absent here: created by the tests)
    monkeypatch.setattr(config_module, "SYSTEM_CREDSTORES", (tmp_path / "credstore",))
    (tmp_path / "nmvs-password").write_text(PASSWORD + "\n")
    return tmp_path


@functools.cache
def pem() -> dict[str, bytes]:
    """Real TLS material: the loader loads every certificate and key it is given."""
    ca = trustme.CA()
    leaf = ca.issue_cert("client.pharmacy.test")
    cert, key = leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes()
    return {"ca": ca.cert_pem.bytes(), "cert": cert, "key": key, "cert+key": cert + key}


def minimal(tmp_path: Path, extra: str = "", **replace: str) -> Path:
    text = MINIMAL.replace("/etc/nmvs-gateway/nmvs-password", str(tmp_path / "nmvs-password"))
    for old, new in replace.items():
        text = text.replace(old, new)
    path = tmp_path / "gateway.toml"
    path.write_text(text + extra)
    return path


def test_the_minimal_file_works_with_defaults(secrets: Path) -> None:
    config = load_config(minimal(secrets))
    assert config.gateway.id == "counter-1"
    assert config.gateway.state_dir == Path("/var/lib/nmvs-gateway")
    assert config.base_topic == "nmvs/counter-1"
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.tls) == ("127.0.0.1", 1883, False)
    assert config.mqtt.client_id == "nmvs-gateway-counter-1"
    assert config.mqtt.protocol == "auto"
    assert config.mqtt.session_expiry >= 86400
    assert (
        config.nmvs.endpoint
        == "http://127.0.0.1:8443/WS_SINGLE_TRANSACTIONS_V1/SinglePackServiceV50"
    )
    assert config.nmvs.password.reveal() == PASSWORD  # one trailing newline removed
    assert config.engine.on_scan == "verify"
    assert config.engine.nmvs_user == "USER01"
    assert config.scanners == ()
    assert config.secrets == (PASSWORD,)
    assert PASSWORD not in repr(config)


def test_the_example_file_is_valid_and_matches_the_defaults(secrets: Path) -> None:
    text = (ROOT / "config" / "gateway.example.toml").read_text()
    text = text.replace("/etc/nmvs-gateway/nmvs-password", str(secrets / "nmvs-password"))
    example = secrets / "example.toml"
    example.write_text(text)
    config = load_config(example)
    defaults = load_config(minimal(secrets))
    assert config.mqtt == defaults.mqtt
    assert config.engine == defaults.engine
    assert config.gateway == defaults.gateway
    assert config.nmvs == defaults.nmvs


def test_systemd_credentials_and_state_directory(
    secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = secrets / "creds"
    creds.mkdir()
    (creds / "nmvs-password").write_text("FromCredential1")
    (creds / "mqtt-password").write_text("mqtt-secret-1")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.setenv("STATE_DIRECTORY", str(secrets / "state"))
    path = secrets / "gateway.toml"
    path.write_text(
        '[gateway]\nid = "c2"\n[mqtt]\nusername = "gw"\n'
        '[nmvs]\nurl = "http://127.0.0.1:8443"\nclient_login_id = "P1"\nuser_id = "USER01"\n'
    )
    config = load_config(path)
    assert config.nmvs.password.reveal() == "FromCredential1"
    assert config.mqtt.password == "mqtt-secret-1"
    assert config.gateway.state_dir == secrets / "state"
    assert set(config.secrets) == {"FromCredential1", "mqtt-secret-1"}


def test_every_key_is_documented_in_the_example() -> None:
    text = (ROOT / "config" / "gateway.example.toml").read_text()
    for section, keys in (
        ("gateway", GATEWAY_KEYS),
        ("mqtt", MQTT_KEYS),
        ("nmvs", ("backend", *ARVATO_KEYS)),
        ("policy", POLICY_KEYS),
    ):
        for key in keys:
            assert f"\n{key} = " in text or f"\n# {key} = " in text, f"{section}.{key}"


def test_the_unit_credentials_need_no_configuration_line(
    secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The names the unit loads are found in $CREDENTIALS_DIRECTORY without any *_file key."""
    creds = secrets / "creds"
    creds.mkdir()
    for name in ("nmvs-client.pem", "mqtt-client.pem"):
        (creds / name).write_bytes(pem()["cert"])
    for name in ("nmvs-client.key", "mqtt-client.key"):
        (creds / name).write_bytes(pem()["key"])
    (creds / "nmvs-password").write_text("FromCredential1")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    path = secrets / "gateway.toml"
    path.write_text(
        '[gateway]\nid = "c2"\n[mqtt]\nurl = "mqtts://broker.lan"\n'
        '[nmvs]\nurl = "https://ws-single-transactions-prod-xx.nmvs.eu:8443"\n'
        'client_login_id = "P1"\nuser_id = "USER01"\n'
    )
    config = load_config(path)
    assert (config.nmvs.cert_file, config.nmvs.key_file) == (
        creds / "nmvs-client.pem",
        creds / "nmvs-client.key",
    )
    assert (config.mqtt.cert_file, config.mqtt.key_file) == (
        creds / "mqtt-client.pem",
        creds / "mqtt-client.key",
    )
    assert config.mqtt.password is None  # mqtt-password is used with mqtt.username only
    # plain URLs take no certificate; a PKCS#12 file is not mixed with the default PEM pair
    path.write_text(
        '[gateway]\nid = "c2"\n[nmvs]\nurl = "http://127.0.0.1:8443"\n'
        'client_login_id = "P1"\nuser_id = "USER01"\n'
    )
    config = load_config(path)
    assert (config.mqtt.cert_file, config.nmvs.cert_file, config.nmvs.key_file) == (None,) * 3


def test_one_rule_for_every_file_key(secrets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative name is the credential of that name, else the file next to the configuration;
    an absolute path is that file; the same for secrets, certificates, keys and CA bundles."""
    creds = secrets / "creds"
    creds.mkdir()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    for name, kind in (("client.pem", "cert"), ("client.key", "key"), ("ca.pem", "ca")):
        (creds / name).write_bytes(pem()[kind])
    (secrets / "ca.pem").write_bytes(pem()["ca"])  # the credential wins
    (secrets / "local-ca.pem").write_bytes(pem()["ca"])  # next to the configuration
    (secrets / "other-password").write_text("NextToTheConfig1")
    path = minimal(
        secrets,
        **{
            'url = "mqtt://127.0.0.1:1883"': 'url = "mqtts://broker.lan"\nca_file = "ca.pem"\n'
            'cert_file = "client.pem"\nkey_file = "client.key"',
            "http://127.0.0.1:8443": "https://nmvs.example",
            'user_id = "USER01"': f'user_id = "USER01"\ncert_file = "client.pem"\n'
            f'key_file = "client.key"\nca_file = "{secrets / "local-ca.pem"}"',
            str(secrets / "nmvs-password"): "other-password",
        },
    )
    config = load_config(path)
    assert (config.mqtt.ca_file, config.mqtt.cert_file, config.mqtt.key_file) == (
        creds / "ca.pem",
        creds / "client.pem",
        creds / "client.key",
    )
    assert (config.nmvs.cert_file, config.nmvs.key_file, config.nmvs.ca_file) == (
        creds / "client.pem",
        creds / "client.key",
        secrets / "local-ca.pem",
    )
    assert config.nmvs.password.reveal() == "NextToTheConfig1"


def test_run_by_hand_the_credentials_come_from_the_credstore(
    secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No $CREDENTIALS_DIRECTORY (sudo nmvs-gateway selftest): where LoadCredential= reads them."""
    first, second = secrets / "etc-credstore", secrets / "run-credstore"
    monkeypatch.setattr(config_module, "SYSTEM_CREDSTORES", (first, second))
    second.mkdir()
    (second / "nmvs-password").write_text("FromRunCredstore")
    (second / "mqtt-password").write_text("mqtt-from-run")
    path = secrets / "gateway.toml"
    path.write_text(
        '[gateway]\nid = "c2"\n[mqtt]\nusername = "gw"\n'
        '[nmvs]\nurl = "http://127.0.0.1:8443"\nclient_login_id = "P1"\nuser_id = "USER01"\n'
    )
    config = load_config(path)
    assert (config.nmvs.password.reveal(), config.mqtt.password) == (
        "FromRunCredstore",
        "mqtt-from-run",
    )
    first.mkdir()
    (first / "nmvs-password").write_text("FromEtcCredstore")  # systemd's order: /etc first
    assert load_config(path).nmvs.password.reveal() == "FromEtcCredstore"
    # under systemd only $CREDENTIALS_DIRECTORY counts (the service cannot read /etc/credstore)
    empty = secrets / "creds"
    empty.mkdir()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(empty))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: nmvs.password_file: required: a file holding the NMVS password "
        f"(or the credential nmvs-password in {empty})"
    )


def test_the_self_test_reads_the_same_credentials(
    secrets: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``selftest`` loads the configuration through the daemon's loader: run by hand, the
    password comes from the credstore and the config check passes (the run stops at usage)."""
    from gateway.selftest import command

    store = secrets / "credstore"
    store.mkdir()
    (store / "nmvs-password").write_text("FromEtcCredstore")
    path = secrets / "gateway.toml"
    path.write_text(
        '[gateway]\nid = "c2"\n[nmvs]\nurl = "http://127.0.0.1:8443"\n'
        'client_login_id = "P1"\nuser_id = "USER01"\n'
    )
    args = argparse.Namespace(
        config=path, json=True, calibrate="no-such-scanner", write_config=False, scan_timeout=1
    )
    assert command.run(args) == command.EXIT_USAGE
    assert f"no scanner 'no-such-scanner' in {path}" in capsys.readouterr().err
    (store / "nmvs-password").unlink()
    assert command.run(args) == 1
    (check,) = json.loads(capsys.readouterr().out)["checks"]
    assert check["name"] == "config" and "nmvs.password_file: required" in check["detail"]


@pytest.mark.parametrize(
    ("url", "bulk"),
    [
        (
            "https://ws-single-transactions-prod-pl.nmvs.eu:8443",
            "https://ws-bulk-transactions-prod-pl.nmvs.eu:8445",
        ),
        (
            "https://ws-single-transactions-int-bp.nmvs.eu",
            "https://ws-bulk-transactions-int-bp.nmvs.eu",
        ),
        ("http://127.0.0.1:8443", "http://127.0.0.1:8443"),  # the simulator serves both
        ("https://proxy.lan:9443/nmvs", "https://proxy.lan:9443/nmvs"),
    ],
)
def test_the_bulk_host_is_derived_from_the_single_pack_host(url: str, bulk: str) -> None:
    assert default_bulk_url(url) == bulk


def test_bulk_url_tls_version_and_total_timeout_reach_the_client(secrets: Path) -> None:
    (secrets / "client.pem").write_bytes(pem()["cert+key"])
    https = {
        "http://127.0.0.1:8443": "https://ws-single-transactions-prod-xx.nmvs.eu:8443",
        'user_id = "USER01"': 'user_id = "USER01"\ncert_file = "client.pem"',
    }
    config = load_config(minimal(secrets, **https))
    assert config.nmvs.single_pack_url == (
        "https://ws-single-transactions-prod-xx.nmvs.eu:8443"
        "/WS_SINGLE_TRANSACTIONS_V1/SinglePackServiceV50"
    )
    assert config.nmvs.bulk_url == (
        "https://ws-bulk-transactions-prod-xx.nmvs.eu:8445/WS_BULK_TRANSACTIONS_V1/BulkServiceV50"
    )
    assert (config.nmvs.tls_max_version, config.nmvs.total_timeout) == ("1.2", 15.0)
    https['user_id = "USER01"'] += (
        '\nbulk_url = "https://bulk.nmvo.example:9445/"\ntls_max_version = "1.3"'
        "\ntotal_timeout = 30"
    )
    config = load_config(minimal(secrets, **https))
    assert config.nmvs.bulk_url == (
        "https://bulk.nmvo.example:9445/WS_BULK_TRANSACTIONS_V1/BulkServiceV50"
    )
    assert (config.nmvs.tls_max_version, config.nmvs.total_timeout) == ("1.3", 30.0)


@pytest.mark.parametrize("user_id", ["USER01", "PHARM-7-COUNTER", "abcd"])
def test_the_engine_undoes_as_the_user_the_backend_sends(secrets: Path, user_id: str) -> None:
    """Rule 5 compares the user of the change with Settings.nmvs_user: both must be the NMVS
    UserId the client sends, or every undo is refused as another user's."""
    config = load_config(minimal(secrets, **{'user_id = "USER01"': f'user_id = "{user_id}"'}))
    sent_as = config.nmvs.credentials().user_id
    assert config.engine.nmvs_user == sent_as == user_id
    now = 1_800_000_000.0
    dispensed = ledger_after(
        EMPTY_LEDGER,
        Operation.DISPENSE,
        Outcome.DONE,
        user=sent_as,
        client_trx_id="c1",
        nmvs_trx_id="n1",
        changed_at=now,
    )
    assert decide(Operation.UNDO_DISPENSE, dispensed, now + 60, config.engine) == Send("c1")


def test_policy_keys_of_every_type(secrets: Path) -> None:
    extra = "bulk = false\nbulk_max_group = 5000\nbulk_min_group = 10\nbulk_poll_interval = 2\n"
    config = load_config(minimal(secrets, **{'on_scan = "verify"': extra}))
    engine = config.engine
    assert (engine.bulk, engine.bulk_max_group, engine.bulk_min_group) == (False, 5000, 10)
    assert engine.bulk_poll_interval == 2.0


def test_gateway_settings_alone_need_no_secret(secrets: Path) -> None:
    """``report`` and ``status --config`` read the state directory only."""
    (secrets / "nmvs-password").unlink()
    path = minimal(secrets, **{'state_dir = "/var/lib/nmvs-gateway"': 'state_dir = "state"'})
    assert load_gateway_settings(path).state_dir == secrets / "state"
    with pytest.raises(ConfigError):
        load_config(path)


def test_tls_url_with_files(secrets: Path) -> None:
    (secrets / "ca.pem").write_bytes(pem()["ca"])
    config = load_config(
        minimal(
            secrets,
            **{'url = "mqtt://127.0.0.1:1883"': 'url = "mqtts://broker.lan"\nca_file = "ca.pem"'},
        )
    )
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.tls) == ("broker.lan", 8883, True)
    assert config.mqtt.ca_file == secrets / "ca.pem"


CASES = [
    ({"[policy]": "[polcy]"}, "", "polcy: unknown section (did you mean [policy]?)"),
    (
        {'id = "counter-1"': 'id = "counter 1"'},
        "",
        "gateway.id: use at most 64 ASCII letters, digits, '-', '_' or '.' (it is part of the "
        "MQTT topics), not 'counter 1'",
    ),
    ({'id = "counter-1"\n': ""}, "", "gateway.id: required"),
    ({"[mqtt]\n": "[mqtt]\nhots = 1\n"}, "", "mqtt.hots: unknown setting"),
    (
        {"[mqtt]\n": "[mqtt]\npasword_file = 'x'\n"},
        "",
        "mqtt.pasword_file: unknown setting (did you mean password_file?)",
    ),
    (
        {"[mqtt]\n": '[mqtt]\npassword = "hunter22"\n'},
        "",
        "mqtt.password: secrets are never read from the configuration file: write it to a file readable only by the gateway and set mqtt.password_file",
    ),
    (
        {"mqtt://127.0.0.1:1883": "tcp://127.0.0.1"},
        "",
        "mqtt.url: must look like mqtt://host:1883 or mqtts://host:8883, not 'tcp://127.0.0.1'",
    ),
    (
        {"mqtt://127.0.0.1:1883": "mqtt://127.0.0.1:99999"},
        "",
        "mqtt.url: the port in 'mqtt://127.0.0.1:99999' is not a number from 1 to 65535",
    ),
    (
        {"mqtt://127.0.0.1:1883": "mqtt://u:p@127.0.0.1"},
        "",
        "mqtt.url: put no user or password in the URL: use mqtt.username and mqtt.password_file",
    ),
    (
        {"[mqtt]\n": '[mqtt]\nkeepalive = "30"\n'},
        "",
        "mqtt.keepalive: must be an integer from 5 to 3600, not '30'",
    ),
    (
        {"[mqtt]\n": "[mqtt]\nsession_expiry = 60\n"},
        "",
        "mqtt.session_expiry: must be an integer from 86400 to 31536000, not 60",
    ),
    (
        {"[mqtt]\n": "[mqtt]\nprotocol = 5\n"},
        "",
        "mqtt.protocol: must be one of auto, 5, 3.1.1, not 5",
    ),
    (
        {"[mqtt]\n": '[mqtt]\nbase_topic = "nmvs/#"\n'},
        "",
        "mqtt.base_topic: must not contain + or # nor start or end with /",
    ),
    (
        {"[mqtt]\n": '[mqtt]\nca_file = "ca.pem"\n'},
        "",
        "mqtt.ca_file: set only with an mqtts:// url",
    ),
    (
        {"[mqtt]\n": '[mqtt]\ncheck_hostname = "yes"\n'},
        "",
        "mqtt.check_hostname: must be true or false, not 'yes'",
    ),
    (
        {'backend = "arvato-soap"': 'backend = "solidsoft"'},
        "",
        "nmvs.backend: must be one of arvato-soap, solidsoft-rest, not 'solidsoft'",
    ),
    ({'client_login_id = "PHARM01"\n': ""}, "", "nmvs.client_login_id: required"),
    (
        {'user_id = "USER01"': 'user_id = "U1"'},
        "",
        "nmvs.user_id: must be 4-20 characters A-Z a-z 0-9 -",
    ),
    (
        {"http://127.0.0.1:8443": "http://127.0.0.1:99999"},
        "",
        "nmvs.url: must be the http(s) base URL of the single-pack host, "
        "not 'http://127.0.0.1:99999'",
    ),
    (
        {"http://127.0.0.1:8443": "ftp://x"},
        "",
        "nmvs.url: must be the http(s) base URL of the single-pack host, not 'ftp://x'",
    ),
    (
        {"http://127.0.0.1:8443": "https://nmvs.example"},
        "",
        "nmvs.cert_file: the NMVS requires a client certificate: set nmvs.cert_file or "
        "nmvs.pkcs12_file",
    ),
    (
        {NMVS_URL: NMVS_URL + "\nbulk_url = 'ws-bulk'"},
        "",
        "nmvs.bulk_url: must be the http(s) base URL of the bulk host, not 'ws-bulk'",
    ),
    (
        {NMVS_URL: NMVS_URL + "\ntls_max_version = 1.3"},
        "",
        "nmvs.tls_max_version: must be one of 1.2, 1.3, not 1.3",
    ),
    (
        {NMVS_URL: NMVS_URL + "\ntotal_timeout = 0"},
        "",
        "nmvs.total_timeout: must be a number from 0.001 to 120, not 0",
    ),
    (
        {'on_scan = "verify"': "bulk_min_group = 50\nbulk_max_group = 20"},
        "",
        "policy.bulk_min_group: must not exceed bulk_max_group",
    ),
    (
        {'on_scan = "verify"': 'bulk = "yes"'},
        "",
        "policy.bulk: must be true or false, not 'yes'",
    ),
    (
        {'on_scan = "verify"': "undo_safety_margin = 864000"},
        "",
        "policy.undo_safety_margin: must be shorter than the 10-day undo window",
    ),
    ({"[policy]\n": "[policy]\nnmvs_user = 'X'\n"}, "", "policy.nmvs_user: unknown setting"),
    (
        {'on_scan = "verify"': 'on_scan = "sell"'},
        "",
        "policy.on_scan: must be one of verify, dispense, none, not 'sell'",
    ),
    (
        {'on_scan = "verify"': "concurrency = 0"},
        "",
        "policy.concurrency: must be an integer from 1 to 256, not 0",
    ),
    (
        {'on_scan = "verify"': "repeat_window = -1"},
        "",
        "policy.repeat_window: must be a number from 0 to 3.1536e+07, not -1",
    ),
    (
        {},
        '[[scanner]]\nid = "s1"\nkind = "serial"\nterminator = "TAB"\npath = "/dev/ttyS0"\n',
        "scanner[0].terminator: must be one of CR, LF, CRLF, EOT, none",
    ),
    (
        {},
        '[[scanner]]\nkind = "serial"\n',
        'scanner[0].id: is required (the scanner\'s name in scan events, e.g. "counter-1-a")',
    ),
]


@pytest.mark.parametrize(("replace", "extra", "message"), CASES)
def test_every_mistake_names_the_file_and_the_key(
    secrets: Path, replace: dict[str, str], extra: str, message: str
) -> None:
    path = minimal(secrets, extra, **replace)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    "gateway_id",
    ["cöunter-1", "counter-١", "ｃounter", "counter/1", "counter+1", "x" * 65, "till 1"],
)
def test_the_gateway_id_is_ascii_because_it_is_in_the_topics(
    secrets: Path, gateway_id: str
) -> None:
    path = minimal(secrets, **{'id = "counter-1"': f'id = "{gateway_id}"'})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: gateway.id: use at most 64 ASCII letters, digits, '-', '_' or '.' (it is part "
        f"of the MQTT topics), not {gateway_id!r}"
    )


@pytest.mark.parametrize("gateway_id", ["c", "Till_2.back-office", "x" * 64])
def test_ascii_gateway_ids_are_taken_as_written(secrets: Path, gateway_id: str) -> None:
    path = minimal(secrets, **{'id = "counter-1"': f'id = "{gateway_id}"'})
    assert load_config(path).gateway.id == gateway_id


def test_secret_file_problems(secrets: Path) -> None:
    (secrets / "nmvs-password").write_text("")
    path = minimal(secrets)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: nmvs.password_file: {secrets / 'nmvs-password'} is empty"
    (secrets / "nmvs-password").unlink()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: nmvs.password_file: cannot read {secrets / 'nmvs-password'}: No such file or directory"
    )
    (secrets / "nmvs-password").write_text("short")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: nmvs.password_file: must be 8-60 characters"
    assert "short" not in str(info.value)


def test_missing_certificate_file_is_named(secrets: Path) -> None:
    path = minimal(
        secrets,
        **{'url = "mqtt://127.0.0.1:1883"': 'url = "mqtts://127.0.0.1"\ncert_file = "client.pem"'},
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: mqtt.cert_file: file not found: {secrets / 'client.pem'} "
        f"(nor a credential client.pem in {secrets / 'credstore'})"
    )


def test_an_engine_settings_error_stops_the_start_with_exit_78(secrets: Path) -> None:
    path = minimal(secrets, **{'on_scan = "verify"': "bulk_min_group = 50\nbulk_max_group = 20"})
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "run", "--config", str(path), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == EXIT_CONFIG == 78
    assert proc.stderr == (
        f"nmvs-gateway: {path}: policy.bulk_min_group: must not exceed bulk_max_group\n"
    )


def test_unreadable_or_broken_files(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(info.value) == f"{missing}: cannot read the configuration: No such file or directory"
    broken = tmp_path / "broken.toml"
    broken.write_text("[gateway\nid = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(broken)
    assert str(info.value).startswith(f"{broken}: not valid TOML: ")
    no_nmvs = tmp_path / "no-nmvs.toml"
    no_nmvs.write_text('[gateway]\nid = "x"\n')
    with pytest.raises(ConfigError) as info:
        load_config(no_nmvs)
    assert (
        str(info.value)
        == f"{no_nmvs}: nmvs: required: the [nmvs] section (url, client_login_id, …)"
    )
