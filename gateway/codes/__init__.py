"""Decoding: scanner key events and bytes → text → an exact FMD pack identifier, with problems."""

from gateway.codes.decode import DecodedScan, DecodeSettings, decode_bytes, decode_keys, decode_text
from gateway.codes.pack import Nhrn, PackFormatError, PackIdentifier
from gateway.codes.problems import Problem, ProblemCode, Severity
from gateway.codes.validation import validate_pack

__all__ = [
    "DecodeSettings",
    "DecodedScan",
    "Nhrn",
    "PackFormatError",
    "PackIdentifier",
    "Problem",
    "ProblemCode",
    "Severity",
    "decode_bytes",
    "decode_keys",
    "decode_text",
    "validate_pack",
]
