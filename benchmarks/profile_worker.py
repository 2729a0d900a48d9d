"""Profile one streamkpi worker in-process (cProfile) against its own local broker.

    python benchmarks/profile_worker.py                  # profile the mixed stream
    python benchmarks/profile_worker.py --no-profile     # same run, no profiler: events/s
    python benchmarks/profile_worker.py --scale 2 --top 50 --save /tmp/worker.pstats

py-spy cannot attach on these machines (ptrace is restricted), so the worker runs in
this process: the same ``create_app`` + ``new_worker`` as ``streamkpi worker``, with a
cProfile per thread. The main thread's profile is enabled when the first record has been
counted and disabled when every produced record has been counted (so startup and the
rebalance wait are left out); Faust's aiokafka consumer thread is profiled from its start.
Prints the events/s of the profiled span, the time per category of code (Faust/mode
machinery, aiokafka, the event loop, parse, engine, our glue) and the top functions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import ctypes
import gc
import multiprocessing
import os
import pstats
import shutil
import signal
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
from worker_bench import (  # this script's directory
    PARTITIONS,
    memory_records,
    mixed_records,
    produce,
    rss_mib,
)

from streamkpi.app import create_app, new_worker
from streamkpi.config import load_settings
from streamkpi.events import Kind
from streamkpi.generator.stream import CURRENCY_RATES
from streamkpi.localkafka import LocalKafka, free_port
from streamkpi.topics import ensure_topics

# First match wins: (category, substring of the code's file name or of a builtin's name).
CATEGORIES = [
    ("parse (events.py + pydantic)", "streamkpi/events.py"),
    ("parse (events.py + pydantic)", "pydantic"),
    ("engine (streamkpi/kpis)", "streamkpi/kpis/"),
    ("glue (pipeline, agents, app)", "streamkpi/"),
    ("metrics (prometheus_client)", "prometheus_client"),
    ("faust", "/faust/"),
    ("mode", "/mode/"),
    ("aiokafka", "/aiokafka/"),
    ("event loop (asyncio/uvloop)", "asyncio"),
    ("event loop (asyncio/uvloop)", "uvloop"),
    ("event loop (asyncio/uvloop)", "select"),
]


def category(func: tuple[str, int, str]) -> str:
    filename, _line, name = func
    where = filename if filename != "~" else name
    for label, needle in CATEGORIES:
        if needle in where:
            return label
    return "other (builtins, stdlib)"


class ThreadProfiles:
    """A cProfile for every thread started after ``install`` (Faust's consumer thread)."""

    def __init__(self) -> None:
        self.profiles: list[tuple[str, cProfile.Profile]] = []

    def install(self) -> None:
        def first_call(*_args: Any) -> None:
            sys.setprofile(None)
            profile = cProfile.Profile()
            self.profiles.append((threading.current_thread().name, profile))
            profile.enable()

        threading.setprofile(first_call)

    def disable(self) -> None:
        threading.setprofile(None)  # type: ignore[arg-type]
        for _name, profile in self.profiles:
            # disable() only works from the profiled thread; create_stats() snapshots anyway.
            profile.create_stats()


def report(title: str, profile: cProfile.Profile, top: int, seconds: float) -> None:
    stats = pstats.Stats(profile)
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    if not raw:
        print(f"\n== {title}: nothing recorded")
        return
    by_cat: dict[str, float] = defaultdict(float)
    for func, (_cc, _nc, tottime, _ct, _callers) in raw.items():
        by_cat[category(func)] += tottime
    total = sum(by_cat.values())
    print(f"\n== {title}: {total:.2f} s of profiled time over {seconds:.2f} s wall")
    for label, secs in sorted(by_cat.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * secs / total:5.1f}%  {secs:6.2f} s  {label}")
    print(f"\n-- {title}: top {top} by own time")
    stats.sort_stats("tottime").print_stats(top)
    print(f"-- {title}: top {top} by cumulative time")
    stats.sort_stats("cumulative").print_stats(top)


def _make_input(bootstrap: str, topics: dict[Kind, str], memory: bool, scale: float) -> int:
    records = memory_records(1000, 24) if memory else mixed_records(scale)
    print(f"records: {len(records):,} {dict(Counter(r.kind.value for r in records))}")
    asyncio.run(produce(bootstrap, topics, records))
    return len(records)


def _watch_peak(obj: Any, name: str) -> None:
    """Print how much traced memory a synchronous method of ``obj`` peaks at above its start."""
    method = getattr(obj, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            after, peak = tracemalloc.get_traced_memory()
            print(
                f"    {name}: +{(peak - before) / 2**20:.0f} MiB at peak, "
                f"{(after - before) / 2**20:+.0f} MiB kept, {time.perf_counter() - started:.2f}s",
                flush=True,
            )

    setattr(obj, name, wrapped)


def final_total(snapshot: tracemalloc.Snapshot) -> float:
    """Return the traced MiB of ``snapshot``."""
    return sum(stat.size for stat in snapshot.statistics("filename")) / 2**20


def print_objects(top: int = 25) -> None:
    """Print the most numerous live object types (a cheap first look at memory)."""
    counts = Counter(type(o).__name__ for o in gc.get_objects())
    print("live objects by type (gc-tracked):")
    for name, n in counts.most_common(top):
        print(f"  {n:>10,}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="mixed stream size factor")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--no-profile", action="store_true", help="just time the run")
    parser.add_argument("--save", type=Path, help="also dump the main thread's pstats here")
    parser.add_argument("--memory", action="store_true", help="worker_bench's --memory input")
    parser.add_argument("--rss-every", type=float, default=0, help="print RSS every N seconds")
    parser.add_argument("--objects", action="store_true", help="count live objects by type at end")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="with --rss-every: where the peak memory is"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="streamkpi-prof-"))
    broker = LocalKafka(data_dir=workdir / "kafka", heap="1g")
    broker.start()
    try:
        run = uuid.uuid4().hex[:6]
        topics = {kind: f"{kind.value}-{run}" for kind in Kind}
        # Generated and produced in a child process, so that this process's RSS is the
        # worker's alone (a freed list of 1.4 M records is not given back to the OS).
        with multiprocessing.get_context("fork").Pool(1) as pool:
            total = pool.apply(
                _make_input, (broker.bootstrap_servers, topics, args.memory, args.scale)
            )
        os.environ.update(
            {
                "STREAMKPI_APP_ID": f"prof-{run}",
                "STREAMKPI_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                "STREAMKPI_WEB_PORT": str(free_port()),
                "STREAMKPI_TOPIC_PARTITIONS": str(PARTITIONS),
                "STREAMKPI_DATA_DIR": str(workdir / "worker"),
                "STREAMKPI_LOG_LEVEL": "warning",
                "STREAMKPI_LABELS__MAX_CAMPAIGNS": "1000",
                "STREAMKPI_CURRENCY_RATES": orjson.dumps(
                    {k: str(v) for k, v in CURRENCY_RATES.items()}
                ).decode(),
                **{f"STREAMKPI_TOPICS__{k.value.upper()}": t for k, t in topics.items()},
            }
        )
        settings = load_settings()
        asyncio.run(ensure_topics(settings))  # as `streamkpi worker` does (the DLQ topic)
        app, runtime = create_app(settings)
        pipeline = runtime.pipeline
        main_profile = cProfile.Profile()
        threads = ThreadProfiles()
        if not args.no_profile:
            threads.install()
        span: dict[str, float] = {}

        def processed() -> int:
            return sum(
                engine.next_offset(kind)
                for engine in list(pipeline.engines.values())
                for kind in Kind
            )

        last_rss = [0.0]
        biggest: list[Any] = [0, None]  # traced bytes, snapshot
        if args.tracemalloc:
            tracemalloc.start(8)
            for name in ("_take_checkpoint", "_snapshots"):
                _watch_peak(pipeline, name)

        @app.timer(interval=0.05)  # type: ignore[misc]
        async def watch() -> None:
            done = processed()
            now = time.perf_counter()
            if args.rss_every and now - last_rss[0] >= args.rss_every:
                last_rss[0] = now
                traced = ""
                if args.tracemalloc:
                    current, peak = tracemalloc.get_traced_memory()
                    traced = f", traced {current / 2**20:.0f} MiB (peak {peak / 2**20:.0f})"
                    if current > biggest[0]:
                        biggest[:] = [current, tracemalloc.take_snapshot()]
                        for stat in biggest[1].statistics("lineno")[:6]:
                            print(f"    {stat}", flush=True)
                print(
                    f"  {done:>9,} counted, RSS {rss_mib(os.getpid()):6.0f} MiB{traced}, "
                    f"{pipeline.checkpoints} checkpoints in {pipeline.checkpoint_seconds:.1f}s",
                    flush=True,
                )
            if "start" not in span and done > 0:
                span["start"], span["start_n"] = time.perf_counter(), done
                if not args.no_profile:
                    main_profile.enable()
            if "end" not in span and done >= total:
                main_profile.disable()
                span["end"] = time.perf_counter()
                threads.disable()
                span["rss"] = rss_mib(os.getpid())
                if args.tracemalloc:
                    final = tracemalloc.take_snapshot()
                    print(f"live traced memory at the end: {final_total(final):.0f} MiB")
                    for stat in final.statistics("lineno")[:20]:
                        print(f"    {stat}", flush=True)
                gc.collect()
                span["rss_gc"] = rss_mib(os.getpid())
                with contextlib.suppress(OSError, AttributeError):
                    ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc: give free heap back
                span["rss_trim"] = rss_mib(os.getpid())
                if args.objects:
                    print_objects()
                    sys._debugmallocstats()  # pymalloc arenas: used vs free bytes
                # As a Ctrl-C would: the worker stops and execute_from_commandline returns.
                os.kill(os.getpid(), signal.SIGTERM)

        worker = new_worker(app, settings)
        with contextlib.suppress(SystemExit):
            worker.execute_from_commandline()
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if "end" not in span:
        raise SystemExit("the worker stopped before counting every record")
    seconds = span["end"] - span["start"]
    n = total - span["start_n"]
    loop = type(asyncio.get_event_loop_policy()).__module__
    print(
        f"\nprofiled span: {n:,} records in {seconds:.2f} s = {n / seconds:,.0f} events/s"
        f" ({'no profiler' if args.no_profile else 'under cProfile'}; loop policy {loop})"
    )
    print(
        f"RSS when done: {span['rss']:.0f} MiB; after gc.collect() {span['rss_gc']:.0f} MiB;"
        f" after malloc_trim(0) {span['rss_trim']:.0f} MiB"
    )
    if biggest[1] is not None:
        print(f"\nlargest traced memory seen: {biggest[0] / 2**20:.0f} MiB, by traceback:")
        for stat in biggest[1].statistics("traceback")[:8]:
            print(f"{stat.size / 2**20:8.1f} MiB in {stat.count:,} blocks")
            for line in stat.traceback.format()[-16:]:
                print("    " + line)
    if args.no_profile:
        return
    report("main thread", main_profile, args.top, seconds)
    for name, profile in threads.profiles:
        report(f"thread {name}", profile, min(args.top, 15), seconds)
    if args.save:
        main_profile.dump_stats(args.save)


if __name__ == "__main__":
    main()
