"""arca: an OCI artifact registry."""

__version__ = "0.1.0"
