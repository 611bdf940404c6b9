"""The `guilds` command: run the local stack, serve the bridge, write and check configuration."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from guilds import __version__
from guilds.config import ConfigErrors, GuildsConfig, load_config


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not between 1 and 65535")
    return port


def cmd_run(args: argparse.Namespace) -> int:
    from guildsctl.run import run

    overrides = {
        "homeserver": args.homeserver_port,
        "appservice": args.appservice_port,
        "web": args.web_port,
    }
    if args.profile == "workers":
        from guildsctl.run_workers import run_workers

        if args.turn_port or os.environ.get("GUILDS_TURN_PORT"):
            print(
                "error: the local TURN server comes with the default profile only; with workers, "
                "add turn_uris + turn_shared_secret to Synapse as config/homeserver-guilds.yaml "
                "shows",
                file=sys.stderr,
            )
            return 2

        return run_workers(Path(args.state_dir), overrides, args.postgres)
    return run(Path(args.state_dir), overrides, args.turn_port, args.turn_host, args.janus_port)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigErrors as errors:
        print(f"error: {errors}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from guildsctl.serve import serve

    asyncio.run(serve(config))
    return 0


def _admin_config(args: argparse.Namespace) -> GuildsConfig | None:
    """The config an admin command (`apply`, `doctor`) runs with, its warnings on stderr;
    None (exit status 2) when the config is wrong, the errors printed."""
    try:
        config = load_config(args.config)
    except ConfigErrors as errors:
        print(f"error: {errors}", file=sys.stderr)
        return None
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return config


def cmd_apply(args: argparse.Namespace) -> int:
    config = _admin_config(args)
    if config is None:
        return 2
    from guildsctl.apply import ApplyError, apply

    try:
        lines = asyncio.run(apply(config, dry_run=args.dry_run))
    except ApplyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 1 if any(line.startswith("failed:") and line != "failed: 0" for line in lines) else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    config = _admin_config(args)
    if config is None:
        return 2
    from guildsctl.doctor import DoctorError, run_doctor

    try:
        report, where = asyncio.run(run_doctor(config, server=args.server, repair=args.repair))
    except DoctorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Checked {where}:")
    print("\n".join(report.lines()))
    # Non-zero whenever something differs: before repairing, or still after it.
    if args.repair:
        return 0 if report.healthy else 1
    return 0 if all(not s.found and s.error is None for s in report.servers) else 1


def cmd_generate_config(args: argparse.Namespace) -> int:
    from guilds.config import validate_database_url
    from guildsctl.configgen import write_installation

    problem = validate_database_url(args.database_url)
    if problem:
        print(f"error: --database-url {problem}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        written = write_installation(
            out,
            args.server_name,
            args.homeserver_url,
            args.database_url,
            public_homeserver_url=args.public_homeserver_url,
            appservice_url=args.appservice_url,
            web_public_url=args.web_public_url,
            bot_localpart=args.bot_localpart,
            force=args.force,
        )
    except FileExistsError as exc:
        print(f"error: would overwrite {exc}; pass --force to replace them", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    print(
        "Next: add homeserver-guilds.yaml to Synapse's config, restart Synapse, then run "
        f"`guilds serve -c {out / 'guilds.yaml'}`."
    )
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from guildsctl.check import check

    problems = check(Path(args.config), [Path(p) for p in args.homeserver_config])
    if problems:
        print(f"{len(problems)} problem(s) found:", file=sys.stderr)
        for line in problems:
            print(f"  - {line}", file=sys.stderr)
        return 1
    checked = ", ".join([args.config, *args.homeserver_config])
    print(f"ok: {checked} valid")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guilds", description="Discord-style servers on Matrix.")
    parser.add_argument("--version", action="version", version=f"guilds {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start Synapse, the bridge and the web UI locally")
    run.add_argument(
        "--state-dir", default="local", help="where config, secrets and data live (default: local)"
    )
    run.add_argument(
        "--homeserver-port", type=_port, help="Synapse's port (env GUILDS_HOMESERVER_PORT; 8008)"
    )
    run.add_argument(
        "--appservice-port", type=_port, help="the bridge's port (env GUILDS_APPSERVICE_PORT; 8009)"
    )
    run.add_argument("--web-port", type=_port, help="the web UI's port (env GUILDS_WEB_PORT; 8080)")
    run.add_argument(
        "--turn-port",
        type=_port,
        help="also start a local TURN server (coturn) on this port, and give Synapse its "
        "turn_uris and a fresh turn_shared_secret (env GUILDS_TURN_PORT; default: no TURN)",
    )
    run.add_argument(
        "--turn-host",
        help="the address the local coturn listens and relays on (env GUILDS_TURN_HOST; "
        "127.0.0.1; a LAN address lets other machines' browsers reach it)",
    )
    run.add_argument(
        "--janus-port",
        type=_port,
        help="the port of the SFU's WebSocket API (Janus, started when installed; env "
        "GUILDS_JANUS_PORT; 8188)",
    )
    run.add_argument(
        "--profile",
        choices=["default", "workers"],
        default="default",
        help="default: one Synapse on SQLite; workers: Synapse main + workers over Redis, "
        "PostgreSQL (state in <state-dir>/workers)",
    )
    run.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help="the PostgreSQL server of the workers profile (databases created on first use)",
    )
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="run the bridge and web UI for an existing homeserver")
    serve.add_argument("-c", "--config", required=True, help="path to guilds.yaml")
    serve.set_defaults(func=cmd_serve)

    apply = sub.add_parser(
        "apply", help="create and reconcile the servers guilds.yaml declares, and report"
    )
    apply.add_argument("-c", "--config", required=True, help="path to guilds.yaml")
    apply.add_argument(
        "--dry-run", action="store_true", help="print what would be created or changed; do nothing"
    )
    apply.set_defaults(func=cmd_apply)

    doc = sub.add_parser(
        "doctor",
        help="compare every server's Matrix state with its model; exit 1 if any room differs",
    )
    doc.add_argument("-c", "--config", required=True, help="path to guilds.yaml")
    doc.add_argument("--server", help="only this server (its space's room id)")
    doc.add_argument(
        "--repair", action="store_true", help="repair every divergence, then compare again"
    )
    doc.set_defaults(func=cmd_doctor)

    gen = sub.add_parser(
        "generate-config", help="write the homeserver snippet, registration and guilds.yaml"
    )
    gen.add_argument(
        "--server-name", required=True, help="the homeserver's server_name, e.g. example.org"
    )
    gen.add_argument(
        "--database-url", required=True, help="sqlite:///guilds.db or postgresql://user@host/db"
    )
    gen.add_argument(
        "--homeserver-url", default="http://127.0.0.1:8008", help="where the bridge reaches Synapse"
    )
    gen.add_argument(
        "--public-homeserver-url", help="the homeserver URL clients use (default: --homeserver-url)"
    )
    gen.add_argument(
        "--appservice-url", default="http://127.0.0.1:8009", help="where Synapse reaches the bridge"
    )
    gen.add_argument(
        "--web-public-url",
        help="the URL people open (invite links use it); default http://127.0.0.1:8080",
    )
    gen.add_argument(
        "--bot-localpart", default="guilds", help="localpart of the bot user (default: guilds)"
    )
    gen.add_argument("--out", default=".", help="folder to write the files into (default: .)")
    gen.add_argument("--force", action="store_true", help="overwrite existing files")
    gen.set_defaults(func=cmd_generate_config)

    chk = sub.add_parser(
        "check-config", help="validate guilds.yaml and the homeserver's Guilds settings"
    )
    chk.add_argument("-c", "--config", required=True, help="path to guilds.yaml")
    chk.add_argument(
        "--homeserver-config",
        action="append",
        default=[],
        help="a Synapse config file to check too (repeat for several, merged as Synapse does)",
    )
    chk.set_defaults(func=cmd_check_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
