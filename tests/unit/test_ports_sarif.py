"""`--format sarif`: a SARIF 2.1.0 log that the official schema accepts, one rule per code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from ollamamax_stack.ports.findings import Finding
from ollamamax_stack.ports.sarif import as_sarif

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "sarif" /
                     "sarif-schema-2.1.0.json").read_text())
FINDINGS = [
    Finding("error", "drift", "gateway has port 13100 in the registry, but PORT gives it 13000",
            "gateway", 13000, ".env", 2),
    Finding("error", "drift", "hub has port 13101 ...", "hub", 13000, "api-server/server.js", 5),
    Finding("warning", "unregistered", "port 4999 belongs to no service", None, 4999,
            "docs/a b.md", 1),
    Finding("error", "duplicate-port", "port 1 twice", "api", 1),
    Finding("error", "file-missing", "the file does not exist", file="/abs/gone.yml"),
]


def sarif(findings: list[Finding]) -> dict[str, Any]:
    log = json.loads(as_sarif(findings, root_uri="file:///work/repo/",
                              fallback_file="config/ports.toml"))
    jsonschema.validate(log, SCHEMA)
    assert isinstance(log, dict)
    return log


def test_the_log_is_valid_sarif_2_1_0() -> None:
    log = sarif(FINDINGS)
    assert log["version"] == "2.1.0"
    assert sarif([])["runs"][0]["results"] == []


def test_one_rule_per_code_and_results_point_at_them() -> None:
    run = sarif(FINDINGS)["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "ollamamax"
    assert [r["id"] for r in rules] == ["drift", "unregistered", "duplicate-port", "file-missing"]
    assert all(r["shortDescription"]["text"] for r in rules)
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    assert [r["level"] for r in run["results"]] == ["error", "error", "warning", "error", "error"]


def test_locations_are_relative_uris_with_a_start_line() -> None:
    run = sarif(FINDINGS)["runs"][0]
    places = [(r["locations"][0]["physicalLocation"]["artifactLocation"],
               r["locations"][0]["physicalLocation"]["region"]["startLine"])
              for r in run["results"]]
    assert places[0] == ({"uri": ".env", "uriBaseId": "%SRCROOT%"}, 2)
    assert places[1] == ({"uri": "api-server/server.js", "uriBaseId": "%SRCROOT%"}, 5)
    assert places[2][0]["uri"] == "docs/a%20b.md"
    # A registry finding has no file of its own: it points at the registry.
    assert places[3] == ({"uri": "config/ports.toml", "uriBaseId": "%SRCROOT%"}, 1)
    assert places[4] == ({"uri": "file:///abs/gone.yml"}, 1)
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": "file:///work/repo/"}}
    assert run["results"][0]["message"]["text"].startswith("gateway has port 13100")
    assert run["results"][0]["properties"] == {"service": "gateway", "port": 13000}


def test_a_column_becomes_the_regions_start_column() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Located(Finding):
        column: int | None = None

    run = sarif([Located("error", "drift", "x", "api", 13000, ".env", 2, column=6)])["runs"][0]
    region = run["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 2, "startColumn": 6}


def test_an_unknown_code_still_gets_a_rule() -> None:
    run = sarif([Finding("error", "brand-new-check", "x", file="a.env", line=3)])["runs"][0]
    assert run["tool"]["driver"]["rules"][0]["id"] == "brand-new-check"


def test_the_schema_check_would_catch_a_bad_log() -> None:
    log = json.loads(as_sarif(FINDINGS[:1], root_uri="file:///r/"))
    log["runs"][0]["results"][0]["level"] = "fatal"
    try:
        jsonschema.validate(log, SCHEMA)
    except jsonschema.ValidationError as exc:
        assert "fatal" in str(exc.message)
    else:
        raise AssertionError("the schema accepted level 'fatal'")
