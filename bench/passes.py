"""Benchmark Apple pass building against the raw cost of what every pass must do.

    .venv/bin/python bench/passes.py [--seconds S] [--rounds R] [--json]

Two loops, in the same process and run, alternated R times (the best round of each counts):

1. **signed passes**: what the service does per pass once keys are loaded: find the program's
   design (cache check: a few stat calls) and its credentials (cache hit), render pass.json
   from the Jinja2 template, add the identity keys, hash every file into manifest.json (SHA-1),
   sign it (detached PKCS#7, RSA-2048, SHA-256) and zip. Only the database reads are left out.
2. **raw limit**: one RSA-2048 PKCS#7 signature over a ready manifest plus the zip of the
   same files: the floor no pass builder can go under with these keys and files.

Prints both rates and their ratio. Rates are per second of this process's CPU time, so other
work on the machine does not skew them (each loop is single-threaded: one core's figure).
Credentials are throwaway development ones in a temp dir.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402
from app.wallet.apple.designs import SAMPLE_CONTEXTS, design_for  # noqa: E402
from app.wallet.apple.dev import create_dev_credentials  # noqa: E402
from app.wallet.apple.package import build_pkpass, json_bytes, manifest, zip_pass  # noqa: E402
from app.wallet.apple.signing import load_credentials, sign_manifest  # noqa: E402

TEMPLATES = ROOT / "wallet_templates"


def _identity(serial: int) -> dict:
    return {
        "formatVersion": 1,
        "passTypeIdentifier": "pass.dev.pointcard.loyalty",
        "teamIdentifier": "DEVTEAM000",
        "serialNumber": f"{serial:032x}",
        "authenticationToken": "k" * 43,
        "webServiceURL": "https://cards.example.com/passkit",
        "barcodes": [
            {
                "format": "PKBarcodeFormatQR",
                "message": "PC" + "A" * 26,
                "messageEncoding": "iso-8859-1",
                "altText": "1234567897",
            }
        ],
        "locations": [
            {"latitude": 45.5 + i / 100, "longitude": -122.6, "relevantText": f"Store {i} is nearby"} for i in range(10)
        ],
    }


def signed_passes(settings: Settings, seconds: float) -> tuple[int, float, int]:
    """(passes built, CPU seconds taken, bytes of the last pass) for the service's per-pass work."""
    count, started, cpu, data = 0, time.perf_counter(), time.process_time(), b""
    modified = datetime.now(UTC)
    while time.perf_counter() - started < seconds:
        design = design_for(TEMPLATES, "demo")
        credentials = load_credentials(settings.apple)
        document = {**design.render(SAMPLE_CONTEXTS[count % 2]), **_identity(count)}
        data = build_pkpass(pass_json=document, files=design.files, credentials=credentials, modified=modified)
        count += 1
    return count, time.process_time() - cpu, len(data)


def raw_limit(settings: Settings, seconds: float) -> tuple[int, float]:
    """(signature+zip pairs done, CPU seconds taken) over the same files with a ready manifest."""
    design = design_for(TEMPLATES, "demo")
    credentials = load_credentials(settings.apple)
    contents = {"pass.json": json_bytes({**design.render(SAMPLE_CONTEXTS[0]), **_identity(0)}), **design.files}
    ready = manifest(contents)
    modified = datetime.now(UTC)
    count, started, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        signature = sign_manifest(ready, credentials)
        zip_pass({**contents, "manifest.json": ready, "signature": signature}, modified=modified)
        count += 1
    return count, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measured round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each loop, alternated")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as certs:
        settings = Settings(env="test", database_url="sqlite://", apple={"certs_dir": certs})
        create_dev_credentials(settings)
        signed_passes(settings, 0.5)  # warm-up: load keys and design, fill caches
        raw_limit(settings, 0.5)
        best_signed, best_raw, size = 0.0, 0.0, 0
        for _ in range(args.rounds):
            count, taken, size = signed_passes(settings, args.seconds)
            best_signed = max(best_signed, count / taken)
            count, taken = raw_limit(settings, args.seconds)
            best_raw = max(best_raw, count / taken)

    figures = {
        "signed_passes_per_second": round(best_signed, 1),
        "raw_limit_per_second": round(best_raw, 1),
        "ratio": round(best_signed / best_raw, 3),
        "pass_bytes": size,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"signed passes (keys loaded once): {figures['signed_passes_per_second']:8.1f} /s per core  ({size} bytes each)"
    )
    print(f"raw limit (PKCS#7 RSA-2048 + zip): {figures['raw_limit_per_second']:8.1f} /s per core")
    print(f"ratio:                             {figures['ratio']:8.3f}")


if __name__ == "__main__":
    main()
