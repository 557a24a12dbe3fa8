"""``python -m benchmarks``: generate datasets, install and verify the SpiceDB peer, run benchmarks.

Sub-commands:
  generate         write a dataset's relationships (one per line) and its schema
  install-spicedb  npm-install libspicedb.so into the cache (idempotent)
  verify           load a dataset into SpiceDB and compare its answers with the reference
  peer-bench       measure generation, SpiceDB load rate and SpiceDB Check latency/throughput
  run              the full harness: rebac server (Postgres) driven from client processes, SpiceDB
                   beside it (--peer spicedb), report.json/report.md/PNG plots in --out

`run` example (the figures in the README come from this):
  python -m benchmarks run --dataset drive --size 100k --peer spicedb --out bench-out
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.datasets import DATASETS, DEFAULT_SEED, SIZES, make_world, parse_size, relationships

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ERRORS = 3
"""`run`: every answer agreed, but some calls failed or timed out (see the report's errors column)."""

DEFAULT_BENCH_DSN = "postgresql://postgres@127.0.0.1:5432/test"
WORKLOAD_NAMES_HELP = (
    "L0_health",
    "L1_direct_check",
    "cold_check (distinct, fully consistent)",
    "warm_check (Zipf-repeated, minimize_latency)",
    "bulk_check (100 items)",
    "lookup_resources",
    "lookup_subjects",
    "write",
    "mixed (95% check, 4% lookup, 1% write)",
)


def _add_world_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset", choices=sorted(DATASETS), default="drive", help="dataset shape (default drive)"
    )
    parser.add_argument(
        "--size", default="10k", help=f"approximate relationships: {', '.join(SIZES)} or N (default 10k)"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"generator seed (default {DEFAULT_SEED})"
    )


def _generate(args: argparse.Namespace) -> int:
    from benchmarks.queries import build_sample  # noqa: PLC0415 - keep --help fast

    world = make_world(args.dataset, parse_size(args.size), args.seed)
    out = Path(args.out)
    schema_out = Path(args.schema_out) if args.schema_out else out.with_suffix(".zed")
    started = time.perf_counter()
    count = 0
    with out.open("w", encoding="utf-8") as fh:
        for line in relationships(world):
            fh.write(line)
            fh.write("\n")
            count += 1
    elapsed = time.perf_counter() - started
    schema_out.write_text(world.schema, encoding="utf-8")
    print(f"wrote {count} relationships to {out} ({count / elapsed:,.0f}/s) and the schema to {schema_out}")
    if args.queries:
        sample = build_sample(world, checks=args.checks)
        Path(args.queries).write_text(json.dumps(sample.to_json(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {len(sample)} queries with reference answers to {args.queries}")
    return EXIT_OK


def _install_spicedb(args: argparse.Namespace) -> int:
    from benchmarks.spicedb_peer import install_spicedb  # noqa: PLC0415

    started = time.perf_counter()
    library = install_spicedb(Path(args.cache_dir) if args.cache_dir else None)
    print(f"libspicedb.so ready at {library} ({time.perf_counter() - started:.1f} s)")
    print(f"export SPICEDB_LIBRARY_PATH={library}")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from benchmarks.compare import AnswerMismatchError, compare_sample  # noqa: PLC0415
    from benchmarks.queries import build_sample  # noqa: PLC0415
    from benchmarks.spicedb_peer import DISPATCH_CACHE_NOTE, SpiceDBPeer  # noqa: PLC0415

    world = make_world(args.dataset, parse_size(args.size), args.seed)
    sample = build_sample(world, checks=args.checks)
    with SpiceDBPeer() as peer:
        peer.write_schema(world.schema)
        loaded = peer.load(relationships(world))
        print(f"loaded {loaded.count} relationships into SpiceDB in {loaded.seconds:.1f} s")
        mismatches = list(compare_sample("spicedb", peer, sample))
    print(DISPATCH_CACHE_NOTE)
    if mismatches:
        print(AnswerMismatchError(mismatches), file=sys.stderr)
        return EXIT_FAILED
    print(
        f"OK: SpiceDB agrees with the reference on all {len(sample)} queries "
        f"({len(sample.checks)} checks, {sample.positive_checks()} positive; "
        f"{len(sample.lookup_resources)} lookup-resources; {len(sample.lookup_subjects)} lookup-subjects)"
    )
    return EXIT_OK


def _peer_bench(args: argparse.Namespace) -> int:
    from benchmarks.peer_bench import run_peer_bench  # noqa: PLC0415

    world = make_world(args.dataset, parse_size(args.size), args.seed)
    threads = tuple(int(t) for t in args.threads.split(","))
    report = run_peer_bench(world, checks=args.checks, threads=threads)
    print(report.to_text())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=1) + "\n", encoding="utf-8")
    return EXIT_OK


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"expected positive integers, got {text!r}")
    return values


def _run(args: argparse.Namespace) -> int:
    from benchmarks.harness import RunConfig, run_harness  # noqa: PLC0415
    from benchmarks.workloads import WORKLOAD_NAMES  # noqa: PLC0415

    names = tuple(args.workloads.split(",")) if args.workloads else WORKLOAD_NAMES
    config = RunConfig(
        dataset=args.dataset,
        size=args.size,
        seed=args.seed,
        out=Path(args.out),
        datastore_uri=args.datastore_uri,
        keep=args.keep,
        peer=args.peer,
        workers=args.workers,
        client_processes=args.client_processes,
        concurrency=args.concurrency,
        duration=args.duration,
        workloads=names,
        concurrency_sweep=_int_list(args.concurrency_sweep) if args.concurrency_sweep else (),
        checks=args.checks,
        call_timeout=args.call_timeout,
        profile_dir=Path(args.profile) if args.profile else None,
        profile_workloads=tuple(args.profile_workloads.split(",")),
        profile_native=args.profile_native,
    )
    if config.call_timeout <= 0:
        raise ValueError(f"--call-timeout must be positive, got {config.call_timeout}")
    report, mismatches = run_harness(config)
    print(report.to_markdown())
    print(f"report written to {config.out}/report.json, report.md and the PNG plots")
    if report.errors:
        failing = ", ".join(
            f"{name} {entry['errors']}" for name, entry in report.workloads.items() if entry["errors"]
        )
        print(
            f"ERRORS: {report.errors} call(s) failed or timed out ({failing or 'sweep'}); "
            f"first: {[e.splitlines()[0] for e in report.error_examples[:3] if e]}",
            file=sys.stderr,
        )
    if mismatches:
        print(f"FAILED: {mismatches} answer(s) differ from the reference (see above)", file=sys.stderr)
        return EXIT_FAILED
    if report.errors:
        print(
            f"FAILED: every answer agreed, but {report.errors} call(s) failed (exit {EXIT_ERRORS})",
            file=sys.stderr,
        )
        return EXIT_ERRORS
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m benchmarks``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="rebac benchmarks: deterministic datasets, reference answers, SpiceDB side by side.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    gen = sub.add_parser("generate", help="write a dataset's relationships (one per line) and schema")
    _add_world_arguments(gen)
    gen.add_argument("--out", required=True, help="relationships file, one canonical relationship per line")
    gen.add_argument("--schema-out", help="schema file (default: --out with the suffix .zed)")
    gen.add_argument("--queries", help="also write a query sample with reference answers (JSON) here")
    gen.add_argument("--checks", type=int, default=200, help="checks in the query sample (default 200)")
    gen.set_defaults(handler=_generate)

    install = sub.add_parser("install-spicedb", help="npm-install libspicedb.so into the cache (idempotent)")
    install.add_argument(
        "--cache-dir", help="install directory (default .cache/spicedb or $REBAC_SPICEDB_CACHE)"
    )
    install.set_defaults(handler=_install_spicedb)

    verify = sub.add_parser("verify", help="compare SpiceDB's answers with the reference on a dataset")
    _add_world_arguments(verify)
    verify.add_argument("--checks", type=int, default=200, help="checks in the query sample (default 200)")
    verify.set_defaults(handler=_verify)

    bench = sub.add_parser("peer-bench", help="measure generation, SpiceDB load and SpiceDB Check in-process")
    _add_world_arguments(bench)
    bench.add_argument("--checks", type=int, default=1000, help="distinct checks to time (default 1000)")
    bench.add_argument("--threads", default="1,4", help="comma-separated thread counts (default 1,4)")
    bench.add_argument("--json", help="also write the figures as JSON here")
    bench.set_defaults(handler=_peer_bench)

    run = sub.add_parser(
        "run",
        help="full harness: rebac server + client processes (+ SpiceDB), report.json/report.md/plots",
        description=(
            "Start `rebac serve` on a fresh PostgreSQL database (created on --datastore-uri's server as "
            "rebac_bench_<pid>, migrated with `rebac migrate`, dropped afterwards unless --keep), import the "
            "dataset through the server's bulk import, then drive each workload from --client-processes "
            "separate processes with --concurrency in-flight calls in total for --duration seconds. "
            f"Workloads: {', '.join(WORKLOAD_NAMES_HELP)}. L0 (health RPC) and L1 (Check of a stored "
            "relation) are the limits every throughput is also given as a fraction of. Every answer is "
            "compared with an independent reference; any difference (rebac or SpiceDB) fails the run "
            "(exit 1) naming the query; a failed or timed-out call (--call-timeout) is counted as an "
            "error of its workload and, with every answer right, makes the run exit 3. With --peer "
            "spicedb the embedded SpiceDB (dispatch cache disabled "
            "by the embedding) runs the same workloads in threads at the same concurrency. Writes "
            "DIR/report.json, DIR/report.md, DIR/latency_cdf.png (and DIR/throughput_vs_concurrency.png "
            "with --concurrency-sweep), DIR/server.log."
        ),
    )
    _add_world_arguments(run)
    run.add_argument("--peer", choices=["spicedb"], help="also run SpiceDB on the same data and queries")
    run.add_argument("--out", required=True, help="report directory")
    run.add_argument(
        "--datastore-uri",
        default=os.environ.get("REBAC_BENCH_DSN", DEFAULT_BENCH_DSN),
        help=f"PostgreSQL server for the bench database (default {DEFAULT_BENCH_DSN} or $REBAC_BENCH_DSN)",
    )
    run.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    run.add_argument("--workers", type=int, default=2, help="rebac serve worker processes (default 2)")
    run.add_argument("--client-processes", type=int, default=2, help="load-driver processes (default 2)")
    run.add_argument("--concurrency", type=int, default=16, help="in-flight calls in total (default 16)")
    run.add_argument("--duration", type=float, default=10.0, help="seconds per workload (default 10)")
    run.add_argument("--workloads", help="comma-separated subset of the workloads (default all)")
    run.add_argument("--concurrency-sweep", help="e.g. 1,4,16: also run L0/L1/cold/warm at each concurrency")
    run.add_argument(
        "--checks", type=int, default=20_000, help="distinct sampled checks (the cold pool; default 20000)"
    )
    run.add_argument(
        "--call-timeout",
        type=float,
        default=30.0,
        help="deadline of each call in seconds; a call past it counts as an error (default 30)",
    )
    run.add_argument(
        "--profile",
        metavar="DIR",
        help="py-spy record each server worker during --profile-workloads: flame graphs, top tables in DIR",
    )
    run.add_argument(
        "--profile-workloads",
        default="cold_check",
        help="comma-separated workloads to profile with --profile (default cold_check)",
    )
    run.add_argument(
        "--profile-native",
        action="store_true",
        help="with --profile: also sample C frames (pauses the workers per sample; slower)",
    )
    run.set_defaults(handler=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the sub-command; user errors print one line and exit 2."""
    from benchmarks.spicedb_peer import PeerError, PeerUnavailableError  # noqa: PLC0415

    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PeerUnavailableError as exc:
        print(f"SpiceDB unavailable: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PeerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
