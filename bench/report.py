"""The bench's results as markdown tables: every Hatchery figure beside the floors of the same
run, as a ratio to the FastAPI floor (and to the Starlette one)."""

from __future__ import annotations

from typing import Any


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(ours: float | None, floor: float | None) -> str:
    return "-" if not ours or not floor else f"{ours / floor:.2f}"


def throughput(results: dict[str, Any]) -> list[str]:
    floors = results["floors"]
    lines = [
        "| scenario | req/s | ratio to FastAPI floor | ratio to Starlette floor "
        "| server CPU µs/req | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, method in (("post", "POST"), ("get", "GET")):
        for name in ("fastapi", "starlette"):
            run = floors[name][kind]["saturation"]
            lines.append(
                f"| floor {name} {method} | {_f(run['throughput_rps'], 0)} | | | "
                f"{_f(run['server_cpu_us_per_request'])} | {run['errors']} |"
            )
    for backend, found in results["backends"].items():
        for scenario, kind in (("submit", "post"), ("poll", "get")):
            run = found[scenario]["saturation"]
            rps = run["throughput_rps"]
            fast = floors["fastapi"][kind]["saturation"]["throughput_rps"]
            star = floors["starlette"][kind]["saturation"]["throughput_rps"]
            lines.append(
                f"| {scenario} ({backend}) | {_f(rps, 0)} | {_ratio(rps, fast)} | "
                f"{_ratio(rps, star)} | {_f(run['server_cpu_us_per_request'])} | "
                f"{run['errors'] + sum(n for s, n in run['status'].items() if s[0] != '2')} |"
            )
    return lines


def latency(results: dict[str, Any]) -> list[str]:
    floors = results["floors"]
    lines = [
        "| scenario | p50 ms | p99 ms | max ms | server CPU µs/req |",
        "|---|---:|---:|---:|---:|",
    ]
    rows = [(f"floor {n} {k.upper()}", floors[n][k]) for k in ("post", "get") for n in floors]
    for backend, found in results["backends"].items():
        rows += [(f"{s} ({backend})", found[s]) for s in ("submit", "poll")]
    for label, pair in rows:
        run = pair["at_rate"]
        lat = run["latency_ms"]
        lines.append(
            f"| {label} | {_f(lat['p50'], 2)} | {_f(lat['p99'], 2)} | {_f(lat['max'], 2)} | "
            f"{_f(run['server_cpu_us_per_request'])} |"
        )
    return lines


def lifecycle(results: dict[str, Any]) -> list[str]:
    lines = [
        "| backend | tasks | to processing p50 / p99 ms | to completed p50 / p99 ms | "
        "to webhook p50 / p99 ms | webhooks |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for backend, found in results["backends"].items():
        life = found["lifecycle"]
        cells = [
            f"{_f(life[k]['p50'])} / {_f(life[k]['p99'])}"
            for k in ("dispatch_ms", "completed_ms", "webhook_ms")
        ]
        lines.append(
            f"| {backend} | {life['tasks']} | {' | '.join(cells)} | {life['webhooks_received']} |"
        )
    return lines


def listing(results: dict[str, Any]) -> list[str]:
    lines = [
        "| backend | tasks | request | p50 ms | p99 ms | server CPU µs/req |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, floor in results["floors"].items():
        if "get_one" in floor:  # the same GET one request at a time, in the same run
            run = floor["get_one"]
            lat = run["latency_ms"]
            lines.append(
                f"| floor {name} GET | | | {_f(lat['p50'], 2)} | {_f(lat['p99'], 2)} | "
                f"{_f(run['server_cpu_us_per_request'])} |"
            )
    for backend, found in results["backends"].items():
        lst = found["list"]
        for name, label in (
            ("page_1", "page 1"),
            ("deep_page", f"page={lst['page']:,}"),
            ("deep_cursor", "same page by cursor"),
        ):
            run = lst[name]
            lat = run["latency_ms"]
            lines.append(
                f"| {backend} | {lst['tasks']:,} | {label} | {_f(lat['p50'], 2)} | "
                f"{_f(lat['p99'], 2)} | {_f(run['server_cpu_us_per_request'])} |"
            )
    return lines


USAGE_REQUESTS = (
    ("summary", "summary"),
    ("summary_30_days", "summary, 30 days"),
    ("summary_one_key", "summary, one key"),
    ("list_page_1", "`/v1/usage` page 1"),
)


def usage(results: dict[str, Any]) -> list[str]:
    """One request at a time, beside the floors' ``GET`` measured the same way in the run."""
    floor = results["floors"]["fastapi"]["get_one"]
    lines = [
        "| backend | records | request | p50 ms | p99 ms | max ms | server CPU µs/req "
        "| CPU ratio to FastAPI floor |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for name in ("fastapi", "starlette"):
        run = results["floors"][name]["get_one"]
        lat = run["latency_ms"]
        lines.append(
            f"| floor {name} GET | | | {_f(lat['p50'], 2)} | {_f(lat['p99'], 2)} | "
            f"{_f(lat['max'], 2)} | {_f(run['server_cpu_us_per_request'])} | |"
        )
    for backend, found in results["backends"].items():
        use = found["usage"]
        for name, label in USAGE_REQUESTS:
            run = use[name]
            lat, cpu = run["latency_ms"], run["server_cpu_us_per_request"]
            lines.append(
                f"| {backend} | {use['records']:,} | {label} | {_f(lat['p50'], 2)} | "
                f"{_f(lat['p99'], 2)} | {_f(lat['max'], 2)} | {_f(cpu)} | "
                f"{_ratio(cpu, floor['server_cpu_us_per_request'])} |"
            )
    return lines


def usage_seeding(results: dict[str, Any]) -> list[str]:
    lines = []
    for backend, found in results["backends"].items():
        use = found["usage"]
        lines.append(
            f"- {backend}: {use['records']:,} records ({use['days']}) and {use['daily_rows']:,} "
            f"daily sums seeded in {use['seeded_in_s']:g} s (inserts {use['insert_s']:g} s; "
            f"daily sums checked against the records in {use['check_s']:g} s: "
            f"{'equal' if use['daily_matches_records'] else 'DIFFERENT'})"
        )
    return lines


def profiles(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for backend, found in results["backends"].items():
        prof = found.get("profile")
        if not prof:
            continue
        if "skipped" in prof:
            lines += [f"- {backend}: {prof['skipped']}"]
            continue
        lines += ["", f"Submit path on {backend} ({prof['samples']} samples):", ""]
        lines += ["| on CPU (self), by package | share | | Hatchery function (inclusive) | share |"]
        lines += ["|---|---:|---|---|---:|"]
        for (pkg, a), (fn, b) in zip(
            prof["self_by_package"], prof["hatchery_inclusive"], strict=False
        ):
            lines.append(f"| {pkg} | {a:.1%} | | `{fn}` | {b:.1%} |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    m, plan = results["machine"], results["plan"]
    ran = results.get("scenarios", ["requests", "lifecycle", "list"])
    lines = [
        "# Hatchery request-path benchmark",
        "",
        f"{m['date']}; {m['cpus']} CPUs ({m['cpu']}); Python {m['python']}; "
        f"{plan['duration']:g} s measured per run after {plan['warmup']:g} s of warm-up.",
    ]
    if "requests" in ran:
        lines += [
            "",
            f"## Throughput at saturation ({plan['connections']} connections, closed loop)",
            "",
            *throughput(results),
            "",
            f"## Latency at {plan['rate']:g} requests/s (open loop)",
            "",
            *latency(results),
        ]
    if "lifecycle" in ran:
        lines += [
            "",
            f"## Lifecycle ({plan['lifecycle_rate']:g} submits/s for "
            f"{plan['lifecycle_seconds']:g} s, local provider, one 16:9 1k image)",
            "",
            *lifecycle(results),
        ]
    if "list" in ran:
        lines += ["", "## List (one request at a time)", "", *listing(results)]
    if "usage" in ran:
        lines += ["", "## Usage summary (one request at a time)", "", *usage(results)]
        lines += ["", *usage_seeding(results)]
    if "requests" in ran:
        lines += ["", "## Profile of the submit path (py-spy, saturated)", *profiles(results)]
    return "\n".join(lines) + "\n"
