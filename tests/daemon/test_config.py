"""The TOML configuration: the issue's minimal file, the example file, defaults, secrets, and
one exact error message per kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.daemon.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = """\
[gateway]
id = "counter-1"
state_dir = "/var/lib/nmvs-gateway"
[mqtt]
url = "mqtt://127.0.0.1:1883"
[nmvs]
backend = "arvato-soap"
url = "http://127.0.0.1:8080"
client_login_id = "PHARM01"
user_id = "USER01"
password_file = "/etc/nmvs-gateway/nmvs-password"
[policy]
on_scan = "verify"
"""
PASSWORD = "Pa55word-for-NMVS"


@pytest.fixture
def secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    (tmp_path / "nmvs-password").write_text(PASSWORD + "\n")
    return tmp_path


def minimal(tmp_path: Path, extra: str = "", **replace: str) -> Path:
    text = MINIMAL.replace("/etc/nmvs-gateway/nmvs-password", str(tmp_path / "nmvs-password"))
    for old, new in replace.items():
        text = text.replace(old, new)
    path = tmp_path / "gateway.toml"
    path.write_text(text + extra)
    return path


def test_the_minimal_file_of_the_issue_works_with_defaults(secrets: Path) -> None:
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
        == "http://127.0.0.1:8080/WS_SINGLE_TRANSACTIONS_V1/SinglePackServiceV50"
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
        '[nmvs]\nurl = "http://127.0.0.1:8080"\nclient_login_id = "P1"\nuser_id = "USER01"\n'
    )
    config = load_config(path)
    assert config.nmvs.password.reveal() == "FromCredential1"
    assert config.mqtt.password == "mqtt-secret-1"
    assert config.gateway.state_dir == secrets / "state"
    assert set(config.secrets) == {"FromCredential1", "mqtt-secret-1"}


def test_tls_url_with_files(secrets: Path) -> None:
    (secrets / "ca.pem").write_text("x")
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
        "gateway.id: use at most 64 letters, digits, '-', '_' or '.' (it is part of topics)",
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
        "nmvs.backend: must be one of arvato-soap, not 'solidsoft'",
    ),
    ({'client_login_id = "PHARM01"\n': ""}, "", "nmvs.client_login_id: required"),
    (
        {'user_id = "USER01"': 'user_id = "U1"'},
        "",
        "nmvs.user_id: must be 4-20 characters A-Z a-z 0-9 -",
    ),
    (
        {"http://127.0.0.1:8080": "ftp://x"},
        "",
        "nmvs.url: must be the http(s) base URL of the single-pack host, not 'ftp://x'",
    ),
    (
        {"http://127.0.0.1:8080": "https://nmvs.example"},
        "",
        "nmvs.cert_file: the NMVS requires a client certificate: set cert_file or pkcs12_file",
    ),
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
    assert str(info.value) == f"{path}: mqtt.cert_file: file not found: {secrets / 'client.pem'}"


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
