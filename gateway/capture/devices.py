"""The kernel boundary: finding input, serial and hidraw device nodes and describing them.

Everything that touches ``/dev`` and ``/sys`` directly lives here, behind two small seams the
readers use — ``InputBackend`` (list and open evdev devices) and ``EvdevDevice`` (the calls
the evdev reader makes on an open device) — so tests can stand in a fake device at exactly
the kernel boundary. Also here: the "looks like a scanner" heuristic and the permission
diagnosis the ``scanners`` command prints.
"""

from __future__ import annotations

import glob
import grp
import os
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, cast

from evdev import InputDevice, InputEvent, ecodes

from gateway.capture.config import MatchKind, ScannerConfig

# USB vendors whose keyboard-class devices are bar-code scanners.
SCANNER_VENDORS: dict[int, str] = {
    0x0C2E: "Honeywell",
    0x23D0: "Youjie (Honeywell)",
    0x05E0: "Symbol/Zebra",
    0x05F9: "Datalogic",
    0x1EAB: "Newland",
}
_SCANNER_NAME = re.compile(
    r"scanner|barcode|bar code|honeywell|metrologic|hand held|zebra|symbol|datalogic|newland|opticon",
    re.IGNORECASE,
)
_TYPING_KEYS = frozenset(
    [ecodes.KEY_A, ecodes.KEY_Z, ecodes.KEY_ENTER]
    + [getattr(ecodes, f"KEY_{d}") for d in "1234567890"]
)

SCANNER_GROUP = "nmvs-scanner"
UDEV_FIX = f"install the udev rule from systemd/ that gives scanner nodes to group {SCANNER_GROUP}, and add the service user to {SCANNER_GROUP}"


class EvdevDevice(Protocol):
    """What the evdev reader uses of an open ``evdev.InputDevice``."""

    path: str
    name: str

    @property
    def fd(self) -> int: ...

    def read(self) -> Iterable[InputEvent]: ...

    def grab(self) -> None: ...

    def ungrab(self) -> None: ...

    def active_keys(self) -> list[int]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class InputDeviceInfo:
    """One ``/dev/input/event*`` node as seen without grabbing it."""

    path: str  # the event node, e.g. /dev/input/event5
    name: str = ""
    phys: str = ""
    vendor: int = 0
    product: int = 0
    types_text: bool = False  # has letter, digit and Enter keys: can act as a keyboard wedge
    links: tuple[str, ...] = ()  # /dev/input/by-id and by-path symlinks pointing to it
    error: str | None = None  # could not be opened (permission…)

    @property
    def vidpid(self) -> str:
        return f"{self.vendor:04x}:{self.product:04x}"

    def scanner_reason(self) -> str | None:
        """Why this looks like a bar-code scanner, or None. Only devices that type text count;
        among them, a known scanner vendor id or a scanner-like name. A plain keyboard (the POS
        keyboard) never qualifies unless its name says scanner."""
        if not self.types_text:
            return None
        if self.vendor in SCANNER_VENDORS:
            return f"vendor {self.vendor:04x} is {SCANNER_VENDORS[self.vendor]}"
        found = _SCANNER_NAME.search(self.name)
        if found:
            return f"name contains {found[0]!r}"
        return None


class InputBackend(Protocol):
    def list(self) -> list[InputDeviceInfo]: ...

    def open(self, path: str) -> EvdevDevice: ...


class KernelInput:
    """The real ``/dev/input`` through python-evdev."""

    def __init__(self, root: str = "/dev/input", sys_class: str = "/sys/class/input") -> None:
        self._root = root
        self._sys_class = sys_class

    def list(self) -> list[InputDeviceInfo]:
        nmvs = os.path.join(os.path.dirname(self._root), "nmvs")  # our udev rule's links
        links = _links_by_target(
            [os.path.join(self._root, "by-id"), os.path.join(self._root, "by-path"), nmvs]
        )
        infos = []
        for path in sorted(glob.glob(os.path.join(self._root, "event*")), key=_natural):
            infos.append(describe_input(path, tuple(links.get(path, ())), self._sys_class))
        return infos

    def open(self, path: str) -> EvdevDevice:
        return cast(EvdevDevice, InputDevice(path))


def describe_input(
    path: str, links: tuple[str, ...] = (), sys_class: str = "/sys/class/input"
) -> InputDeviceInfo:
    """Identity and key capabilities from sysfs: no need to open (or have access to) the node."""
    device_dir = os.path.join(sys_class, os.path.basename(path), "device")

    def read(name: str) -> str:
        return _read_bytes(os.path.join(device_dir, name)).decode(errors="replace").strip()

    try:
        vendor, product = int(read("id/vendor") or "0", 16), int(read("id/product") or "0", 16)
    except ValueError:
        vendor = product = 0
    keys = key_bits(read("capabilities/key"))
    error = None
    if not os.access(path, os.R_OK):
        error = "permission denied"
    return InputDeviceInfo(
        path,
        name=read("name"),
        phys=read("phys"),
        vendor=vendor,
        product=product,
        types_text=keys >= _TYPING_KEYS,
        links=links,
        error=error,
    )


def key_bits(bitmap: str) -> set[int]:
    """Key codes set in a sysfs capability bitmap (hex words, most significant first)."""
    word_bits = struct.calcsize("L") * 8
    codes = set()
    for index, word in enumerate(reversed(bitmap.split())):
        value = int(word, 16)
        while value:
            low = value & -value
            codes.add(index * word_bits + low.bit_length() - 1)
            value ^= low
    return codes


def _links_by_target(directories: Iterable[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for directory in directories:
        for link in sorted(glob.glob(os.path.join(directory, "*"))):
            found.setdefault(os.path.realpath(link), []).append(link)
    return found


def _natural(path: str) -> tuple[str, int]:
    head = path.rstrip("0123456789")
    tail = path[len(head) :]
    return head, int(tail) if tail else -1


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A serial port or hidraw node."""

    path: str
    kind: str  # "serial" | "hidraw"
    links: tuple[str, ...] = ()
    vendor: int = 0
    product: int = 0
    name: str = ""
    hid_pos: bool = False  # hidraw: report descriptor declares usage page 0x8C (bar-code scanner)


def list_serial_ports(dev: str = "/dev") -> list[NodeInfo]:
    """USB CDC-ACM and USB-serial ports (``ttyACM*``, ``ttyUSB*``) with their stable links."""
    links = _links_by_target(
        [
            os.path.join(dev, "serial", "by-id"),
            os.path.join(dev, "serial", "by-path"),
            os.path.join(dev, "nmvs"),
        ]
    )
    ports = []
    for pattern in ("ttyACM*", "ttyUSB*"):
        for path in sorted(glob.glob(os.path.join(dev, pattern)), key=_natural):
            vendor, product, name = _usb_identity(f"/sys/class/tty/{os.path.basename(path)}/device")
            ports.append(
                NodeInfo(path, "serial", tuple(links.get(path, ())), vendor, product, name)
            )
    return ports


def list_hidraw(dev: str = "/dev", sys_class: str = "/sys/class/hidraw") -> list[NodeInfo]:
    """hidraw nodes, flagging those whose report descriptor has the bar-code scanner page."""
    nodes = []
    links = _links_by_target([os.path.join(dev, "nmvs")])
    for path in sorted(glob.glob(os.path.join(dev, "hidraw*")), key=_natural):
        device_dir = os.path.join(sys_class, os.path.basename(path), "device")
        vendor, product, name = _hid_identity(os.path.join(device_dir, "uevent"))
        descriptor = hidraw_report_descriptor(path, sys_class)
        nodes.append(
            NodeInfo(
                path,
                "hidraw",
                tuple(links.get(path, ())),
                vendor,
                product,
                name,
                has_pos_usage_page(descriptor),
            )
        )
    return nodes


def hidraw_report_descriptor(path: str, sys_class: str = "/sys/class/hidraw") -> bytes:
    """The HID report descriptor behind a hidraw node (or a link to it); b"" when unknown."""
    node = os.path.basename(os.path.realpath(path))
    return _read_bytes(os.path.join(sys_class, node, "device", "report_descriptor"))


def has_pos_usage_page(descriptor: bytes) -> bool:
    """True when a HID report descriptor selects usage page 0x8C (Bar Code Scanner).

    Walks the short items so a 0x8C inside another item's data is not mistaken for it."""
    i = 0
    while i < len(descriptor):
        prefix = descriptor[i]
        if prefix == 0xFE:  # long item: size in the next byte
            i += 3 + (descriptor[i + 1] if i + 1 < len(descriptor) else 0)
            continue
        size = (0, 1, 2, 4)[prefix & 0x03]
        data = descriptor[i + 1 : i + 1 + size]
        if prefix & 0xFC == 0x04 and int.from_bytes(data, "little") == 0x8C:  # Usage Page
            return True
        i += 1 + size
    return False


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _hid_identity(uevent_path: str) -> tuple[int, int, str]:
    fields = dict(
        line.split("=", 1)
        for line in _read_bytes(uevent_path).decode(errors="replace").splitlines()
        if "=" in line
    )
    parts = fields.get("HID_ID", "").split(":")
    if len(parts) == 3:
        return int(parts[1], 16) & 0xFFFF, int(parts[2], 16) & 0xFFFF, fields.get("HID_NAME", "")
    return 0, 0, fields.get("HID_NAME", "")


def _usb_identity(device_dir: str) -> tuple[int, int, str]:
    # the tty's device is the USB interface; its parent holds idVendor/idProduct/product
    usb_dir = os.path.dirname(os.path.realpath(device_dir))

    def read(name: str) -> str:
        return _read_bytes(os.path.join(usb_dir, name)).decode(errors="replace").strip()

    try:
        return int(read("idVendor") or "0", 16), int(read("idProduct") or "0", 16), read("product")
    except ValueError:
        return 0, 0, ""


def access_problem(path: str, kind: str) -> str | None:
    """None if the node can be opened read-write; otherwise what is wrong and the exact fix."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if os.access(path, os.R_OK | os.W_OK):
        return None
    try:
        group = grp.getgrgid(stat.st_gid).gr_name
    except KeyError:
        group = str(stat.st_gid)
    mode = oct(stat.st_mode & 0o777)
    if kind == "hidraw":
        fix = f"hidraw nodes are root-only by default: {UDEV_FIX}"
    elif kind == "serial" and group != "root":
        fix = f"add the service user to group {group} (usermod -aG {group} <user>), or {UDEV_FIX}"
    elif kind == "serial":
        fix = UDEV_FIX
    elif group == "input":
        fix = f"{UDEV_FIX} (not to group input: it would expose every keyboard, the POS keyboard included)"
    else:
        fix = UDEV_FIX
    return f"permission denied ({path} is group {group}, mode {mode}): {fix}"


def select_device(
    config: ScannerConfig, devices: list[InputDeviceInfo], claimed: set[str]
) -> InputDeviceInfo | None:
    """The device this scanner should take, or None. Only devices that can type text qualify
    (a scanner's extra consumer-control node does not)."""
    match = config.match
    assert match is not None  # evdev configs always have one (ScannerConfig.from_toml)
    target = os.path.realpath(match.pattern) if match.kind is MatchKind.PATH else None
    for info in devices:
        if info.path in claimed:
            continue
        if match.kind is MatchKind.PATH:
            if info.path == target or match.pattern in info.links:
                return info
            continue
        if not info.types_text:
            continue
        if (
            (
                match.kind is MatchKind.VIDPID
                and (info.vendor, info.product) == (match.vendor, match.product)
            )
            or (match.kind is MatchKind.NAME and match.matches_name(info.name))
            or (match.kind is MatchKind.ANY and info.scanner_reason() is not None)
        ):
            return info
    return None
