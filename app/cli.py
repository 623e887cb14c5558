"""``openmps`` command line: access keys and pipelines for operators.

openmps keys create --tenant acme                      # prints a new id and secret
openmps keys create --tenant acme --id AK --secret SK  # a given pair, e.g. for a vendor SDK
openmps keys create --tenant ops --operator            # a key whose console view spans every tenant
openmps keys list | openmps keys delete AK
openmps pipelines list | pause ID | resume ID
"""

from __future__ import annotations

import argparse
import json
import sys

from app.core.errors import DomainError, PipelineNotFound
from app.core.pipelines import PipelineState
from app.settings import Settings
from app.wiring import Services, build_services, ensure_default_pipeline


def _keys(services: Services, args: argparse.Namespace) -> int:
    if args.action == "create":
        key = services.credentials.create(args.tenant, key_id=args.id, secret=args.secret)
        if args.operator:
            services.operators.grant(key.id)
        print(
            json.dumps(
                {
                    "access_key_id": key.id,
                    "access_key_secret": key.secret,
                    "tenant": key.tenant,
                    "operator": bool(args.operator),
                }
            )
        )
    elif args.action == "list":
        for key_id in services.credentials.list_ids():
            found = services.credentials.find(key_id)
            role = "\toperator" if services.operators.is_operator(key_id) else ""
            print(f"{key_id}\t{found.tenant if found else '?'}{role}")
    elif args.action == "delete":
        services.operators.revoke(args.key_id)  # a later key with this id starts without the right
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


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="openmps", description="openmps operator commands (config from OPENMPS_* env)")
    nouns = root.add_subparsers(dest="noun", required=True)
    keys = nouns.add_parser("keys", help="access keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create an access key for a tenant")
    create.add_argument("--tenant", required=True)
    create.add_argument("--id", help="use this access key id (default: generated)")
    create.add_argument("--secret", help="use this secret (default: generated)")
    create.add_argument(
        "--operator", action="store_true", help="operator rights: the console shows and acts on every tenant's jobs"
    )
    keys.add_parser("list")
    delete = keys.add_parser("delete")
    delete.add_argument("key_id")
    pipes = nouns.add_parser("pipelines", help="pipelines").add_subparsers(dest="action", required=True)
    pipes.add_parser("list")
    for action in ("pause", "resume"):
        pipes.add_parser(action).add_argument("pipeline_id")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    services = build_services(Settings.from_env())
    try:
        return _keys(services, args) if args.noun == "keys" else _pipelines(services, args)
    except DomainError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
