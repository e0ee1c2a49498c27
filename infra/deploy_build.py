#!/usr/bin/env python3
"""`make deploy-build`: `sam build` as deployed (rust-cargolambda, arm64), timed, with each
function's artefact (its `bootstrap`, and that zipped as Lambda takes it), written to
bench/deploy-build.json for BENCHMARKS.md."""
import datetime
import io
import json
import os
import pathlib
import subprocess
import sys
import time
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAM = ROOT / ".venv/bin/sam"
ELF_MACHINES = {0xB7: "arm64", 0x3E: "x86_64"}


def elf_arch(path):
    head = path.read_bytes()[:20]
    if head[:4] != b"\x7fELF":
        return "not an ELF binary"
    return ELF_MACHINES.get(int.from_bytes(head[18:20], "little"), "unknown")


def zipped_size(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(path, "bootstrap")
    return len(buf.getvalue())


def main():
    command = [str(SAM), "build", "--beta-features", "--parallel"]
    # A first build compiles every dependency for arm64; later ones only what changed.
    warm = (ROOT / "target/aarch64-unknown-linux-gnu/release").is_dir()
    print("deploy-build:", " ".join(command[1:]), flush=True)
    started = time.monotonic()
    if subprocess.run(command, cwd=ROOT).returncode != 0:
        sys.exit("deploy-build: sam build failed (its output is above)")
    seconds = time.monotonic() - started
    functions = {}
    # Nested applications' functions are built under .aws-sam/build/<App>/<Function>/.
    for bootstrap in sorted((ROOT / ".aws-sam/build").rglob("bootstrap")):
        if bootstrap.is_file():
            functions[bootstrap.parent.name] = {
                "bootstrap_bytes": bootstrap.stat().st_size,
                "zip_bytes": zipped_size(bootstrap),
                "arch": elf_arch(bootstrap),
            }
    if not functions:
        sys.exit("deploy-build: sam build made no function artefacts in .aws-sam/build")
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "sam build --beta-features --parallel",
        "seconds": round(seconds, 1),
        "cores": os.cpu_count(),
        "from_scratch": not warm,
        "functions": functions,
    }
    out = ROOT / "bench/deploy-build.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    for name, f in functions.items():
        print(f"  {name:<24} {f['arch']:<7} bootstrap {f['bootstrap_bytes'] / 1e6:.2f} MB, zipped {f['zip_bytes'] / 1e6:.2f} MB")
    print(f"deploy-build: {seconds / 60:.1f} minutes; wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
