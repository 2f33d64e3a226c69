"""The link to the national verification system: one async interface, several wire protocols."""
