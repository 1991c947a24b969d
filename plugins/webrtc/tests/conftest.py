from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentsession_webrtc.testing import loopback_only_ice


@pytest.fixture(autouse=True)
def loopback_ice() -> Iterator[None]:
    with loopback_only_ice():
        yield
