"""A private network for tests: a network namespace where the machine has a LAN address.

Some tests need an address of the machine that is not loopback, as phones on a LAN would use.
A fresh network namespace (`unshare --net`, as root) gets a veth pair carrying `LAN_ADDRESS`;
the namespace has no route anywhere else, so nothing sent to that address leaves it. Commands
run inside it through `PrivateNetwork.command` (`nsenter`).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.support.services import unavailable

# From 198.18.0.0/15, the range set aside for network tests (RFC 2544): never routed.
LAN_ADDRESS = "198.18.0.1"

_SETUP = f"""set -e
ip link set lo up
ip link add lan0 type veth peer name lan1
ip address add {LAN_ADDRESS}/24 dev lan0
ip link set lan1 up
ip link set lan0 up
echo ready
exec sleep 600
"""


class PrivateNetwork:
    """A network namespace with loopback and `LAN_ADDRESS`, alive until `stop()`."""

    def __init__(self) -> None:
        self.holder: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateNetwork:
        """Make the namespace; skips the test (fails it on CI) where that is not possible."""
        missing = [tool for tool in ("unshare", "nsenter", "ip") if shutil.which(tool) is None]
        if missing:
            unavailable(f"{', '.join(missing)} not installed (util-linux, iproute2)")
        if os.geteuid() != 0:
            unavailable("making a network namespace needs root")
        # The holder process lives in the namespace (unshare execs into it) and keeps it.
        self.holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", _SETUP],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self.holder.stdout is not None
        if self.holder.stdout.readline() != b"ready\n":
            self.holder.wait(timeout=10)
            assert self.holder.stderr is not None
            unavailable(f"no network namespace: {self.holder.stderr.read().decode().strip()}")
        return self

    def command(self, argv: list[str]) -> list[str]:
        """`argv` as a command that runs inside the namespace."""
        assert self.holder is not None, "start() first"
        return ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net", "--", *argv]

    def stop(self) -> None:
        if self.holder is not None and self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait(timeout=10)
