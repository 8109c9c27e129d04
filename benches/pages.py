#!/usr/bin/env python3
"""The web pages' weight and render time (issue 6).

Loads the demo district into a fresh SQLite store, starts `caseguard serve`
(release build unless CG_BIN names a binary), signs each role in through the
web form (password + TOTP) and fetches every page N times over one kept-alive
loopback connection. Prints, per page: the HTML's size, the size of the page
with everything it loads (style sheet, script, charts; each once), and the
time from sending the request to the last byte (p50, p90) — on loopback this
is the server's render time plus a few tens of microseconds.

    benches/pages.py            # 50 fetches per page
    PAGES_N=200 benches/pages.py

Standard library only.
"""

import html
import http.client
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "lib"))
import cgharness as cg  # noqa: E402

N = int(os.environ.get("PAGES_N", "50"))


def release_binary():
    if os.environ.get("CG_BIN"):
        return os.environ["CG_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(cg.ROOT, "target"))
    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--bin", "caseguard"],
                   cwd=cg.ROOT, check=True)
    return os.path.join(target, "release", "caseguard")


class Browser:
    """One connection and one session cookie, like a browser tab."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies = {}

    def request(self, method, path, form=None):
        headers = {"Origin": f"http://127.0.0.1:{self.port}", "Sec-Fetch-Site": "same-origin"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        start = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - start
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                k, _, v = pair.partition("=")
                if v:
                    self.cookies[k] = v
                else:
                    self.cookies.pop(k, None)
        return response.status, data, elapsed

    def sign_in(self, login):
        # A fresh TOTP step for each account (a code works once).
        step = int(time.time() // 30)
        if cg._last_step.get(login["email"]) == step:
            time.sleep(30 - time.time() % 30 + 0.5)
        cg._last_step[login["email"]] = int(time.time() // 30)
        status, _, _ = self.request("POST", "/login", {
            "email": login["email"], "password": login["password"], "totp": cg.totp(login["totp_uri"])})
        if status not in (302, 303):
            raise RuntimeError(f"web sign-in of {login['role']} answered {status}")


def subresources(page):
    found = re.findall(rb'(?:src|href)="(/(?:static|api/v1/stats/chart)[^"]*)"', page)
    return sorted({html.unescape(f.decode()) for f in found})


def measure(browser, path):
    times = []
    status, html, _ = browser.request("GET", path)
    if status != 200:
        raise RuntimeError(f"{path} answered {status}")
    for _ in range(N):
        _, _, elapsed = browser.request("GET", path)
        times.append(elapsed * 1000)
    total = len(html)
    for sub in subresources(html):
        s, data, _ = browser.request("GET", sub)
        if s != 200:
            raise RuntimeError(f"{sub} answered {s}")
        total += len(data)
    times.sort()
    return len(html), total, statistics.median(times), times[int(len(times) * 0.9) - 1]


def main():
    bin_path = release_binary()
    store = cg.Store("sqlite")
    server = None
    try:
        logins = {l["role"]: l for l in cg.demo(bin_path, store)}
        port = cg.free_port()
        server = cg.Server(bin_path, store, {"CASEGUARD_PUBLIC_URL": f"http://127.0.0.1:{port}/",
                                             })
        server.port, server.base = port, f"http://127.0.0.1:{port}"
        server.env["CASEGUARD_LISTEN"] = f"127.0.0.1:{port}"
        server.start()
        token = cg.sign_in(server.base, logins["focal_point"])
        _, cases, _ = cg.call(server.base, "GET", "/api/v1/cases", token=token)
        case_id = (cases["cases"] if isinstance(cases, dict) else cases)[0]["id"]
        officer_token = cg.sign_in(server.base, logins["agency_officer"])
        _, inbox, _ = cg.call(server.base, "GET", "/api/v1/referrals", token=officer_token)
        referral_id = (inbox["referrals"] if isinstance(inbox, dict) else inbox)[0]["id"]

        plan = [
            (None, ["/login"]),
            ("focal_point", ["/", "/cases/new", f"/cases/{case_id}", "/escalations", "/account"]),
            ("agency_officer", ["/referrals", f"/referrals/{referral_id}"]),
            ("district_officer", ["/escalations", "/stats"]),
            ("monitor", ["/stats"]),
            ("admin", ["/users", "/organisations", "/policies"]),
            ("auditor", ["/audit"]),
        ]
        rows = []
        for role, paths in plan:
            browser = Browser(port)
            if role:
                browser.sign_in(logins[role])
            for path in paths:
                shown = path.replace(case_id, "{id}").replace(referral_id, "{id}")
                rows.append((role or "anonymous", shown) + measure(browser, path))
        print(f"\n{N} fetches per page after one warm-up; SQLite; {os.cpu_count()} cores; "
              f"load average {os.getloadavg()[0]:.2f}\n")
        print("| role | page | HTML | with style, script, charts | p50 | p90 |")
        print("|---|---|---|---|---|---|")
        for role, path, html, total, p50, p90 in rows:
            print(f"| {role} | `{path}` | {html / 1024:.1f} kB | {total / 1024:.1f} kB | "
                  f"{p50:.2f} ms | {p90:.2f} ms |")
    finally:
        if server:
            server.stop()
        store.cleanup()


if __name__ == "__main__":
    main()
