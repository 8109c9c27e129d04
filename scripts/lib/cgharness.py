"""Shared helpers for the attack and crash scripts: build the binary, load
the demo district, start and kill `caseguard serve`, sign in with TOTP.

Standard library only (the scripts must run on a bare CI machine)."""

import base64
import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PG_ADMIN = os.environ.get("CG_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")


def binary():
    """Builds (if needed) and returns the path of the caseguard binary."""
    if os.environ.get("CG_BIN"):
        return os.environ["CG_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    subprocess.run(["cargo", "build", "--locked", "--quiet", "--bin", "caseguard"], cwd=ROOT, check=True)
    return os.path.join(target, "debug", "caseguard")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def totp(uri, at=None):
    """The RFC 6238 code of an otpauth:// URI (SHA-1, 6 digits, 30 s)."""
    query = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)
    secret = query["secret"][0]
    key = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    period = int(query.get("period", ["30"])[0])
    digits = int(query.get("digits", ["6"])[0])
    counter = int((at or time.time()) // period)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % (10 ** digits)
    return str(code).zfill(digits)


class Store:
    """A fresh store: a temporary directory and, for PostgreSQL, a database."""

    def __init__(self, backend):
        self.backend = backend
        self.dir = tempfile.mkdtemp(prefix=f"caseguard-{backend}-")
        self.pg_name = None
        self.env = {"PATH": os.environ.get("PATH", ""), "CASEGUARD_DATA_DIR": os.path.join(self.dir, "data")}
        if backend == "postgres":
            self.pg_name = "caseguard_script_" + uuid.uuid4().hex[:12]
            subprocess.run(["psql", PG_ADMIN, "-qc", f"CREATE DATABASE {self.pg_name}"], check=True)
            url = urllib.parse.urlparse(PG_ADMIN)._replace(path="/" + self.pg_name)
            self.url = urllib.parse.urlunparse(url)
        else:
            self.url = "sqlite://" + os.path.join(self.dir, "data", "caseguard.db")
        self.env["CASEGUARD_DATABASE_URL"] = self.url

    def sql(self, query):
        """Runs one query and returns the rows as lists of strings."""
        if self.backend == "postgres":
            out = subprocess.run(["psql", self.url, "-qAtF", "\t", "-c", query], check=True,
                                 capture_output=True, text=True).stdout
            return [line.split("\t") for line in out.splitlines() if line]
        import sqlite3
        with sqlite3.connect(os.path.join(self.dir, "data", "caseguard.db")) as conn:
            return [[str(v) for v in row] for row in conn.execute(query).fetchall()]

    def cleanup(self):
        if self.pg_name:
            subprocess.run(["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {self.pg_name} WITH (FORCE)"],
                           check=False, capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def demo(bin_path, store):
    out = subprocess.run([bin_path, "demo", "--json"], cwd=store.dir, env=store.env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


class Server:
    """`caseguard serve` on a random port, killable."""

    def __init__(self, bin_path, store, extra_env=None, log_name="serve.log"):
        self.bin_path, self.store = bin_path, store
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(store.env, CASEGUARD_LISTEN=f"127.0.0.1:{self.port}", **(extra_env or {}))
        self.log = open(os.path.join(store.dir, log_name), "ab")
        self.proc = None

    def start(self, timeout=60):
        self.proc = subprocess.Popen([self.bin_path, "serve"], cwd=self.store.dir, env=self.env,
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.base + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError("serve did not become ready")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def call(base, method, path, body=None, token=None, headers=None, timeout=30):
    """One JSON request; returns (status, parsed body or text, headers).
    Raises OSError when the server is not there."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        request.add_header(k, v)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            status, raw, hdrs = r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        status, raw, hdrs = e.code, e.read(), dict(e.headers)
    try:
        return status, json.loads(raw), hdrs
    except ValueError:
        return status, raw.decode("utf-8", "replace"), hdrs


_last_step = {}


def sign_in(base, login):
    """An access token for a demo login (waits for a fresh TOTP step: each
    code works once)."""
    step = int(time.time() // 30)
    if _last_step.get(login["email"]) == step:
        time.sleep(30 - time.time() % 30 + 0.5)
    _last_step[login["email"]] = int(time.time() // 30)
    status, body, _ = call(base, "POST", "/api/v1/auth/token",
                           {"email": login["email"], "password": login["password"], "totp": totp(login["totp_uri"])})
    if status != 200:
        raise RuntimeError(f"sign-in of {login['role']} failed: {status} {body}")
    return body["access_token"]


def case_body(marker):
    """A case for `marker`; the same marker always gives the same body (a
    retry with the same Idempotency-Key must be the same request)."""
    rng = random.Random(marker)
    return {
        "risk_level": rng.choice(["low", "medium", "high"]),
        "pupil": {"name": f"Học sinh {marker}", "date_of_birth": "2013-04-0" + str(rng.randint(1, 9)),
                  "sex": rng.choice(["female", "male"]), "class": "7A", "guardian": f"Mẹ {marker}"},
        "incident": {"type": "sexual_assault", "contexts": ["on_premises"], "date": "2026-01-05",
                     "location_type": "school_premises", "perpetrator_relation": "teacher_or_staff",
                     "narrative": f"Tường thuật {marker}"},
    }
