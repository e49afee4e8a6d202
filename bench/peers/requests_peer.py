"""Python 3 + requests with one Session (a kept-alive connection pool), bodies decoded by
resp.json(): what a Python user of the API writes. Same command line and output as the Lua
peers (see common.lua): WORKLOAD BASE PATH TOKEN COUNT, prints "<seconds> <items>"."""
import json
import sys
import time

import requests


def main():
    workload, base, path, token, count = sys.argv[1:6]
    count = int(count)
    url = base + path
    session = requests.Session()
    session.headers.update({"Authorization": "Bearer " + token, "Accept": "application/json"})

    def fetch(u):
        r = session.get(u)
        r.raise_for_status()
        return r.json()

    def once():
        if workload == "get":
            if fetch(url).get("data") is None:
                raise RuntimeError("no data in the answer of " + url)
            return 1
        if workload == "walk":
            u, items = url, 0
            while True:
                body = fetch(u)
                items += len(body["data"])
                if body["meta"].get("has_more") is not True:
                    return items
                u = url + "&cursor=" + body["meta"]["cursor"]
        if workload == "decode":
            json.loads(text)
            return 1
        raise SystemExit("unknown workload " + workload)

    text = None
    if workload == "decode":
        with open(path, "rb") as f:
            text = f.read()
    for _ in range(10 if workload == "get" else 1):
        once()
    items = 0
    t0 = time.monotonic()
    for _ in range(count):
        items += once()
    print("%.6f %d" % (time.monotonic() - t0, items))


main()
