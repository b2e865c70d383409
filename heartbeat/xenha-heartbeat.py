#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""xenha-heartbeat: xenha's host heartbeat for XenServer / XCP-ng pools without XenServer HA.

Runs in dom0 of every host of the pool. Every interval it
  1. writes its own slot of a heartbeat file on a shared SR (xhad's statefile layout, with xenha's own
     signatures "xhbg"/"xhbs"), with O_DIRECT (or fsync) so the write reaches the storage, and reads the
     other hosts' slots to see whose sequence changes;
  2. sends an authenticated UDP heartbeat (HMAC-SHA256 with the pool secret, replay-protected by a boot id
     and a sequence) from each of its management homes to every peer's same home, and records whom it
     hears on which home.
It never fences anything: xenha's remediation decides. See docs/heartbeat.md.

Python 3.6 standard library only (the dom0 of CentOS-7-based XenServer / XCP-ng): no newer syntax or modules.
"""

import argparse
import errno
import hashlib
import hmac
import ipaddress
import json
import mmap
import os
import random
import re
import select
import signal
import socket
import stat
import struct
import sys
import threading
import time

PROG = "xenha-heartbeat"
DEFAULT_CONFIG = "/etc/xenha/heartbeat.json"

# ---- heartbeat file layout (docs/heartbeat.md, core/statefile/layout.ts 'xenha') ----
LENGTH_GLOBAL = 4096
LENGTH_HOST_SPECIFIC = 4096
MAX_HOSTS = 64
MAX_HOMES = 4
LAYOUT_BYTES = LENGTH_GLOBAL + MAX_HOSTS * LENGTH_HOST_SPECIFIC
GLOBAL_IO_BYTES = 512
HOST_IO_BYTES = 1024
FILE_VERSION = 1
POOL_STATE_ACTIVE = 2

SIG_GLOBAL = 0x67626878  # b"xhbg"
SIG_GLOBAL_END = 0x65626878  # b"xhbe"
SIG_HOST = 0x73626878  # b"xhbs"
SIG_HOST_END = 0x66626878  # b"xhbf"
GLOBAL_END_OFFSET = 100
HOMES_OFFSET = 644  # u64 host map per home k at 644 + 8k
KEY_ID_OFFSET = HOMES_OFFSET + 8 * MAX_HOMES  # 676: the pool secret's key id
KEY_ID_BYTES = 8
HOST_END_OFFSET = KEY_ID_OFFSET + KEY_ID_BYTES  # 684
# The key id: a one-way, truncated fingerprint of the pool secret, so xenha's monitor can check that every
# host has the same secret without knowing it (docs/heartbeat.md).
KEY_ID_LABEL = b"xenha-heartbeat key id v1"
I32_MAX = 0x7FFFFFFF

# ---- UDP heartbeat packet: big-endian, then HMAC-SHA256 over everything before it ----
PKT_MAGIC = b"xhhb"
PKT_VERSION = 1
PKT_HEAD = struct.Struct("!4sBBH16s16s16s16sQQ")  # magic version home flags pool sender receiver boot seq sent_ms
PKT_MAC_BYTES = 32
PKT_BYTES = PKT_HEAD.size + PKT_MAC_BYTES

DROP_KINDS = ("malformed", "bad_hmac", "other_pool", "unknown_sender", "not_for_me", "wrong_home", "replay")

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
CONFIG_KEYS = ("pool", "host", "hosts", "file", "port", "intervalMs", "peerWindowMs", "secretFile")
OPTIONAL_KEYS = ("summaryMs", "debug")


class ConfigError(Exception):
    pass


# ---------------------------------------------------------------- logging

class Log(object):
    """One line per event on stderr; with journald (JOURNAL_STREAM set) a <N> priority prefix."""

    LEVELS = {"debug": 7, "info": 6, "warning": 4, "error": 3}

    def __init__(self):
        self.debug_on = False
        self.journal = bool(os.environ.get("JOURNAL_STREAM"))

    def emit(self, level, msg):
        if level == "debug" and not self.debug_on:
            return
        if self.journal:
            line = "<%d>%s\n" % (self.LEVELS[level], msg)
        else:
            line = "%s %s: %s\n" % (PROG, level, msg)
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (IOError, OSError):
            pass

    def debug(self, msg):
        self.emit("debug", msg)

    def info(self, msg):
        self.emit("info", msg)

    def warning(self, msg):
        self.emit("warning", msg)

    def error(self, msg):
        self.emit("error", msg)


LOG = Log()


# ---------------------------------------------------------------- configuration

def packed_uuid(u):
    return u.replace("-", "").lower()


def _int_field(cfg, key, lo, hi):
    v = cfg[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError("%s must be an integer, got %s" % (key, json.dumps(v)))
    if v < lo or v > hi:
        raise ConfigError("%s must be in %d..%d, got %d" % (key, lo, hi, v))
    return v


def _uuid_field(v, what):
    if not isinstance(v, str) or not UUID_RE.match(v):
        raise ConfigError("%s must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx), got %s" % (what, json.dumps(v)))
    return v.lower()


def _abs_path_field(cfg, key):
    v = cfg[key]
    if not isinstance(v, str) or not v or not v.startswith("/") or "\0" in v:
        raise ConfigError("%s must be an absolute path, got %s" % (key, json.dumps(v)))
    return v


def load_config(path):
    """Reads and validates the JSON configuration; raises ConfigError with a message naming the field."""
    try:
        with open(path, "rb") as f:
            raw = f.read(1024 * 1024 + 1)
    except (IOError, OSError) as e:
        raise ConfigError("cannot read config %s: %s" % (path, e.strerror or e))
    if len(raw) > 1024 * 1024:
        raise ConfigError("config %s is larger than 1 MiB" % path)
    try:
        cfg = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError("config %s is not valid JSON: %s" % (path, e))
    if not isinstance(cfg, dict):
        raise ConfigError("config %s must be a JSON object" % path)
    unknown = sorted(k for k in cfg if k not in CONFIG_KEYS and k not in OPTIONAL_KEYS)
    if unknown:
        raise ConfigError("unknown config key(s): %s" % ", ".join(unknown))
    missing = [k for k in CONFIG_KEYS if k not in cfg]
    if missing:
        raise ConfigError("missing config key(s): %s" % ", ".join(missing))

    pool = _uuid_field(cfg["pool"], "pool")
    me = _uuid_field(cfg["host"], "host")
    hosts_in = cfg["hosts"]
    if not isinstance(hosts_in, list) or not hosts_in:
        raise ConfigError("hosts must be a non-empty list")
    if len(hosts_in) > MAX_HOSTS:
        raise ConfigError("hosts has %d entries, at most %d" % (len(hosts_in), MAX_HOSTS))
    hosts = []
    seen_uuids = set()
    seen_addrs = {}
    for i, h in enumerate(hosts_in):
        what = "hosts[%d]" % i
        if not isinstance(h, dict):
            raise ConfigError("%s must be an object {uuid, homes}" % what)
        extra = sorted(k for k in h if k not in ("uuid", "homes"))
        if extra:
            raise ConfigError("%s: unknown key(s): %s" % (what, ", ".join(extra)))
        if "uuid" not in h or "homes" not in h:
            raise ConfigError("%s must have uuid and homes" % what)
        u = _uuid_field(h["uuid"], what + ".uuid")
        if packed_uuid(u) in seen_uuids:
            raise ConfigError("%s: host %s is listed twice" % (what, u))
        seen_uuids.add(packed_uuid(u))
        homes_in = h["homes"]
        if not isinstance(homes_in, list) or not homes_in:
            raise ConfigError("%s.homes must be a non-empty list of IP addresses" % what)
        if len(homes_in) > MAX_HOMES:
            raise ConfigError("%s.homes has %d addresses, at most %d" % (what, len(homes_in), MAX_HOMES))
        homes = []
        for k, a in enumerate(homes_in):
            try:
                if not isinstance(a, str):
                    raise ValueError()
                addr = ipaddress.ip_address(a)
            except ValueError:
                raise ConfigError("%s.homes[%d] is not an IP address: %s" % (what, k, json.dumps(a)))
            key = str(addr)
            if key in seen_addrs:
                raise ConfigError("%s.homes[%d]: address %s is also %s" % (what, k, key, seen_addrs[key]))
            seen_addrs[key] = "%s.homes[%d]" % (what, k)
            homes.append(key)
        hosts.append({"uuid": u, "homes": homes})
    if packed_uuid(me) not in seen_uuids:
        raise ConfigError("host %s is not in hosts" % me)
    port = _int_field(cfg, "port", 1, 65535)
    interval = _int_field(cfg, "intervalMs", 10, 600000)
    window = _int_field(cfg, "peerWindowMs", 20, I32_MAX)
    if window <= interval:
        raise ConfigError("peerWindowMs (%d) must be longer than intervalMs (%d)" % (window, interval))
    summary = 60000
    if "summaryMs" in cfg:
        summary = _int_field(cfg, "summaryMs", 0, 86400000)
    debug = cfg.get("debug", False)
    if not isinstance(debug, bool):
        raise ConfigError("debug must be true or false")

    order = sorted(packed_uuid(h["uuid"]) for h in hosts)
    for h in hosts:
        h["index"] = order.index(packed_uuid(h["uuid"]))
    hosts.sort(key=lambda h: h["index"])
    self_entry = [h for h in hosts if packed_uuid(h["uuid"]) == packed_uuid(me)][0]
    return {
        "pool": pool,
        "host": me,
        "hosts": hosts,
        "index": self_entry["index"],
        "homes": self_entry["homes"],
        "file": _abs_path_field(cfg, "file"),
        "port": port,
        "intervalMs": interval,
        "peerWindowMs": window,
        "secretFile": _abs_path_field(cfg, "secretFile"),
        "summaryMs": summary,
        "debug": debug,
    }


def load_secret(path):
    """The pool secret: like an ssh key, no group/other access; 1 .. 4096 bytes; trailing newline ignored."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as e:
        raise ConfigError("cannot open secret file %s: %s" % (path, e.strerror))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError("secret file %s is not a regular file" % path)
        if st.st_mode & 0o077:
            raise ConfigError(
                "secret file %s has mode %04o: it must not be accessible by group or others (chmod 600)"
                % (path, stat.S_IMODE(st.st_mode)))
        if st.st_uid not in (0, os.geteuid()):
            raise ConfigError("secret file %s must be owned by root or the daemon's user" % path)
        if st.st_size > 4096:
            raise ConfigError("secret file %s is larger than 4 KiB" % path)
        data = os.read(fd, 4097)
    finally:
        os.close(fd)
    if len(data) > 4096:
        raise ConfigError("secret file %s is larger than 4 KiB" % path)
    data = data.rstrip(b"\r\n")
    if not data:
        raise ConfigError("secret file %s is empty" % path)
    return data


# ---------------------------------------------------------------- heartbeat file encoding

def sig_inv(sig):
    return ((~sig) & 0xFFFFFFFF) >> 3


def frame_checksum(buf, end_offset):
    n = (end_offset - 12) // 4
    return sum(struct.unpack_from("<%dI" % n, buf, 12)) & 0xFFFFFFFF


def seal(buf, sig, end_offset, end_sig):
    struct.pack_into("<II", buf, 0, sig, sig_inv(sig))
    struct.pack_into("<I", buf, end_offset, end_sig)
    struct.pack_into("<I", buf, 8, frame_checksum(buf, end_offset))


def frame_ok(buf, sig, end_offset, end_sig):
    s, si, ck = struct.unpack_from("<III", buf, 0)
    if s != sig or si != sig_inv(sig):
        return False
    if struct.unpack_from("<I", buf, end_offset)[0] != end_sig:
        return False
    return ck == frame_checksum(buf, end_offset)


def hostmap(indices):
    v = 0
    for i in indices:
        v |= 1 << i
    return v


def put_hostmap(buf, off, indices):
    v = hostmap(indices)
    struct.pack_into("<II", buf, off, v & 0xFFFFFFFF, (v >> 32) & 0xFFFFFFFF)


def encode_global(buf, pool_uuid, n_hosts):
    """Writes the global section's I/O prefix (GLOBAL_IO_BYTES) into buf (zeroed first)."""
    buf[0:GLOBAL_IO_BYTES] = bytes(GLOBAL_IO_BYTES)
    struct.pack_into("<IIII", buf, 12, FILE_VERSION, LENGTH_GLOBAL, LENGTH_HOST_SPECIFIC, MAX_HOSTS)
    buf[28:60] = packed_uuid(pool_uuid).encode("ascii")
    struct.pack_into("<I", buf, 60, POOL_STATE_ACTIVE)
    buf[64:96] = b"0" * 32
    struct.pack_into("<I", buf, 96, n_hosts)
    seal(buf, SIG_GLOBAL, GLOBAL_END_OFFSET, SIG_GLOBAL_END)


def decode_global(buf):
    """(pool packed uuid, number of hosts) of a valid global section, else None."""
    if not frame_ok(buf, SIG_GLOBAL, GLOBAL_END_OFFSET, SIG_GLOBAL_END):
        return None
    if struct.unpack_from("<I", buf, 12)[0] != FILE_VERSION:
        return None
    return bytes(buf[28:60]).decode("ascii", "replace").lower(), struct.unpack_from("<I", buf, 96)[0]


def decode_slot_sequence(buf, index, uuid):
    """The sequence of a valid slot owned by (index, uuid), else None (never written, torn, or not its owner)."""
    if not frame_ok(buf, SIG_HOST, HOST_END_OFFSET, SIG_HOST_END):
        return None
    seq, idx = struct.unpack_from("<II", buf, 12)
    if idx != index or bytes(buf[20:52]).decode("ascii", "replace").lower() != packed_uuid(uuid):
        return None
    return seq


def key_id(secret):
    """The first KEY_ID_BYTES bytes of HMAC-SHA256(secret, KEY_ID_LABEL)."""
    return hmac.new(secret, KEY_ID_LABEL, hashlib.sha256).digest()[:KEY_ID_BYTES]


def ms_since(now, t):
    if t is None:
        return -1
    return min(I32_MAX, max(0, int(round((now - t) * 1000))))


# ---------------------------------------------------------------- the daemon

class Daemon(object):
    def __init__(self, cfg, secret):
        self.cfg = cfg
        self.secret = secret
        self.key_id = key_id(secret)
        self.me = cfg["host"]
        self.index = cfg["index"]
        self.hosts = cfg["hosts"]
        self.n = len(self.hosts)
        self.homes = cfg["homes"]
        self.port = cfg["port"]
        self.interval = cfg["intervalMs"] / 1000.0
        self.window = cfg["peerWindowMs"] / 1000.0
        self.pool_bytes = uuid_bytes(cfg["pool"])
        self.me_bytes = uuid_bytes(self.me)
        self.by_uuid = dict((uuid_bytes(h["uuid"]), h) for h in self.hosts)
        self.boot_id = os.urandom(16)
        # The slot's sequence starts at a random u32 (so a restarted daemon's first write always looks like
        # a change to a reader that saw the previous run's last value, short of a 1 in 2^32 coincidence).
        self.slot_seq = random.SystemRandom().randrange(0, 1 << 32)
        self.udp_seq = 0  # one per round, the same for every home and peer; strictly increasing
        self.socks = [None] * len(self.homes)  # home k -> bound socket or None
        self.bind_logged = [None] * len(self.homes)
        # (sender index, home) -> monotonic receipt time; (sender index, home) -> (boot id, seq, sent_ms)
        self.heard = {}
        self.last_accepted = {}
        self.retired_boots = {}  # sender index -> list of superseded boot ids (bounded)
        # slot j: last sequence read, monotonic time it was seen changing
        self.sf_seq = {}
        self.sf_changed = {}
        self.counters = dict((k, 0) for k in DROP_KINDS)
        self.counters.update({"accepted": 0, "sent": 0, "send_errors": 0, "writes": 0, "write_errors": 0})
        self.reported = dict(self.counters)
        self.last_summary = time.monotonic()
        self.file_state = None  # last logged file error, to log a persisting error once per change
        self.file_fail_since = None
        self.global_warned = None
        self.direct = True  # try O_DIRECT until the file system refuses it
        self.readbuf = mmap.mmap(-1, LAYOUT_BYTES)
        self.slotbuf = mmap.mmap(-1, HOST_IO_BYTES)
        self.globbuf = mmap.mmap(-1, GLOBAL_IO_BYTES)
        self.stopping = False
        self.stop_event = threading.Event()
        self.lock = threading.Lock()  # guards heard (UDP thread writes, file thread reads)
        self.wake_r, self.wake_w = os.pipe()

    # ---- sockets

    def bind_homes(self):
        for k, addr in enumerate(self.homes):
            if self.socks[k] is not None:
                continue
            fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_DGRAM)
            try:
                s.bind((addr, self.port))
                s.setblocking(False)
            except OSError as e:
                s.close()
                err = e.strerror or str(e)
                if self.bind_logged[k] != err:
                    LOG.error("home %d: cannot bind %s port %d: %s (retrying every interval)" % (k, addr, self.port, err))
                    self.bind_logged[k] = err
                continue
            self.socks[k] = s
            if self.bind_logged[k] is not None:
                LOG.info("home %d: bound %s port %d" % (k, addr, self.port))
            self.bind_logged[k] = None

    def packet(self, home, receiver_bytes, sent_ms):
        head = PKT_HEAD.pack(PKT_MAGIC, PKT_VERSION, home, 0, self.pool_bytes, self.me_bytes, receiver_bytes,
                             self.boot_id, self.udp_seq, sent_ms)
        return head + hmac.new(self.secret, head, hashlib.sha256).digest()

    def send_round(self):
        self.udp_seq += 1
        sent_ms = int(time.time() * 1000)
        for k, s in enumerate(self.socks):
            if s is None:
                continue
            for h in self.hosts:
                if h["index"] == self.index or k >= len(h["homes"]):
                    continue
                try:
                    s.sendto(self.packet(k, uuid_bytes(h["uuid"]), sent_ms), (h["homes"][k], self.port))
                    self.counters["sent"] += 1
                except OSError as e:
                    self.counters["send_errors"] += 1
                    LOG.debug("home %d: send to %s %s failed: %s" % (k, h["uuid"], h["homes"][k], e.strerror or e))

    def drop(self, kind, detail):
        self.counters[kind] += 1
        LOG.debug("dropped packet (%s): %s" % (kind, detail))

    def receive(self, k, s):
        for _ in range(1024):
            try:
                data, src = s.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                LOG.debug("home %d: receive failed: %s" % (k, e.strerror or e))
                return
            self.accept(k, data, src)

    def accept(self, k, data, src):
        src_s = "%s:%s" % (src[0], src[1])
        if len(data) != PKT_BYTES:
            return self.drop("malformed", "%d bytes from %s on home %d" % (len(data), src_s, k))
        head, mac = data[:PKT_HEAD.size], data[PKT_HEAD.size:]
        magic, version, home, _flags, pool, sender, receiver, boot, seq, sent_ms = PKT_HEAD.unpack(head)
        if magic != PKT_MAGIC or version != PKT_VERSION:
            return self.drop("malformed", "bad magic/version from %s on home %d" % (src_s, k))
        if not hmac.compare_digest(mac, hmac.new(self.secret, head, hashlib.sha256).digest()):
            return self.drop("bad_hmac", "from %s on home %d" % (src_s, k))
        if pool != self.pool_bytes:
            return self.drop("other_pool", "pool %s from %s" % (uuid_str(pool), src_s))
        h = self.by_uuid.get(sender)
        if h is None or h["index"] == self.index:
            return self.drop("unknown_sender", "sender %s from %s" % (uuid_str(sender), src_s))
        if receiver != self.me_bytes:
            return self.drop("not_for_me", "for %s from %s" % (uuid_str(receiver), src_s))
        if home != k:
            return self.drop("wrong_home", "home %d packet from %s on home %d" % (home, uuid_str(sender), k))
        j = h["index"]
        last = self.last_accepted.get((j, k))
        if last is not None:
            last_boot, last_seq, last_sent = last
            if boot == last_boot:
                if seq <= last_seq:
                    return self.drop("replay", "from %s home %d seq %d <= %d" % (h["uuid"], k, seq, last_seq))
            else:
                # A new boot id: the sender restarted. Never go back to a superseded boot, and the new one's
                # packet must be sent after the last accepted one (same sender's clock).
                if boot in self.retired_boots.get(j, ()) or sent_ms <= last_sent:
                    return self.drop("replay", "from %s home %d: stale boot id" % (h["uuid"], k))
                retired = self.retired_boots.setdefault(j, [])
                if last_boot not in retired:
                    retired.append(last_boot)
                    del retired[:-64]
                LOG.info("host %s (slot %d) restarted: new boot id on home %d" % (h["uuid"], j, k))
        elif boot in self.retired_boots.get(j, ()):
            return self.drop("replay", "from %s home %d: stale boot id" % (h["uuid"], k))
        self.last_accepted[(j, k)] = (boot, seq, sent_ms)
        with self.lock:
            first = (j, k) not in self.heard
            self.heard[(j, k)] = time.monotonic()
        if first:
            LOG.info("heard host %s (slot %d) on home %d" % (h["uuid"], j, k))
        self.counters["accepted"] += 1

    # ---- heartbeat file

    def open_file(self):
        flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)
        path = self.cfg["file"]
        if self.direct and hasattr(os, "O_DIRECT"):
            try:
                return os.open(path, flags | os.O_DIRECT), True
            except OSError as e:
                if e.errno != errno.EINVAL:
                    raise
                self.direct = False
                LOG.info("%s: the file system refuses O_DIRECT; writing buffered with O_DSYNC and fsync" % path)
        return os.open(path, flags | getattr(os, "O_DSYNC", 0)), False

    def read_layout(self, fd):
        """Reads the layout prefix into readbuf; bytes past the end of the file read as zeros."""
        os.lseek(fd, 0, os.SEEK_SET)
        got = 0
        view = memoryview(self.readbuf)
        try:
            while got < LAYOUT_BYTES:
                r = os.readv(fd, [view[got:]])
                if r <= 0:
                    break
                got += r
        finally:
            view.release()
        if got < LAYOUT_BYTES:
            self.readbuf[got:LAYOUT_BYTES] = bytes(LAYOUT_BYTES - got)
        return got

    def pwrite_all(self, fd, buf, length, offset, direct):
        view = memoryview(buf)
        try:
            done = 0
            while done < length:
                w = os.pwrite(fd, view[done:length], offset + done)
                if w <= 0:
                    raise OSError(errno.EIO, "short write")
                done += w
        finally:
            view.release()
        if not direct:
            os.fsync(fd)

    def observe_slots(self, now):
        for h in self.hosts:
            j = h["index"]
            if j == self.index:
                continue
            off = LENGTH_GLOBAL + j * LENGTH_HOST_SPECIFIC
            seq = decode_slot_sequence(self.readbuf[off:off + HOST_IO_BYTES], j, h["uuid"])
            if seq is None:
                continue  # never written, torn mid-write, or not its owner: keep what was seen before
            prev = self.sf_seq.get(j)
            if prev is not None and prev != seq:
                if j not in self.sf_changed:
                    LOG.info("host %s (slot %d) is writing the heartbeat file" % (h["uuid"], j))
                self.sf_changed[j] = now
            self.sf_seq[j] = seq

    def encode_slot(self, now):
        buf = self.slotbuf
        buf[0:HOST_IO_BYTES] = bytes(HOST_IO_BYTES)
        self.slot_seq = (self.slot_seq + 1) & 0xFFFFFFFF
        struct.pack_into("<II", buf, 12, self.slot_seq, self.index)
        buf[20:52] = packed_uuid(self.me).encode("ascii")
        struct.pack_into("<II", buf, 52, 0, 0)  # excluded, starting
        hb = [self.index]
        sf = [self.index]
        per_home = [[] for _ in range(MAX_HOMES)]
        with self.lock:
            heard = dict(self.heard)
        for k in range(len(self.homes)):
            if self.socks[k] is not None:
                per_home[k].append(self.index)
        for h in self.hosts:
            j = h["index"]
            if j == self.index:
                struct.pack_into("<i", buf, 60 + 4 * j, 0)
                struct.pack_into("<i", buf, 316 + 4 * j, 0)
                continue
            latest = None
            for k in range(len(self.homes)):
                t = heard.get((j, k))
                if t is None:
                    continue
                if now - t <= self.window:
                    per_home[k].append(j)
                if latest is None or t > latest:
                    latest = t
            if latest is not None and now - latest <= self.window:
                hb.append(j)
            changed = self.sf_changed.get(j)
            if changed is not None and now - changed <= self.window:
                sf.append(j)
            struct.pack_into("<i", buf, 60 + 4 * j, ms_since(now, latest))
            struct.pack_into("<i", buf, 316 + 4 * j, ms_since(now, changed))
        struct.pack_into("<i", buf, 572, -1)
        put_hostmap(buf, 576, [])  # current liveset
        put_hostmap(buf, 584, [])  # proposed liveset
        put_hostmap(buf, 592, hb)
        put_hostmap(buf, 600, sf)
        struct.pack_into("<I", buf, 608, 0)
        put_hostmap(buf, 612, [])
        struct.pack_into("<II", buf, 620, 0, 1)  # phase, weight
        wall = int(time.time() * 1000)
        struct.pack_into("<III", buf, 628, wall & 0xFFFFFFFF, (wall >> 32) & 0xFFFFFFFF, self.cfg["intervalMs"])
        struct.pack_into("<I", buf, 640, len(self.homes))
        for k in range(MAX_HOMES):
            put_hostmap(buf, HOMES_OFFSET + 8 * k, per_home[k])
        buf[KEY_ID_OFFSET:KEY_ID_OFFSET + KEY_ID_BYTES] = self.key_id
        seal(buf, SIG_HOST, HOST_END_OFFSET, SIG_HOST_END)

    def write_file(self):
        """One interval's file I/O: read the layout prefix, (re)write the global section if needed, write the slot."""
        path = self.cfg["file"]
        step = "open"
        fd = None
        try:
            fd, direct = self.open_file()
            step = "read"
            try:
                self.read_layout(fd)
                read_ok = True
            except OSError as e:
                read_ok = False
                LOG.warning("%s: read failed: %s" % (path, e.strerror or e))
            now = time.monotonic()
            if read_ok:
                self.observe_slots(now)
                g = decode_global(self.readbuf[0:GLOBAL_IO_BYTES])
                if g is not None and g[0] != packed_uuid(self.cfg["pool"]):
                    raise OSError(errno.EEXIST, "the file belongs to pool %s, not this pool; not writing" % g[0])
                if g is None or g[1] < self.n:
                    step = "write global section of"
                    if g is not None and self.global_warned != g[1]:
                        LOG.warning("%s: global section lists %d hosts, this host's config %d: rewriting it" % (path, g[1], self.n))
                        self.global_warned = g[1]
                    encode_global(self.globbuf, self.cfg["pool"], self.n)
                    self.pwrite_all(fd, self.globbuf, GLOBAL_IO_BYTES, 0, direct)
                    if g is None:
                        LOG.info("%s: wrote the global section (pool %s, %d hosts)" % (path, self.cfg["pool"], self.n))
            step = "write slot %d of" % self.index
            self.encode_slot(now)
            self.pwrite_all(fd, self.slotbuf, HOST_IO_BYTES, LENGTH_GLOBAL + self.index * LENGTH_HOST_SPECIFIC, direct)
            self.counters["writes"] += 1
            if self.file_state is not None:
                LOG.info("%s: writing again (slot %d, sequence %d)" % (path, self.index, self.slot_seq))
            self.file_state = None
            self.file_fail_since = None
            return True
        except OSError as e:
            self.counters["write_errors"] += 1
            msg = "%s: cannot %s the heartbeat file: %s" % (path, step, e.strerror or e)
            if self.file_state != msg:
                LOG.error(msg + " (retrying every interval; UDP heartbeats go on)")
                self.file_state = msg
            else:
                LOG.debug(msg)
            return False
        finally:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass

    # ---- main loop

    def summary(self, final=False):
        c = self.counters
        changed = any(c[k] != self.reported[k] for k in c)
        if not (final or changed):
            return
        with self.lock:
            heard = sorted(set(j for (j, _k), t in self.heard.items() if time.monotonic() - t <= self.window))
        LOG.info("%s: slot=%d sequence=%d writes=%d write_errors=%d sent=%d send_errors=%d accepted=%d "
                 "dropped %s heard=%s" % (
                     "stopped" if final else "summary", self.index, self.slot_seq, c["writes"], c["write_errors"],
                     c["sent"], c["send_errors"], c["accepted"],
                     " ".join("%s=%d" % (k, c[k]) for k in DROP_KINDS), ",".join(str(j) for j in heard) or "-"))
        self.reported = dict(c)

    def stop(self, signum, _frame):
        self.stopping = True
        self.stop_event.set()
        try:
            os.write(self.wake_w, b"x")
        except OSError:
            pass

    def round(self):
        self.bind_homes()
        ok = self.write_file()
        self.send_round()
        return ok

    def file_loop(self):
        """The storage path, in its own thread: an SR that hangs (a hard NFS mount) never delays the UDP heartbeats."""
        next_tick = time.monotonic()
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now < next_tick:
                self.stop_event.wait(next_tick - now)
                continue
            try:
                self.write_file()
            except Exception as e:  # a bug must not silently end the storage path
                LOG.error("file thread: unexpected %s: %s" % (type(e).__name__, e))
            next_tick += self.interval
            now = time.monotonic()
            if next_tick <= now:  # overran (a slow SR): do not burst to catch up
                next_tick = now + self.interval

    def run(self, once=False):
        LOG.info("starting: pool %s host %s slot %d of %d, homes %s, port %d, interval %d ms, peer window %d ms, file %s, "
                 "secret key id %s"
                 % (self.cfg["pool"], self.me, self.index, self.n, ",".join(self.homes), self.port,
                    self.cfg["intervalMs"], self.cfg["peerWindowMs"], self.cfg["file"], self.key_id.hex()))
        if once:
            ok = self.round()
            # Let the peers' answers of this round in would need another round: --once only writes and sends.
            self.summary(final=True)
            return 0 if ok else 1
        self.bind_homes()
        writer = threading.Thread(target=self.file_loop, name="heartbeat-file")
        writer.daemon = True  # a write stuck on a dead SR must not keep the process from exiting
        writer.start()
        next_tick = time.monotonic()
        summary_every = self.cfg["summaryMs"] / 1000.0
        while not self.stopping:
            now = time.monotonic()
            if now >= next_tick:
                self.bind_homes()
                self.send_round()
                next_tick += self.interval
                if next_tick <= now:  # overran (a slow SR): do not burst to catch up
                    next_tick = now + self.interval
                if summary_every > 0 and now - self.last_summary >= summary_every:
                    self.summary()
                    self.last_summary = now
                continue
            rl = [self.wake_r] + [s for s in self.socks if s is not None]
            try:
                ready, _w, _x = select.select(rl, [], [], max(0.0, next_tick - now))
            except InterruptedError:
                continue
            for fd in ready:
                if fd == self.wake_r:
                    try:
                        os.read(self.wake_r, 64)
                    except OSError:
                        pass
                    continue
                k = self.socks.index(fd)
                self.receive(k, fd)
        self.stop_event.set()
        writer.join(self.interval)
        if writer.is_alive():
            LOG.warning("stopping with a heartbeat file operation still pending (%s)" % self.cfg["file"])
        self.summary(final=True)
        for s in self.socks:
            if s is not None:
                s.close()
        return 0


def uuid_bytes(u):
    return bytes.fromhex(packed_uuid(u))


def uuid_str(b):
    h = b.hex()
    return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])


def watch_stdin(daemon):
    """Stops the daemon when stdin reaches end of file: its parent died or closed the pipe, however it ended."""
    def wait_eof():
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        LOG.info("standard input closed: stopping")
        daemon.stop(None, None)
    t = threading.Thread(target=wait_eof, name="stdin-watch")
    t.daemon = True
    t.start()


def main(argv):
    parser = argparse.ArgumentParser(prog=PROG, description="xenha host heartbeat daemon (see docs/heartbeat.md)")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="JSON configuration (default %(default)s)")
    parser.add_argument("--once", action="store_true", help="write the slot and send one round, then exit")
    parser.add_argument("--debug", action="store_true", help="log every dropped packet and failed send")
    parser.add_argument("--check", action="store_true", help="validate the config and the secret file, then exit")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="stop when standard input closes (for a supervisor that runs it as a child: it never outlives it)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        secret = load_secret(cfg["secretFile"])
    except ConfigError as e:
        LOG.error("configuration error: %s" % e)
        return 2
    if args.check:
        LOG.info("config %s is valid: host %s is slot %d of %d, secret key id %s"
                 % (args.config, cfg["host"], cfg["index"], len(cfg["hosts"]), key_id(secret).hex()))
        return 0
    LOG.debug_on = args.debug or cfg["debug"]
    daemon = Daemon(cfg, secret)
    signal.signal(signal.SIGTERM, daemon.stop)
    signal.signal(signal.SIGINT, daemon.stop)
    if args.exit_on_stdin_eof:
        watch_stdin(daemon)
    try:
        return daemon.run(once=args.once)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
