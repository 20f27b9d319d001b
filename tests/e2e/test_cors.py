"""CORS (--cors-allow-origins, as TEI names it): off by default, exact origins or *, preflights answered
without credentials."""
import pytest

from helpers import MODEL_NAME

A, B, OTHER = "http://a.example", "https://b.example:8443", "http://evil.example"
PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os"}


def preflight(srv, origin, path="/v1/embeddings"):
    return srv.request("OPTIONS", path, headers={"Origin": origin, **PREFLIGHT})


def test_off_by_default(server):
    status, headers, _ = server.request("POST", "/v1/embeddings", {"model": MODEL_NAME, "input": "a"},
                                        headers={"Origin": A})
    assert status == 200
    assert not [h for h in headers if h.startswith("access-control-")], headers
    status, headers, _ = preflight(server, A)
    assert status == 405 and "access-control-allow-origin" not in headers


def test_listed_origins_get_headers_and_preflights_others_do_not(start_server):
    srv = start_server("--cors-allow-origins", A, B, "--api-key", "k")
    for origin in (A, B):
        status, headers, body = preflight(srv, origin)  # no Authorization: browsers send none on a preflight
        assert status == 204, body
        assert headers["access-control-allow-origin"] == origin
        assert "POST" in headers["access-control-allow-methods"]
        assert headers["access-control-allow-headers"] == PREFLIGHT["Access-Control-Request-Headers"]
        assert int(headers["access-control-max-age"]) > 0
        assert headers["vary"] == "Origin"
        status, headers, _ = srv.request("POST", "/v1/embeddings", {"model": MODEL_NAME, "input": "a"},
                                         headers={"Origin": origin, "Authorization": "Bearer k"})
        assert status == 200 and headers["access-control-allow-origin"] == origin
    # Errors carry the header too, so a browser can read them.
    status, headers, _ = srv.request("POST", "/v1/embeddings", {"input": "a"}, headers={"Origin": A})
    assert status == 401 and headers["access-control-allow-origin"] == A
    status, headers, body = preflight(srv, OTHER)
    assert status == 403 and "access-control-allow-origin" not in headers and b"--cors-allow-origins" in body
    status, headers, _ = srv.request("GET", "/health", headers={"Origin": OTHER})
    assert status == 200 and "access-control-allow-origin" not in headers


@pytest.mark.parametrize("path", ["/embed", "/health"])
def test_star_allows_any_origin(start_server, path):
    srv = start_server("--cors-allow-origins", "*")
    status, headers, _ = preflight(srv, OTHER, path)
    assert status == 204 and headers["access-control-allow-origin"] == "*" and "vary" not in headers
    assert "content-length" not in headers, "a 204 carries no Content-Length (RFC 9110 §8.6)"
    method = "POST" if path == "/embed" else "GET"
    status, headers, _ = srv.request(method, path, {"inputs": "a"} if method == "POST" else None,
                                     headers={"Origin": OTHER})
    assert status == 200 and headers["access-control-allow-origin"] == "*"
