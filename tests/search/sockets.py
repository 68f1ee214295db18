"""Listening TCP sockets of a process tree, read from /proc (no `ss` needed): which addresses a sweep exposes."""

from __future__ import annotations

import ipaddress
import os
import socket
import struct

LISTEN = "0A"  # TCP state code of a listening socket in /proc/net/tcp*


def listening(pids: set[int]) -> set[tuple[str, int, int]]:
    """(address, port, pid) of every TCP socket in LISTEN state held open by one of `pids`."""
    by_inode = _listening_inodes()
    out = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue  # exited meanwhile
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in by_inode:
                address, port = by_inode[target[8:-1]]
                out.add((address, port, pid))
    return out


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _listening_inodes() -> dict[str, tuple[str, int]]:
    out = {}
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != LISTEN:
                continue
            hex_ip, hex_port = fields[1].split(":")
            out[fields[9]] = (_decode(hex_ip, family), int(hex_port, 16))
    return out


def _decode(hex_ip: str, family: int) -> str:
    raw = bytes.fromhex(hex_ip)
    # The kernel prints each 32-bit word in host byte order (little-endian here).
    words = b"".join(struct.pack("<I", struct.unpack(">I", raw[i:i + 4])[0]) for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, words)
