"""nmvs-gateway: scanners → exact pack identifiers → NMVS transactions, published over MQTT.

The package follows the data: ``capture`` (scanner devices) → ``codes`` (key events and bytes
into pack identifiers) → ``engine`` (durable queue, ledger, alert firewall) → ``nmvs`` (the
national system client) and ``mqtt`` (the LGO interface); ``daemon`` wires them, ``simulator``
plays the NMVS, ``selftest`` checks a box.
"""

__version__ = "0.1.0"
