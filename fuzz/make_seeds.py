#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/. The binary layouts (response and request) are
easier to keep right here than by hand; run it again after changing a layout.
Files named crash-* are never touched: they are reproducers of bugs found by fuzzing."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(harness, name, data):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- json_fuzz: raw JSON documents ---------------------------------------------------------

PAGE = ('{"success":true,"data":[{"id":1,"name":"Ada","email":"ada@example.test","tags":[],'
        '"address":{"city":"Z\\u00fcrich","zip":null}},{"id":2,"name":"Bob","tags":["vip"]}],'
        '"meta":{"current_page":1,"last_page":3,"per_page":2,"total":6},'
        '"links":{"next":"https://dev.flextell.ai/api/v1/customers?page=2","prev":null}}')
CURSOR = ('{"data":[{"id":"c_01HX","amount":"12.50","created_at":"2024-05-01T12:00:00Z"}],'
          '"meta":{"cursor":"eyJpZCI6MTB9","has_more":true,"per_page":1}}')
ERROR = ('{"error":"validation_failed","message":"The given data was invalid.",'
         '"errors":{"name":["The name field is required."],"email":["must be an email"]}}')
OAUTH_ERROR = '{"error":"invalid_grant","error_description":"The refresh token is invalid."}'
NUMBERS = ('[9223372036854775807,-9223372036854775808,9223372036854775808,-9223372036854775809,'
           '-0,-0.0,0.0,0e10,1e400,-1e400,1e-400,9007199254740993,9007199254740992.0,'
           '9007199254740993.0,0.1,1.7976931348623157e308,5e-324,2.2250738585072014e-308,'
           '123456789012345678901234567890,1E+2,1.5e-7,100000000000000000000000.0]')
UNICODE = ('{"s":"\\u00e9\\u4e2d\\ud83d\\ude00 caf\\u00e9","raw":"\u00e9\u4e2d\U0001F600",'
           '"ctl":"\\u0000\\u001f\\b\\f\\n\\r\\t\\"\\\\\\/","\\u00fcber":1,"":"empty key"}')
SURROGATES = '["\\ud83d\\ude00","\\uD834\\uDD1E","\\udbff\\udfff","\\ud800\\udc00x"]'
NULLS = '{"a":null,"b":[null,1,null],"c":{"d":null},"e":[],"f":{}}'
DUPES = '{"a":1,"a":null,"b":2,"b":3,"c":{"x":1},"c":[1]}'

write("json_fuzz", "page-envelope.json", PAGE)
write("json_fuzz", "cursor-envelope.json", CURSOR)
write("json_fuzz", "error-body.json", ERROR)
write("json_fuzz", "oauth-error.json", OAUTH_ERROR)
write("json_fuzz", "numbers-edges.json", NUMBERS)
write("json_fuzz", "unicode-escapes.json", UNICODE)
write("json_fuzz", "surrogate-pairs.json", SURROGATES)
write("json_fuzz", "nulls.json", NULLS)
write("json_fuzz", "duplicate-keys.json", DUPES)
write("json_fuzz", "deep-200.json", "[" * 100 + '{"k":' * 100 + "1" + "}" * 100 + "]" * 100)
write("json_fuzz", "deep-300.json", "[" * 300 + "]" * 300)  # decodes, too deep to encode
write("json_fuzz", "deep-600.json", "[" * 600 + "]" * 600)  # refused by the decoder
write("json_fuzz", "wide-object.json",
      "{" + ",".join('"k%03d":%d' % (i, i) for i in range(120, 0, -1)) + "}")
write("json_fuzz", "long-array.json", "[" + ",".join(str(i * 7.25) for i in range(80)) + "]")
write("json_fuzz", "bom-whitespace.json", b'\xef\xbb\xbf \t{ "k" : [ 1 , 2.5e3 , true , false ] }\r\n')
write("json_fuzz", "scalars.json", '"just a string"')
write("json_fuzz", "top-null.json", "null")
write("json_fuzz", "truncated.json", '{"data":[{"id":1},{"id":')
write("json_fuzz", "bad-utf8.json", b'["\xc3\x28","\xed\xa0\x80","\xf4\x90\x80\x80"]')

# ---- response_fuzz: status(2) result(1) flags(1) headers "\r\n\r\n" body -----------------------

JSON_CT = "Content-Type: application/json\r\n"


def response(status, headers="", body="", result=0, flags=0, status_line=None):
    line = status_line if status_line is not None else "HTTP/1.1 %d X\r\n" % status
    block = line + headers + "\r\n"
    raw = struct.pack(">H", status) + bytes([result, flags]) + block.encode()
    return raw + (body.encode() if isinstance(body, str) else body)


RL = "X-RateLimit-Limit: 60\r\nX-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: 1717000000\r\n"
write("response_fuzz", "200-page", response(
    200, JSON_CT + "X-Request-Id: req_123\r\n" + RL.replace(" 0\r", " 59\r"), PAGE))
write("response_fuzz", "200-cursor", response(200, JSON_CT, CURSOR))
write("response_fuzz", "200-cursor-no-cursor", response(
    200, JSON_CT, '{"data":[],"meta":{"has_more":true,"cursor":7}}'))
write("response_fuzz", "200-page-links", response(
    200, JSON_CT, '{"data":[1],"meta":{"current_page":4},"links":{"next":"?page=5"}}'))
write("response_fuzz", "200-object", response(
    201, "content-type: application/vnd.api+json; charset=utf-8\r\n",
    '{"success":"created","data":{"id":5,"ok":true}}'))
write("response_fuzz", "200-bare", response(200, JSON_CT, '{"id":1,"items":[1,2,3]}'))
write("response_fuzz", "200-scalar", response(200, JSON_CT, '42'))
write("response_fuzz", "204-empty", response(204, "Content-Length: 0\r\n"))
write("response_fuzz", "200-blank", response(200, JSON_CT, " \r\n\t"))
write("response_fuzz", "200-truncated", response(200, JSON_CT, '{"data":[{"id":1},{"id":'))
write("response_fuzz", "200-text", response(200, "Content-Type: text/plain\r\n", "OK"))
write("response_fuzz", "401-expired", response(
    401, JSON_CT + 'WWW-Authenticate: Bearer error="invalid_token"\r\n',
    '{"error":"unauthorized","message":"The access token expired."}'))
write("response_fuzz", "422-validation", response(422, JSON_CT + "X-Request-Id: r-9\r\n", ERROR))
write("response_fuzz", "429-retry-after", response(
    429, JSON_CT + "Retry-After: 30\r\n" + RL,
    '{"error":"rate_limit_exceeded","message":"Too many requests."}'))
write("response_fuzz", "429-http-date", response(
    429, "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n" + RL, ""))
write("response_fuzz", "503-future-date", response(
    503, "Retry-After: Fri, 01 Jan 2100 00:00:00 GMT\r\nContent-Type: text/html\r\n",
    "<html>down</html>"))
write("response_fuzz", "502-html", response(
    502, "Content-Type: text/html; charset=utf-8\r\nServer: nginx\r\n",
    "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"))
write("response_fuzz", "404-problem", response(
    404, "Content-Type: application/problem+json\r\n",
    '{"type":"about:blank","title":"Not Found","message":"Customer 9 not found"}'))
write("response_fuzz", "400-oauth", response(400, JSON_CT, OAUTH_ERROR))
write("response_fuzz", "500-array", response(500, JSON_CT, '["not","an","object"]'))
write("response_fuzz", "302-location", response(
    302, "Location: https://evil.test/steal\r\nContent-Length: 0\r\n"))
write("response_fuzz", "304-nowhere", response(304))
write("response_fuzz", "200-odd-headers", response(
    200, "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Empty:\r\n:no-name\r\n" + "N" * 130 + ": long\r\n",
    '{"data":null}', status_line="HTTP/1.1 200 OK\r\n"))
write("response_fuzz", "status-0", response(0, "", ""))
write("response_fuzz", "status-999", response(999, JSON_CT, "{}"))
write("response_fuzz", "timeout-stalled", response(0, "", "", result=28, flags=0x04 | 0x08))
write("response_fuzz", "timeout", response(200, "", "", result=28))
write("response_fuzz", "resolve-failed", response(0, "", "", result=6, flags=0x08 | 0x10))
write("response_fuzz", "too-large", response(200, JSON_CT, '{"data":[', result=23, flags=0x01))
write("response_fuzz", "headers-too-large", response(200, "", "", result=23, flags=0x02))
write("response_fuzz", "filesize", response(200, "", "", result=63))
write("response_fuzz", "tls-verify", response(0, "", "", result=60, flags=0x80 | 0x20))
write("response_fuzz", "partial", response(200, JSON_CT, '{"da', result=18))

# ---- request_fuzz: client flags, then ops ------------------------------------------------------
OP_METHOD, OP_PATH, OP_QUERY, OP_HEADER, OP_BODY_RAW, OP_BODY_JSON, OP_FORM, OP_MULTIPART, \
    OP_TENANT, OP_MISC = range(10)


def lstr(s):
    if isinstance(s, str):
        s = s.encode()
    if len(s) < 0xFD:  # 0xFD/0xFE are key selectors, 0xFF the long form
        return bytes([len(s)]) + s
    return b"\xff" + struct.pack("<H", len(s)) + s


def scalar(v):
    if v is None:
        return bytes([5])
    if v is True:
        return bytes([3])
    if v is False:
        return bytes([4])
    if isinstance(v, int):
        return bytes([1]) + struct.pack("<q", v)
    if isinstance(v, float):
        return bytes([2]) + struct.pack("<d", v)
    if isinstance(v, dict):
        return bytes([6])
    return bytes([0]) + lstr(v)


def value(v):
    if isinstance(v, list):
        return bytes([8, len(v)]) + b"".join(scalar(x) for x in v)
    return scalar(v)


def pair(op, k, v):
    key = lstr(k) if isinstance(k, str) else bytes([0xFE])
    return bytes([op]) + key + value(v)


def method_op(m):
    known = ["GET", "post", "PUT", "Patch", "DELETE", "HEAD"]
    if m in known:
        return bytes([OP_METHOD, known.index(m)])
    return bytes([OP_METHOD, 0x06]) + lstr(m)  # a selector >= 6: a string follows


def path(p):
    return bytes([OP_PATH]) + lstr(p)


def header(k, v):
    if v is False:
        return bytes([OP_HEADER]) + lstr(k) + b"\x02"
    if v is True:
        return bytes([OP_HEADER]) + lstr(k) + b"\x03"
    if isinstance(v, int):
        return bytes([OP_HEADER]) + lstr(k) + b"\x04"
    return bytes([OP_HEADER]) + lstr(k) + b"\x00" + lstr(v)


def body_raw(s):
    return bytes([OP_BODY_RAW]) + lstr(s)


def body_json(s):
    return bytes([OP_BODY_JSON]) + lstr(s)


def part_sel(kind, path_ix=None, data=None, filename=None, ctype=None):
    """A multipart selector byte: kind = sel % 5; None leaves a flag free (the path index
    shares bits 5-7 with the filename, content_type and data flags)."""
    for sel in range(256):
        if sel % 5 != kind:
            continue
        if bool(sel & 0x10) != (path_ix is not None):
            continue
        if path_ix is not None and (sel >> 5) % 3 != path_ix:
            continue
        if (filename is not None and bool(sel & 0x20) != filename) or \
                (ctype is not None and bool(sel & 0x40) != ctype) or \
                (data is not None and bool(sel & 0x80) != data):
            continue
        return sel
    raise ValueError("no selector")


def tenant(kind, n=0):
    out = bytes([OP_TENANT, kind])
    if kind == 0:
        out += struct.pack("<q", n)
    elif kind == 1:
        out += bytes([n])
    return out


def misc(sel):
    return bytes([OP_MISC, sel])


def client(prefix=False, tenant7=False, headers=False, base=0, no_token=False):
    return bytes([(1 if prefix else 0) | (2 if tenant7 else 0) | (4 if headers else 0)
                  | (base << 3) | (0x20 if no_token else 0)])


write("request_fuzz", "get-query", client() + path("/v1/customers/9")
      + pair(OP_QUERY, "page", 2) + pair(OP_QUERY, "per_page", "15")
      + pair(OP_QUERY, "include", ["orders", "notes", 3, True])
      + pair(OP_QUERY, "active", True) + pair(OP_QUERY, "deleted", None)
      + pair(OP_QUERY, "q", "caf\u00e9 & co=1?#") + pair(OP_QUERY, "ratio", 0.1))
write("request_fuzz", "post-json", client(prefix=True) + method_op("post") + path("customers")
      + body_json('{"name":"Ada","tags":[],"n":1.5,"big":9007199254740993,"o":{"b":1,"a":[null]}}'))
write("request_fuzz", "put-raw", client(base=1) + method_op("PUT") + path("/v1/blobs/x")
      + body_raw('{"already":"encoded"}'))
write("request_fuzz", "headers", client(headers=True) + header("X-Trace", "abc\tdef")
      + header("Accept", False) + header("X-Client", "override") + header("Authorization", False))
write("request_fuzz", "header-injection", client() + header("X-Bad", "a\r\nInjected: 1"))
write("request_fuzz", "header-bad-name", client() + header("X Bad:", "v"))
write("request_fuzz", "header-nul-name", client() + header("X-A\x00\r\nEvil", "v"))
write("request_fuzz", "form", client(tenant7=True) + method_op("post") + path("/oauth/token")
      + pair(OP_FORM, "grant_type", "client_credentials") + pair(OP_FORM, "scope", ["a", "b c"]))
write("request_fuzz", "multipart", client() + method_op("post") + path("/v1/files")
      + bytes([OP_MULTIPART]) + lstr("doc") + bytes([part_sel(2, filename=True, ctype=True, data=False)])
      + lstr("hello") + lstr("a\"b.txt") + lstr("text/plain")
      + bytes([OP_MULTIPART]) + lstr("file") + bytes([part_sel(3, path_ix=0, filename=False, ctype=False, data=False)])
      + bytes([OP_MULTIPART]) + lstr("n") + b"\x01\x07"
      + bytes([OP_MULTIPART]) + lstr("s") + b"\x00" + lstr("plain"))
write("request_fuzz", "multipart-bad", client() + method_op("post")
      + bytes([OP_MULTIPART]) + lstr("both") + bytes([part_sel(2, path_ix=1)]) + lstr("x"))
write("request_fuzz", "multipart-missing", client() + method_op("post")
      + bytes([OP_MULTIPART]) + lstr("gone") + bytes([part_sel(3, path_ix=1)]))
write("request_fuzz", "tenant", client(tenant7=True) + tenant(0, 42) + method_op("DELETE")
      + path("/v1/customers/9"))
write("request_fuzz", "tenant-false", client(tenant7=True) + tenant(2))
write("request_fuzz", "tenant-negative", client() + tenant(0, -5))
write("request_fuzz", "odd-path", client(prefix=True) + path("../../etc?x=1#frag%zz \u00e9\x00tail")
      + pair(OP_QUERY, "y", 2))
write("request_fuzz", "absolute-path", client() + path("https://evil.test/x"))
write("request_fuzz", "scheme-relative", client() + path("//evil.test/x"))
write("request_fuzz", "empty-path", client() + path(""))
write("request_fuzz", "bad-method", client() + method_op("G3T"))
write("request_fuzz", "long-method", client() + method_op("PROPFINDPROPFINDX"))
write("request_fuzz", "query-bad", client() + pair(OP_QUERY, 1, "x")
      + pair(OP_QUERY, "nan", float("nan")) + pair(OP_QUERY, "t", {}))
write("request_fuzz", "query-inf", client() + pair(OP_QUERY, "inf", float("inf")))
write("request_fuzz", "misc", client() + misc(2 | (7 << 3)) + misc(3 | (1 << 3)) + misc(0 | (6 << 3)))
write("request_fuzz", "misc-raise", client() + misc(4) + misc(0x80 | 5))
write("request_fuzz", "no-token-http", client(base=3, no_token=True) + method_op("Patch")
      + path("x/y"))
write("request_fuzz", "host-only", client(base=2, prefix=True) + path("v1/items"))
write("request_fuzz", "body-bad-json", client() + method_op("post") + body_json('{"a":'))
write("request_fuzz", "body-and-form", client() + body_raw("x") + pair(OP_FORM, "a", "b"))
write("request_fuzz", "post-no-body", client() + method_op("post"))
write("request_fuzz", "body-deep", client() + method_op("PUT")
      + body_json("[" * 300 + "]" * 300))
