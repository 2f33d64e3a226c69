"""``nmvs-sim``: a faithful simulator of an Arvato SOAP v5 national verification system.

``market`` is the pure state machine, ``soap`` the XML edge, ``server`` the aiohttp service
with its admin API and fault injection, ``marketfile`` the ``--packs`` format and generator,
``persistence`` the optional SQLite state. Tests and demos start one in-process with
:func:`gateway.simulator.server.running_simulator`.
"""
