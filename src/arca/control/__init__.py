"""Services behind the /api/v1 control plane: the artifact index, records, verification.

Built on `arca.registry`; the /v2 core never imports this package (`create_app` wires
the index in as a follower of the registry's events).
"""
