"""Device discovery from /dev and sysfs (laid out in a temporary directory), the scanner
heuristic, HID descriptors, and the permission diagnosis."""

from __future__ import annotations

import grp
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from evdev import ecodes
from hypothesis import given
from hypothesis import strategies as st

from gateway.capture.devices import (
    InputDeviceInfo,
    KernelInput,
    access_problem,
    has_pos_usage_page,
    hidraw_report_descriptor,
    key_bits,
    list_hidraw,
    select_device,
)
from tests.capture.helpers import config

WORD = struct.calcsize("L") * 8
KEYBOARD_KEYS = {*range(1, 120)}  # a full keyboard: letters, digits, Enter…
CONSUMER_KEYS = {ecodes.KEY_VOLUMEUP, ecodes.KEY_VOLUMEDOWN, ecodes.KEY_MUTE}


def bitmap(codes: set[int]) -> str:
    """Encode like the kernel's sysfs capability files: hex words, most significant first."""
    words = [0] * (max(codes, default=0) // WORD + 1)
    for code in codes:
        words[code // WORD] |= 1 << (code % WORD)
    return " ".join(f"{w:x}" for w in reversed(words))


@given(st.sets(st.integers(min_value=0, max_value=767)))
def test_key_bits_reads_kernel_bitmaps(codes: set[int]) -> None:
    assert key_bits(bitmap(codes)) == codes


def add_input(
    root: Path, number: int, name: str, vidpid: tuple[int, int], keys: set[int], by_id: str = ""
) -> str:
    node = root / "dev" / "input" / f"event{number}"
    node.parent.mkdir(parents=True, exist_ok=True)
    node.touch()
    device = root / "sys" / f"event{number}" / "device"
    (device / "id").mkdir(parents=True)
    (device / "capabilities").mkdir()
    (device / "name").write_text(name + "\n")
    (device / "phys").write_text(f"usb-0000:00:14.0-{number}/input0\n")
    (device / "id" / "vendor").write_text(f"{vidpid[0]:04x}\n")
    (device / "id" / "product").write_text(f"{vidpid[1]:04x}\n")
    (device / "capabilities" / "key").write_text(bitmap(keys) + "\n")
    if by_id:
        link = root / "dev" / "input" / "by-id" / by_id
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(node)
    return str(node)


@pytest.fixture
def inputs(tmp_path: Path) -> list[InputDeviceInfo]:
    add_input(tmp_path, 3, "Logitech USB Keyboard", (0x046D, 0xC31C), KEYBOARD_KEYS)
    add_input(tmp_path, 10, "Honeywell 1950g Consumer Control", (0x0C2E, 0x0B61), CONSUMER_KEYS)
    add_input(
        tmp_path,
        11,
        "Honeywell 1950g",
        (0x0C2E, 0x0B61),
        KEYBOARD_KEYS,
        "usb-Honeywell_1950g-event-kbd",
    )
    add_input(tmp_path, 12, "USB Barcode Scanner", (0x0483, 0x0011), KEYBOARD_KEYS)
    add_input(tmp_path, 4, "Generic HID 0483:0012", (0x0483, 0x0012), KEYBOARD_KEYS)
    return KernelInput(str(tmp_path / "dev" / "input"), str(tmp_path / "sys")).list()


def test_listing_reads_identity_and_keys_from_sysfs(
    inputs: list[InputDeviceInfo], tmp_path: Path
) -> None:
    by_name = {i.name: i for i in inputs}
    assert [Path(i.path).name for i in inputs] == [
        "event3",
        "event4",
        "event10",
        "event11",
        "event12",
    ]
    scanner = by_name["Honeywell 1950g"]
    assert (scanner.vidpid, scanner.types_text, scanner.error) == ("0c2e:0b61", True, None)
    assert scanner.links == (str(tmp_path / "dev/input/by-id/usb-Honeywell_1950g-event-kbd"),)
    assert not by_name["Honeywell 1950g Consumer Control"].types_text


def test_the_scanner_heuristic(inputs: list[InputDeviceInfo]) -> None:
    reasons = {i.name: i.scanner_reason() for i in inputs}
    assert reasons == {
        "Logitech USB Keyboard": None,  # the POS keyboard: never a scanner
        "Generic HID 0483:0012": None,  # unknown vendor, neutral name: needs an explicit match
        "Honeywell 1950g Consumer Control": None,  # cannot type text
        "Honeywell 1950g": "vendor 0c2e is Honeywell",
        "USB Barcode Scanner": "name contains 'Barcode'",
    }


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ("any", "event11"),
        ("0c2e:0b61", "event11"),  # not the consumer-control node of the same scanner
        ("0483:0012", "event4"),
        ("name:*barcode*", "event12"),
        ("name:Logitech*", "event3"),  # explicit: the technician asked for it
        ("046d:0000", None),
    ],
)
def test_select_device(inputs: list[InputDeviceInfo], match: str, expected: str | None) -> None:
    found = select_device(config(id="s", kind="evdev", match=match), inputs, set())
    assert (found and Path(found.path).name) == expected


def test_select_by_stable_link_and_skip_claimed(
    inputs: list[InputDeviceInfo], tmp_path: Path
) -> None:
    link = str(tmp_path / "dev/input/by-id/usb-Honeywell_1950g-event-kbd")
    found = select_device(config(id="s", kind="evdev", match=link), inputs, set())
    assert found is not None and found.path.endswith("event11")
    again = select_device(config(id="s", kind="evdev", match="any"), inputs, {found.path})
    assert again is not None and again.path.endswith("event12")


def test_no_input_directory_lists_nothing(tmp_path: Path) -> None:
    assert KernelInput(str(tmp_path / "absent")).list() == []


# HID report descriptors (bytes as a USB analyser shows them)
POS_SCANNER = bytes.fromhex(
    "058c0902a101 0902 a102 8501 0912 150026ff00 7508 953f 8102 c0 c0".replace(" ", "")
)
POS_LONG_PAGE = bytes.fromhex("068c00 0902 a101 c0".replace(" ", ""))
KEYBOARD = bytes.fromhex("05010906a101 0507 19e0 29e7 1500 2501 7501 9508 8102 c0".replace(" ", ""))
USAGE_8C_NOT_PAGE = bytes.fromhex(
    "0501 098c a101 c0".replace(" ", "")
)  # usage 0x8C on the desktop page


@pytest.mark.parametrize(
    ("descriptor", "expected"),
    [
        (POS_SCANNER, True),
        (POS_LONG_PAGE, True),
        (KEYBOARD, False),
        (USAGE_8C_NOT_PAGE, False),
        (b"", False),
    ],
)
def test_hid_pos_usage_page(descriptor: bytes, expected: bool) -> None:
    assert has_pos_usage_page(descriptor) is expected


def test_list_hidraw_flags_pos_scanners(tmp_path: Path) -> None:
    for number, descriptor, hid_id, name in [
        (0, KEYBOARD, "0003:0000046D:0000C31C", "Logitech USB Keyboard"),
        (1, POS_SCANNER, "0003:00000C2E:00000B61", "Honeywell 1950g"),
    ]:
        (tmp_path / "dev").mkdir(exist_ok=True)
        (tmp_path / "dev" / f"hidraw{number}").touch()
        device = tmp_path / "sys" / f"hidraw{number}" / "device"
        device.mkdir(parents=True)
        (device / "report_descriptor").write_bytes(descriptor)
        (device / "uevent").write_text(f"DRIVER=hid-generic\nHID_ID={hid_id}\nHID_NAME={name}\n")
    (tmp_path / "dev" / "nmvs").mkdir()
    (tmp_path / "dev" / "nmvs" / "hidpos-hidraw1").symlink_to(tmp_path / "dev" / "hidraw1")
    nodes = list_hidraw(str(tmp_path / "dev"), str(tmp_path / "sys"))
    assert nodes[1].links == (str(tmp_path / "dev" / "nmvs" / "hidpos-hidraw1"),)
    assert [(Path(n.path).name, n.vendor, n.product, n.name, n.hid_pos) for n in nodes] == [
        ("hidraw0", 0x046D, 0xC31C, "Logitech USB Keyboard", False),
        ("hidraw1", 0x0C2E, 0x0B61, "Honeywell 1950g", True),
    ]


def test_report_descriptor_through_a_stable_link(tmp_path: Path) -> None:
    device = tmp_path / "sys" / "hidraw5" / "device"
    device.mkdir(parents=True)
    (device / "report_descriptor").write_bytes(POS_SCANNER)
    (tmp_path / "hidraw5").touch()
    (tmp_path / "hidpos-hidraw5").symlink_to(tmp_path / "hidraw5")
    assert (
        hidraw_report_descriptor(str(tmp_path / "hidpos-hidraw5"), str(tmp_path / "sys"))
        == POS_SCANNER
    )
    assert hidraw_report_descriptor(str(tmp_path / "hidraw6"), str(tmp_path / "sys")) == b""


def test_accessible_nodes_have_no_problem(tmp_path: Path) -> None:
    node = tmp_path / "ttyACM0"
    node.touch()
    assert access_problem(str(node), "serial") is None
    assert (
        access_problem(str(tmp_path / "gone"), "serial")
        == f"{tmp_path}/gone: No such file or directory"
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to become nobody"
)
@pytest.mark.parametrize(
    ("kind", "group", "fix"),
    [
        (
            "serial",
            "dialout",
            "add the service user to group dialout (usermod -aG dialout <user>), or install "
            "the udev rule from systemd/ that gives scanner nodes to group nmvs-scanner, and add the service user "
            "to nmvs-scanner",
        ),
        (
            "serial",
            "root",
            "install the udev rule from systemd/ that gives scanner nodes to group nmvs-scanner, "
            "and add the service user to nmvs-scanner",
        ),
        (
            "hidraw",
            "root",
            "hidraw nodes are root-only by default: install the udev rule from systemd/ that "
            "gives scanner nodes to group nmvs-scanner, and add the service user to nmvs-scanner",
        ),
        (
            "evdev",
            "input",
            "install the udev rule from systemd/ that gives scanner nodes to group nmvs-scanner, "
            "and add the service user to nmvs-scanner (not to group input: it would expose every keyboard, the POS "
            "keyboard included)",
        ),
        (
            "evdev",
            "root",
            "install the udev rule from systemd/ that gives scanner nodes to group nmvs-scanner, "
            "and add the service user to nmvs-scanner",
        ),
    ],
)
def test_permission_problems_name_the_fix(kind: str, group: str, fix: str) -> None:
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        pytest.skip(f"no group {group} on this system")
    with tempfile.TemporaryDirectory() as public:  # pytest's tmp_path is not reachable by nobody
        Path(public).chmod(0o755)
        node = Path(public) / "node"
        node.touch()
        node.chmod(0o660)
        os.chown(node, 0, gid)
        code = "import sys; from gateway.capture.devices import access_problem; print(access_problem(*sys.argv[1:]))"
        result = subprocess.run(
            [
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                sys.executable,
                "-c",
                code,
                str(node),
                kind,
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parents[2],
        )
    assert (
        result.stdout.strip() == f"permission denied ({node} is group {group}, mode 0o660): {fix}"
    )
