"""Decoding: scanner key events and bytes → text → an exact FMD pack identifier, with problems."""
