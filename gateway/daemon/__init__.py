"""The daemon (``nmvs-gateway run``): configuration, logging, systemd integration, and the wiring
of capture → engine → MQTT under one supervised task group."""
