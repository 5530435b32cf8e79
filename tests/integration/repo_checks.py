#!/usr/bin/python3
"""The repository's endpoints and bad inputs from the outside, for tests/integration/repo.sh.
Usage: repo_checks.py plain|maxconns PORT HOME WORKDIR SMKI_BIN. Prints ok/not ok lines;
exits 1 if any check failed."""
import base64
import http.client
import json
import socket
import subprocess
import sys
import time

mode, port, home, work, smki = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
failed = 0


def check(cond, desc, extra=""):
    global failed
    if cond:
        print("ok - " + desc)
    else:
        failed += 1
        print("not ok - %s %s" % (desc, extra))


def req(method, path, body=None, headers=None, conn=None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    if not conn:
        c.close()
    return r.status, r.getheader("Content-Type"), data


def search_xml(tag, eui, extra=""):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<CertificateSearchRequest xmlns="urn:dcc">'
            "<%s>%s</%s>%s</CertificateSearchRequest>" % (tag, eui, tag, extra)).encode()


def der_of(path):
    return open(path, "rb").read()


def serial_hex(der):
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                         capture_output=True, check=True).stdout.decode()
    return out.strip().split("=")[1]


def plain():
    dev, org = der_of(work + "/dev.der"), der_of(work + "/org.der")
    dser, oser = serial_hex(dev), serial_hex(org)
    st, ct, b = req("GET", "/health")
    check(st == 200 and json.loads(b)["status"] == "ok", "GET /health")

    # DCC search, keep-alive: several requests on one connection.
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    st, ct, b = req("POST", "/services/certificatesearch?apikey=anything",
                    search_xml("CertificateSubjectAltName", "00-DB-12-34-56-78-90-A0"), conn=c)
    check(st == 200 and ct == "application/xml", "DCC search by device EUI: 200 application/xml", (st, ct))
    check(b.count(b"<Result>") == 1 and ("<CertificateSerial>%s</CertificateSerial>" % dser).encode() in b
          and b"<CertificateUsage>DS</CertificateUsage>" in b and b"<CertificateStatus>I</CertificateStatus>" in b
          and b"CertificateRole" not in b, "the device's one Result: serial, DS, in use, no role", b)
    st, ct, b = req("POST", "/services/certificatesearch",
                    search_xml("CertificateSubjectName", "90-B3-D5-1F-30-01-00-00"), conn=c)
    check(st == 200 and b"<CertificateRole>2</CertificateRole>" in b and oser.encode() in b,
          "DCC search by organisation EUI: role 2 (supplier), on the same connection", b)
    st, ct, b = req("POST", "/services/certificatesearch",
                    search_xml("CertificateSubjectName", "00-DB-12-34-56-78-90-A0"), conn=c)
    check(st == 402, "a device EUI searched as an organisation: 402 not found", st)
    c.close()
    st, ct, b = req("POST", "/services/certificatesearch",
                    search_xml("CertificateSubjectAltName", "00-DB-12-34-56-78-90-A0",
                               "<CertificateUsage>KA</CertificateUsage>"))
    check(st == 402, "filtered by usage KA: none: 402", st)
    st, ct, b = req("POST", "/services/certificatesearch",
                    search_xml("CertificateSubjectAltName", "00-DB-12-34-56-78-90-FF"))
    check(st == 402 and ct == "application/xml", "an unknown EUI-64: 402", st)

    bad = {
        "a bad EUI-64": search_xml("CertificateSubjectAltName", "00-DB-12-34"),
        "malformed XML": b"<CertificateSearchRequest><CertificateSubjectAltName>00-DB",
        "a DOCTYPE": b'<!DOCTYPE x [<!ENTITY e "x">]><CertificateSearchRequest/>',
        "an entity reference": search_xml("CertificateSubjectAltName", "&e;"),
        "both subject names": search_xml("CertificateSubjectAltName", "00-DB-12-34-56-78-90-A0",
                                         "<CertificateSubjectName>90-B3-D5-1F-30-01-00-00</CertificateSubjectName>"),
        "no subject name": b"<CertificateSearchRequest></CertificateSearchRequest>",
        "the wrong root": b"<CertificateDataRequest><CertificateSerial>01</CertificateSerial></CertificateDataRequest>",
        "an unknown element": search_xml("CertificateSubjectAltName", "00-DB-12-34-56-78-90-A0", "<Foo>1</Foo>"),
        "nesting": b"<CertificateSearchRequest><a><b>1</b></a></CertificateSearchRequest>",
        "an empty body": b"",
        "binary": bytes(range(256)),
        "a comment": b"<!-- x --><CertificateSearchRequest/>",
    }
    for desc, body in bad.items():
        st, ct, b = req("POST", "/services/certificatesearch", body)
        check(st == 401 and ct == "application/xml" and b"<ErrorResponse>" in b, "DCC search with %s: 401" % desc,
              (st, b[:200]))

    # DCC retrieve.
    for der, ser, tag in ((dev, dser, b"CertificateSubjectAltName"), (org, oser, b"CertificateSubjectName")):
        body = ("<?xml version='1.0'?><CertificateDataRequest><CertificateSerial>%s</CertificateSerial>"
                "</CertificateDataRequest>" % ser.lower()).encode()
        st, ct, b = req("POST", "/services/retrievecertificate", body)
        got = b.split(b"<CertificateBody>")[1].split(b"</CertificateBody>")[0] if b"<CertificateBody>" in b else b""
        check(st == 200 and base64.b64decode(got) == der and tag in b,
              "DCC retrieve %s: the DER, and %s" % (ser, tag.decode()), (st, b[:200]))
    st, ct, b = req("POST", "/services/retrievecertificate",
                    b"<CertificateDataRequest><CertificateSerial>0123456789ABCDEF</CertificateSerial>"
                    b"</CertificateDataRequest>")
    check(st == 402, "DCC retrieve of an unknown serial: 402", st)
    for desc, body in (("a bad serial", b"<CertificateDataRequest><CertificateSerial>XYZ</CertificateSerial>"
                                        b"</CertificateDataRequest>"),
                       ("a serial of 33 digits", b"<CertificateDataRequest><CertificateSerial>" + b"1" * 33 +
                        b"</CertificateSerial></CertificateDataRequest>"),
                       ("two serials", b"<CertificateDataRequest><CertificateSerial>01</CertificateSerial>"
                                       b"<CertificateSerial>02</CertificateSerial></CertificateDataRequest>")):
        st, ct, b = req("POST", "/services/retrievecertificate", body)
        check(st == 401, "DCC retrieve with %s: 401" % desc, st)
    st, ct, b = req("GET", "/services/retrievecertificate")
    check(st == 405, "GET on a DCC service: 405", st)

    # REST certificates.
    st, ct, b = req("GET", "/certificates/" + dser)
    check(st == 200 and ct == "application/pkix-cert" and b == dev, "GET /certificates/SERIAL: the DER", (st, ct))
    st, ct, b = req("GET", "/certificates/" + dser, headers={"Accept": "application/x-pem-file"})
    check(st == 200 and b.startswith(b"-----BEGIN CERTIFICATE-----"), "Accept: PEM gives PEM", (st, ct))
    st, ct, b = req("GET", "/certificates/" + dser + "?format=json")
    check(st == 200 and json.loads(b)["eui"] == "00-DB-12-34-56-78-90-A0", "?format=json: the record", b)
    st, ct, b = req("GET", "/certificates/0123456789abcdef0123456789abcdef")
    check(st == 404 and json.loads(b)["status"] == 404, "an unknown serial: 404 JSON", st)
    for path in ("/certificates/xyz", "/certificates/" + "1" * 33, "/certificates/" + dser + "?format=txt",
                 "/certificates/" + dser + "?x=1", "/certificates/%00", "/certificates?eui=zz",
                 "/certificates?role=nobody", "/certificates?usage=xx", "/certificates?status=Q",
                 "/certificates?limit=0", "/certificates?limit=5000", "/certificates?offset=-1",
                 "/certificates?issuer=12", "/certificates?unknown=1", "/certificates?eui=1&eui=2",
                 "/certificates?eui=%zz", "/certificates?profile=nope", "/certificates?" + "a=1&" * 20):
        st, ct, b = req("GET", path)
        check(st == 400 and "error" in json.loads(b), "GET %s: 400 with a message" % path[:60], (st, b[:120]))

    st, ct, b = req("GET", "/certificates?eui=00-DB-12-34-56-78-90-A0")
    d = json.loads(b)
    check(st == 200 and d["count"] == 1 and d["results"][0]["serial"] == dser and d["next_offset"] is None,
          "search by EUI-64", d)
    st, ct, b = req("GET", "/certificates?role=02&usage=ds&status=I")
    d = json.loads(b)
    check(st == 200 and [r["serial"] for r in d["results"]] == [oser], "search by role, usage and status", d)
    st, ct, b = req("GET", "/certificates?issuer=smki-dca")
    d = json.loads(b)
    check(st == 200 and [r["serial"] for r in d["results"]] == [dser], "search by issuer (CA name)", d)
    ski = d["results"][0]["issuer_ski"]
    st, ct, b = req("GET", "/certificates?issuer=" + ski.lower())
    check(st == 200 and json.loads(b)["count"] == 1, "search by issuer (SKI)", b)
    st, ct, b = req("GET", "/certificates?usage=ca&limit=2")
    d = json.loads(b)
    check(st == 200 and d["count"] == 2 and d["next_offset"] == 2, "paging: the first page of CAs", d)
    st, ct, b = req("GET", "/certificates?usage=ca&limit=2&offset=4")
    d = json.loads(b)
    check(st == 200 and d["count"] == 1 and d["next_offset"] is None, "paging: the last page", d)
    st, ct, b = req("GET", "/certificates?eui=00-DB-12-34-56-78-90-FF")
    check(st == 200 and json.loads(b)["count"] == 0, "a search that finds nothing: 200, no results", b)

    # Searches pipelined on one connection (on PostgreSQL a loop answers the searches it
    # read in one turn together): every answer, in order, each its own.
    euis = ["00-DB-12-34-56-78-90-A0", "00-DB-12-34-56-78-90-FF"] * 20
    raw = b"".join(b"GET /certificates?eui=%s HTTP/1.1\r\nHost: x\r\n\r\n" % e.encode() for e in euis)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(raw)
    buf, counts = b"", []
    while len(counts) < len(euis):
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].decode("latin-1")
            length = int([h.split(":", 1)[1] for h in head.split("\r\n") if h.lower().startswith("content-length:")][0])
            if len(buf) >= head_end + 4 + length:
                body = buf[head_end + 4:head_end + 4 + length]
                counts.append(json.loads(body)["count"] if head.startswith("HTTP/1.1 200") else head[:12])
                buf = buf[head_end + 4 + length:]
                continue
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    check(counts == [1, 0] * 20, "40 pipelined searches: each answered, in order", counts)
    # Many connections searching at once: each gets its own answer.
    conns = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(24)]
    for i, c in enumerate(conns):
        c.sendall(b"GET /certificates?eui=%s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" %
                  euis[i].encode())
    answers = []
    for c in conns:
        data = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        c.close()
        answers.append(json.loads(data.split(b"\r\n\r\n", 1)[1])["count"])
    check(answers == [1, 0] * 12, "24 connections searching at once: each its own answer", answers)

    # CAs, CRL, ARL.
    st, ct, b = req("GET", "/ca")
    names = [c["name"] for c in json.loads(b)["cas"]]
    check(st == 200 and names == ["smki-root", "smki-oca", "smki-dca", "dccki-root", "dccki-ica"], "GET /ca", names)
    st, ct, b = req("GET", "/ca/smki-dca")
    pem = open(home + "/ca/test/smki-dca.pem", "rb").read()
    want = subprocess.run(["openssl", "x509", "-outform", "DER"], input=pem, capture_output=True).stdout
    check(st == 200 and b == want, "GET /ca/smki-dca: the CA's certificate", st)
    st, ct, b = req("GET", "/ca/nope")
    check(st == 404, "GET /ca/nope: 404", st)
    for path, name in (("/crl/smki-dca", "smki-dca"), ("/crl/smki-oca", "smki-oca"), ("/crl/dccki-ica", "dccki-ica"),
                       ("/arl", "smki-root"), ("/arl/dccki-root", "dccki-root")):
        st, ct, b = req("GET", path)
        check(st == 200 and ct == "application/pkix-crl" and b == der_of(home + "/ca/test/%s.crl" % name),
              "GET %s: the published list" % path, (st, ct))
    st, ct, b = req("GET", "/crl/smki-oca")
    txt = subprocess.run(["openssl", "crl", "-inform", "DER", "-noout", "-text"], input=b, capture_output=True).stdout
    rev = serial_hex(der_of(work + "/rev.der"))
    check(rev.encode() in txt and b"Key Compromise" in txt, "the OCA's CRL lists the revoked certificate", txt[:300])
    for path in ("/arl/smki-oca", "/crl/nope", "/crl/../../etc/passwd", "/crl/%2e%2e%2fsmki-dca", "/arl/"):
        st, ct, b = req("GET", path)
        check(st == 404, "GET %s: 404" % path, st)

    # Metrics, unknown paths and methods.
    st, ct, b = req("GET", "/metrics")
    check(st == 200 and b"smki_repo_requests_total{env=\"test\",endpoint=\"dcc\",code=\"4xx\"}" in b
          and b"smki_repo_certificates 8" in b, "GET /metrics: Prometheus text", b[:200])
    st, ct, b = req("GET", "/nothing")
    check(st == 404, "an unknown path: 404", st)
    st, ct, b = req("POST", "/certificates/" + dser, b"x")
    check(st == 405, "POST on a GET resource: 405", st)
    st, ct, b = req("PUT", "/health", b"x")
    check(400 <= st < 600 and st != 200, "PUT: refused (%d)" % st, st)

    # Oversized body and headers.
    st, ct, b = req("POST", "/services/certificatesearch", b"<" * 100000)
    check(st == 413, "a 100 kB body: 413", st)
    st, ct, b = req("GET", "/health", headers={"X-Big": "a" * 20000})
    check(400 <= st < 500, "20 kB of headers: 4xx (%d)" % st, st)

    # Slow and broken clients do not hold up anyone else.
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # never finishes
    junk = socket.create_connection(("127.0.0.1", port))
    junk.sendall(b"\x16\x03\x01\x00\xff garbage\r\n\r\n")
    t0 = time.time()
    st, ct, b = req("GET", "/health")
    check(st == 200, "served while a slow client holds a half request", st)
    junk.settimeout(10)
    first = junk.recv(100)
    check(first.startswith(b"HTTP/1.1 400") or first == b"", "a garbage request line: 400 or closed", first)
    slow.settimeout(10)
    t0 = time.time()
    try:
        rest = slow.recv(100)
    except socket.timeout:
        rest = b"timeout"
    check(rest in (b"",) or rest.startswith(b"HTTP/1.1 408") or rest.startswith(b"HTTP/1.1 400"),
          "the slow client is cut off by --timeout 3 (after %.1f s)" % (time.time() - t0), rest)
    # Many connections opened and dropped at once.
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
    for s in socks:
        s.close()
    st, ct, b = req("GET", "/health")
    check(st == 200, "served after 200 connections opened and dropped", st)
    # The search is written once per serial: HEAD answers without a body.
    st, ct, b = req("HEAD", "/certificates/" + dser)
    check(st == 200 and b == b"", "HEAD: 200, no body", (st, b[:20]))


def served_again(desc):
    ok = False
    for _ in range(50):  # the server sees closes on its next tick (0.1 s)
        if req("GET", "/health")[0] == 200:
            ok = True
            break
        time.sleep(0.1)
    check(ok, desc)


def maxconns():
    a = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    b = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    check(req("GET", "/health", conn=a)[0] == 200, "first keep-alive connection served")
    check(req("GET", "/health", conn=b)[0] == 200, "second keep-alive connection served")
    st, ct, body = req("GET", "/health")
    check(st == 429, "a third connection: 429", (st, body))
    check(req("GET", "/health", conn=a)[0] == 200, "the first connection is still served")
    a.close()
    b.close()
    served_again("after the two close, new connections are served again")
    # Idle connections count too. With a keep-alive connection m watching /metrics:
    # wait until m is the only one open, open a socket that never sends a request,
    # wait until it is counted; a new connection is then over the limit.
    m = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def wait_open(n):
        for _ in range(100):
            st, ct, body = req("GET", "/metrics", conn=m)
            if ("smki_repo_connections_open %d\n" % n).encode() in body:
                return True
            time.sleep(0.1)
        return False
    check(wait_open(1), "the watching connection alone is open")
    idle = socket.create_connection(("127.0.0.1", port))
    check(wait_open(2), "a connection that sends nothing is counted")
    st, ct, body = req("GET", "/health")
    check(st == 429, "with it open, a new connection: 429", (st, body))
    idle.close()
    check(wait_open(1), "the idle one closed, it is let go of")
    st, ct, body = req("GET", "/metrics", conn=m)
    m.close()
    served_again("new connections are served again")
    refused = [l for l in body.decode().splitlines() if l.startswith("smki_repo_connections_refused_total ")]
    check(refused and int(refused[0].split()[1]) >= 2, "the refusals are counted in /metrics", refused)


{"plain": plain, "maxconns": maxconns}[mode]()
print("# repo_checks %s: %d failed" % (mode, failed))
sys.exit(1 if failed else 0)
