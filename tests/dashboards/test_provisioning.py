"""Grafana provisioning: the uids the dashboards use, the folder compose.yaml mounts."""

import yaml

from dashboards.datasources import POSTGRES_TYPE, POSTGRES_UID, PROMETHEUS_TYPE, PROMETHEUS_UID
from tests.dashboards.conftest import DASHBOARDS_DIR, ROOT, panels

PROVISIONING = DASHBOARDS_DIR / "provisioning"


def _datasources():
    files = sorted((PROVISIONING / "datasources").glob("*.yaml"))
    assert files
    return [d for f in files for d in yaml.safe_load(f.read_text())["datasources"]]


def test_datasources_define_the_fixed_uids():
    by_uid = {d["uid"]: d for d in _datasources()}
    assert by_uid[PROMETHEUS_UID]["type"] == PROMETHEUS_TYPE
    assert by_uid[PROMETHEUS_UID]["isDefault"] is True
    assert by_uid[POSTGRES_UID]["type"] == POSTGRES_TYPE


def test_no_secret_is_written_in_provisioning():
    for datasource in _datasources():
        for value in datasource.get("secureJsonData", {}).values():
            assert value.startswith("$"), datasource["name"]


def test_every_uid_a_dashboard_names_is_provisioned(dashboards):
    provisioned = {d["uid"] for d in _datasources()}
    for dashboard in dashboards.values():
        for panel in panels(dashboard):
            uid = panel["datasource"]["uid"]
            assert uid == "${datasource}" or uid in provisioned, panel["title"]
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "datasource":
                assert variable["current"]["value"] in provisioned


def test_dashboard_provider_reads_the_folder_compose_mounts_the_generated_json_at():
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "servewatch.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    grafana = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    assert mounts["./dashboards/generated"] == path
    assert mounts["./dashboards/provisioning/datasources"].endswith("provisioning/datasources")
    assert mounts["./dashboards/provisioning/dashboards"].endswith("provisioning/dashboards")
