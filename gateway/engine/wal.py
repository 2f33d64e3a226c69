"""Damage in SQLite's write-ahead log, found before SQLite opens it and silently drops it.

When SQLite opens a database after a crash it replays the WAL's frames up to the first one
whose checksum fails and ignores the rest without a word. A torn last write after a power cut
looks like that, and is harmless: with ``synchronous=FULL`` no caller was ever told that
transaction was committed. Damage in the middle of the log (a bad sector, a stray write) looks
the same and is not harmless: every transaction after it vanishes, including dispenses the
LGO was told were ``queued``. :func:`wal_damage` tells the two apart: frames of the log's
current generation (same salts) that end more than one transaction *after* the first bad
frame can only be lost committed work.

The format (sqlite.org/fileformat2.html, "The Write-Ahead Log"): a 32-byte header (magic,
version, page size, checkpoint sequence, two salts, a checksum), then frames of a 24-byte
header (page number, database size for a commit frame else 0, the two salts, a cumulative
checksum) and one page. The checksum runs over 32-bit words, big- or little-endian as the
magic's last bit says.
"""

from __future__ import annotations

import struct
from pathlib import Path

HEADER = 32
FRAME_HEADER = 24
MAGIC = (0x377F0682, 0x377F0683)  # little-endian checksums, big-endian checksums


def wal_damage(wal: Path) -> str | None:
    """A one-line description of committed transactions the log would lose, or None."""
    try:
        data = wal.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) < HEADER:
        return None  # empty or reset: nothing to replay
    magic, _version, page_size, _sequence, salt1, salt2, c1, c2 = struct.unpack(
        ">8I", data[:HEADER]
    )
    if magic not in MAGIC:
        return f"its header is not a WAL header (magic {magic:#x})"
    big_endian = magic & 1 == 1
    sums = _checksum(data[:24], big_endian, (0, 0))
    if sums != (c1, c2):
        return "its header checksum fails"
    if page_size == 1:
        page_size = 65536
    frame_size = FRAME_HEADER + page_size
    frames = (len(data) - HEADER) // frame_size
    first_bad = None
    commits_after = 0
    for index in range(frames):
        start = HEADER + index * frame_size
        page, commit, f_salt1, f_salt2, f_c1, f_c2 = struct.unpack(
            ">6I", data[start : start + FRAME_HEADER]
        )
        if (f_salt1, f_salt2) != (salt1, salt2):
            continue  # a frame of an earlier generation, left after a reset: not replayed
        if first_bad is None:
            sums = _checksum(data[start : start + 8], big_endian, sums)
            sums = _checksum(data[start + FRAME_HEADER : start + frame_size], big_endian, sums)
            if sums != (f_c1, f_c2) or page == 0:
                first_bad = index
        elif commit:
            commits_after += 1
    if first_bad is not None and commits_after > 1:
        return (
            f"frame {first_bad + 1} of {frames} is damaged and {commits_after} committed "
            "transactions follow it"
        )
    return None


def _checksum(data: bytes, big_endian: bool, seed: tuple[int, int]) -> tuple[int, int]:
    words = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    s0, s1 = seed
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1
