"""The signing toolkit: RFC 3986 encoding and canonical forms as every vendor's scheme uses them."""

from __future__ import annotations

from app.gateway import signing


def test_percent_encoding_is_rfc3986() -> None:
    assert signing.percent_encode("a b*~/+") == "a%20b%2A~%2F%2B"
    assert signing.percent_encode("中") == "%E4%B8%AD"


def test_canonical_query_sorts_encodes_and_drops() -> None:
    pairs = signing.parse_query("b=2&a=x+y&Signature=zzz&c=")
    assert pairs == [("b", "2"), ("a", "x y"), ("Signature", "zzz"), ("c", "")]
    assert signing.canonical_query(pairs, drop=frozenset({"Signature"})) == "a=x%20y&b=2&c="


def test_query_parsing_can_keep_plus_signs() -> None:
    assert signing.parse_query("k=a+b%2B", plus_is_space=False) == [("k", "a+b+")]


def test_canonical_headers_lowercase_trim_and_join() -> None:
    headers = [("Host", " h:1 "), ("X-A", "1"), ("x-a", "2  3")]
    assert signing.canonical_headers(headers, ["host", "x-a"]) == "host:h:1\nx-a:1,2 3\n"


def test_hmacs_match_the_rfc_test_vectors() -> None:
    # RFC 2202 test case 2 (HMAC-SHA1, hex effcdf6a...7c79) and RFC 4231 test case 2 (HMAC-SHA256).
    assert signing.hmac_sha1_b64("Jefe", "what do ya want for nothing?") == "7/zfauXrL6LSdBbV8YTfnCWafHk="
    assert (
        signing.hmac_sha256_hex("Jefe", "what do ya want for nothing?")
        == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_constant_time_compare() -> None:
    assert signing.same("abc", "abc") and not signing.same("abc", "abd")
