"""The bench's results as markdown tables: every Hatchery figure beside the floors of the same
run, as a ratio to the FastAPI floor (and to the Starlette one), the rate limiter's cost as the
ratio of limiter on to limiter off, a scrape's as the ratio of scraped to unscraped, and at the
end the targets of issue 16, met or missed."""

from __future__ import annotations

from collections.abc import Callable
from itertools import zip_longest
from typing import Any


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(ours: float | None, floor: float | None) -> str:
    return "-" if not ours or not floor else f"{ours / floor:.2f}"


def _failed(run: dict[str, Any]) -> int:
    return int(run["errors"]) + sum(n for s, n in run["status"].items() if s[0] != "2")


def request_runs(results: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(label, backend, scenario, saturated-and-paced pair) of every submit and poll measured:
    limiter off, then limiter on, per backend."""
    rows = []
    for backend, found in results["backends"].items():
        for scenario in ("submit", "poll"):
            if scenario in found:
                rows.append((f"{scenario} ({backend})", backend, scenario, found[scenario]))
        on = found.get("limiter_on", {})
        for scenario in ("submit", "poll"):
            if scenario in on:
                label = f"{scenario} ({backend}, limiter on)"
                rows.append((label, backend, scenario, on[scenario]))
    return rows


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
        for scenario in ("submit", "poll"):
            run = found.get("floor_beside", {}).get(scenario)
            if run is not None:
                lines.append(
                    f"| floor fastapi {KIND[scenario].upper()}, beside {backend} | "
                    f"{_f(run['throughput_rps'], 0)} | | | "
                    f"{_f(run['server_cpu_us_per_request'])} | {_failed(run)} |"
                )
    for label, backend, scenario, pair in request_runs(results):
        run = pair["saturation"]
        rps = run["throughput_rps"]
        fast = fastapi_floor(results, results["backends"][backend], scenario)
        star = floors["starlette"][KIND[scenario]]["saturation"]["throughput_rps"]
        lines.append(
            f"| {label} | {_f(rps, 0)} | {_ratio(rps, fast)} | {_ratio(rps, star)} | "
            f"{_f(run['server_cpu_us_per_request'])} | {_failed(run)} |"
        )
    return lines


def fastapi_floor(results: dict[str, Any], found: dict[str, Any], scenario: str) -> float | None:
    """The FastAPI floor's saturated throughput a backend's scenario is set against: the one
    measured in turns with it ("beside"), else the one measured before all backends."""
    beside = found.get("floor_beside", {}).get(scenario)
    if beside is not None:
        return float(beside["throughput_rps"])
    run = results["floors"].get("fastapi", {}).get(KIND[scenario], {}).get("saturation")
    return None if run is None else float(run["throughput_rps"])


KIND = {"submit": "post", "poll": "get"}  # the floor's request a scenario is set against


Pairs = Callable[[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]


def compared(
    results: dict[str, Any], pairs: Pairs, names: tuple[str, str], quantiles: tuple[str, ...]
) -> list[str]:
    """One server against another beside it, per backend: ``pairs(backend's results)`` gives
    each one's saturated-and-paced pairs by scenario, ``names`` what they are called. Saturated
    throughput and CPU, and the ratio of the second to the first; ``quantiles`` of the paced run."""
    a, b = names
    latencies = "".join(f"| {q} ms at rate {a} → {b} " for q in quantiles)
    lines = [
        f"| scenario | req/s {a} → {b} | {b} ÷ {a} | server CPU µs/req {a} → {b} | {b} ÷ {a} "
        f"{latencies}|",
        "|---|---:|---:|---:|---:|" + "---:|" * len(quantiles),
    ]
    for backend, found in results["backends"].items():
        first, second = pairs(found)
        for scenario in ("submit", "poll"):
            if scenario in first and scenario in second:
                row = compared_row(first[scenario], second[scenario], quantiles)
                lines.append(f"| {scenario} ({backend}) | {row} |")
    return lines


def compared_row(first: dict[str, Any], second: dict[str, Any], quantiles: tuple[str, ...]) -> str:
    """The cells of a row of ``compared`` after the scenario's."""
    sat = first["saturation"], second["saturation"]
    rps = sat[0]["throughput_rps"], sat[1]["throughput_rps"]
    cpu = sat[0]["server_cpu_us_per_request"], sat[1]["server_cpu_us_per_request"]
    cells = [
        f"{_f(rps[0], 0)} → {_f(rps[1], 0)}",
        _ratio(rps[1], rps[0]),
        f"{_f(cpu[0])} → {_f(cpu[1])}",
        _ratio(cpu[1], cpu[0]),
    ]
    for q in quantiles:
        at = first["at_rate"]["latency_ms"][q], second["at_rate"]["latency_ms"][q]
        cells.append(f"{_f(at[0], 2)} → {_f(at[1], 2)}")
    return " | ".join(cells)


def limiter_cost(results: dict[str, Any]) -> list[str]:
    """Limiter on against limiter off, each on a fresh database and server of the same run."""

    def pairs(found: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        return found, found.get("limiter_on", {})

    return compared(results, pairs, ("off", "on"), ("p99",))


def scrape_cost(results: dict[str, Any]) -> list[str]:
    """Scraped against never scraped, each on a fresh database and server of the same run."""

    def pairs(found: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        scrape = found.get("scrape", {})
        return scrape.get("unscraped", {}), scrape.get("scraped", {})

    return compared(results, pairs, ("unscraped", "scraped"), ("p50", "p99"))


def scrapes(results: dict[str, Any]) -> list[str]:
    """The scrapes themselves: how many, how long each took, how large the exposition was."""
    lines = [
        "| backend | scrapes | duration p50 ms | p99 ms | max ms "
        "| exposition bytes, first → last |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for backend, found in results["backends"].items():
        if "scrape" in found:
            made = found["scrape"]["scrapes"]
            ms, size = made["duration_ms"], made["bytes"]
            lines.append(
                f"| {backend} | {made['scrapes']} | {_f(ms['p50'])} | {_f(ms['p99'])} | "
                f"{_f(ms['max'])} | {size['first']:,} → {size['last']:,} |"
            )
    return lines


def scrape_section(results: dict[str, Any]) -> list[str]:
    plan, every = results["plan"], results.get("scrape_every_s", 1)
    return [
        "",
        f"## Scraped every {every:g} s against never scraped (saturated; latency at "
        f"{plan['rate']:,.0f} requests/s)",
        "",
        *scrape_cost(results),
        "",
        "Saturated runs in turns: unscraped, scraped, scraped, unscraped, half the time each. "
        "The scrapes, from before the first run to after the last (duration as the scraper saw "
        "it, waiting on the server's loop included):",
        "",
        *scrapes(results),
    ]


def _at_least(run: dict[str, Any], value: float | None) -> str:
    """A latency of a paced run; "≥" when requests were left unanswered (a lower bound)."""
    return ("≥ " if run.get("unfinished") else "") + _f(value, 2)


def latency(results: dict[str, Any]) -> list[str]:
    floors = results["floors"]
    lines = [
        "| scenario | answered req/s | unfinished | p50 ms | p99 ms | max ms "
        "| server CPU µs/req | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [(f"floor {n} {k.upper()}", floors[n][k]) for k in ("post", "get") for n in floors]
    rows += [(label, pair) for label, _, _, pair in request_runs(results)]
    for label, pair in rows:
        run = pair["at_rate"]
        lat = run["latency_ms"]
        lines.append(
            f"| {label} | {_f(run.get('achieved_send_rate'), 0)} | {run.get('unfinished', 0)} | "
            f"{_at_least(run, lat['p50'])} | {_at_least(run, lat['p99'])} | "
            f"{_at_least(run, lat['max'])} | {_f(run['server_cpu_us_per_request'])} | "
            f"{_failed(run)} |"
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
        for key, path in (("profile", "Submit"), ("poll_profile", "Poll")):
            lines += profile(found.get(key), f"{path} path on {backend}")
    return lines


def profile(prof: dict[str, Any] | None, title: str) -> list[str]:
    lines: list[str] = []
    if prof:
        if "skipped" in prof:
            return ["", f"- {title}: {prof['skipped']}"]
        lines += ["", f"{title} ({prof['samples']} samples):", ""]
        lines += [
            "| on CPU (self), by package | share | on CPU (self), by function | share "
            "| Hatchery function (inclusive) | share |",
            "|---|---:|---|---:|---|---:|",
        ]
        columns = [
            prof["self_by_package"],
            prof.get("self_by_function", []),
            prof["hatchery_inclusive"],
        ]
        for row in zip_longest(*columns):
            cells: list[str] = []
            for column, cell in enumerate(row):
                if cell is None:
                    cells += ["", ""]
                else:
                    name, share = cell
                    cells += [name if column == 0 else f"`{name}`", f"{share:.1%}"]
            lines.append(f"| {' | '.join(cells)} |")
    return lines


# --------------------------------------------------------------------------------- targets

# A target on one backend: (met, the figure as shown), or None where the run did not measure it.
Figure = tuple[bool, str] | None
Target = Callable[[dict[str, Any]], Figure]  # a backend's results -> its figure


def _saturated(found: dict[str, Any], scenario: str, limited: bool) -> dict[str, Any] | None:
    where = found.get("limiter_on", {}) if limited else found
    pair = where.get(scenario)
    return None if pair is None else pair["saturation"]


def floor_ratio(results: dict[str, Any], scenario: str, least: float, limited: bool) -> Target:
    """Saturated throughput at least ``least`` times the FastAPI floor's (``fastapi_floor``)."""

    def figure(found: dict[str, Any]) -> Figure:
        run = _saturated(found, scenario, limited)
        base = fastapi_floor(results, found, scenario)
        if run is None or not base or not run["throughput_rps"]:
            return None
        rps = run["throughput_rps"]
        ratio = rps / base
        return ratio >= least, f"{ratio:.2f} ({rps:,.0f} vs {base:,.0f}/s)"

    return figure


def limiter_ratio(scenario: str, within: float) -> Target:
    """Saturated throughput with the limiter on within ``within`` of the same with it off."""

    def figure(found: dict[str, Any]) -> Figure:
        off = _saturated(found, scenario, False)
        on = _saturated(found, scenario, True)
        if off is None or on is None or not off["throughput_rps"]:
            return None
        ratio = on["throughput_rps"] / off["throughput_rps"]
        return ratio >= 1 - within, f"{ratio:.2f} ({on['throughput_rps']:,.0f}/s on)"

    return figure


def cpu_per_request(scenario: str, most: float) -> Target:
    """Server CPU per request at saturation (limiter off) at most ``most`` µs."""

    def figure(found: dict[str, Any]) -> Figure:
        run = _saturated(found, scenario, False)
        if run is None or run["server_cpu_us_per_request"] is None:
            return None
        cpu = run["server_cpu_us_per_request"]
        return cpu <= most, f"{cpu:,.0f} µs"

    return figure


def p99_at_rate(scenario: str, under: float) -> Target:
    """p99 of the paced run (limiter off) under ``under`` ms, every request answered."""

    def figure(found: dict[str, Any]) -> Figure:
        pair = found.get(scenario)
        if pair is None:
            return None
        run = pair["at_rate"]
        p99 = run["latency_ms"]["p99"]
        if p99 is None:
            return None
        met = p99 < under and not run.get("unfinished") and not _failed(run)
        return met, f"{_at_least(run, p99)} ms"

    return figure


def floor_p99(results: dict[str, Any], kind: str) -> str:
    """The FastAPI floor's own p99 at the same rate, as a note to a target's label."""
    run = results["floors"].get("fastapi", {}).get(kind, {}).get("at_rate")
    if run is None:
        return ""
    return f"; FastAPI floor {_at_least(run, run['latency_ms']['p99'])} ms"


def p50_or_p99(section: str, key: str, q: str, under: float, of: str = "") -> Target:
    """``found[section][of][key][q]`` (``of`` optional) under ``under`` ms."""

    def figure(found: dict[str, Any]) -> Figure:
        part = found.get(section)
        if part is None:
            return None
        run = part[of] if of else part
        value = run[key][q]
        return None if value is None else (value < under, f"{value:,.2f} ms")

    return figure


def targets(results: dict[str, Any]) -> list[str]:
    """The targets of issue 16 that this run measured, each on every backend, met or missed."""
    ran = results.get("scenarios", [])
    plan = results["plan"]
    rows: list[tuple[str, Target]] = []
    if "requests" in ran:
        rate = f"{plan['rate']:,.0f} requests/s"
        rows += [
            (
                "submit throughput at least 0.5 times the FastAPI POST floor",
                floor_ratio(results, "submit", 0.5, False),
            ),
            (
                "poll throughput at least 0.7 times the FastAPI GET floor",
                floor_ratio(results, "poll", 0.7, False),
            ),
            (
                "submit throughput at least 0.5 times the floor, limiter on",
                floor_ratio(results, "submit", 0.5, True),
            ),
            (
                "poll throughput at least 0.7 times the floor, limiter on",
                floor_ratio(results, "poll", 0.7, True),
            ),
            (
                "submit throughput, limiter on, at least 0.9 times limiter off",
                limiter_ratio("submit", 0.1),
            ),
            (
                "poll throughput, limiter on, at least 0.9 times limiter off",
                limiter_ratio("poll", 0.1),
            ),
            ("server CPU at most 300 µs per submit", cpu_per_request("submit", 300)),
            ("server CPU at most 150 µs per poll", cpu_per_request("poll", 150)),
            (
                f"submit p99 under 20 ms at {rate} (open loop){floor_p99(results, 'post')}",
                p99_at_rate("submit", 20),
            ),
            (
                f"poll p99 under 20 ms at {rate} (open loop){floor_p99(results, 'get')}",
                p99_at_rate("poll", 20),
            ),
        ]
    if "lifecycle" in ran:
        rows.append(
            (
                "dispatch (submit → processing) p50 under 10 ms",
                p50_or_p99("lifecycle", "dispatch_ms", "p50", 10),
            )
        )
    if "list" in ran:
        for name, label in (("page_1", "page 1"), ("deep_cursor", "deep page by cursor")):
            rows.append(
                (
                    f"list p99 under 50 ms, {label} ({plan['list_tasks']:,} tasks)",
                    p50_or_p99("list", "latency_ms", "p99", 50, name),
                )
            )
    if "usage" in ran:
        rows.append(
            (
                f"usage summary p99 under 50 ms ({plan['usage_records']:,} records)",
                p50_or_p99("usage", "latency_ms", "p99", 50, "summary"),
            )
        )
    backends = list(results["backends"])
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    lines = [
        f"| target | {' | '.join(names.get(b, b) for b in backends)} | |",
        f"|---|{'---:|' * len(backends)}---|",
    ]
    for label, figure in rows:
        figures = {b: figure(results["backends"][b]) for b in backends}
        cells = [("-" if f is None else f[1]) for f in figures.values()]
        lines.append(f"| {label} | {' | '.join(cells)} | {verdict(figures, names)} |")
    return lines


def verdict(figures: dict[str, Figure], names: dict[str, str]) -> str:
    measured = {b: f[0] for b, f in figures.items() if f is not None}
    if not measured:
        return "not measured"
    if all(measured.values()):
        return "met"
    if not any(measured.values()):
        return "**missed**"
    met = ", ".join(names.get(b, b) for b, ok in measured.items() if ok)
    missed = ", ".join(names.get(b, b) for b, ok in measured.items() if not ok)
    return f"met on {met}; **missed** on {missed}"


def beside_note(results: dict[str, Any]) -> list[str]:
    if not any("floor_beside" in found for found in results["backends"].values()):
        return []
    return [
        "",
        "Ratios to the FastAPI floor are to the one measured beside the backend, in turns with "
        "its runs (floor, limiter off, limiter on, on, off, floor; half the time each); ratios "
        "to the Starlette floor, to the one measured before all backends.",
    ]


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
            *beside_note(results),
            "",
            "## Rate limiter on (refusing nothing) against off, at saturation",
            "",
            *limiter_cost(results),
            "",
            f"## Latency at {plan['rate']:,.0f} requests/s (open loop)",
            "",
            *latency(results),
            "",
            f"A request still unanswered {results.get('drain_s', 2):g} s after the last one was "
            "due is counted as unfinished; its latency so far is among the percentiles, marked ≥ "
            "(lower bounds).",
        ]
    if "scrape" in ran:
        lines += scrape_section(results)
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
        lines += [
            "",
            "## Profile of the submit and poll paths (py-spy, saturated, limiter off)",
            *profiles(results),
        ]
    goals = targets(results)
    if len(goals) > 2:  # a target measured, beyond the table's head
        lines += ["", "## Targets", "", *goals]
    return "\n".join(lines) + "\n"
