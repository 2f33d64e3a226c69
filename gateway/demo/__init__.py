"""``nmvs-gateway demo``: the simulator, a private broker, the daemon and virtual scanners in
one command, with the LGO's view of MQTT live in the terminal."""
