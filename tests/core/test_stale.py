"""The stale-endpoint audit's comparison: what had no traffic since the cut-off, and which
releases nothing references."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.config import AppConfig
from core.stale import RegisteredVersion, ReleaseLink, Usage, stale_report

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
RECENT = NOW - timedelta(days=3)
OLD = NOW - timedelta(days=45)
LONG_AGO = NOW - timedelta(days=400)

CONFIG = AppConfig.model_validate(
    {
        "tenants": {"acme": {}, "globex": {}, "initech": {}},
        "routing": {
            "classify_ticket": {"default": {"model": "ticket_classifier", "version": "3"}},
            "classify_tickets": {"default": {"model": "ticket_classifier", "version": "latest"}},
            "predict_risk": {
                "default": {"model": "risk_scorer", "version": "1"},
                "rules": [
                    {"model": "risk_scorer", "version": "2", "region": "eu"},
                    {"model": "risk_scorer", "version": "2", "tenant": "initech"},
                ],
            },
        },
    }
)


def use(endpoint, model, version, tenant, at, region=None):
    return Usage(endpoint, model, version, tenant, region, at)


USAGE = [
    use("classify_ticket", "ticket_classifier", "3", "acme", RECENT),
    use("classify_ticket", "ticket_classifier", "2", "globex", OLD),
    use("predict_risk", "risk_scorer", "1", "acme", RECENT),
    use("predict_risk", "risk_scorer", "2", "acme", RECENT, region="eu"),
    use("predict_risk", "risk_scorer", "2", "initech", OLD, region="us"),
]
VERSIONS = [
    RegisteredVersion("ticket_classifier", "1", LONG_AGO),  # never answered
    RegisteredVersion("ticket_classifier", "2", LONG_AGO),  # answered 45 days ago
    RegisteredVersion("ticket_classifier", "3", LONG_AGO),
    RegisteredVersion("ticket_classifier", "4", RECENT),  # too new to judge
    RegisteredVersion("risk_scorer", "1", LONG_AGO),
    RegisteredVersion("risk_scorer", "2", LONG_AGO),
]


def flagged(report, kind):
    return {item.name: item for item in report.items if item.kind == kind}


def test_versions_without_traffic_since_the_cutoff_are_flagged_unless_newer():
    report = stale_report(USAGE, CONFIG, VERSIONS, [], [], now=NOW, days=30)
    versions = flagged(report, "model_version")
    assert set(versions) == {"ticket_classifier:1", "ticket_classifier:2"}
    assert versions["ticket_classifier:1"].last_seen is None
    assert versions["ticket_classifier:1"].reason == "no traffic ever recorded"
    assert versions["ticket_classifier:2"].last_seen == OLD
    assert versions["ticket_classifier:2"].reason == f"no traffic since {OLD.date()}"
    # With a longer window the version answered 45 days ago is in use.
    longer = stale_report(USAGE, CONFIG, VERSIONS, [], [], now=NOW, days=60)
    assert set(flagged(longer, "model_version")) == {"ticket_classifier:1"}


def test_routes_match_their_endpoint_model_version_and_rule_scope():
    report = stale_report(USAGE, CONFIG, VERSIONS, [], [], now=NOW, days=30)
    routes = flagged(report, "route")
    # classify_tickets (latest: any version) never had traffic; the initech rule's last
    # traffic is old; the eu rule had recent traffic in eu.
    assert set(routes) == {
        "classify_tickets -> ticket_classifier:latest",
        "predict_risk (tenant=initech) -> risk_scorer:2",
    }
    assert routes["predict_risk (tenant=initech) -> risk_scorer:2"].last_seen == OLD


def test_endpoints_and_tenants_of_the_config_without_traffic():
    report = stale_report(USAGE, CONFIG, VERSIONS, [], [], now=NOW, days=30)
    assert set(flagged(report, "endpoint")) == {"classify_tickets"}
    tenants = flagged(report, "tenant")
    assert set(tenants) == {"globex", "initech"}
    assert tenants["globex"].last_seen == OLD


def test_releases_kept_are_the_newest_its_parent_and_those_a_rollout_names():
    releases = [
        ReleaseLink(1, None, ("ticket_classifier:1",)),
        ReleaseLink(2, 1, ("ticket_classifier:2",)),
        ReleaseLink(3, 2, ("ticket_classifier:3", "risk_scorer:1")),
        ReleaseLink(4, 3, ("ticket_classifier:4", "risk_scorer:1")),
        ReleaseLink(5, 4, ("ticket_classifier:5", "risk_scorer:1")),
    ]
    report = stale_report(USAGE, CONFIG, [], releases, {"ticket_classifier:2"}, now=NOW, days=30)
    assert list(flagged(report, "release")) == ["1", "3"]
    alone = stale_report(USAGE, CONFIG, [], releases[:1], [], now=NOW, days=30)
    assert flagged(alone, "release") == {}


def test_nothing_is_flagged_when_everything_answered_recently():
    usage = [
        use(endpoint, ref.model, "2" if ref.model == "risk_scorer" else "3", tenant, RECENT, region)
        for endpoint in CONFIG.routing
        for ref in (CONFIG.routing[endpoint].default,)
        for tenant, region in (("acme", "eu"), ("globex", None), ("initech", None))
    ]
    usage.append(use("predict_risk", "risk_scorer", "1", "acme", RECENT))
    answered = {("ticket_classifier", "3"), ("risk_scorer", "1"), ("risk_scorer", "2")}
    versions = [v for v in VERSIONS if (v.model_name, v.model_version) in answered]
    report = stale_report(usage, CONFIG, versions, [ReleaseLink(1, None, ())], [], now=NOW, days=30)
    assert report.items == ()


def test_the_report_as_json_names_the_cutoff():
    report = stale_report(USAGE, CONFIG, VERSIONS, [], [], now=NOW, days=30)
    document = report.to_json()
    assert document["cutoff"] == "2026-11-02T12:00:00Z"
    assert {k: v for k, v in document["items"][0].items() if k != "reason"} == {
        "kind": "model_version",
        "name": "ticket_classifier:1",
        "last_seen": None,
    }


def test_days_below_one_are_refused():
    with pytest.raises(ValueError, match="days must be at least 1"):
        stale_report([], CONFIG, [], [], [], now=NOW, days=0)
