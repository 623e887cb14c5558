"""``RawRequest``'s header list is exactly what werkzeug's ``EnvironHeaders`` would list: every
signature scheme reads the headers through it."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.datastructures import EnvironHeaders

from app.gateway import raw


@pytest.mark.parametrize(
    "environ",
    [
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/"},
        {
            "HTTP_HOST": "mps.example",
            "HTTP_AUTHORIZATION": "acs key:sig",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": "17",
            "HTTP_X_ACS_SIGNATURE_NONCE": "n-1",
            "HTTP_X_JDCLOUD_DATE": "20261201T000000Z",
            "wsgi.input": object(),
        },
        # a client's own Content-Type header spelled as HTTP_: WSGI servers never set one, and
        # werkzeug leaves it out (the body headers come from CONTENT_TYPE/CONTENT_LENGTH)
        {"HTTP_CONTENT_TYPE": "text/plain", "HTTP_CONTENT_LENGTH": "3", "CONTENT_TYPE": "", "CONTENT_LENGTH": ""},
        {"HTTP_X_WEIRD__NAME_": "v", "HTTP_": "empty name", "HTTP_ACCEPT": "", "CONTENT_LENGTH": "0"},
    ],
)
def test_headers_match_werkzeugs_listing(environ: dict[str, Any]) -> None:
    expected = tuple(EnvironHeaders(environ).items())
    assert raw._headers(environ) == expected
    assert raw._headers(environ) == expected  # again, with the names remembered


def test_client_chosen_names_are_remembered_only_up_to_the_bound() -> None:
    environ = {f"HTTP_X_NAME_{i}": str(i) for i in range(2 * raw._MAX_HEADER_NAMES)}
    assert raw._headers(environ) == tuple(EnvironHeaders(environ).items())
    assert len(raw._HEADER_NAMES) <= raw._MAX_HEADER_NAMES
