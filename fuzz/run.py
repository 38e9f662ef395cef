"""Run the fuzz targets under atheris (coverage-guided), each in its own process.

Run: ``python -m fuzz.run [TARGET ...] [--seconds 60] [--update-corpus]``. Each target starts
from its seeds and the committed corpus (``fuzz/corpus/<target>/``); a finding stops it
with the input saved under ``--artifacts`` and a non-zero exit. With ``--update-corpus`` the
inputs that reached new code are added to the committed corpus (review before committing).
Memory is bounded (``-rss_limit_mb``): an input that makes a parser balloon is a finding.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
RSS_LIMIT_MB = 1536


def fuzz_one(name: str, seconds: int, corpus_dir: Path, artifacts: Path) -> None:
    """In this process: fuzz ``name`` for ``seconds`` from ``corpus_dir`` (atheris exits)."""
    import atheris

    with atheris.instrument_imports(include=["streams", "agents", "fuzz", "schemas"]):
        from fuzz.targets import TARGETS
    target = TARGETS[name]
    atheris.Setup([sys.argv[0], str(corpus_dir), f"-max_total_time={seconds}",
                   f"-rss_limit_mb={RSS_LIMIT_MB}", f"-artifact_prefix={artifacts}/",
                   "-print_final_stats=1"], target.run)
    atheris.Fuzz()


def seed_corpus(name: str, into: Path) -> None:
    """The committed corpus of ``name`` and its seeds, as files in ``into``."""
    from fuzz.targets import TARGETS
    into.mkdir(parents=True, exist_ok=True)
    committed = CORPUS / name
    if committed.is_dir():
        for f in committed.iterdir():
            shutil.copy(f, into / f.name)
    for seed in TARGETS[name].seeds:
        (into / hashlib.sha1(seed).hexdigest()).write_bytes(seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("targets", nargs="*", help="default: all (fuzz/targets.py)")
    ap.add_argument("--seconds", type=int, default=60, help="per target")
    ap.add_argument("--artifacts", type=Path, default=Path("fuzz-findings"))
    ap.add_argument("--update-corpus", action="store_true")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # the child process: fuzz this target
    ap.add_argument("--corpus-dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:  # before anything imports the targets: atheris instruments them on import
        fuzz_one(args.one, args.seconds, args.corpus_dir, args.artifacts)
        return
    from fuzz.targets import TARGETS
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        raise SystemExit(f"unknown target(s): {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    args.artifacts.mkdir(parents=True, exist_ok=True)
    failed = []
    print("| target | seconds | executions | corpus | result |\n|---|--:|--:|--:|---|")
    for name in args.targets or list(TARGETS):
        with tempfile.TemporaryDirectory() as tmp:
            corpus_dir = Path(tmp) / name
            seed_corpus(name, corpus_dir)
            started = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "fuzz.run", "--one", name, "--seconds", str(args.seconds),
                 "--corpus-dir", str(corpus_dir), "--artifacts", str(args.artifacts)],
                capture_output=True, text=True)
            took = time.monotonic() - started
            runs = next((line.split(":")[-1].strip() for line in proc.stderr.splitlines()
                         if "stat::number_of_executed_units" in line), "?")
            ok = proc.returncode == 0
            print(f"| {name} | {took:.0f} | {runs} | {len(list(corpus_dir.iterdir()))} | "
                  f"{'no finding' if ok else 'FINDING (exit ' + str(proc.returncode) + ')'} |")
            if not ok:
                failed.append(name)
                print(proc.stderr[-3000:], file=sys.stderr)
            if args.update_corpus:
                dest = CORPUS / name
                dest.mkdir(parents=True, exist_ok=True)
                for f in corpus_dir.iterdir():
                    if f.stat().st_size <= 4096:
                        shutil.copy(f, dest / f.name)
    if failed:
        raise SystemExit(f"findings in: {', '.join(failed)} (inputs under {args.artifacts}/)")


if __name__ == "__main__":
    main()
