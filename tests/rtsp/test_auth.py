"""Tests for RTSP Basic/Digest authentication, server and client side."""

from __future__ import annotations

import base64
import hashlib
import shutil
import socket
import subprocess
from collections.abc import Callable

import pytest

from custom_components.alexa_cam_bridge.rtsp.auth import (
    REALM,
    BasicCredentials,
    Challenge,
    Credentials,
    DigestCredentials,
    DigestNonceStore,
    client_authorization,
    digest_response,
    parse_authorization,
    parse_challenges,
    verify_basic,
    verify_digest,
    www_authenticate_headers,
)
from custom_components.alexa_cam_bridge.rtsp.messages import (
    Headers,
    RtspParser,
    RtspRequest,
    RtspResponse,
    serialize_request,
    serialize_response,
)
from tests.peers.camera import AuthMethod, FakeCamera


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def rfc2069(user: str, realm: str, password: str, method: str, uri: str, nonce: str) -> str:
    """RFC 2069 response, computed independently of the module."""
    return md5(f"{md5(f'{user}:{realm}:{password}')}:{nonce}:{md5(f'{method}:{uri}')}")


def rfc2617_auth(
    user: str, realm: str, password: str, method: str, uri: str, nonce: str, nc: str, cnonce: str
) -> str:
    """RFC 2617 qop=auth response, computed independently of the module."""
    ha1 = md5(f"{user}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    return md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")


class FakeClock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- RFC 2617 test vector --------------------------------------------------------------------


def test_rfc2617_section_3_5_vector() -> None:
    expected = "6629fae49393a05397450978507c4ef1"
    assert (
        digest_response(
            username="Mufasa",
            password="Circle Of Life",
            realm="testrealm@host.com",
            method="GET",
            uri="/dir/index.html",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop="auth",
            nc="00000001",
            cnonce="0a4f113b",
        )
        == expected
    )
    header = (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
        'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    creds = parse_authorization(header)
    assert isinstance(creds, DigestCredentials)
    assert creds.opaque == "5ccc069c403ebaf9f0171e9517f40e41"
    assert creds.qop == "auth"
    assert creds.nc == "00000001"
    assert verify_digest(creds, method="GET", password="Circle Of Life", realm="testrealm@host.com")
    assert not verify_digest(
        creds, method="GET", password="circle of life", realm="testrealm@host.com"
    )
    assert not verify_digest(
        creds, method="POST", password="Circle Of Life", realm="testrealm@host.com"
    )


# --- AOSP stock client ---------------------------------------------------------------------


def aosp_authorization(user: str, password: str, method: str, url: str, nonce: str) -> str:
    """The header AOSP ARTSPConnection builds: fixed realm, no qop, uri with a trailing space."""
    uri = url + " "
    response = rfc2069(user, "Streaming Server", password, method, uri, nonce)
    return f'Digest nonce="{nonce}", username="{user}", uri="{uri}", response="{response}"'


def test_aosp_trailing_space_uri() -> None:
    store = DigestNonceStore()
    nonce = store.issue("conn-1")
    url = "rtsps://cam.example.com:443/s/abc"
    header = aosp_authorization("u1", "p@ss", "DESCRIBE", url, nonce)
    creds = parse_authorization(header)
    assert isinstance(creds, DigestCredentials)
    assert creds.uri == url + " "
    assert creds.realm is None
    assert creds.qop is None
    assert creds.nc is None
    assert creds.scheme == "digest"
    assert verify_digest(creds, method="DESCRIBE", password="p@ss", username="u1")
    assert not verify_digest(creds, method="DESCRIBE", password="p@ss", username="u2")
    assert not verify_digest(creds, method="SETUP", password="p@ss")
    assert store.check(creds.nonce, creds.nc, "conn-1") == "ok"
    # A stripped uri would hash differently: the raw value is what must be hashed.
    stripped = DigestCredentials(creds.username, None, creds.nonce, url, creds.response)
    assert not verify_digest(stripped, method="DESCRIBE", password="p@ss")


def test_realm_is_streaming_server() -> None:
    assert REALM == "Streaming Server"


# --- parse_authorization -------------------------------------------------------------------


def test_parse_basic() -> None:
    token = base64.b64encode(b"user:pa:ss").decode()
    creds = parse_authorization(f"Basic {token}")
    assert creds == BasicCredentials("user", "pa:ss")
    assert isinstance(creds, BasicCredentials)
    assert creds.scheme == "basic"
    assert "pa:ss" not in repr(creds)
    assert parse_authorization(f"basic   {token}  ") == creds
    latin = base64.b64encode("j\xf6rg:pw".encode("latin-1")).decode()
    assert parse_authorization(f"Basic {latin}") == BasicCredentials("j\xf6rg", "pw")
    utf8 = base64.b64encode("j\xf6rg:pw".encode()).decode()
    assert parse_authorization(f"Basic {utf8}") == BasicCredentials("j\xf6rg", "pw")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Basic",
        "Basic !!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Bearer abc",
        'Digest username="a", nonce="n", uri="u"',
        'Digest username="a", nonce="n", uri="u", response="r" garbage',
        'Digest username="a, nonce="n"',
    ],
)
def test_parse_authorization_rejects(value: str) -> None:
    assert parse_authorization(value) is None


def test_parse_digest_tolerant_forms() -> None:
    value = (
        'Digest   username = "us\\"er" ,realm="Streaming Server",nonce=abc123,'
        ' uri="rtsp://h/s?a=1,b=2", response=ABCDEF, algorithm=MD5 ,USERNAME="ignored",'
    )
    creds = parse_authorization(value)
    assert isinstance(creds, DigestCredentials)
    assert creds.username == 'us"er'
    assert creds.realm == "Streaming Server"
    assert creds.nonce == "abc123"
    assert creds.uri == "rtsp://h/s?a=1,b=2"
    assert creds.response == "ABCDEF"
    assert creds.algorithm == "MD5"


def test_verify_digest_uppercase_response_and_algorithms() -> None:
    nonce = "n0nce"
    response = rfc2069("u", REALM, "pw", "PLAY", "rtsp://h/s/", nonce).upper()
    creds = DigestCredentials("u", REALM, nonce, "rtsp://h/s/", response)
    assert verify_digest(creds, method="PLAY", password="pw")
    # MD5-sess with qop=auth.
    ha1 = md5(f"{md5('u:' + REALM + ':pw')}:{nonce}:cn")
    expected = md5(f"{ha1}:{nonce}:00000002:cn:auth:{md5('PLAY:/x')}")
    sess = DigestCredentials(
        "u", REALM, nonce, "/x", expected, "auth", "00000002", "cn", "MD5-sess"
    )
    assert verify_digest(sess, method="PLAY", password="pw")
    # SHA-256.
    sha = hashlib.sha256
    ha1 = sha(f"u:{REALM}:pw".encode()).hexdigest()
    ha2 = sha(b"PLAY:/x").hexdigest()
    expected = sha(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
    creds = DigestCredentials("u", REALM, nonce, "/x", expected, algorithm="SHA-256")
    assert verify_digest(creds, method="PLAY", password="pw")
    # Unsupported algorithm / qop, or qop without nc: never valid.
    for bad in (
        DigestCredentials("u", REALM, nonce, "/x", expected, algorithm="SHA-512-256"),
        DigestCredentials("u", REALM, nonce, "/x", expected, qop="auth-int", nc="1", cnonce="c"),
        DigestCredentials("u", REALM, nonce, "/x", expected, qop="auth"),
        DigestCredentials("u", REALM, nonce, "/x", expected, algorithm="MD5-sess"),
    ):
        assert not verify_digest(bad, method="PLAY", password="pw")


def test_verify_digest_qop_auth_vector() -> None:
    nonce = "abc"
    resp = rfc2617_auth(
        "cam", REALM, "secret", "SETUP", "rtsp://h/s/trackID=0", nonce, "0000000a", "xyz"
    )
    header = (
        f'Digest username="cam", realm="{REALM}", nonce="{nonce}", uri="rtsp://h/s/trackID=0", '
        f'response="{resp}", qop=auth, nc=0000000a, cnonce="xyz"'
    )
    creds = parse_authorization(header)
    assert isinstance(creds, DigestCredentials)
    assert verify_digest(creds, method="SETUP", password="secret", username="cam")
    assert not verify_digest(creds, method="SETUP", password="secret", realm="other")


def test_verify_basic() -> None:
    creds = BasicCredentials("alexa", "s3cret")
    assert verify_basic(creds, "alexa", "s3cret")
    assert not verify_basic(creds, "alexa", "s3cret!")
    assert not verify_basic(creds, "Alexa", "s3cret")
    assert not verify_basic(creds, "", "")
    assert verify_basic(BasicCredentials("j\xf6rg", "\u20ac"), "j\xf6rg", "\u20ac")


# --- DigestNonceStore ----------------------------------------------------------------------


def test_nonce_issue_and_check() -> None:
    clock = FakeClock()
    store = DigestNonceStore(clock=clock, lifetime=60)
    nonce = store.issue("c1")
    assert nonce.isascii()
    assert '"' not in nonce
    assert store.issue("c1") != nonce
    assert len(store) == 2
    assert store.check(nonce, None, "c1") == "ok"
    assert store.check(nonce, None, "c1") == "ok"  # legacy clients reuse it


def test_nonce_invalid_forged_or_foreign() -> None:
    store = DigestNonceStore(secret=b"a" * 32)
    other = DigestNonceStore(secret=b"b" * 32)
    assert store.check(other.issue("c1"), None, "c1") == "invalid"
    assert store.check("not base64 at all!", None, "c1") == "invalid"
    assert store.check("", None, "c1") == "invalid"
    assert store.check("é", None, "c1") == "invalid"
    good = store.issue("c1")
    raw = bytearray(base64.urlsafe_b64decode(good))
    raw[0] ^= 1
    assert store.check(base64.urlsafe_b64encode(bytes(raw)).decode(), None, "c1") == "invalid"
    assert store.check(base64.urlsafe_b64encode(b"x" * 10).decode(), None, "c1") == "invalid"
    # Signed but no longer remembered (a restart with the same secret): stale.
    same_secret = DigestNonceStore(secret=b"a" * 32)
    assert same_secret.check(good, None, "c1") == "stale"


def test_nonce_replay_from_another_connection() -> None:
    store = DigestNonceStore()
    nonce = store.issue("c1")
    assert store.check(nonce, None, "c2") == "replay"
    assert store.check(nonce, None, None) == "replay"
    assert store.check(nonce, None, "c1") == "ok"
    assert store.check(nonce, "00000001", "c2") == "replay"
    # Unbound nonces bind to the first connection that uses them.
    unbound = store.issue()
    assert store.check(unbound, None, "c3") == "ok"
    assert store.check(unbound, None, "c4") == "replay"


def test_nonce_count_must_increase() -> None:
    store = DigestNonceStore()
    nonce = store.issue("c1")
    assert store.check(nonce, "00000001", "c1") == "ok"
    assert store.check(nonce, "00000001", "c1") == "replay"
    assert store.check(nonce, "00000003", "c1") == "ok"
    assert store.check(nonce, "00000002", "c1") == "replay"
    assert store.check(nonce, "0000000A", "c1") == "ok"
    assert store.check(nonce, "zz", "c1") == "invalid"
    assert store.check(nonce, "123456789", "c1") == "invalid"


def test_nonce_lifetime_is_sliding() -> None:
    clock = FakeClock()
    store = DigestNonceStore(clock=clock, lifetime=60, max_age=3600)
    fresh = store.issue("c1")
    used = store.issue("c1")
    assert store.check(used, None, "c1") == "ok"
    # An AOSP session: keep-alive OPTIONS every 54 s keeps the nonce valid.
    for _ in range(20):
        clock.now += 54
        assert store.check(used, None, "c1") == "ok"
    # The never-used nonce expired 60 s after issue.
    assert store.check(fresh, None, "c1") == "stale"
    clock.now += 61
    assert store.check(used, None, "c1") == "stale"
    assert store.check(used, None, "c1") == "stale"  # forgotten, still signed


def test_nonce_max_age() -> None:
    clock = FakeClock()
    store = DigestNonceStore(clock=clock, lifetime=60, max_age=100)
    nonce = store.issue("c1")
    clock.now += 50
    assert store.check(nonce, None, "c1") == "ok"
    clock.now += 51
    assert store.check(nonce, None, "c1") == "stale"


def test_nonce_store_bounded_and_purged() -> None:
    clock = FakeClock()
    store = DigestNonceStore(clock=clock, max_nonces=3, lifetime=10)
    first = store.issue("c1")
    for _ in range(3):
        store.issue("c2")
    assert len(store) == 3
    assert store.check(first, None, "c1") == "stale"  # evicted
    clock.now += 11
    store.issue("c3")
    assert len(store) == 1  # idle ones purged on issue


def test_unused_nonces_per_connection_are_capped() -> None:
    store = DigestNonceStore(max_unused_per_connection=2)
    first, second, third = (store.issue("flood") for _ in range(3))
    victim = store.issue("viewer")
    assert store.check(victim, None, "viewer") == "ok"
    for _ in range(100):
        store.issue("flood")
    assert len(store) == 3  # two unused "flood" nonces and the viewer's
    assert store.check(first, None, "flood") == "stale"
    assert store.check(second, None, "flood") == "stale"
    assert store.check(third, None, "flood") == "stale"
    assert store.check(victim, None, "viewer") == "ok"
    # A used nonce no longer counts against the cap.
    used = store.issue("flood")
    assert store.check(used, None, "flood") == "ok"
    store.issue("flood")
    store.issue("flood")
    assert store.check(used, None, "flood") == "ok"
    # Pipelined unauthenticated requests: either of the two latest nonces still works.
    a, b = store.issue("pipelined"), store.issue("pipelined")
    assert store.check(a, None, "pipelined") == "ok"
    assert store.check(b, None, "pipelined") == "ok"


def test_forget_connection() -> None:
    store = DigestNonceStore()
    a = store.issue("c1")
    used = store.issue("c1")
    assert store.check(used, None, "c1") == "ok"
    b = store.issue("c2")
    store.forget_connection("c1")
    assert store.check(a, None, "c1") == "stale"
    assert store.check(used, None, "c1") == "stale"
    assert store.check(b, None, "c2") == "ok"
    assert len(store) == 1
    store.forget_connection("never-seen")


# --- challenges ----------------------------------------------------------------------------


def test_www_authenticate_headers() -> None:
    values = www_authenticate_headers("NONCE")
    assert values == [
        'Basic realm="Streaming Server"',
        'Digest realm="Streaming Server", nonce="NONCE", algorithm=MD5',
    ]
    # AOSP: the last header wins, must start with "Digest" and quote the nonce.
    assert values[-1].startswith("Digest")
    assert 'nonce="NONCE"' in values[-1]
    assert www_authenticate_headers("N", stale=True, allow_basic=False, offer_qop=True) == [
        'Digest realm="Streaming Server", nonce="N", algorithm=MD5, qop="auth", stale=TRUE'
    ]
    assert www_authenticate_headers("N", digest=False) == ['Basic realm="Streaming Server"']
    with pytest.raises(ValueError):
        www_authenticate_headers("N", digest=False, allow_basic=False)


def test_server_round_trip_with_our_client() -> None:
    """Our client answering our server's challenge is accepted, for both styles."""
    store = DigestNonceStore()
    for offer_qop in (False, True):
        nonce = store.issue("c")
        challenge = www_authenticate_headers(nonce, offer_qop=offer_qop)
        for nc in (1, 2):
            value = client_authorization(
                challenge, method="PLAY", uri="rtsp://h/s/", username="u", password="p", nc=nc
            )
            assert value is not None
            creds = parse_authorization(value)
            assert isinstance(creds, DigestCredentials)
            assert (creds.qop == "auth") is offer_qop
            assert verify_digest(creds, method="PLAY", password="p", username="u")
            assert store.check(creds.nonce, creds.nc, "c") == "ok"


def test_parse_challenges() -> None:
    values = [
        'Digest realm="IP Camera(C1234)", nonce="a1b2", stale="FALSE", Basic realm="x"',
        'Basic realm="IP Camera"',
        "Negotiate abc==",
    ]
    assert parse_challenges(values) == [
        Challenge("digest", {"realm": "IP Camera(C1234)", "nonce": "a1b2", "stale": "FALSE"}),
        Challenge("basic", {"realm": "x"}),
        Challenge("basic", {"realm": "IP Camera"}),
        Challenge("negotiate", {}),
    ]


# --- client_authorization ------------------------------------------------------------------


def params_of(value: str) -> dict[str, str]:
    creds = parse_authorization(value)
    assert isinstance(creds, DigestCredentials)
    return {k: v for k, v in vars(creds).items() if v is not None}


def test_client_prefers_digest_legacy() -> None:
    challenge = ['Basic realm="cam"', 'Digest realm="cam", nonce="abc", opaque="op"']
    value = client_authorization(
        challenge, method="DESCRIBE", uri="rtsp://cam/live", username="admin", password="12345"
    )
    assert value is not None
    assert value.startswith("Digest ")
    params = params_of(value)
    assert params["response"] == rfc2069(
        "admin", "cam", "12345", "DESCRIBE", "rtsp://cam/live", "abc"
    )
    assert params["opaque"] == "op"
    assert "qop" not in params
    assert "cnonce" not in params


def test_client_digest_qop_auth() -> None:
    challenge = ['Digest realm="cam", nonce="xyz", qop="auth,auth-int", algorithm=MD5']
    value = client_authorization(
        challenge,
        method="SETUP",
        uri="rtsp://cam/live/trackID=1",
        username="admin",
        password="pw",
        nc=3,
        cnonce="c0ffee",
    )
    assert value is not None
    params = params_of(value)
    assert params["qop"] == "auth"
    assert params["nc"] == "00000003"
    assert params["cnonce"] == "c0ffee"
    assert params["algorithm"] == "MD5"
    assert params["response"] == rfc2617_auth(
        "admin", "cam", "pw", "SETUP", "rtsp://cam/live/trackID=1", "xyz", "00000003", "c0ffee"
    )
    # A random cnonce is made when none is given.
    value = client_authorization(challenge, method="PLAY", uri="/", username="a", password="b")
    assert value is not None
    assert len(params_of(value)["cnonce"]) == 16


def test_client_md5_sess_and_quoting() -> None:
    challenge = ['Digest realm="r", nonce="n", algorithm=MD5-sess']
    value = client_authorization(
        challenge, method="PLAY", uri="/x", username='we"ird\\', password="p", cnonce="cc"
    )
    assert value is not None
    params = params_of(value)
    assert params["username"] == 'we"ird\\'
    ha1 = md5(f"{md5(chr(0).join([]) + 'we' + chr(34) + 'ird' + chr(92) + ':r:p')}:n:cc")
    assert params["response"] == md5(f"{ha1}:n:{md5('PLAY:/x')}")
    assert params["cnonce"] == "cc"


def test_client_basic_and_unusable() -> None:
    value = client_authorization(
        ['Basic realm="cam"'], method="DESCRIBE", uri="/", username="admin", password="p:w"
    )
    assert value == "Basic " + base64.b64encode(b"admin:p:w").decode()
    assert (
        client_authorization(["Negotiate x"], method="X", uri="/", username="a", password="b")
        is None
    )
    assert client_authorization([], method="X", uri="/", username="a", password="b") is None
    # Unsupported Digest variants fall back to Basic when offered.
    for digest in (
        'Digest realm="r", nonce="n", algorithm=SHA-512',
        'Digest realm="r", nonce="n", qop="auth-int"',
        'Digest realm="r"',
    ):
        assert (
            client_authorization(
                [digest, 'Basic realm="r"'], method="X", uri="/", username="a", password="b"
            )
            == "Basic " + base64.b64encode(b"a:b").decode()
        )


# --- real peers ----------------------------------------------------------------------------

PEER_PASSWORD = "p w"  # a space: percent-encoded in the URL, raw in the hash


def ffmpeg_client(port: int) -> list[str]:
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None
    url = f"rtsp://viewer:p%20w@127.0.0.1:{port}/s"
    return [ffmpeg, "-v", "quiet", "-rtsp_transport", "tcp", "-i", url, "-f", "null", "-"]


def gst_client(port: int) -> list[str]:
    gst = shutil.which("gst-launch-1.0")
    assert gst is not None
    return [
        gst,
        "-q",
        "rtspsrc",
        f"location=rtsp://127.0.0.1:{port}/s",
        "user-id=viewer",
        f"user-pw={PEER_PASSWORD}",
        "protocols=tcp",
        "!",
        "fakesink",
    ]


def serve_login(
    client: Callable[[int], list[str]], *, digest: bool, offer_qop: bool
) -> list[tuple[RtspRequest, Credentials | None, str]]:
    """Run a real RTSP client against a minimal server using this module's server side.

    Requests without credentials get a 401 with our challenge; requests with credentials
    are checked and answered 404, which ends the client. Returns, per authenticated
    request, the request, its parsed credentials and the verdict.
    """
    store = DigestNonceStore()
    seen: list[tuple[RtspRequest, Credentials | None, str]] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(10)
        process = subprocess.Popen(
            client(server.getsockname()[1]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            conn, _ = server.accept()
            with conn:
                conn.settimeout(10)
                parser = RtspParser(role="server")
                while not seen and (data := conn.recv(65536)):
                    for request in parser.feed(data):
                        assert isinstance(request, RtspRequest)
                        value = request.headers.get("Authorization")
                        if value is None:
                            headers = Headers()
                            for line in www_authenticate_headers(
                                store.issue("peer"), digest=digest, offer_qop=offer_qop
                            ):
                                headers.add("WWW-Authenticate", line)
                            reply = RtspResponse.make(401, cseq=request.cseq, headers=headers)
                        else:
                            creds = parse_authorization(value)
                            verdict: str
                            if isinstance(creds, DigestCredentials):
                                ok = verify_digest(
                                    creds,
                                    method=request.method,
                                    password=PEER_PASSWORD,
                                    username="viewer",
                                )
                                verdict = (
                                    store.check(creds.nonce, creds.nc, "peer") if ok else "bad"
                                )
                            elif isinstance(creds, BasicCredentials):
                                ok = verify_basic(creds, "viewer", PEER_PASSWORD)
                                verdict = "ok" if ok else "bad"
                            else:
                                verdict = "unparsed"
                            seen.append((request, creds, verdict))
                            reply = RtspResponse.make(404, cseq=request.cseq)
                        conn.sendall(serialize_response(reply))
        finally:
            process.kill()
            process.wait(timeout=10)
    return seen


@pytest.mark.parametrize(
    ("client", "digest", "offer_qop", "expected_scheme", "expected_qop"),
    [
        (ffmpeg_client, True, False, "digest", None),
        (ffmpeg_client, True, True, "digest", "auth"),
        (ffmpeg_client, False, False, "basic", None),
        (gst_client, True, False, "digest", None),
        # GStreamer answers RFC 2069 style even when qop="auth" is offered.
        (gst_client, True, True, "digest", None),
        (gst_client, False, False, "basic", None),
    ],
    ids=[
        "ffmpeg-rfc2069",
        "ffmpeg-qop-auth",
        "ffmpeg-basic",
        "gstreamer-rfc2069",
        "gstreamer-qop-offered",
        "gstreamer-basic",
    ],
)
def test_real_clients_log_in(
    client: Callable[[int], list[str]],
    digest: bool,
    offer_qop: bool,
    expected_scheme: str,
    expected_qop: str | None,
) -> None:
    ((request, creds, verdict),) = serve_login(client, digest=digest, offer_qop=offer_qop)
    assert verdict == "ok"
    assert creds is not None
    assert creds.scheme == expected_scheme
    if isinstance(creds, DigestCredentials):
        assert creds.qop == expected_qop
        assert creds.uri == request.uri


def rtsp_exchange(port: int, request: RtspRequest) -> RtspResponse:
    """Send one request on a fresh connection and return the response."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(serialize_request(request))
        parser = RtspParser(role="client")
        while data := conn.recv(65536):
            for message in parser.feed(data):
                if isinstance(message, RtspResponse):
                    return message
    raise AssertionError("no response")


@pytest.mark.parametrize("method", ["digest", "basic"])
def test_client_logs_in_to_gst_rtsp_server(method: AuthMethod) -> None:
    with FakeCamera(audio="none", user="admin", password='s3cr=t "x"', auth=method) as cam:
        describe = RtspRequest(
            "DESCRIBE", cam.url, Headers([("CSeq", "1"), ("Accept", "application/sdp")])
        )
        challenged = rtsp_exchange(cam.port, describe)
        assert challenged.status == 401
        value = client_authorization(
            challenged.headers.get_all("WWW-Authenticate"),
            method="DESCRIBE",
            uri=cam.url,
            username="admin",
            password='s3cr=t "x"',
        )
        assert value is not None
        assert value.lower().startswith(method)
        describe.headers["CSeq"] = "2"
        describe.headers["Authorization"] = value
        answered = rtsp_exchange(cam.port, describe)
        assert answered.status == 200
        assert answered.body.startswith(b"v=0")
