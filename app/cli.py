"""``openmps`` command line: access keys and pipelines for operators.

openmps keys create --tenant acme                      # prints a new id and secret
openmps keys create --tenant acme --id AK --secret SK  # a given pair, e.g. for a vendor SDK
openmps keys list | openmps keys delete AK
openmps pipelines list | pause ID | resume ID
openmps buckets grant acme media/in/ --read            # TENANT BUCKET[/PREFIX]; '*' = every bucket
openmps buckets grant acme media --read --write
openmps buckets list [--tenant acme] | revoke acme media [--read] [--write]
openmps secrets generate-key                           # a new OPENMPS_SECRET_KEY
openmps secrets rotate                                 # re-seal every stored secret under the first key
"""

from __future__ import annotations

import argparse
import json
import sys

import redis

from app import stackfile
from app.core.errors import DomainError, PipelineNotFound
from app.core.grants import Grant
from app.core.pipelines import PipelineState
from app.notify.delivery import DeliveryStore
from app.notify.signing import reseal_stored
from app.notify.topics import reseal_subscriptions
from app.settings import ClientEnv, Settings, SettingsError
from app.storage.secretbox import generate_key
from app.wiring import Services, build_services, ensure_default_pipeline


def _keys(services: Services, args: argparse.Namespace) -> int:
    if args.action == "create":
        key = services.credentials.create(args.tenant, key_id=args.id, secret=args.secret)
        print(json.dumps({"access_key_id": key.id, "access_key_secret": key.secret, "tenant": key.tenant}))
    elif args.action == "list":
        for key_id in services.credentials.list_ids():
            found = services.credentials.find(key_id)
            print(f"{key_id}\t{found.tenant if found else '?'}")
    elif args.action == "delete":
        if not services.credentials.delete(args.key_id):
            print(f"no access key {args.key_id}", file=sys.stderr)
            return 1
    return 0


def _pipelines(services: Services, args: argparse.Namespace) -> int:
    ensure_default_pipeline(services)
    if args.action == "list":
        for p in services.pipelines.list_all():
            depth = services.scheduler.depth(p.id)
            print(
                f"{p.id}\t{p.name}\t{p.state.value}\t{p.resource_class.value}\tqueued={depth.queued}\trunning={depth.running}"
            )
        return 0
    state = PipelineState.PAUSED if args.action == "pause" else PipelineState.ACTIVE
    try:
        pipeline = services.snapshots.set_pipeline_state_as_operator(args.pipeline_id, state)
    except PipelineNotFound:
        print(f"no pipeline {args.pipeline_id}", file=sys.stderr)
        return 1
    print(f"{pipeline.id}\t{pipeline.state.value}")
    return 0


def _access(grant: Grant) -> str:
    return ",".join(a for a, on in (("read", grant.read), ("write", grant.write)) if on)


def _buckets(services: Services, args: argparse.Namespace) -> int:
    grants = services.grants
    if args.action == "list":
        rows = [(args.tenant, g) for g in grants.grants_for(args.tenant)] if args.tenant else grants.list_all()
        for tenant, grant in rows:
            print(f"{tenant}\t{grant.scope}\t{_access(grant)}")
        return 0
    if args.action == "grant":
        grant = grants.grant(args.tenant, args.scope, read=args.read, write=args.write)
        print(f"{args.tenant}\t{grant.scope}\t{_access(grant)}")
        return 0
    both = not (args.read or args.write)  # revoke with neither flag takes both away
    left = grants.revoke(args.tenant, args.scope, read=args.read or both, write=args.write or both)
    print(f"{args.tenant}\t{args.scope}\t{_access(left) if left else '-'}")
    return 0


def _secrets(services: Services, args: argparse.Namespace) -> int:
    """``rotate``: re-seal every stored secret under the first OPENMPS_SECRET_KEY (the others must
    still open what they sealed), so the old keys can then be removed."""
    reseal = services.sealer.reseal
    counts = {
        "access keys": services.credentials.reseal(reseal),
        "webhook secrets and the push signing key": reseal_stored(services.redis, reseal),
        "subscription webhook secrets": reseal_subscriptions(services.redis, reseal),
        "pending deliveries": DeliveryStore(services.redis).reseal(reseal),
    }
    for what, count in counts.items():
        print(f"{count}\t{what}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="openmps", description="openmps operator commands (config from OPENMPS_* env)")
    nouns = root.add_subparsers(dest="noun", required=True)
    keys = nouns.add_parser("keys", help="access keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create an access key for a tenant")
    create.add_argument("--tenant", required=True)
    create.add_argument("--id", help="use this access key id (default: generated)")
    create.add_argument("--secret", help="use this secret (default: generated)")
    keys.add_parser("list")
    delete = keys.add_parser("delete")
    delete.add_argument("key_id")
    pipes = nouns.add_parser("pipelines", help="pipelines").add_subparsers(dest="action", required=True)
    pipes.add_parser("list")
    for action in ("pause", "resume"):
        pipes.add_parser(action).add_argument("pipeline_id")
    buckets = nouns.add_parser("buckets", help="which tenant may read/write which buckets").add_subparsers(
        dest="action", required=True
    )
    listing = buckets.add_parser("list", help="grants (of one tenant, or all)")
    listing.add_argument("--tenant")
    for action, what in (("grant", "give"), ("revoke", "take away (both when neither flag is given)")):
        cmd = buckets.add_parser(action, help=f"{what} read and/or write on BUCKET[/PREFIX] ('*': every bucket)")
        cmd.add_argument("tenant")
        cmd.add_argument("scope", metavar="BUCKET[/PREFIX]")
        cmd.add_argument("--read", action="store_true")
        cmd.add_argument("--write", action="store_true")
    secrets = nouns.add_parser("secrets", help="the key that seals stored secrets").add_subparsers(
        dest="action", required=True
    )
    secrets.add_parser("generate-key", help="print a new OPENMPS_SECRET_KEY")
    secrets.add_parser("rotate", help="re-seal every stored secret under the first OPENMPS_SECRET_KEY")
    return root


COMMANDS = {"keys": _keys, "pipelines": _pipelines, "buckets": _buckets, "secrets": _secrets}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.noun == "secrets" and args.action == "generate-key":
        print(generate_key())  # needs no key, no Redis
        return 0
    try:
        settings = server_settings(ClientEnv.from_env())
        services = build_services(settings)
    except SettingsError as exc:
        print(f"openmps: {exc}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[args.noun](services, args)
    except DomainError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 2
    except redis.RedisError as exc:
        print(f"openmps: the store at {settings.redis_url} is unreachable ({exc})", file=sys.stderr)
        return 2


def server_settings(env: ClientEnv) -> Settings:
    """The operator commands act on the store itself: ``OPENMPS_REDIS_URL`` (and friends) when set,
    else the running ``make up`` stack's (its ``stack.json``), else the defaults."""
    server_env = dict(env.server_env or {})
    stack = None if server_env.get("OPENMPS_REDIS_URL") else stackfile.read(env.data_dir)
    if stack is not None:
        server_env = {**stack.server_env(), **{k: v for k, v in server_env.items() if v}}
        server_env["OPENMPS_REDIS_URL"] = stack.redis_url
    return Settings.from_env(server_env)


if __name__ == "__main__":
    raise SystemExit(main())
