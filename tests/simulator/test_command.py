"""``nmvs-gateway nmvs-sim`` as a subprocess: listening line, bad files, restart with --state."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import trustme

from gateway.cli import main
from tests.simulator.marketfile_example import EXAMPLE_JSON
from tests.simulator.soapxml import read_reply

COMMAND = [sys.executable, "-m", "gateway.cli", "nmvs-sim"]


@contextmanager
def simulator(*args: str, transport: tuple[str, ...] = ("--plain-http",)) -> Iterator[str]:
    process = subprocess.Popen(
        [*COMMAND, *transport, "--listen", "127.0.0.1:0", "--admin", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening http"), (
            line,
            process.stderr.read() if process.stderr else "",
        )
        yield line.split()[1]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=30)


def verify_xml() -> str:
    return (
        '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:w="urn:wsdltypes.nmvs.eu:v5.0" '
        'xmlns:t="urn:types.nmvs.eu:v5.0"><e:Body><w:G120Request><t:Header><t:Auth>'
        "<t:ClientLoginId>PHARMA01</t:ClientLoginId><t:UserId>SITE0001</t:UserId>"
        "<t:Password>Secret-Pass1</t:Password></t:Auth>"
        '<t:UserSoftware t:name="x" t:supplier="y" t:version="1"/>'
        "<t:Transaction><t:ClientTrxId>CMDTEST-00000001</t:ClientTrxId><t:Language>eng</t:Language>"
        '</t:Transaction></t:Header><t:Body><t:Product><t:ProductCode t:scheme="GTIN">05000456013482'
        "</t:ProductCode><t:Batch><t:Id>00001</t:Id><t:ExpDate>261200</t:ExpDate></t:Batch></t:Product>"
        '<t:Pack t:sn="0000000014"/></t:Body></w:G120Request></e:Body></e:Envelope>'
    )


def test_listening_line_and_state_across_restarts(tmp_path: Path) -> None:
    packs = tmp_path / "market.json"
    packs.write_text(EXAMPLE_JSON)
    state = tmp_path / "state.sqlite"
    with simulator("--packs", str(packs), "--state", str(state)) as url:
        response = httpx.post(
            url + "/WS_SINGLE_TRANSACTIONS_V1/SinglePackServiceV50",
            content=verify_xml(),
            headers={"Content-Type": "text/xml"},
        )
        assert read_reply(response.status_code, response.content).code == "NMVS_SUCCESS"
    with simulator("--state", str(state)) as url:
        pack = httpx.get(url + "/_sim/packs/05000456013482/0000000014").json()
        assert (pack["state"], pack["reasons"]) == ("INACTIVE", ["SUPPLIED"])
        assert len(httpx.get(url + "/_sim/transactions").json()) == 1


def test_bad_market_file_exits_2_with_the_path(tmp_path: Path) -> None:
    packs = tmp_path / "market.json"
    bad = json.loads(EXAMPLE_JSON)
    bad["products"][0]["batches"][0]["expiry"] = "2612"
    packs.write_text(json.dumps(bad))
    result = run("--plain-http", "--packs", str(packs))
    assert result.returncode == 2
    assert (
        result.stderr
        == f"nmvs-sim: error: {packs}: products[0].batches[0].expiry: '2612' is not a YYMMDD date\n"
    )
    assert result.stdout == ""


def test_https_needs_certificates(tmp_path: Path) -> None:
    result = run("--generate", "10")
    assert (result.returncode, result.stderr) == (
        2,
        "nmvs-sim: error: HTTPS needs --cert, --key and --client-ca (or use --plain-http)\n",
    )
    missing = run(
        "--generate",
        "10",
        "--cert",
        str(tmp_path / "c.pem"),
        "--key",
        str(tmp_path / "k.pem"),
        "--client-ca",
        str(tmp_path / "ca.pem"),
    )
    assert (
        missing.returncode == 2
        and "cannot load the TLS certificate, key or client CA" in missing.stderr
    )
    assert "Traceback" not in missing.stderr


def test_generate_only_writes_the_market(tmp_path: Path) -> None:
    out = tmp_path / "generated.json"
    result = run("--generate", "300", "--seed", "5", "--packs-out", str(out), "--generate-only")
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert sum(len(b["serials"]) for p in data["products"] for b in p["batches"]) == 300
    assert (
        run(
            "--generate",
            "300",
            "--seed",
            "5",
            "--packs-out",
            str(tmp_path / "again.json"),
            "--generate-only",
        ).returncode
        == 0
    )
    assert (tmp_path / "again.json").read_text() == out.read_text()


def test_https_with_client_certificates(tmp_path: Path) -> None:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    server.private_key_and_cert_chain_pem.write_to_path(tmp_path / "server.pem")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    transport = ("--cert", str(tmp_path / "server.pem"), "--key", str(tmp_path / "server.pem"))
    transport += ("--client-ca", str(tmp_path / "ca.pem"))
    with simulator("--generate", "20", transport=transport) as url:
        assert url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context()
        ca.configure_trust(context)
        ca.issue_cert("pharmacy-0001").configure_cert(context)
        response = httpx.get(url + "/_sim/transactions", verify=context)
        assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--bulk-delay", "nan", "--bulk-delay must be 0 to 86400 seconds, not nan"),
        ("--bulk-delay", "inf", "--bulk-delay must be 0 to 86400 seconds, not inf"),
        ("--bulk-delay", "-1", "--bulk-delay must be 0 to 86400 seconds, not -1.0"),
        ("--max-failed-logins", "0", "--max-failed-logins must be at least 1, not 0"),
        (
            "--own-repeat-limit",
            "-2",
            "--own-repeat-limit must be -1 (no counter) or more, not -2",
        ),
    ],
)
def test_bad_rule_options_exit_2_naming_the_option(
    capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    code = main(["nmvs-sim", "--plain-http", "--generate", "3", option, value])
    assert (code, capsys.readouterr().err) == (2, f"nmvs-sim: error: {message}\n")


def test_an_absurd_market_size_is_refused_before_generating(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["nmvs-sim", "--plain-http", "--generate", str(10**20)])
    assert (code, capsys.readouterr().err) == (
        2,
        "nmvs-sim: error: --generate needs a number of packs from 1 to 1000000\n",
    )


@pytest.mark.parametrize("listen", ["nope", ":8443", "127.0.0.1:65536", "127.0.0.1:\u0663\u0663"])
def test_a_bad_listen_address_exits_2(capsys: pytest.CaptureFixture[str], listen: str) -> None:
    code = main(["nmvs-sim", "--plain-http", "--generate", "3", "--listen", listen])
    assert (code, capsys.readouterr().err) == (
        2,
        f"nmvs-sim: error: --listen must be HOST:PORT, not {listen!r}\n",
    )


# ---------------------------------------------------------------- --protocol solidsoft-rest

REST = ("--protocol", "solidsoft-rest")
TOKEN_FORM = {"grant_type": "client_credentials", "client_id": "demo-pharmacy"}
REST_HEADERS = {"emvs-data-entry-mode": "non-manual"}
PACK_PATH = "/api/product/gs1/05000456013482/pack/0000000014?batch=00001&expiry=261200"


def rest_token(url: str, *, verify: ssl.SSLContext | bool = True) -> dict[str, str]:
    form = {**TOKEN_FORM, "client_secret": "itsasecret"}
    response = httpx.post(url + "/identity/connect/token", data=form, verify=verify)
    assert response.status_code == 200, response.text
    return {**REST_HEADERS, "Authorization": f"Bearer {response.json()['access_token']}"}


def test_rest_listening_line_first_then_the_api() -> None:
    with simulator(*REST, "--generate", "10") as url:
        headers = rest_token(url)
        response = httpx.get(
            url + "/api/product/gs1/09999999999996/pack/X?batch=B&expiry=261200", headers=headers
        )
        assert (response.status_code, response.json()["operationCode"]) == (404, "41100001")
        assert (
            httpx.post(url + "/WS_SINGLE_TRANSACTIONS_V1/SinglePackServiceV50").status_code == 404
        )


@pytest.mark.parametrize(
    ("limit", "code"), [((), "51200001"), (("--own-repeat-limit", "3"), "51220002")]
)
def test_rest_has_no_own_repeat_counter_unless_asked(
    tmp_path: Path, limit: tuple[str, ...], code: str
) -> None:
    packs = tmp_path / "market.json"
    packs.write_text(EXAMPLE_JSON)
    with simulator(*REST, "--packs", str(packs), *limit) as url:
        headers = rest_token(url)
        for _ in range(2):
            response = httpx.patch(url + PACK_PATH, json={"state": "Supplied"}, headers=headers)
        assert (response.status_code, response.json()["operationCode"]) == (409, code)


def test_rest_client_credentials_and_token_lifetime_options() -> None:
    options = ("--client-id", "pharmacy-7", "--client-secret", "s3cret", "--token-lifetime", "60")
    with simulator(*REST, "--generate", "10", *options) as url:
        form = {
            "grant_type": "client_credentials",
            "client_id": "pharmacy-7",
            "client_secret": "s3cret",
        }
        response = httpx.post(url + "/identity/connect/token", data=form)
        assert (response.status_code, response.json()["expires_in"]) == (200, 60)
        refused = httpx.post(
            url + "/identity/connect/token", data={**TOKEN_FORM, "client_secret": "itsasecret"}
        )
        assert refused.json()["error"] == "invalid_client"


def test_rest_over_https_asks_a_client_certificate_only_with_a_client_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(tmp_path / "server.pem")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    transport = ("--cert", str(tmp_path / "server.pem"), "--key", str(tmp_path / "server.pem"))
    without_cert = ssl.create_default_context()
    ca.configure_trust(without_cert)
    with simulator(*REST, "--generate", "10", transport=transport) as url:
        assert url.startswith("https://127.0.0.1:")
        rest_token(url, verify=without_cert)
    with simulator(
        *REST, "--generate", "10", transport=(*transport, "--client-ca", str(tmp_path / "ca.pem"))
    ) as url:
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            rest_token(url, verify=without_cert)
        with_cert = ssl.create_default_context()
        ca.configure_trust(with_cert)
        ca.issue_cert("pharmacy-0001").configure_cert(with_cert)
        rest_token(url, verify=with_cert)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (*REST, "--token-lifetime", "0"),
            "--token-lifetime must be 1 to 31536000 seconds (a year), not 0",
        ),
        (
            (*REST, "--token-lifetime", "31536001"),
            "--token-lifetime must be 1 to 31536000 seconds (a year), not 31536001",
        ),
        ((*REST, "--client-id", ""), "--client-id and --client-secret must not be empty"),
        ((*REST, "--client-secret", ""), "--client-id and --client-secret must not be empty"),
        (("--client-id", "x"), "--client-id is an option of --protocol solidsoft-rest"),
        (("--token-lifetime", "60"), "--token-lifetime is an option of --protocol solidsoft-rest"),
        (
            (*REST, "--own-repeat-limit", "-2"),
            "--own-repeat-limit must be -1 (no counter) or more, not -2",
        ),
    ],
)
def test_bad_rest_options_exit_2_naming_the_option(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code = main(["nmvs-sim", "--plain-http", "--generate", "3", *args])
    assert (code, capsys.readouterr().err) == (2, f"nmvs-sim: error: {message}\n")


def test_rest_https_needs_a_certificate_and_key(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["nmvs-sim", *REST, "--generate", "3"])
    assert (code, capsys.readouterr().err) == (
        2,
        "nmvs-sim: error: HTTPS needs --cert and --key (or use --plain-http)\n",
    )
