"""The operator files in deploy/: Prometheus's scrape configuration, the alert rules and their unit
tests pass promtool; the Grafana dashboard is well formed and its queries parse; and the alerts
and the dashboard use only metrics Hatchery exposes, with the suffixes of their types.

promtool is looked for in ``$PROMTOOL``, then ``PATH``, then ``/usr/bin``;
``scripts/ensure-prometheus`` installs it on a machine that has none."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hatchery.observe.metrics import NAMES, REGISTRY

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "hatchery.json"

METRIC = re.compile(r"\bhatchery_[a-z0-9_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def find_promtool() -> str | None:
    for candidate in (os.environ.get("PROMTOOL"), shutil.which("promtool"), "/usr/bin/promtool"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def promtool() -> str:
    binary = find_promtool()
    if binary is None:
        pytest.fail(
            "promtool was not found: run scripts/ensure-prometheus "
            "(Debian: apt-get install prometheus) or set PROMTOOL"
        )
    return binary


def run(promtool: str, *args: str) -> str:
    done = subprocess.run(
        [promtool, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)} exited {done.returncode}:\n{output}"
    return output


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    found = []
    for panel in dashboard()["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return found


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target."""
    return [
        (f"panel {panel['id']} ({panel['title']}) {target['refId']}", target["expr"])
        for panel in panels()
        for target in panel.get("targets", [])
    ]


def used_names() -> dict[str, set[str]]:
    """Every hatchery_* series name in an alert or dashboard query, and where it is used."""
    texts = [(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()]
    texts += dashboard_queries()
    texts += [
        (f"variable {variable['name']}", json.dumps(variable.get("query", "")))
        for variable in dashboard()["templating"]["list"]
    ]
    used: dict[str, set[str]] = {}
    for where, text in texts:
        for name in METRIC.findall(text):
            used.setdefault(name, set()).add(where)
    return used


def family(name: str) -> str:
    for suffix in ("_total", "_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def test_alert_rules_pass_promtool(promtool: str) -> None:
    output = run(promtool, "check", "rules", "deploy/prometheus/alerts.yml")
    assert f"SUCCESS: {len(alert_rules())} rules found" in output, output


def test_alert_rules_unit_tests(promtool: str) -> None:
    output = run(promtool, "test", "rules", "deploy/prometheus/alerts.test.yml")
    assert "SUCCESS" in output, output


def test_scrape_config_passes_promtool(promtool: str) -> None:
    output = run(promtool, "check", "config", "deploy/prometheus/prometheus.yml")
    assert "SUCCESS" in output, output
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"hatchery-api", "hatchery-worker"}
    assert all(job["metrics_path"] == "/metrics" for job in jobs.values())


def test_every_alert_is_labelled_and_described() -> None:
    rules = alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]


def test_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert (board["uid"], board["schemaVersion"]) == ("hatchery", 39)
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "label_values(hatchery_provider_attempts_total, provider)" in json.dumps(
        variables["provider"]["query"]
    )
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in panels():
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & mine, f"panel {panel['title']!r} overlaps another"
        cells |= mine
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]


def test_dashboard_queries_parse(promtool: str, tmp_path: Path) -> None:
    """Each panel query, its variables replaced, is valid PromQL (as a recording rule)."""
    rules = []
    for number, (where, expr) in enumerate(dashboard_queries()):
        expr = expr.replace("$__rate_interval", "5m").replace("$provider", ".*")
        assert "$" not in expr, f"{where}: unknown variable in {expr}"
        rules.append({"record": f"dashboard:query_{number}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    output = run(promtool, "check", "rules", str(path))
    assert f"SUCCESS: {len(rules)} rules found" in output, output


def test_alerts_and_dashboard_use_only_exposed_metrics() -> None:
    used = used_names()
    assert used, "no hatchery_* metric found in the alerts or the dashboard"
    unknown = {name: sorted(where) for name, where in used.items() if family(name) not in NAMES}
    assert not unknown, f"metrics Hatchery does not expose: {unknown}"


def test_metrics_are_used_with_the_suffixes_of_their_type() -> None:
    """A counter as ``_total``, a histogram as ``_bucket``/``_sum``/``_count``, a gauge bare."""
    kinds = {metric.name: metric.type for metric in REGISTRY.collect()}
    series = {
        name + suffix for name in NAMES for suffix in SUFFIXES.get(kinds.get(name, "gauge"), ("",))
    }
    wrong = {name: sorted(where) for name, where in used_names().items() if name not in series}
    assert not wrong, f"series Hatchery does not expose (wrong suffix?): {wrong}"
