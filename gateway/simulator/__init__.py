"""``nmvs-sim``: a faithful simulator of a national verification system, speaking Arvato's
SOAP v5 or Solidsoft Reply's REST interface over one market.

``market`` is the pure state machine, ``soap`` the XML edge, ``rest`` (tables in
``rest_mapping``) the REST face, ``server`` the aiohttp service with its admin API,
``faultstep`` the fault injection both faces share, ``marketfile`` the ``--packs`` format and
generator, ``persistence`` the optional SQLite state. Tests and demos start one in-process with
:func:`gateway.simulator.server.running_simulator`.
"""
