"""HTTP framing the issue's adversarial test broke: transfer codings that smuggle a second request, a missing
Host, two Authorization headers. Each must be one 400 and a closed connection, never a second answer."""
import pytest

from helpers import raw_http

SMUGGLED = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("coding", [b"gzip", b"identity", b"chunked, chunked", b"gzip, chunked", b"chunked, gzip"])
def test_transfer_coding_other_than_one_chunked_is_400_and_closes(server, coding):
    # Beast reads a request whose last coding is not `chunked` as bodiless: the body below would then be
    # answered as a request of its own (200 from /health), i.e. smuggled past whatever fronts the server.
    body = SMUGGLED
    wire = (b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: " + coding + b"\r\n\r\n" + body)
    statuses, raw, closed = raw_http(server.port, wire)
    assert statuses == [400], f"Transfer-Encoding {coding!r}: one 400 expected, got {statuses}: {raw[:600]!r}"
    assert b"Transfer-Encoding" in raw, "the message should name the header at fault"
    assert closed, "the connection must close after a framing error"


def test_transfer_encoding_with_content_length_is_400(server):
    wire = (b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: "
            + str(len(SMUGGLED)).encode() + b"\r\n\r\n" + SMUGGLED)
    statuses, raw, closed = raw_http(server.port, wire)
    assert statuses == [400] and closed, (statuses, raw[:600])


def test_chunked_alone_is_still_accepted(server):
    body = b'{"input": "chunked body"}'
    wire = (b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    statuses, raw, _ = raw_http(server.port, wire)
    assert statuses == [200], raw[:600]


@pytest.mark.parametrize("hosts", [b"", b"Host: a\r\nHost: b\r\n"])
def test_http11_request_without_exactly_one_host_is_400(server, hosts):
    statuses, raw, closed = raw_http(server.port, b"GET /health HTTP/1.1\r\n" + hosts + b"\r\n")
    assert statuses == [400] and closed, (statuses, raw[:600])
    assert b"Host" in raw
    # HTTP/1.0 has no Host requirement.
    statuses, raw, _ = raw_http(server.port, b"GET /health HTTP/1.0\r\n\r\n")
    assert statuses == [200], raw[:600]


def test_two_authorization_headers_are_400(server):
    wire = (b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n")
    statuses, raw, closed = raw_http(server.port, wire)
    assert statuses == [400] and closed, (statuses, raw[:600])
    assert b"Authorization" in raw
