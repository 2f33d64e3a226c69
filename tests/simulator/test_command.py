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
