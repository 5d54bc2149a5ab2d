"""`leadimport`: run the whole pipeline on a laptop, the way AWS runs it (contract: ../shared/contract.md).

    leadimport import FILE (--schedule ID | --offer ID) [--company ID] [--options FILE.json] [--json] [--workers N]
    leadimport status ID [--json]          leadimport errors ID [--csv | --warnings]
    leadimport tokens (--schedule ID | --offer ID) PHONE
    leadimport owners [--json]             leadimport reset
    leadimport migrate                     (apply infra/db/migrations to DATABASE_URL, e.g. the deployed Aurora)

Exit codes: 0 the import completed (even with rejected rows), 2 the file was rejected (reason on
stderr), 1 an internal failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_INTERNAL, EXIT_REJECTED = 0, 1, 2
DEMO_COMPANY = 1
INLINE_IMPORT_BYTES = 1024**2  # up to this size `import` runs the splitter and worker in its own process


def _quiet_powertools() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the moto server's request log
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "leadimport")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "LeadImportLocal")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


EXAMPLES = """\
examples:
  {prog} owners                            # the schedules and offers, with their ids
  {prog} import leads.csv --schedule 1     # a progress bar, then a summary
  {prog} import leads.csv --offer 2 --options opts.json --json
  {prog} status ID                         # an earlier import ({prog} list: all of them)
  {prog} errors ID --csv > errors.csv      # its rejected rows, to fix and import again
  {prog} tokens --schedule 1 +19518761336  # what an inbound call from that phone gets
  {prog} serve                             # the upload page on http://127.0.0.1:8000/

exit codes:
  0  success (an import that completed, even with rejected rows)
  1  an internal failure (a bug, a server that cannot start)
  2  your mistake: a rejected file, invalid options, an unknown import id, an operation its status forbids
"""
OWNER_HELP = {"schedule": "import into (or look up on) the schedule with this id (see `owners`)",
              "offer": "import into (or look up on) the offer with this id (see `owners`)"}
COMPANY_HELP = f"the company (default: {DEMO_COMPANY}, the demo company)"


def command_name() -> str:
    """How the user can type this command again: `leadimport` when that is on PATH, else the path they used."""
    import shutil

    argv0 = Path(sys.argv[0])
    if argv0.name == "leadimport":
        found = shutil.which("leadimport")
        if found and Path(found).resolve() == argv0.resolve():
            return "leadimport"
        try:
            relative = argv0.resolve().relative_to(Path.cwd().resolve())
            return f"./{relative}" if len(relative.parts) == 1 else str(relative)
        except ValueError:
            return str(argv0.resolve())
    return ".venv/bin/leadimport"


def _owner_args(p: argparse.ArgumentParser) -> None:
    owner = p.add_mutually_exclusive_group(required=True)
    owner.add_argument("--schedule", type=int, metavar="ID", help=OWNER_HELP["schedule"])
    owner.add_argument("--offer", type=int, metavar="ID", help=OWNER_HELP["offer"])


def build_parser() -> argparse.ArgumentParser:
    prog = command_name()
    parser = argparse.ArgumentParser(
        prog=prog, description="CSV lead importer, run locally: the AWS pipeline with moto, PostgreSQL and Redis.",
        epilog=EXAMPLES.format(prog=prog), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str, epilog: str = "") -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, epilog=epilog.format(prog=prog) or None,
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = command("import", "import a CSV end to end (S3 upload -> splitter -> SQS -> workers)",
                "example:\n  {prog} import leads.csv --schedule 1\n\nexit codes: 0 completed (even with rejected"
                " rows), 2 the file or the options were rejected (why: on stderr), 1 an internal failure")
    p.add_argument("file", type=Path, help="the CSV file (a header row; the phone column is caller_id)")
    _owner_args(p)
    p.add_argument("--company", type=int, default=DEMO_COMPANY, help=COMPANY_HELP)
    p.add_argument("--options", type=Path, metavar="FILE.json",
                   help="JSON file with import options (scrub, lead management, defaults...; see README)")
    p.add_argument("--json", action="store_true", help="print only the import resource as JSON")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: none for a file up to 1 MB, which this process imports itself;"
                        " else one per core)")
    p.add_argument("--chunk-rows", type=int, default=None, metavar="N",
                   help="rows per SQS message (default from template.yaml)")

    id_help = "the import's id (printed by `import`, listed by `list`)"
    json_help = "print the import resource as JSON"
    p = command("status", "an import's status and counts", "example:\n  {prog} status ID --json")
    p.add_argument("import_id", metavar="ID", help=id_help)
    p.add_argument("--company", type=int, default=DEMO_COMPANY, help=COMPANY_HELP)
    p.add_argument("--json", action="store_true", help=json_help)

    p = command("list", "the company's imports, newest first", "example:\n  {prog} list --status completed")
    p.add_argument("--company", type=int, default=DEMO_COMPANY, help=COMPANY_HELP)
    p.add_argument("--status", help="only imports in this status (processing, completed, failed, cancelled...)")
    p.add_argument("--json", action="store_true", help="print a JSON list of import resources")

    for name, text in (("cancel", "stop a running import (unprocessed rows are listed in its errors)"),
                       ("undo", "put back what a finished import did")):
        p = command(name, text, f"example:\n  {{prog}} {name} ID\n\nexit code 2: no such import, or its status"
                                " forbids it")
        p.add_argument("import_id", metavar="ID", help=id_help)
        p.add_argument("--company", type=int, default=DEMO_COMPANY, help=COMPANY_HELP)
        p.add_argument("--json", action="store_true", help=json_help)

    p = command("errors", "an import's rejected rows (JSON, or the spreadsheet-safe CSV)",
                "examples:\n  {prog} errors ID | head\n  {prog} errors ID --csv > errors.csv   (fix the rows,"
                " import the same file)")
    p.add_argument("import_id", metavar="ID", help=id_help)
    p.add_argument("--company", type=int, default=DEMO_COMPANY, help=COMPANY_HELP)
    p.add_argument("--csv", action="store_true", help="as the spreadsheet-safe error CSV, re-importable as it is")
    p.add_argument("--warnings", action="store_true",
                   help="the warnings of the rows that went in (row, code, column, message) instead")

    p = command("tokens", "the tokens an inbound call from PHONE on a schedule or offer gets, as JSON",
                "example:\n  {prog} tokens --schedule 1 +19518761336")
    _owner_args(p)
    p.add_argument("phone", metavar="PHONE", help="the caller's phone, in any format the importer accepts")
    p.add_argument("--company", type=int, default=DEMO_COMPANY, help=COMPANY_HELP)

    p = command("owners", "the company's schedules and offers (the ids --schedule and --offer take)")
    p.add_argument("--company", type=int, default=DEMO_COMPANY, help=COMPANY_HELP)
    p.add_argument("--json", action="store_true", help='print [{"type", "id", "name", "company_id"}]')

    command("reset", "empty the local database (then re-seed the demo data) and Redis")
    command("stop", "stop the local PostgreSQL and Redis (they keep running between commands); refused (exit 2)"
                    " while `serve` or a command uses them")
    command("migrate", "apply the SQL migrations to DATABASE_URL (e.g. the deployed database)")

    p = command("demo", "import the sample file with every kind of bad row")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, metavar="N",
                   help="worker processes (default: cores)")

    p = command("serve", "serve the API and the upload page on 127.0.0.1, with the pipeline running",
                "example:\n  {prog} serve --port 8000   then open http://127.0.0.1:8000/")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default: 8000)")
    p.add_argument("--workers", type=int, default=min(os.cpu_count() or 2, 4), metavar="N",
                   help="worker processes (default: cores, at most 4)")
    return parser


def main(argv: list[str] | None = None) -> int:
    _quiet_powertools()
    args = build_parser().parse_args(argv)
    try:
        code = int(_COMMANDS[args.command](args))
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        return EXIT_INTERNAL
    except BrokenPipeError:
        # The reader went away (`leadimport errors ID | head`): end quietly, and keep Python's exit flush from
        # failing on the closed pipe again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


# ---- commands ---------------------------------------------------------------------------------------


def cmd_import(args: argparse.Namespace) -> int:
    from leadimport_local.pipeline import LocalPipeline

    if not args.file.is_file():
        print(f"leadimport: {args.file}: no such file", file=sys.stderr)
        return EXIT_REJECTED
    options: dict[str, Any] = {}
    if args.options:
        try:
            options = json.loads(args.options.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"leadimport: cannot read the options file {args.options}: {exc}", file=sys.stderr)
            return EXIT_REJECTED
        if not isinstance(options, dict):
            print("leadimport: the options file must hold a JSON object", file=sys.stderr)
            return EXIT_REJECTED
    owner = {"type": "schedule", "id": args.schedule} if args.schedule else {"type": "offer", "id": args.offer}
    workers = args.workers
    if workers is None:  # processes only when there is work for them: they take seconds to start
        workers = 0 if args.file.stat().st_size <= INLINE_IMPORT_BYTES else (os.cpu_count() or 2)
    with LocalPipeline(workers=max(0, workers), chunk_rows=args.chunk_rows) as pipeline:
        status, resource = pipeline.import_file(args.file, args.company, owner, options,
                                                progress=not args.json and sys.stderr.isatty())
    if status >= 400:
        print(f"leadimport: {resource.get('message', resource)}", file=sys.stderr)
        return EXIT_REJECTED if status == 422 else EXIT_INTERNAL
    return _report(resource, as_json=args.json)


def _report(resource: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(resource, indent=2))
    else:
        print(render_summary(resource))
    if resource["status"] == "failed":
        print(f"leadimport: the file was rejected: {resource.get('error')}", file=sys.stderr)
        return EXIT_REJECTED
    return EXIT_OK if resource["status"] in ("completed", "cancelled", "awaiting_confirmation") else EXIT_INTERNAL


def render_summary(r: dict[str, Any]) -> str:
    lines = [
        f"Import {r['id']}  \"{r['name']}\"  ->  {r['owner']['type']} {r['owner']['id']}",
        f"Status: {r['status']}" + ("  (dry run: nothing was written)" if r.get("dry_run") else ""),
    ]
    # A failed import's reason is printed once, on stderr, by the caller.
    width = 28
    created, updated = (("leads that would be created", "leads that would be updated") if r.get("dry_run")
                        else ("leads created", "leads updated"))
    rejected = "rows that would be rejected" if r.get("dry_run") else "rows rejected"
    lines += [
        "",
        *_rows_in_file(r, width),
        f"{created:<{width}}{r['created_leads']:>10,}",
        f"{updated:<{width}}{r.get('updated_leads', 0):>10,}",
        f"{rejected:<{width}}{r['rejected_rows']:>10,}",
    ]
    for reason, n in sorted(r["rejections"].items(), key=lambda kv: (-kv[1], kv[0])):
        if reason != "unprocessed":
            lines.append(f"  {reason:<{width - 2}}{n:>10,}")
    if r.get("unprocessed_rows"):
        lines.append(f"{'rows not processed':<{width}}{r['unprocessed_rows']:>10,}")
    if r["warnings"]:
        lines.append("warnings (rows imported with a fix):")
        for code, n in sorted(r["warnings"].items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {code:<{width - 2}}{n:>10,}")
    if r.get("rate_rows_per_second"):
        lines.append(f"{'rate (rows/s)':<{width}}{r['rate_rows_per_second']:>10,.0f}")
    if r["rejected_rows"]:
        lines.append(f"\nRejected rows: {command_name()} errors {r['id']} --csv > errors.csv")
    return "\n".join(lines)


def _rows_in_file(r: dict[str, Any], width: int) -> list[str]:
    """An import stopped before its file was read to the end: the rows read, and the file's rows as an estimate
    (or unknown), never the rows read called the file's."""
    if r.get("unread_from_row") is None:
        return [f"{'rows in file':<{width}}{r['total_rows']:>10,}"]
    estimate = r.get("estimated_total_rows")
    in_file = f"~{estimate:,}" if estimate else "unknown"
    return [f"{'rows in file':<{width}}{in_file:>10}",
            f"{'rows read':<{width}}{r['total_rows']:>10,}",
            f"  (not read from row {r['unread_from_row']:,} on: see the errors CSV)"]


def _api(company: int, method: str, path: str, query: dict[str, str] | None = None) -> tuple[int, Any, str]:
    from leadimport_local.pipeline import call_api

    return call_api(company, method, path, query=query)


def _with_stores(fn: Any) -> Any:
    """Run a command with the local stores up (attached to, or started when none run); no moto server, no
    worker processes: these commands only read and write PostgreSQL and Redis (`errors --csv` needs S3)."""
    def wrapper(args: argparse.Namespace) -> int:
        from leadimport_local.pipeline import LocalPipeline

        with LocalPipeline(workers=0, aws=bool(getattr(args, "csv", False))) as _:
            return int(fn(args))
    return wrapper


def _refused(status: int, body: Any) -> int:
    """An API refusal on stderr; exit 2 for the user's mistake (4xx: unknown import, a status that forbids it),
    1 for an internal failure."""
    print(f"leadimport: {(body or {}).get('message', 'the request failed')}", file=sys.stderr)
    return EXIT_REJECTED if 400 <= status < 500 else EXIT_INTERNAL


def _on_import(method: str, action: str = "") -> Any:
    """A command on one import: status (GET), cancel and undo (POST .../cancel, .../undo)."""
    @_with_stores
    def command(args: argparse.Namespace) -> int:
        status, body, _ = _api(args.company, method, f"/imports/{args.import_id}{action}")
        if status != 200:
            return _refused(status, body)
        return _report(body, as_json=args.json)
    return command


cmd_status = _on_import("GET")


@_with_stores
def cmd_list(args: argparse.Namespace) -> int:
    items, refused = _all_pages(args.company, "/imports", {"limit": "100",
                                                          **({"status": args.status} if args.status else {})})
    if refused is not None:
        return refused
    if args.json:
        print(json.dumps(items, indent=2, ensure_ascii=False))
        return EXIT_OK
    for r in items:
        print(f"{r['id']}  {r['created_at'][:19]}  {r['status']:<22} {r['total_rows']:>9,} rows"
              f"  {r['created_leads']:>9,} created  {r.get('updated_leads', 0):>9,} updated"
              f"  {r['rejected_rows']:>9,} rejected  {r['name']}")
    return EXIT_OK


@_with_stores
def cmd_errors(args: argparse.Namespace) -> int:
    if args.csv:
        status, body, text = _api(args.company, "GET", f"/imports/{args.import_id}/errors.csv")
        if status != 200:
            return _refused(status, body)
        sys.stdout.write(text)
        return EXIT_OK
    route = "warnings" if args.warnings else "errors"
    items, refused = _all_pages(args.company, f"/imports/{args.import_id}/{route}", {"limit": "1000"})
    if refused is not None:
        return refused
    print(json.dumps(items, indent=2, ensure_ascii=False))
    return EXIT_OK


def _all_pages(company: int, path: str, query: dict[str, str]) -> tuple[list[Any], int | None]:
    """Every item of a paged API route, following next_cursor; (items, None), or ([], exit code) when refused."""
    items: list[Any] = []
    cursor: str | None = None
    while True:
        status, body, _ = _api(company, "GET", path, {**query, **({"cursor": cursor} if cursor else {})})
        if status != 200:
            return [], _refused(status, body)
        items += body["items"]
        cursor = body.get("next_cursor")
        if not cursor:
            return items, None


@_with_stores
def cmd_tokens(args: argparse.Namespace) -> int:
    from leadimport.rules.phone import PhoneNormalizer
    from leadimport.store.tokens import shared_token_store

    phone = PhoneNormalizer().normalize(args.phone)
    if phone.e164 is None:
        print(f"leadimport: {phone.message}", file=sys.stderr)
        return EXIT_REJECTED
    owner_type, owner_id = ("schedule", args.schedule) if args.schedule else ("offer", args.offer)
    print(json.dumps(shared_token_store().tokens_for(args.company, owner_type, owner_id, phone.e164), indent=2,
                     ensure_ascii=False))
    return EXIT_OK


@_with_stores
def cmd_owners(args: argparse.Namespace) -> int:
    from leadimport.store.db import shared_database
    from leadimport_local.seed import list_owners

    owners = list_owners(shared_database(), args.company)
    if args.json:
        print(json.dumps(owners, indent=2))
    else:
        print(f"{'type':<10}{'id':>6}  name")
        for o in owners:
            print(f"{o['type']:<10}{o['id']:>6}  {o['name']}")
    return EXIT_OK


def cmd_reset(args: argparse.Namespace) -> int:
    from leadimport_local.pipeline import LocalPipeline

    with LocalPipeline(workers=0, fresh=True):
        pass
    print("Local database re-created with the demo data; Redis emptied.")
    return EXIT_OK


def cmd_stop(args: argparse.Namespace) -> int:
    from leadimport_local.runner import LocalServices
    from leadimport_local.shared_servers import ServersInUseError

    services = LocalServices.for_cli()
    try:
        stopped = services.stop_shared()
    except ServersInUseError as exc:
        print(f"leadimport: {exc}; stop that first", file=sys.stderr)
        return EXIT_REJECTED
    print(f"Stopped: {', '.join(stopped)}." if stopped else "No local servers were running.")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    from leadimport.store.db import Database
    from leadimport_local.migrations import migrate

    url = os.environ.get("DATABASE_URL")
    if not url:
        print("leadimport: set DATABASE_URL to the database to migrate", file=sys.stderr)
        return EXIT_INTERNAL
    db = Database.from_url(url)
    applied = migrate(db)
    print(f"applied: {', '.join(applied) if applied else 'nothing (up to date)'}")
    return EXIT_OK


DEMO_OPTIONS = {
    "scrub": {"scope": "company", "dialed": True, "connected": True, "converted": True, "opted_out": True,
              "blocked": True, "dispositions": ["not_interested"]},
    "defaults": {"traffic_source_id": 2, "lead_priority": 10},
    # Running the demo again replaces its leads instead of rejecting them as duplicate_lead.
    "lead_management": {"expire_existing": True, "hours_until_expiration": 72},
    "additional_data": {"list": "demo"},
}


def cmd_serve(args: argparse.Namespace) -> int:
    from leadimport_local.server import serve

    return serve(args.port, workers=max(1, args.workers))


def cmd_demo(args: argparse.Namespace) -> int:
    from leadimport_local.demo_data import ensure_demo_file

    path = ensure_demo_file()
    options = path.with_name("demo-options.json")
    options.write_text(json.dumps(DEMO_OPTIONS, indent=2), encoding="utf-8")
    print(f"Importing {path} into schedule 1 of the demo company, scrubbing against the company's call history\n"
          f"(options: {options}; the file has every kind of bad row)...", file=sys.stderr)
    code = main(["import", str(path), "--schedule", "1", "--workers", str(args.workers), "--options", str(options)])
    prog = command_name()
    print(f"\nNext: `{prog} serve` and open http://127.0.0.1:8000/ for the upload page;"
          f" `{prog} owners` lists schedules and offers.", file=sys.stderr)
    return code


_COMMANDS = {
    "import": cmd_import, "status": cmd_status, "list": cmd_list, "cancel": _on_import("POST", "/cancel"),
    "undo": _on_import("POST", "/undo"),
    "errors": cmd_errors, "tokens": cmd_tokens, "owners": cmd_owners,
    "reset": cmd_reset, "stop": cmd_stop, "migrate": cmd_migrate, "demo": cmd_demo, "serve": cmd_serve,
}

__all__ = ["main", "render_summary"]

if __name__ == "__main__":
    sys.exit(main())
