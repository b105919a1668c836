"""The gateway benchmark's report: per-system summaries (what goes into the JSON), Markdown tables and the goals."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from bench.gateway_systems import LITELLM, OURS, PORTKEY, System
from bench.report import ms, table
from bench.stats import percentile, summarize

CONCURRENCY = (32, 128)


def _p(samples: list[int], p: float) -> float | None:
    return percentile(sorted(samples), p) / 1e6 if samples else None


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _rps(s: System, c: int) -> float | None:
    r = s.load.get(c)
    return r["requests"] / r["wall_s"] if r and r["wall_s"] else None


def _mb(n: int) -> str:
    return f"{n / 2**20:.0f}" if n else "–"


def _num(v: float | None, digits: int = 0) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def summary(s: System, raw: System | None) -> dict[str, Any]:
    base = raw if raw is not None and raw.ok and raw is not s else None
    out: dict[str, Any] = {"group": s.group, "status": "ok" if s.ok else "unavailable"}
    if not s.ok:
        out["reason"] = s.error
        return out
    lat = summarize(s.latency_ns) if s.latency_ns else None
    ttfc = summarize(s.ttfc_ns) if s.ttfc_ns else None
    unpaced = summarize(s.unpaced_ttfc_ns) if s.unpaced_ttfc_ns else None
    unpaced_total = summarize(s.unpaced_total_ns) if s.unpaced_total_ns else None
    total = summarize(s.total_ns) if s.total_ns else None
    out.update(
        latency_ms={"p50": lat.p50, "p99": lat.p99, "mean": lat.mean, "n": lat.n} if lat else None,
        added_ms={
            "p50": _minus(_p(s.latency_ns, 50), _p(base.latency_ns, 50)) if base else None,
            "p99": _minus(_p(s.latency_ns, 99), _p(base.latency_ns, 99)) if base else None,
        },
        ttfc_ms={"p50": ttfc.p50, "p99": ttfc.p99, "n": ttfc.n} if ttfc else None,
        added_ttfc_ms={"p50": _minus(_p(s.ttfc_ns, 50), _p(base.ttfc_ns, 50)) if base else None},
        stream_total_ms={"p50": total.p50, "p99": total.p99} if total else None,
        unpaced_ttfc_ms={"p50": unpaced.p50, "p99": unpaced.p99, "n": unpaced.n} if unpaced else None,
        added_unpaced_ttfc_ms={
            "p50": _minus(_p(s.unpaced_ttfc_ns, 50), _p(base.unpaced_ttfc_ns, 50)) if base else None
        },
        unpaced_total_ms={"p50": unpaced_total.p50, "p99": unpaced_total.p99} if unpaced_total else None,
        throughput={
            str(c): {
                "rps": _rps(s, c),
                "requests": r["requests"],
                "errors": r["errors"],
                "p50_ms": _p(r["ns"], 50),
                "p99_ms": _p(r["ns"], 99),
                "cpu_share": r.get("cpu"),
                "rounds_rps": r["rounds_rps"],
            }
            for c, r in s.load.items()
        },
        wake_ms={pause: {"p50": _p(ns, 50), "p90": _p(ns, 90)} for pause, ns in s.wake_ns.items() if ns} or None,
        peak_rss_mb=s.peak_rss / 2**20,
        idle_rss_mb=s.idle_rss / 2**20,
        notes=s.notes,
    )
    return out


HEADERS = [
    "system",
    "added p50 / p99 ms (c=1)",
    "latency p50 / p99 ms",
    "req/s c=32",
    "req/s c=128",
    "TTFC p50 ms",
    "added TTFC p50 ms",
    "unpaced: TTFC / added p50 ms",
    "peak RSS MB",
]


def row(name: str, d: dict[str, Any]) -> list[str]:
    if d["status"] != "ok":
        return [name, f"unavailable: {d['reason'][:160]}", *["–"] * (len(HEADERS) - 2)]
    lat, added, tp = d["latency_ms"] or {}, d["added_ms"], d["throughput"]

    def pair(a: float | None, b: float | None, signed: bool = False) -> str:
        f = "{:+.3f}" if signed else "{:.3f}"
        return "–" if a is None or b is None else f"{f.format(a)} / {f.format(b)}"

    return [
        name,
        pair(added["p50"], added["p99"], signed=True) if added["p50"] is not None else "(the floor)",
        pair(lat.get("p50"), lat.get("p99")),
        _num(tp.get("32", {}).get("rps")),
        _num(tp.get("128", {}).get("rps")),
        ms((d["ttfc_ms"] or {}).get("p50")),
        "(the floor)" if d["added_ttfc_ms"]["p50"] is None else f"{d['added_ttfc_ms']['p50']:+.3f}",
        _unpaced(d),
        f"{d['peak_rss_mb']:.0f}",
    ]


def _unpaced(d: dict[str, Any]) -> str:
    ttfc, added = (d.get("unpaced_ttfc_ms") or {}).get("p50"), (d.get("added_unpaced_ttfc_ms") or {}).get("p50")
    if ttfc is None:
        return "–"
    return f"{ttfc:.3f} / " + ("(the floor)" if added is None else f"{added:+.3f}")


def goals(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    ours, pk, ll = results.get(OURS), results.get(PORTKEY), results.get(LITELLM)
    if ours is None or ours["status"] != "ok":
        return []

    def rps(d: dict[str, Any] | None, c: int) -> float | None:
        return d["throughput"].get(str(c), {}).get("rps") if d and d["status"] == "ok" else None

    def verdict(ok: bool | None) -> str:
        return "–" if ok is None else ("yes" if ok else "**NO**")

    added, ttfc, rss = ours["added_ms"]["p50"], ours["added_ttfc_ms"]["p50"], ours["peak_rss_mb"]
    unpaced = (ours.get("added_unpaced_ttfc_ms") or {}).get("p50")
    rows = [["added p50 (c=1)", "≤ 1.000 ms", ms(added), verdict(None if added is None else added <= 1.0)]]
    for label, value in (("zero-latency upstream", unpaced), ("chunks 2 ms apart", ttfc)):
        ok = None if value is None else value <= 1.0
        rows.append([f"added time to first chunk (p50), {label}", "≤ 1.000 ms", ms(value), verdict(ok)])
    for c in CONCURRENCY:
        mine = rps(ours, c)
        for other, times, label in ((pk, 2, "Portkey"), (ll, 20, "LiteLLM")):
            theirs = rps(other, c)
            target = f"≥ {times}× {label} ({_num(theirs)} → {_num(theirs * times if theirs else None)})"
            ratio = f"{_num(mine)} req/s ({mine / theirs:.1f}×)" if mine and theirs else _num(mine)
            rows.append(
                [f"throughput at c={c}", target, ratio, verdict(mine >= times * theirs if mine and theirs else None)]
            )
    rows.append(["peak RSS under load", "≤ 150 MB", f"{rss:.0f} MB", verdict(rss <= 150)])
    return rows


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "node": _version(["node", "--version"]),
        "loadavg_start": list(os.getloadavg()),
    }


def _version(argv: list[str]) -> str | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def render(results: dict[str, dict[str, Any]], meta: dict[str, Any]) -> str:
    main = [(n, d) for n, d in results.items() if d["group"] == "main"]
    servers = [(n, d) for n, d in results.items() if d["group"] == "server"]
    parts = [
        "# Gateway benchmark (`python -m bench.gateway`)",
        f"{meta['date']}; {meta['cpu']}, {meta['cpus']} CPUs shared by the load generator, the upstream and the "
        f"system under test; Python {meta['python']}; node {meta['node']}; load average at start "
        f"{meta['loadavg_start'][0]:.2f}, at end {meta['loadavg_end'][0]:.2f}.",
        table(HEADERS, [row(n, d) for n, d in main]),
    ]
    goal_rows = goals(results)
    if goal_rows:
        parts.append("## Goals\n\n" + table(["goal", "target", "measured", "met"], goal_rows))
    wake = next((d["wake_ms"] for _, d in main if d.get("wake_ms")), None)
    if wake:
        rows = [[f"{float(p):g} ms", ms(v["p50"]), ms(v["p90"])] for p, v in wake.items()]
        parts.append(
            "## This machine: the cost of waking up\n\nThe raw upstream's latency (concurrency 1) when the caller "
            "first sleeps this long. On a VM whose idle CPUs sleep deeply, every process woken on a request's path "
            "adds to that: a gateway adds one more process, woken twice per request (the call, then the upstream's "
            "answer), and a stream's gaps between chunks leave every process on its path idle.\n\n"
            + table(["pause before each call", "p50 ms", "p90 ms"], rows)
        )
    if servers:
        parts.append("## Our gateway under each ASGI server\n\n" + table(HEADERS, [row(n, d) for n, d in servers]))
    cpu_rows = []
    for n, d in results.items():
        for c, t in (d.get("throughput") or {}).items():
            share = t.get("cpu_share") or {}
            per_call = share.get("system", 0) / t["rps"] * 1e3 if t["rps"] else None
            cpu_rows.append([n, c, _num(t["rps"]), ms(t["p50_ms"], 2), ms(t["p99_ms"], 2),
                             f"{share.get('system', 0):.0%}", ms(per_call), f"{share.get('loadgen', 0):.0%}",
                             f"{share.get('upstream', 0):.0%}", str(t["errors"])])  # fmt: skip
    if cpu_rows:
        parts.append(
            "## Under load: latency and CPU (share of one core)\n\n"
            + table(
                [
                    "system",
                    "c",
                    "req/s",
                    "p50 ms",
                    "p99 ms",
                    "system CPU",
                    "CPU ms per call",
                    "load gen CPU",
                    "upstream CPU",
                    "errors",
                ],
                cpu_rows,
            )
        )
    notes = [f"- {n}: {note}" for n, d in results.items() for note in d.get("notes", [])]
    if notes:
        parts.append("Notes:\n" + "\n".join(notes))
    return "\n\n".join(parts) + "\n"
