"""Shared plumbing of the commerce-http tests: the private cluster, the
daemon under test, HTTP helpers.  Everything is real: a PostgreSQL 15 cluster
with the installed extension and the built daemon binary."""
import atexit
import http.client
import json
import os
import signal
import socket
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PGBIN = "/usr/lib/postgresql/15/bin"
PG_DIR = os.environ.get("HTTP_TEST_PG_DIR", os.path.join(ROOT, ".run", "http-test"))
# one port, or "A,B": the two nodes of scripts/ha.sh, both with their
# sockets in PG_DIR/sock; libpq then connects to whichever is the primary
PG_PORT = os.environ.get("HTTP_TEST_PG_PORT", "5442")
HTTP_PORT = int(os.environ.get("HTTP_TEST_PORT", "18081"))
DAEMON = os.environ.get("HTTP_TEST_DAEMON", os.path.join(ROOT, "frontend", "commerce-http"))
LOG_DIR = os.environ.get("HTTP_TEST_LOG_DIR", os.path.join(ROOT, ".run", "http-test-logs"))
SOCK = os.path.join(PG_DIR, "sock")
PG_HOSTS = ",".join([SOCK] * len(PG_PORT.split(",")))
PRIMARY = " target_session_attrs=read-write" if "," in PG_PORT else ""
CONNINFO = f"host={PG_HOSTS} port={PG_PORT} user=commerce_http dbname=postgres{PRIMARY}"
# a login role in commerce_operator, for the daemons that serve /api/admin
OPERATOR_CONNINFO = f"host={PG_HOSTS} port={PG_PORT} user=commerce_http_operator dbname=postgres{PRIMARY}"
TOKEN_TOOL = os.path.join(ROOT, "frontend", "commerce-token")
AUTH_LEEWAY = 30                  # seconds, AUTH_LEEWAY_SECONDS of frontend/auth.h

# Every daemon of the tests verifies HS256 tokens with this secret; the
# environment variable reaches daemons started with a bare environment too.
os.makedirs(LOG_DIR, exist_ok=True)
JWT_KEY = os.path.join(LOG_DIR, f"jwt-{os.getpid()}.key")
with open(JWT_KEY, "wb") as _f:
    _f.write(os.urandom(48))
os.environ["COMMERCE_HTTP_JWT_KEY"] = JWT_KEY


def mint(sub, *args, key=JWT_KEY, alg="HS256"):
    """A token from frontend/commerce-token (libjwt), e.g. mint(7, "--admin")."""
    return subprocess.run([TOKEN_TOOL, "--key", key, "--alg", alg, *args, str(sub)],
                          check=True, capture_output=True, text=True).stdout.strip()


# An operator's token: the tests act for many users through it; the tests of
# authentication and ownership use customers' tokens of their own.
ADMIN_TOKEN = mint(1, "--admin", "--ttl", "86400")
DEFAULT_AUTH = object()


def with_token(data, token=None):
    """Raw request bytes with an Authorization line after every "Host: x"
    line, so that raw-socket requests to /api routes get past the token
    check to what they test."""
    return data.replace(b"\r\nHost: x\r\n",
                        b"\r\nHost: x\r\nAuthorization: Bearer " + (token or ADMIN_TOKEN).encode() + b"\r\n")


def pg_env():
    env = dict(os.environ)
    env.update(PGHOST=PG_HOSTS, PGPORT=PG_PORT, PGUSER="postgres", PGDATABASE="postgres")
    if PRIMARY:
        env["PGTARGETSESSIONATTRS"] = "read-write"
    return env


def psql(sql):
    """Runs SQL as the superuser; returns rows as lists of strings."""
    out = subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-F", "\t", "-c", sql],
                         env=pg_env(), check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line != ""]


def psql_value(sql):
    return psql(sql)[0][0]


def pg_ctl(*args):
    cmd = [f"{PGBIN}/pg_ctl", "-D", os.path.join(PG_DIR, "data"), *args]
    if os.getuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True)


def pg_stop():
    pg_ctl("-m", "fast", "-w", "stop")


def pg_start():
    pg_ctl("-w", "-l", os.path.join(PG_DIR, "server.log"), "start")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.raw = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    @property
    def code(self):
        return (self.json or {}).get("error", {}).get("code")

    def __repr__(self):
        return f"<{self.status} {self.raw[:300]!r}>"


def request(method, path, body=None, headers=None, port=None, timeout=30, raw_body=None, token=DEFAULT_AUTH):
    """token: the bearer token to send (default: the operator's), None for none."""
    conn = http.client.HTTPConnection("127.0.0.1", port or HTTP_PORT, timeout=timeout)
    try:
        data = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
        hdrs = {"Content-Type": "application/json"} if data is not None else {}
        if token is not None:
            hdrs["Authorization"] = "Bearer " + (ADMIN_TOKEN if token is DEFAULT_AUTH else token)
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def get(path, **kw):
    return request("GET", path, **kw)


def post(path, body=None, **kw):
    return request("POST", path, body, **kw)


class Daemon:
    """One commerce-http process; its stderr goes to a log file that is
    checked for sanitizer reports when it stops."""
    count = 0
    started = []

    def __init__(self, *args, port=None, threads=2, pool_size=2):
        Daemon.count += 1
        self.port = port or HTTP_PORT
        os.makedirs(LOG_DIR, exist_ok=True)
        self.log_path = os.path.join(LOG_DIR, f"daemon-{os.getpid()}-{Daemon.count}.log")
        self.args = [DAEMON, "--listen", f"127.0.0.1:{self.port}", "--db", CONNINFO,
                     "--threads", str(threads), "--pool-size", str(pool_size), *args]
        self.proc = None

    def spawn(self):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        Daemon.started.append(self)
        return self

    def start(self):
        self.spawn()
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.log.close()
                raise RuntimeError(f"daemon exited with {self.proc.returncode}: {self.read_log()}")
            try:
                if get("/readyz", port=self.port, timeout=2).status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("daemon not ready within 15 s: " + self.read_log())

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops the daemon; returns its exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self.log.close()

    def sanitizer_report(self):
        log = self.read_log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in log:
                return log
        return None

    def __enter__(self):
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc):
        self.stop()


class TableLock:
    """Holds ACCESS EXCLUSIVE on a table in an open transaction (a psql
    session kept alive on a pipe) so that calls touching it wait."""

    def __init__(self, table):
        self.table = table

    def __enter__(self):
        self.proc = subprocess.Popen(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1"], env=pg_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.proc.stdin.write(f"BEGIN; LOCK TABLE {self.table} IN ACCESS EXCLUSIVE MODE; SELECT 'locked';\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "locked"
        return self

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("ROLLBACK;\n")
            self.proc.stdin.close()
            self.proc.wait(10)
            self.proc.stdout.close()

    def __exit__(self, *exc):
        self.release()


def raw_exchange(data, port=None, timeout=5):
    """Sends raw bytes; returns what came back before the server closed or
    the timeout passed."""
    s = socket.create_connection(("127.0.0.1", port or HTTP_PORT), timeout=timeout)
    try:
        s.sendall(with_token(data))
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and len(chunks) > 0 and timeout < 5:
                break
        return b"".join(chunks)
    finally:
        s.close()


@atexit.register
def _stop_leftover_daemons():
    """A test that failed half-way must not leave its daemon on the port."""
    for d in Daemon.started:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
