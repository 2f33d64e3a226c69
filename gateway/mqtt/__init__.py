"""The MQTT interface for pharmacy software (LGO): the broker connection and the message contract.

``bridge`` hides aiomqtt (connection loop, TLS, persistent session, retained state, PUBACK-confirmed
publishing); ``contract`` owns the topics, envelopes and request parsing documented in
``docs/mqtt.md`` and ``docs/schemas/``.
"""
