"""`roledesk audit ...`: verify the chain, sign checkpoints, export, rebuild the status index.

Exit status: 0 when the chain verifies, 1 when it does not (the first bad sequence number is
printed), 2 for a usage problem such as an unreadable checkpoint or key.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO

import click

from app.audit import checkpoint as checkpoints
from app.audit.export import ENTRY_FIELDS, FORMATS, ledger_entries, to_lines
from app.audit.forms import parse_time
from app.audit.verify import GENESIS, verify_database
from app.db import Database
from app.settings import Settings


def _database() -> Database:
    return Database(Settings().database_url)


@click.group()
def audit() -> None:
    """The audit history: verify, checkpoint, export."""


@audit.command()
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A signed checkpoint the chain must still pass through (repeatable).",
)
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The trusted public key the checkpoints must be signed with (PEM).",
)
def verify(checkpoint_files: tuple[Path, ...], public_key: Path | None) -> None:
    """Re-hash every entry; exit 1 naming the first bad sequence number."""
    try:
        trusted = checkpoints.load_public_key(public_key) if public_key else None
        read = [checkpoints.read(path, trusted) for path in checkpoint_files]
    except checkpoints.CheckpointError as exc:
        click.echo(f"roledesk audit verify: {exc}", err=True)
        sys.exit(2)
    for path, cp in zip(checkpoint_files, read, strict=True):
        how = "the trusted key" if trusted else f"its own key {cp.key_fingerprint} (unchecked)"
        click.echo(f"Checkpoint {path}: sequence {cp.seq}, signed by {how}.")
    db = _database()
    try:
        result = verify_database(db, GENESIS, [cp.anchor for cp in read])
    finally:
        db.dispose()
    if result.problem is not None:
        click.echo(f"FAILED at sequence {result.problem.seq}: {result.problem.reason}", err=True)
        click.echo(f"Entries before it verified: {result.checked}.", err=True)
        sys.exit(1)
    click.echo(f"OK: {result.checked} entries verified, head sequence {result.head.seq}.")
    if not read:
        click.echo(
            "Without a checkpoint, cut-off newest entries or a recomputed chain are not "
            "detectable: see docs/audit.md."
        )


@audit.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Private key file to create (its public key goes to FILE.pub).",
)
def keygen(out: Path) -> None:
    """Create an Ed25519 key pair for signing checkpoints."""
    try:
        public = checkpoints.generate_key(out)
    except checkpoints.CheckpointError as exc:
        click.echo(f"roledesk audit keygen: {exc}", err=True)
        sys.exit(2)
    click.echo(f"Wrote {out} (keep it off this machine) and {public}.")


@audit.command()
@click.option("--key", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def checkpoint(key: Path, out: Path) -> None:
    """Verify the chain, then write its head signed with KEY to OUT."""
    try:
        private = checkpoints.load_private_key(key)
    except checkpoints.CheckpointError as exc:
        click.echo(f"roledesk audit checkpoint: {exc}", err=True)
        sys.exit(2)
    db = _database()
    try:
        result = verify_database(db)
    finally:
        db.dispose()
    if result.problem is not None:
        click.echo(f"Not signing: the chain fails at sequence {result.problem}.", err=True)
        sys.exit(1)
    signed = checkpoints.sign(result.head, private)
    out.write_text(checkpoints.dumps(signed))
    click.echo(f"Signed head sequence {signed.seq} ({signed.hash[:16]}…) into {out}.")
    click.echo("Copy it somewhere this machine cannot write (see docs/audit.md).")


@audit.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl", show_default=True)
@click.option(
    "--since", help="Only entries recorded at or after this UTC time (YYYY-MM-DD[THH:MM])."
)
@click.option("--after-seq", type=click.IntRange(min=0), default=0, help="Only entries after it.")
@click.option("--out", type=click.File("w"), default="-", help="File to write (default stdout).")
def export(fmt: str, since: str | None, after_seq: int, out: TextIO) -> None:
    """Stream ledger entries (with their hashes) as JSON Lines or CSV."""
    since_time: datetime | None = None
    if since:
        since_time = parse_time(since)
        if since_time is None:
            raise click.BadParameter(
                "use YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)", param_hint="--since"
            )
    db = _database()
    try:
        for chunk in to_lines(ledger_entries(db, since_time, after_seq), ENTRY_FIELDS, fmt):
            out.write(chunk)
    finally:
        db.dispose()


@audit.command()
def reindex() -> None:
    """Rebuild the derived current-outcome index from the ledger."""
    from app.audit.log import rebuild_status_index

    db = _database()
    try:
        count = rebuild_status_index(db)
    finally:
        db.dispose()
    click.echo(f"Rebuilt the outcome index: {count} events.")
