"""One driver per experiment folder: ``claim.json`` in ``<storage>/<name>``, taken before Ray starts.

Two ``hwnas search`` runs with the same name and storage must never both write the folder (each would
replace the other's tables and leave two Tune states). So the folder is *claimed* atomically before
anything else is written there, and the claim is held until the driver ends:

* local folder: ``claim.json`` is created exclusively (a new run: written and locked under a private name,
  then hard-linked into place, so it is never seen empty) and stays ``flock``-ed by the driver for as long as it runs. The kernel drops the lock when the process ends, however it ends
  (SIGKILL included), so a free lock means the claim is stale;
* S3: ``claim.json`` is put with ``If-None-Match: *`` (two writers cannot both create it); the driver
  renews it every ``RENEW_S`` seconds with ``If-Match`` on its own ETag. A claim is stale when its driver
  ran on this host and that process is gone, or, from another host, when it has not been renewed for
  ``lease_s()`` seconds (by the store's clock). A stale claim is taken over with ``If-Match`` on the
  stale object's ETag, so two drivers taking over at once cannot both win either.

The claim records the driver's host, pid, process start and start time (UTC); the loser's error names
them and says how to go on. A new run takes over a stale claim only when the folder holds nothing else
(a driver that died before writing anything); ``--resume`` and ``--overwrite`` take over any stale claim
and refuse a live one. The claim is removed when the driver ends (``release``); a driver killed hard
leaves it behind, stale, for the next ``--resume`` to take over.

Ray-free: only the storage and the OS.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from searchspace.errors import InputError

from .storage import Storage, StorageError, one_line

log = logging.getLogger("hwnas.search")

CLAIM_FILE = "claim.json"
CLAIM_FORMAT = "hwnas-claim/1"
RENEW_S = 30.0  # S3: how often a running driver renews its claim
LEASE_S = 120.0  # S3: a claim from another host not renewed for this long is stale (HWNAS_CLAIM_LEASE_S)


def lease_s() -> float:
    try:
        return float(os.environ.get("HWNAS_CLAIM_LEASE_S", LEASE_S))
    except ValueError:
        return LEASE_S


class ExperimentInUse(InputError):
    """Another driver holds the experiment's claim; the message names it and says how to go on (a
    ``ValueError``, exit code 2)."""


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a claim: what ``claim.json`` says."""
    host: str = "?"
    pid: int = 0
    process: str | None = None  # "<boot id>:<start ticks>" of that pid on its host (Linux), to tell pid reuse
    started_utc: str = "?"
    command: str = "search"

    @classmethod
    def me(cls, command: str) -> "Holder":
        return cls(socket.gethostname(), os.getpid(), process_identity(os.getpid()),
                   time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), command)

    def to_json(self, renewed: float | None = None) -> bytes:
        return (json.dumps({"format": CLAIM_FORMAT, "host": self.host, "pid": self.pid, "process": self.process,
                            "started_utc": self.started_utc, "command": self.command,
                            "renewed_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(renewed))},
                           indent=1) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Holder":
        try:
            d = json.loads(data.decode("utf-8", errors="replace"))
            return cls(str(d.get("host", "?")), int(d.get("pid", 0)), d.get("process"),
                       str(d.get("started_utc", "?")), str(d.get("command", "search")))
        except (ValueError, TypeError, AttributeError):
            return cls()  # a damaged claim: nobody we could recognise

    def describe(self) -> str:
        return f"started {self.started_utc} on host {self.host} (pid {self.pid})"

    def gone_here(self) -> bool | None:
        """True if this claim's driver ran on this host and is gone; False if it still runs here; None if
        it ran elsewhere (this host cannot tell)."""
        if self.host != socket.gethostname() or self.pid <= 0:
            return None
        if self.pid == os.getpid():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # exists, another user's
        now = process_identity(self.pid)
        return bool(self.process and now and now != self.process)  # the pid was reused by another process


def process_identity(pid: int) -> str | None:
    """"<boot id>:<start time in clock ticks>" of a live process (Linux), None where unknown."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            start = f.read().rsplit(")", 1)[1].split()[19]
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f"{f.read().strip()}:{start}"
    except (OSError, IndexError):
        return None


def in_use(name: str, folder: Storage, holder: Holder, why: str = "") -> ExperimentInUse:
    gone = (f"if that driver is gone, --resume {name} takes its claim over (from its host at once, from another "
            f"host once it has gone {lease_s():.0f} s without renewal) or remove {folder.uri_of(CLAIM_FILE)}"
            if folder.is_s3 else f"if its host is gone, remove {folder.uri_of(CLAIM_FILE)}")
    return ExperimentInUse(
        f"experiment {name!r} in {folder.uri} is in use by another hwnas {holder.command} {holder.describe()}"
        f"{why}; wait for it to end or stop it, then continue with --resume {name} ({gone})")


class Claim:
    """This driver's claim on an experiment folder (module docstring); ``release()`` when done."""

    def __init__(self, folder: Storage, name: str, holder: Holder) -> None:
        self.folder = folder
        self.name = name
        self.holder = holder
        self.took_over: Holder | None = None  # the stale claim this one replaced, if any
        self._fd: int | None = None  # local: the flock-ed claim file
        self._etag: str | None = None  # S3: our object
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ taking
    @classmethod
    def create(cls, folder: Storage, name: str, command: str = "search") -> "Claim":
        """Claim a folder nobody has claimed (a new run): exclusive, or ExperimentInUse naming the winner."""
        claim = cls(folder, name, Holder.me(command))
        if folder.is_s3:
            etag = folder.put_new(CLAIM_FILE, claim.holder.to_json())
            if etag is None:
                raise in_use(name, folder, claim.current() or Holder())
            claim._etag = etag
        else:
            claim._create_local()
        claim._start_renewing()
        return claim

    def _create_local(self) -> None:
        """Exclusive create whose file is whole and locked the moment its name appears: the holder is
        written to a private file, locked, then hard-linked to ``claim.json`` (``link`` fails if the name
        exists). A plain ``O_EXCL`` create left an empty file for an instant, and a loser reading it then
        named "? on host ?" as the winner. Where hard links are refused, that plain create is the fallback."""
        os.makedirs(self.folder.root, exist_ok=True)
        path = self.folder.path(CLAIM_FILE)
        private = f"{path}.{os.getpid()}.{threading.get_ident()}.new"
        fd = os.open(private, os.O_CREAT | os.O_TRUNC | os.O_RDWR, 0o644)
        try:
            self._lock_and_write(fd)
            os.link(private, path)
        except FileExistsError:
            self._close()
            raise in_use(self.name, self.folder, self.current() or Holder()) from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                self._close()
                raise
            self._close()  # no hard links here: the exclusive create alone
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            except FileExistsError:
                raise in_use(self.name, self.folder, self.current() or Holder()) from None
            self._lock_and_write(fd)
        finally:
            try:
                os.unlink(private)
            except FileNotFoundError:
                pass

    @classmethod
    def take(cls, folder: Storage, name: str, command: str = "resume") -> "Claim":
        """Claim a folder that may hold a claim already (--resume, --overwrite, a stale claim): taken over
        if stale or absent, ExperimentInUse if its driver runs."""
        claim = cls(folder, name, Holder.me(command))
        if folder.is_s3:
            claim._take_s3()
        else:
            claim._take_local()
        if claim.took_over is not None:
            log.warning("experiment %s: took over the claim of an hwnas %s that is gone (%s)", name,
                        claim.took_over.command, claim.took_over.describe())
        claim._start_renewing()
        return claim

    def _take_local(self) -> None:
        import fcntl

        os.makedirs(self.folder.root, exist_ok=True)
        path = self.folder.path(CLAIM_FILE)
        for _ in range(5):  # the file may be replaced between open and lock: then lock the new one
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                    raise in_use(self.name, self.folder, self.current() or Holder()) from None
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            old = os.read(fd, 1 << 16)
            if old:
                previous = Holder.from_json(old)
                if previous.gone_here() is False:  # a lock that did not hold (a filesystem without flock)
                    os.close(fd)
                    raise in_use(self.name, self.folder, previous)
                self.took_over = previous
            self._lock_and_write(fd, locked=True)
            return
        raise ExperimentInUse(f"experiment {self.name!r}: {path} keeps changing; another driver is starting")

    def _take_s3(self) -> None:
        got = self.folder.get_versioned(CLAIM_FILE)
        if got is None:
            etag = self.folder.put_new(CLAIM_FILE, self.holder.to_json())
            if etag is None:
                raise in_use(self.name, self.folder, self.current() or Holder(), " (it claimed the folder just now)")
            self._etag = etag
            return
        data, etag, age = got
        previous = Holder.from_json(data)
        gone = previous.gone_here()
        if gone is False or (gone is None and age < lease_s()):
            raise in_use(self.name, self.folder, previous, f", renewed {age:.0f} s ago")
        new = self.folder.put_if_match(CLAIM_FILE, self.holder.to_json(), etag)
        if new is None:
            raise in_use(self.name, self.folder, self.current() or Holder(), " (it took the claim over just now)")
        self._etag = new
        self.took_over = previous

    def _lock_and_write(self, fd: int, locked: bool = False) -> None:
        import fcntl

        if not locked:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, self.holder.to_json())
        os.fsync(fd)
        self._fd = fd

    # ------------------------------------------------------------------ while held
    def current(self) -> Holder | None:
        """What the folder's claim says now (None: no claim, or unreadable)."""
        try:
            if self.folder.is_s3:
                got = self.folder.get_versioned(CLAIM_FILE)
                return None if got is None else Holder.from_json(got[0])
            with open(self.folder.path(CLAIM_FILE), "rb") as f:
                return Holder.from_json(f.read())
        except (OSError, StorageError):
            return None

    def _start_renewing(self) -> None:
        if not self.folder.is_s3:
            return  # the flock lives as long as this process

        def renew() -> None:
            while not self._stop.wait(min(RENEW_S, lease_s() / 4)):
                try:
                    etag = self.folder.put_if_match(CLAIM_FILE, self.holder.to_json(), self._etag or "")
                except (OSError, StorageError) as exc:
                    log.debug("could not renew the claim %s: %s", self.folder.uri_of(CLAIM_FILE), one_line(exc))
                    continue
                if etag is None:
                    log.warning("experiment %s: another driver took this run's claim over (%s); stop one of them",
                                self.name, (self.current() or Holder()).describe())
                    return
                self._etag = etag

        self._thread = threading.Thread(target=renew, name=f"hwnas-claim-{self.name}", daemon=True)
        self._thread.start()

    def moved_to(self, folder: Storage) -> None:
        """The folder was moved (``--overwrite`` archives it): drop the claim's copy there, keep no lock."""
        self._stop.set()
        try:
            folder.delete(CLAIM_FILE)
        except OSError as exc:
            log.debug("could not remove %s: %s", folder.uri_of(CLAIM_FILE), one_line(exc))
        self._close()

    def release(self) -> None:
        """Remove the claim (the driver is done with the folder). Never raises: a claim left behind is
        stale and taken over by the next --resume."""
        self._stop.set()
        try:
            if self.folder.is_s3:
                got = self.folder.get_versioned(CLAIM_FILE)
                if got is not None and got[1] == self._etag:
                    self.folder.delete(CLAIM_FILE)
            elif self._fd is not None:
                path = self.folder.path(CLAIM_FILE)
                try:
                    if os.fstat(self._fd).st_ino == os.stat(path).st_ino:
                        os.unlink(path)
                except FileNotFoundError:
                    pass
        except (OSError, StorageError) as exc:
            log.debug("could not remove the claim %s: %s", self.folder.uri_of(CLAIM_FILE), one_line(exc))
        self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the flock
            self._fd = None

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def stale_or_absent(folder: Storage) -> bool:
    """Whether a new driver could take the folder's claim now (no claim, or its driver is gone), without
    taking it."""
    if folder.is_s3:
        got = folder.get_versioned(CLAIM_FILE)
        if got is None:
            return True
        gone = Holder.from_json(got[0]).gone_here()
        return gone is True or (gone is None and got[2] >= lease_s())
    import fcntl

    try:
        fd = os.open(folder.path(CLAIM_FILE), os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)  # (drops the shared lock if it was taken)
    with open(folder.path(CLAIM_FILE), "rb") as f:
        return Holder.from_json(f.read()).gone_here() is not False
