"""servers.py - start, read and stop the servers under test.

What it is for: every server the benchmark measures -- our backend binaries,
the floor, nginx and h2o -- is started the same way (pinned with taskset to
the server CPUs, on a free loopback port, serving the same generated --root),
watched through /proc the same way (CPU time, peak and current memory) and
verified the same way before it is measured. Plain Python 3 stdlib.

Workers: our servers take --workers N (N event loops, each on its own
SO_REUSEPORT listener); nginx is given worker_processes N (with its master
process and reuseport listeners when N > 1) and h2o num-threads N, so every
server gets the same number of loops. The floor always runs one loop. With
several processes (nginx's master and workers), CPU time and memory are
summed over the whole process family. Under Wine, a process's sockets,
waits and polls are served by the wineserver, a separate process pinned
with it: its CPU time counts as the Wine server's (its memory does not).

Contention: a server pinned to its CPUs should be the only thing busy on
them. core_ticks() reads how busy those CPUs were, from /proc/stat, so a
trial can tell how much of their time went to something else.

Needs: Linux /proc, taskset (util-linux); nginx and h2o only for their lines.
"""

import http.client
import os
import selectors
import shutil
import signal
import socket
import subprocess
import time

import parse

CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 10
STOP_TIMEOUT_S = 6
IDLE_TIMEOUT_S = 600   # longer than any point, so idle connections stay open
MAX_CONNS = 19000      # above the largest sweep; below the 20,000-fd limit


class StartError(Exception):
    """The server could not start here. `reason` says why, for the results."""

    def __init__(self, reason, exit_code=None):
        super().__init__(reason)
        self.reason = reason
        self.exit_code = exit_code


def pin(cpus):
    """The command prefix that pins a process to `cpus` ('0' or '0,2'), or
    nothing when pinning is off (cpus is None)."""
    return ["taskset", "-c", cpus] if cpus else []


def cpu_set(cpus):
    """The set of CPU numbers of a taskset list ('0', '0,2', '0-3'). Raises
    ValueError on anything else."""
    out = set()
    for part in cpus.split(","):
        lo, _, hi = part.strip().partition("-")
        out |= set(range(int(lo), int(hi or lo) + 1))
    return out


def cpu_busy_ticks(cpus):
    """Clock ticks the CPUs in the set `cpus` have been busy since boot, from
    /proc/stat: user, nice, system, irq, softirq and steal (time the
    hypervisor gave to someone else), summed. Idle and iowait are not busy."""
    busy = 0
    with open("/proc/stat") as f:
        for line in f:
            name, _, rest = line.partition(" ")
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                t = [int(x) for x in rest.split()]
                busy += t[0] + t[1] + t[2] + t[5] + t[6] + t[7]
    return busy


def wineservers():
    """The pids of the running wineservers (one per Wine prefix)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/comm" % entry) as f:
                    if f.read().startswith("wineserver"):
                        out.append(int(entry))
            except OSError:
                continue
    return out


def free_port():
    """A loopback TCP port nobody listens on right now (for servers that
    cannot be told --port 0: nginx, h2o)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One running server process.

    spec: dict from bench.py's discovery: name, label, kind ('native',
    'emulated', 'wine', 'reference'), and how to start it: 'argv' (a
    contract binary that prints the ready line) or 'ref' ('nginx'/'h2o').
    workers: event loops to ask for (--workers, worker_processes,
    num-threads); the floor ignores it and runs one.
    """

    def __init__(self, spec, root, cpus, workdir, workers=1):
        self.spec, self.root, self.cpus, self.workdir = spec, root, cpus, workdir
        self.workers = 1 if spec["name"] == "floor" else max(1, int(workers))
        self.proc = None
        self.port = None
        self.reported_workers = None
        self.log_path = os.path.join(workdir, "logs", spec["name"] + ".log")
        # nginx with workers runs a master and N worker processes.
        self.family = spec.get("ref") == "nginx" and self.workers > 1

    def contract_argv(self):
        """The command line of a contract binary (our servers, the floor):
        the same flags for every one of them (DESIGN.md)."""
        argv = self.spec["argv"] + ["--port", "0", "--root", self.root,
                                    "--idle-timeout", str(IDLE_TIMEOUT_S),
                                    "--max-conns", str(MAX_CONNS)]
        if self.spec["name"] != "floor":
            argv += ["--workers", str(self.workers)]
        return argv

    # -- life cycle --------------------------------------------------------

    def start(self):
        """Starts the server and waits until it accepts connections. Raises
        StartError with the reason (exit code 3: model unavailable here)."""
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        self.log = open(self.log_path, "ab")
        if "ref" in self.spec:
            self.port = free_port()
            argv = write_ref_config(self.spec["ref"], self.workdir, self.root, self.port,
                                    self.workers)
            self.proc = subprocess.Popen(pin(self.cpus) + argv, stdin=subprocess.DEVNULL,
                                         stdout=self.log, stderr=self.log)
            self._wait_connectable()
        else:
            argv = self.contract_argv()
            self.proc = subprocess.Popen(pin(self.cpus) + argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=self.log)
            self._wait_ready_line()
        return self

    def _fail(self, what):
        try:  # a server that closed its output may not be reaped yet
            code = self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            code = None
        self.log.flush()
        tail = _tail(self.log_path)
        if code is None:
            self.stop()
        reason = what if code is None else "exited with code %d" % code
        if code == 3:
            reason = "not available on this machine (exit code 3)"
        raise StartError(reason + (": " + tail if tail else ""), code)

    def _wait_ready_line(self):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + START_TIMEOUT_S
        line = b""
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            if sel.select(timeout=0.1):
                chunk = os.read(self.proc.stdout.fileno(), 512)
                if not chunk:
                    break
                line += chunk
        sel.close()
        ready = parse.parse_listening_line(line.decode(errors="replace").strip())
        if ready is None and not line.endswith(b"\n") and time.monotonic() < deadline:
            self._fail("closed its output without a 'listening on' line")
        if ready is None:
            self._fail("no 'listening on' line within %d s" % START_TIMEOUT_S)
        self.port, self.reported_workers = ready[1], ready[3]
        if self.spec["name"] != "floor" and ready[3] != self.workers:
            self._fail("asked for %d workers, the ready line says %d" % (self.workers,
                                                                         ready[3]))

    def _wait_connectable(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._fail("exited")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self._fail("not accepting connections within %d s" % START_TIMEOUT_S)

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.log.close()
        return self.proc.returncode

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- /proc -------------------------------------------------------------

    def pids(self):
        """The server's process and, for a process family (nginx with
        workers), its children: the processes whose time and memory count."""
        pids = [self.proc.pid]
        if self.family:
            pids += children_of(self.proc.pid)
        return pids

    def cpu_ticks(self):
        """(user, system) clock ticks so far, summed over all threads (and
        over the family's processes). A Wine server's include the
        wineserver's: it does the work a Windows kernel would. While one Wine
        server is measured the others have settled, so that work is its own."""
        user = system = 0
        helpers = wineservers() if self.spec["kind"] == "wine" else []
        for pid in self.pids() + helpers:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    st = parse.parse_proc_stat(f.read())
            except OSError:
                continue  # a child that has just exited
            user, system = user + st["utime"], system + st["stime"]
        return user, system

    def core_ticks(self):
        """Busy clock ticks so far of the CPUs the server is pinned to (by
        whoever used them), or None when it is not pinned."""
        return cpu_busy_ticks(cpu_set(self.cpus)) if self.cpus else None

    def memory_kb(self):
        """{'VmHWM': peak kB, 'VmRSS': current kB, 'Threads': n}, summed over
        the family's processes (their shared pages then count once each)."""
        total = {}
        for pid in self.pids():
            try:
                with open("/proc/%d/status" % pid) as f:
                    st = parse.parse_proc_status(f.read())
            except OSError:
                continue
            for k, v in st.items():
                total[k] = total.get(k, 0) + v
        return total

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)


def children_of(pid):
    """The pids whose parent is `pid` (read from /proc/*/stat)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                text = f.read()
        except OSError:
            continue
        # The fields after the command name, which may hold spaces: state, ppid.
        fields = text[text.rfind(")") + 2:].split()
        if len(fields) > 1 and fields[1] == str(pid):
            out.append(int(entry))
    return out


def _tail(path, n=300):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - n))
            return " ".join(f.read().decode(errors="replace").split())
    except OSError:
        return ""


# -- reference servers ------------------------------------------------------

def write_ref_config(kind, workdir, root, port, workers=1):
    """Writes nginx's or h2o's configuration into the run folder (so the run
    records exactly what was measured) and returns the argv that starts it:
    `workers` worker processes or threads (one by default), no access log,
    keep-alive without a request limit, the same /plaintext, /json and
    /static/ as our servers."""
    cdir = os.path.join(workdir, "reference", kind)
    os.makedirs(os.path.join(cdir, "tmp"), exist_ok=True)
    conf = os.path.join(cdir, kind + ".conf")
    if kind == "nginx":
        # One worker runs without a master (one process to watch); several
        # need the master, and a reuseport listener each, as our servers have.
        text = NGINX_CONF.format(dir=cdir, root=root.rstrip("/"), port=port,
                                 idle=IDLE_TIMEOUT_S, conns=MAX_CONNS, workers=workers,
                                 master="on" if workers > 1 else "off",
                                 reuseport=" reuseport" if workers > 1 else "")
        argv = ["nginx", "-p", cdir, "-c", conf, "-e", os.path.join(cdir, "error.log")]
    else:
        text = H2O_CONF.format(dir=cdir, root=root.rstrip("/"), port=port,
                               idle=IDLE_TIMEOUT_S, conns=MAX_CONNS, workers=workers)
        argv = ["h2o", "-c", conf]
    with open(conf, "w") as f:
        f.write(text)
    return argv


NGINX_CONF = """\
# Generated by harness/servers.py: nginx as a reference line.
# worker_processes as the run's --workers (one: no master), epoll, no access
# log, unlimited keep-alive.
# user root: with a master, the workers would otherwise drop to nobody and
# could not read the generated --root (mode 0700); without one it is moot.
daemon off;
user root;
master_process {master};
worker_processes {workers};
worker_rlimit_nofile 20000;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections {conns};
    use epoll;
}}
http {{
    access_log off;
    server_tokens off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout {idle}s;
    keepalive_requests 100000000;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    types {{ text/plain txt; application/octet-stream bin; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096{reuseport};
        location = /plaintext {{
            default_type text/plain;
            return 200 "Hello, World!";
        }}
        location = /json {{
            default_type application/json;
            return 200 '{{"message":"Hello, World!"}}';
        }}
        location /static/ {{
            alias {root}/;
        }}
    }}
}}
"""

H2O_CONF = """\
# Generated by harness/servers.py: h2o as a reference line.
# num-threads as the run's --workers, no access log; /plaintext and /json
# from mruby handlers.
user: root
num-threads: {workers}
max-connections: {conns}
http1-request-timeout: {idle}
pid-file: {dir}/h2o.pid
error-log: {dir}/error.log
listen:
  host: 127.0.0.1
  port: {port}
hosts:
  default:
    paths:
      /plaintext:
        mruby.handler: |
          Proc.new do |env|
            [200, {{"content-type" => "text/plain"}}, ["Hello, World!"]]
          end
      /json:
        mruby.handler: |
          Proc.new do |env|
            [200, {{"content-type" => "application/json"}}, ['{{"message":"Hello, World!"}}']]
          end
      /static:
        file.dir: {root}
"""


def reference_available(kind):
    """None if the reference server `kind` can run here, else the reason."""
    if kind == "floor":
        return None
    if shutil.which(kind) is None:
        pkg = {"nginx": "nginx-light", "h2o": "h2o"}[kind]
        return "%s is not installed (apt-get install %s)" % (kind, pkg)
    return None


# -- verification -----------------------------------------------------------

def verify(server, static_files, plaintext_only=False):
    """Checks a running server's answers before it is measured: status, body,
    Content-Type and Content-Length of /plaintext, /json and one static file,
    all on one keep-alive connection. Returns a list of problems (empty: ok)."""
    checks = [("/plaintext", b"Hello, World!", "text/plain")]
    if not plaintext_only:
        checks.append(("/json", b'{"message":"Hello, World!"}', "application/json"))
        name, path = static_files[0]
        with open(path, "rb") as f:
            checks.append(("/static/" + name, f.read(), None))
    problems = []
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        for path, body, ctype in checks:
            problems += _check_one(conn, path, body, ctype)
    except (OSError, http.client.HTTPException) as e:
        problems.append("request failed: %s" % e)
    finally:
        conn.close()
    return problems


def _check_one(conn, path, body, ctype):
    conn.request("GET", path)
    resp = conn.getresponse()
    got = resp.read()
    bad = []
    if resp.status != 200:
        bad.append("%s: status %d, expected 200" % (path, resp.status))
    if got != body:
        bad.append("%s: body of %d bytes differs from the expected %d" %
                   (path, len(got), len(body)))
    if resp.getheader("Content-Length") != str(len(body)):
        bad.append("%s: Content-Length %r, expected %d" %
                   (path, resp.getheader("Content-Length"), len(body)))
    if ctype and not (resp.getheader("Content-Type") or "").startswith(ctype):
        bad.append("%s: Content-Type %r, expected %s" %
                   (path, resp.getheader("Content-Type"), ctype))
    if resp.will_close:
        bad.append("%s: connection not kept alive" % path)
    return bad
