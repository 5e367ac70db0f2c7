"""``hwnas submit``: the short form of ``ray job submit --working-dir . -- hwnas search ...``.

It sends ``hwnas search ARGS`` to a Ray cluster's job API as a Ray job (the working directory travels
with it as the job's ``working_dir``), streams the job's output, and exits with the job's exit code.
The job's driver runs on the head node and connects to that cluster by itself (Ray sets ``RAY_ADDRESS``
for job drivers), so the experiment is the same one ``hwnas search`` would run there.

Token authentication: the client sends the token of this machine (``RAY_AUTH_TOKEN``,
``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``) when ``RAY_AUTH_MODE=token`` is exported, as every
Ray CLI does; a refused token is one clear error line.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shlex
import sys
from pathlib import Path

log = logging.getLogger("hwnas.submit")

DEFAULT_ADDRESS = "http://127.0.0.1:8265"  # the head's dashboard, through `ray dashboard cluster.yaml`

EPILOG = """\
examples:
  ray dashboard cluster.yaml &                        # SSH tunnel: the head's job API on localhost:8265
  hwnas submit -- --preset cifar10 --storage s3://my-bucket/hwnas --set gpus_per_trial=1
  hwnas submit --address http://127.0.0.1:8265 --no-wait -- --preset fashion --name fashion-2
  # the same, with Ray's own client:
  ray job submit --address http://127.0.0.1:8265 --working-dir . -- hwnas search --preset fashion

Everything after `--` is passed to `hwnas search` on the cluster. `hwnas` is resolved on the cluster's
PATH (cluster.yaml installs it); results go where --storage says, as seen from the cluster (use S3).
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "submit", help="run `hwnas search ...` on a Ray cluster as a Ray job",
        description="Submit `hwnas search SEARCH_ARGS` to a Ray cluster's job API (ray job submit), stream "
                    "its output and exit with its exit code.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--address", metavar="URL",
                   help=f"the cluster's job API (dashboard) address (default: $RAY_ADDRESS if it is http(s), "
                        f"else {DEFAULT_ADDRESS})")
    p.add_argument("--working-dir", default=".", metavar="DIR",
                   help="uploaded as the job's working directory (default: .; .gitignore'd files are left out)")
    p.add_argument("--job-id", metavar="ID", help="submission id (default: Ray picks one)")
    p.add_argument("--no-wait", action="store_true", help="print the job id and return at once")
    p.add_argument("--gpus", type=float, default=0, help="GPUs for the job's driver (`-- train ...` on a GPU "
                   "worker: --gpus 1; default 0)")
    p.add_argument("search_args", nargs=argparse.REMAINDER, metavar="-- SEARCH_ARGS",
                   help="arguments of `hwnas search` on the cluster")
    p.set_defaults(func=main)


def job_address(address: str | None) -> str:
    address = address or os.environ.get("RAY_ADDRESS", "")
    if not address.startswith(("http://", "https://")):
        address = DEFAULT_ADDRESS  # a ray:// or host:port RAY_ADDRESS is not the job API
    return address


def entrypoint(search_args: list[str], verbose: bool = False) -> str:
    """The job's command line; ``verbose`` (``hwnas -v submit``) makes it ``hwnas -v search`` (Ray's lines too)."""
    args = list(search_args)
    if args[:1] == ["--"]:
        args = args[1:]
    command = "search"
    if args[:1] in (["search"], ["train"]):  # `hwnas submit -- search ...` means the same; `-- train ...` trains
        command, args = args[0], args[1:]
    return shlex.join(["hwnas", *(["-v"] if verbose else []), command, *args])


def runtime_env(working_dir: str) -> dict:
    wd = Path(working_dir)
    if not wd.is_dir():
        raise FileNotFoundError(f"--working-dir {working_dir!r} is not a directory")
    env: dict = {"working_dir": str(wd.resolve())}
    # the job's processes use the same auth mode as this client (the cluster's raylets must agree)
    if os.environ.get("RAY_AUTH_MODE"):
        env["env_vars"] = {"RAY_AUTH_MODE": os.environ["RAY_AUTH_MODE"]}
    return env


def _client(address: str):
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except ConnectionError as exc:
        raise ConnectionError(f"cannot reach the Ray job API at {address} ({exc}); is the cluster up and "
                              f"the dashboard tunnel open (`ray dashboard cluster.yaml`)?") from None
    except Exception as exc:  # AuthenticationError and friends: one line, with what to check
        if "auth" in type(exc).__name__.lower() or "token" in str(exc).lower():
            raise PermissionError(f"the Ray cluster at {address} refused this client: {exc} "
                                  f"(export RAY_AUTH_MODE=token and the cluster's token)") from None
        raise


async def _stream(client, job_id: str) -> None:
    async for lines in client.tail_job_logs(job_id):
        sys.stdout.write(lines)
        sys.stdout.flush()


def wait_for(client, job_id: str) -> int:
    """Stream the job's output until it ends; its driver's exit code (1 if it failed without one)."""
    from ray.job_submission import JobStatus

    asyncio.run(_stream(client, job_id))
    info = client.get_job_info(job_id)
    status = info.status
    code = getattr(info, "driver_exit_code", None)
    log.info("job %s: %s%s", job_id, status, f" (exit code {code})" if code is not None else "")
    if code is not None:
        return int(code)
    return 0 if status == JobStatus.SUCCEEDED else 1


def main(args: argparse.Namespace) -> int:
    address = job_address(args.address)
    command = entrypoint(args.search_args, verbose=bool(args.verbose))
    client = _client(address)
    job_id = client.submit_job(entrypoint=command, runtime_env=runtime_env(args.working_dir),
                               submission_id=args.job_id, entrypoint_num_gpus=args.gpus or None)
    log.info("submitted %s to %s: %s", job_id, address, command)
    print(job_id, flush=True)
    if args.no_wait:
        log.info("follow it with: ray job logs --address %s --follow %s", address, job_id)
        return 0
    try:
        return wait_for(client, job_id)
    except KeyboardInterrupt:
        log.warning("stopped following; the job keeps running. Stop it with: ray job stop --address %s %s",
                    address, job_id)
        return 130
