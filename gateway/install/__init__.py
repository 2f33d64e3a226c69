"""Installing nmvs-gateway on a pharmacy PC: ``nmvs-gateway install`` / ``uninstall``.

From a checkout, before any virtual environment exists: ``sudo python3 -m gateway.install
install``. Standard library only.
"""
