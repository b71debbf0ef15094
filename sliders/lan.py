"""Serving the people in this room: the settings `manage.py serve_lan` gives uvicorn.

The machine's own addresses and names (the only hosts it answers to), the secret key it keeps in
`var/`, and the environment that turns the production settings into plain HTTP on a LAN.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import stat
from pathlib import Path

import psutil
from django.http.request import split_domain_port

SECRET_KEY_FILE = "secret_key"


def secret_key(var_dir: Path) -> str:
    """The key in `var_dir/secret_key`, made there (mode 0600) the first time.

    The same key on every start, so sign-ins survive a restart. A key file that others may read
    is made private again (mode 0600). Raises ValueError if the file is there but empty, and
    OSError if it cannot be read or made.
    """
    path = var_dir / SECRET_KEY_FILE
    var_dir.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two starts at once make one key, never two.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if stat.S_IMODE(path.stat().st_mode) != 0o600:
            path.chmod(0o600)
        key = path.read_text().strip()
        if not key:
            raise ValueError(f"{path} is empty: delete it, and a new key is made.") from None
        return key
    # Letters, digits, - and _ only: nothing the settings' reader takes for a reference ($...).
    key = secrets.token_urlsafe(50)
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    return key


def keep_private(var_dir: Path) -> None:
    """Make what this process and its children write readable by this user only (umask 077),
    and the SQLite files already in `var_dir` (the database, its -wal and -shm) so too.

    The database holds password hashes, sessions and API token digests: as private as the key.
    Raises OSError if a file cannot be changed.
    """
    os.umask(0o077)
    for path in var_dir.glob("*.sqlite3*"):
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)


def machine_addresses() -> list[str]:
    """The IPv4 addresses others on the network can reach this machine at, in interface order.

    Addresses of interfaces that are up and connected (`running`: a bridge with nothing on it is
    not), without loopback and link-local (169.254.x.x) ones. Empty when the machine is on no
    network. IPv6 is left out: uvicorn listens on IPv4 here, and phones are given IPv4 URLs.
    """
    stats = psutil.net_if_stats()
    found: list[str] = []
    for interface, interface_addresses in psutil.net_if_addrs().items():
        state = stats.get(interface)
        if state is None or not state.isup or "running" not in state.flags.split(","):
            continue
        for address in interface_addresses:
            if address.family != socket.AF_INET:
                continue
            ip = ipaddress.IPv4Address(address.address)
            if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
                found.append(str(ip))
    return list(dict.fromkeys(found))


def machine_names() -> list[str]:
    """The machine's host names: its name, that name on mDNS (`name.local`) and its FQDN.

    Without `localhost` (the loopback names are added by `allowed_hosts`), and without names
    that Django refuses in a `Host` header (`stage_pc`: an underscore, or letters beyond ASCII),
    whose URLs would only ever answer 400 Bad Request.
    """
    hostname = socket.gethostname()
    names = [hostname]
    if hostname and "." not in hostname:
        names.append(f"{hostname}.local")  # Bonjour/Avahi: phones on the LAN may resolve it
    fqdn = socket.getfqdn()
    if fqdn and not fqdn.startswith("localhost"):
        names.append(fqdn)
    return [name.lower() for name in dict.fromkeys(names) if name and split_domain_port(name)[0]]


def allowed_hosts(addresses: list[str], names: list[str], configured: list[str]) -> list[str]:
    """ALLOWED_HOSTS for the LAN: the machine's addresses and names, loopback, and `configured`."""
    loopback = ["127.0.0.1", "localhost", "[::1]"]
    return list(dict.fromkeys([*addresses, *names, *loopback, *configured]))


def environment(*, key: str, hosts: list[str]) -> dict[str, str]:
    """What the uvicorn process gets on top of the current environment.

    The production settings (DEBUG off) with this key and these hosts, and the HTTPS settings
    off: on a LAN there is no TLS, so a redirect to https:// or Secure cookies would lock
    everyone out. No proxy is in front either, so forwarded headers are never trusted.
    """
    return {
        "DJANGO_SETTINGS_MODULE": "sliderproject.settings",
        "DEBUG": "false",
        "SECRET_KEY": key,
        "ALLOWED_HOSTS": ",".join(hosts),
        "BEHIND_HTTPS_PROXY": "false",
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SECURE_HSTS_SECONDS": "0",
    }
