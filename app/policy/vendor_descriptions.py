"""Regenerate vendored/aws_managed_policy_descriptions.json from the npm package iam-floyd.

    make managed-policy-descriptions                       # the version pinned below
    .venv/bin/python -m app.policy.vendor_descriptions 0.850.0

iam-floyd (Apache-2.0, github.com/udondan/iam-floyd) is republished as AWS changes its
managed policies; its generator lists AWS managed policies (ListPolicies, Scope=AWS) and
reads each one's Description with GetPolicy, then writes them as doc comments beside the
policy names in lib/generated/aws-managed-policies/iam-floyd.js:

    /** Provides read only access to all buckets via the AWS Management Console. */
    AwsManagedPolicy.AmazonS3ReadOnlyAccess = 'AmazonS3ReadOnlyAccess';

This script fetches the package with npm (the registry the project already uses for its
front-end files), reads those pairs and writes `path/name -> description`, with the package,
version, licence and date, so the file says where its text comes from. Run by hand when the
copy is old; the app never fetches anything at run time.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from app.policy.managed_descriptions import DATA

PACKAGE = "iam-floyd"
VERSION = "0.842.0"
MEMBER = "package/lib/generated/aws-managed-policies/iam-floyd.js"
PAIR = re.compile(r"^/\*\* (.*?) \*/\nAwsManagedPolicy\.\w+ = '([^']+)';$", re.MULTILINE)
NAME = re.compile(r"^AwsManagedPolicy\.\w+ = '([^']+)';$", re.MULTILINE)


def parse(source: str) -> dict[str, str]:
    """`path/name -> description` for every policy that has a non-empty description."""
    pairs = {key: text.strip() for text, key in PAIR.findall(source) if text.strip()}
    if not pairs or len(pairs) < len(NAME.findall(source)) // 2:
        raise ValueError("unexpected iam-floyd layout: few policy descriptions found")
    return dict(sorted(pairs.items()))


def fetch(version: str) -> tuple[str, str]:
    """(iam-floyd.js text, licence) of the package, fetched with `npm pack`."""
    with tempfile.TemporaryDirectory() as tmp:
        # npm from PATH, as `make static` runs it; fixed arguments (a version string at most).
        out = subprocess.run(  # noqa: S603
            ["npm", "pack", f"{PACKAGE}@{version}", "--json", "--pack-destination", tmp],  # noqa: S607
            check=True,
            capture_output=True,
            text=True,
        )
        filename = json.loads(out.stdout)[0]["filename"]
        data = (Path(tmp) / filename).read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        script = tar.extractfile(MEMBER)
        manifest = tar.extractfile("package/package.json")
        if script is None or manifest is None:
            raise ValueError(f"{PACKAGE}@{version} has no {MEMBER}")
        licence = str(json.loads(manifest.read())["license"])
        return script.read().decode("utf-8"), licence


def published(version: str) -> str:
    """The date the registry says this version was published (YYYY-MM-DD)."""
    out = subprocess.run(  # noqa: S603
        ["npm", "view", PACKAGE, "time", "--json"],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    )
    return str(json.loads(out.stdout)[version])[:10]


def main(argv: list[str]) -> None:
    version = argv[0] if argv else VERSION
    source, licence = fetch(version)
    descriptions = parse(source)
    document = {
        "package": PACKAGE,
        "version": version,
        "published": published(version),
        "licence": licence,
        "homepage": "https://github.com/udondan/iam-floyd",
        "generated": datetime.now(UTC).date().isoformat(),
        "note": "AWS's Description of each AWS managed policy (GetPolicy), keyed by the "
        "policy's path and name; regenerate with `make managed-policy-descriptions`.",
        "descriptions": descriptions,
    }
    DATA.parent.mkdir(exist_ok=True)
    DATA.write_text(json.dumps(document, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(descriptions)} descriptions from {PACKAGE} {version} written to {DATA}")


if __name__ == "__main__":
    main(sys.argv[1:])
