"""Black-box OCI distribution conformance suite: HTTP only, never imports arca."""
