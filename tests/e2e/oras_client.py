"""oras-py as a real client, without its sleeping retries and with a request timeout."""

from __future__ import annotations

import functools
from typing import Any

import oras.provider


class OrasClient(oras.provider.Registry):  # type: ignore[misc]
    # oras-py wraps do_request in a retry that sleeps 3 + 5 + 11 + 29 + 83 s on errors.
    do_request = oras.provider.Registry.do_request.__wrapped__

    def __init__(self, hostname: str, timeout: float = 60) -> None:
        super().__init__(hostname=hostname, insecure=True)
        self.session.request = functools.partial(self.session.request, timeout=timeout)

    @staticmethod
    def host(url: str) -> str:
        return url.removeprefix("http://")

    def push_files(self, target: str, files: list[str], **kwargs: Any) -> Any:
        return self.push(target=target, files=files, disable_path_validation=True, **kwargs)
