"""The `smm` command: run the local stack and export the event schemas.

smm local up [--detach] [--no-demo]    start everything (foreground; Ctrl-C stops it)
smm local down                          stop a detached stack
smm local status                        what runs where
smm schemas export DIR                  JSON Schema of every event, for other systems
smm users create|list|set-password|disable|enable   console users (services/console/cli.py)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LocalSettings(BaseSettings):
    """`SMM_LOCAL_*`: where the local stack keeps its data and which ports it takes."""

    model_config = SettingsConfigDict(env_prefix="SMM_LOCAL_", extra="ignore")

    dir: Path = Path(".smm")
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    mongo_port: int = Field(default=27017, ge=1, le=65535)
    demo_rate: float = Field(default=5.0, gt=0, le=10_000)
    demo_network_port: int = Field(default=8009, ge=1, le=65535)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smm", description="Social media marketing platform")
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="the whole platform on this machine")
    local_commands = local.add_subparsers(dest="action", required=True)
    up = local_commands.add_parser("up", help="start broker, database, services and demo feed")
    up.add_argument("--detach", action="store_true", help="return once everything is ready")
    up.add_argument("--no-demo", action="store_true", help="do not start the demo feed")
    for sub in (
        up,
        local_commands.add_parser("down", help="stop a detached stack"),
        local_commands.add_parser("status", help="show what runs where"),
    ):
        sub.add_argument("--data-dir", type=Path, help="stack folder (default: $SMM_LOCAL_DIR)")

    schemas = commands.add_parser("schemas", help="event JSON Schemas")
    schemas_commands = schemas.add_subparsers(dest="action", required=True)
    export = schemas_commands.add_parser("export", help="write one <Event>.schema.json per event")
    export.add_argument("directory", type=Path)

    backfill = commands.add_parser("import", help="import a JSONL or CSV export of mentions")
    backfill.add_argument("file", type=Path)
    backfill.add_argument("--format", choices=["jsonl", "csv"], help="default: by file suffix")
    backfill.add_argument("--url", default=None, help="ingest base URL (default: local port)")
    backfill.add_argument("--token", default=None, help="bearer token (default: $SMM_ADMIN_TOKEN)")
    backfill.add_argument("--no-progress", action="store_true")

    from services.console.cli import add_commands as add_user_commands

    add_user_commands(commands)
    return parser


def _export_schemas(directory: Path) -> int:
    from shared.events import json_schemas

    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (directory / f"{name}.schema.json").write_text(json.dumps(schema, indent=2) + "\n")
    print(f"wrote {len(json_schemas())} schemas to {directory}")
    return 0


def _import(args: argparse.Namespace) -> int:
    import os

    from services.ingest.importer import import_file
    from shared.settings import Settings

    settings = Settings()
    url = args.url or f"http://{settings.http_host}:{settings.ingest_port}"
    token = args.token or os.environ.get("SMM_ADMIN_TOKEN")
    if token is None:
        local_token = LocalSettings().dir / "admin-token"
        token = local_token.read_text().strip() if local_token.exists() else None
    if not token:
        print("no token: pass --token or set SMM_ADMIN_TOKEN", file=sys.stderr)
        return 2
    return import_file(url, token, args.file, args.format, progress=not args.no_progress)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "schemas":
        return _export_schemas(args.directory)
    if args.command == "import":
        return _import(args)
    if args.command == "users":
        from services.console.cli import run as run_users

        return run_users(args)
    from shared.local.stack import StackConfig, down, status, up

    local = LocalSettings()
    config = StackConfig(
        data_dir=(args.data_dir or local.dir).resolve(),
        kafka_port=local.kafka_port,
        mongo_port=local.mongo_port,
        demo=not getattr(args, "no_demo", False),
        demo_rate=local.demo_rate,
        demo_network_port=local.demo_network_port,
    )
    if args.action == "up":
        return up(config, detach=args.detach)
    if args.action == "down":
        return down(config)
    return status(config)


if __name__ == "__main__":
    sys.exit(main())
