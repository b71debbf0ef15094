"""The documented nginx configuration, run for real on one machine (standard library only).

`docs/nginx/slidersync.conf` is read as it is; only what must differ on a test machine is
replaced (`render`): the listen ports (on 127.0.0.1, no IPv6), the backend addresses and the
certificate paths (a self-signed certificate for 127.0.0.1, `self_signed_certificate`). A small
wrapper `nginx.conf` (`wrapper_config`) supplies what Debian's main nginx.conf would (the
`events` and `http` blocks) and keeps nginx's files inside one directory; `Nginx` runs it in the
foreground. Used by tests/test_nginx.py and by the rolling-restart run (bench/restart.py), so
both run the very file docs/deploy.md quotes.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
CONFIG = PROJECT_DIR / "docs" / "nginx" / "slidersync.conf"


def render(
    config: str, *, http_port: int, https_port: int, backends: list[int], cert: Path, key: Path
) -> str:
    """The documented config with local ports, backends and certificate; nothing else changes.

    Raises ValueError when the config no longer has the lines these substitutions expect.
    """
    ports = iter(backends)

    def backend(line: re.Match[str]) -> str:  # the address changes, its parameters stay
        return f"{line[1]}server 127.0.0.1:{next(ports)}{line[2] or ''};"

    substitutions: list[tuple[str, str | Callable[[re.Match[str]], str], int]] = [
        # IPv6 may be missing on a test machine; the IPv4 lines cover the same servers.
        (r"^[ \t]*listen \[::\]:\d+[^;\n]*;[ \t]*\n", "", 2),
        (r"\blisten 80;", f"listen 127.0.0.1:{http_port};", 1),
        (r"\blisten 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;", 1),
        (r"^([ \t]*)server [\d.]+:\d+( [^;]*)?;", backend, 2),
        (r"\bssl_certificate[ \t]+[^;\s]+;", f"ssl_certificate {cert};", 1),
        (r"\bssl_certificate_key[ \t]+[^;\s]+;", f"ssl_certificate_key {key};", 1),
    ]  # fmt: skip
    for pattern, replacement, expected in substitutions:
        config, count = re.subn(pattern, replacement, config, flags=re.MULTILINE)
        if count != expected:
            raise ValueError(
                f"{CONFIG.name}: expected {expected} match(es) of {pattern!r}, found {count}; "
                "update bench/nginx.py along with the documented config"
            )
    return config


def wrapper_config(prefix: Path, site: Path, *, worker_connections: int = 256) -> str:
    """What Debian's /etc/nginx/nginx.conf provides around a conf.d file, kept inside `prefix`.

    `worker_connections` counts both sides: a proxied client takes two (client and backend).
    """
    # As root, nginx's workers would switch to `nobody`, who may not use our temporary files.
    user = ""
    if os.geteuid() == 0:
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
    temp_paths = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}
worker_processes 1;
events {{
    worker_connections {worker_connections};
}}
http {{
    access_log {prefix / "access.log"};
{temp_paths}
    include {site};
}}
"""


def find_nginx() -> str | None:
    """The nginx binary (Debian puts it in /usr/sbin, often not on a user's PATH), or None."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with `openssl` in `directory`."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def listens(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


class Nginx:
    """nginx in the foreground, with its pid file, logs and temporary files under `prefix`."""

    def __init__(self, prefix: Path, site_config: str, *, worker_connections: int = 256) -> None:
        binary = find_nginx()
        if binary is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        self.binary = binary
        self.prefix = prefix
        prefix.mkdir(parents=True, exist_ok=True)
        site = prefix / "slidersync.conf"
        site.write_text(site_config)
        self.config = prefix / "nginx.conf"
        self.config.write_text(wrapper_config(prefix, site, worker_connections=worker_connections))
        self.error_log = prefix / "error.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        globals_ = f"daemon off; pid {self.prefix / 'nginx.pid'}; error_log {self.error_log};"
        # -e (nginx >= 1.19.5) keeps even start-up messages out of /var/log/nginx.
        version = subprocess.run([self.binary, "-v"], capture_output=True, text=True).stderr
        found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", version)
        early_log = (
            ["-e", str(self.error_log)]
            if found and tuple(map(int, found.groups())) >= (1, 19, 5)
            else []
        )
        paths = ["-p", str(self.prefix), "-c", str(self.config)]
        return [self.binary, *early_log, *paths, "-g", globals_]

    def start(self, port: int, timeout: float = 10) -> Nginx:
        """Check the config (`nginx -t`), start nginx and wait until it accepts on `port`.

        Raises RuntimeError with nginx's messages when the check fails or nginx does not start.
        """
        checked = subprocess.run([*self.command(), "-t"], capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{checked.stderr}")
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while not listens(port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start:\n{self.log()}")
            time.sleep(0.05)
        return self

    def log(self) -> str:
        """nginx's error log so far."""
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    def responses(self) -> list[str]:
        """The access log: one `"METHOD /path HTTP/1.1" status ...` line per request so far."""
        path = self.prefix / "access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def stop(self) -> None:
        """SIGTERM (fast shutdown), then SIGKILL when it has not exited within 10 s."""
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
