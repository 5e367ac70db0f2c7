"""cluster.yaml, checked offline: Ray's own schema (the ray-schema.json in the wheel, through the same
prepare_config / validate_config that `ray up` runs), plus what the schema cannot say: one GPU per worker
of the main type, token authentication on every node, no open dashboard, no secrets, a pinned install."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


@pytest.fixture(scope="module")
def prepared(raw) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(raw)  # merges the AWS defaults, as `ray up` does
    validate_config(config)  # jsonschema against ray/autoscaler/ray-schema.json; raises on any error
    return config


def test_schema_valid_aws(prepared):
    assert prepared["provider"]["type"] == "aws"
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_schema_rejects_a_broken_copy(raw):
    """The check above can fail: the same validator refuses an unknown key."""
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    broken = {**raw, "max_wrokers": 3}
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(broken))


def test_node_types_and_autoscaling_bounds(prepared):
    types = prepared["available_node_types"]
    head = types[prepared["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0 and head["max_workers"] == 0
    gpu = {name: t for name, t in types.items() if t["resources"].get("GPU", 0) >= 1}
    one = [t for t in gpu.values() if t["resources"]["GPU"] == 1]
    assert one and one[0]["node_config"]["InstanceType"] == "g5.xlarge"
    assert any(t["node_config"]["InstanceType"] == "p4d.24xlarge" and t["resources"]["GPU"] == 8 for t in gpu.values())
    for t in gpu.values():
        assert 0 <= t["min_workers"] <= t["max_workers"] <= prepared["max_workers"]


def test_token_auth_and_closed_dashboard(prepared):
    starts = prepared["head_start_ray_commands"] + prepared["worker_start_ray_commands"]
    for cmd in (c for c in starts if "ray start" in c):
        assert "RAY_AUTH_MODE=token" in cmd, cmd
    head = " ".join(prepared["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head and "0.0.0.0" not in head
    # the token travels as a file mount (a path), never as a value in the YAML
    assert "~/.ray/auth_token" in prepared["file_mounts"]
    assert "RAY_AUTH_TOKEN=" not in CLUSTER_YAML.read_text()


def test_s3_through_instance_profiles_and_no_secrets(raw):
    for t in raw["available_node_types"].values():
        assert t["node_config"]["IamInstanceProfile"]["Name"]
    text = CLUSTER_YAML.read_text()
    for pattern in (r"AKIA[0-9A-Z]{16}", r"(?i)aws_secret_access_key", r"(?i)aws_session_token",
                    r"(?i)secret\s*[:=]", r"(?i)password"):
        assert not re.search(pattern, text), pattern
    for t in raw["available_node_types"].values():
        pem = raw["auth"].get("ssh_private_key")
        assert pem is None and "KeyName" not in t["node_config"]


def test_setup_pins_hwnas_and_ray(prepared):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    version = project["version"]
    ray_pin = next(d for d in project["dependencies"] if d.startswith("ray["))
    setup = " ".join(prepared["setup_commands"])
    assert f"hwnas-{version}-py3-none-any.whl" in setup and f"== '{version}'" in setup
    assert ray_pin.split("==")[1] in setup and "ray[tune,default]==" in setup
    # every node type gets the same setup (the launcher merges setup_commands into both lists)
    assert prepared["head_setup_commands"][:len(prepared["setup_commands"])] == prepared["setup_commands"]


# ---------------------------------------------------------------------------------------------- network, IAM, pins
def test_no_ssh_open_to_the_world_by_default(raw):
    """Every node type names the user's own security group (one anchor), so Ray never creates its default
    group (which allows SSH from 0.0.0.0/0); the committed id is a placeholder, so nothing is open."""
    groups = [t["node_config"].get("SecurityGroupIds") for t in raw["available_node_types"].values()]
    assert all(groups) and all(g == groups[0] for g in groups) and groups[0] == ["sg-REPLACE-ME"]
    text = CLUSTER_YAML.read_text()
    assert "0.0.0.0/0" not in text.replace("allows SSH (22) from\n  # 0.0.0.0/0", "")
    assert "IpPermissions" not in text  # no rules added to Ray's groups either
    guide = (ROOT / "docs" / "how-to" / "cluster.md").read_text()  # the security steps the user follows
    assert "--port 22 --cidr" in guide and "sg-REPLACE-ME" in guide


def _policy(name: str) -> dict:
    import json

    doc = json.loads((ROOT / name).read_text())
    assert doc["Version"] == "2012-10-17" and doc["Statement"]
    return doc


def _listify(v) -> list:
    return v if isinstance(v, list) else [v]


def test_iam_policies_beside_the_yaml_are_least_privilege(raw):
    names = {t["node_config"]["IamInstanceProfile"]["Name"] for t in raw["available_node_types"].values()}
    assert names == {"hwnas-ray-head", "hwnas-ray-worker"}
    text = CLUSTER_YAML.read_text()
    for role in ("head", "worker"):
        assert f"cluster-iam-{role}.json" in text
        for st in _policy(f"cluster-iam-{role}.json")["Statement"]:
            actions = _listify(st["Action"])
            assert st["Effect"] == "Allow" and not any(a == "*" or a.endswith(":*") for a in actions), st
            resources = _listify(st["Resource"])
            if resources == ["*"]:  # only what AWS cannot scope to a resource: reads
                assert all(a.startswith("ec2:Describe") for a in actions), st
            for a in actions:
                if a.startswith("s3:"):  # the results prefix, nothing else in the bucket or elsewhere
                    if a == "s3:ListBucket":
                        assert resources == ["arn:aws:s3:::BUCKET"]
                        assert st["Condition"]["StringLike"]["s3:prefix"] == ["PREFIX", "PREFIX/*"]
                    else:
                        assert resources == ["arn:aws:s3:::BUCKET/PREFIX/*"], st
                if a in ("ec2:TerminateInstances", "ec2:StopInstances", "ec2:StartInstances"):
                    # only this cluster's instances (Ray tags every node with its cluster name)
                    assert st["Condition"]["StringEquals"]["ec2:ResourceTag/ray-cluster-name"] == raw["cluster_name"]
                if a == "iam:PassRole":
                    assert resources == ["arn:aws:iam::ACCOUNT_ID:role/hwnas-ray-worker"]
    worker = [a for st in _policy("cluster-iam-worker.json")["Statement"] for a in _listify(st["Action"])]
    assert all(a.startswith("s3:") for a in worker)  # workers touch only the results
    launch = [st for st in _policy("cluster-iam-head.json")["Statement"]
              if "ec2:RunInstances" in _listify(st["Action"]) and any(":instance/" in r for r in _listify(st["Resource"]))]
    assert launch and all(st["Condition"]["StringEquals"]["aws:RequestTag/ray-cluster-name"] == raw["cluster_name"]
                          for st in launch)
    trust = _policy("cluster-iam-trust.json")["Statement"][0]
    assert trust["Principal"] == {"Service": "ec2.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"


def test_cluster_installs_the_torch_local_setup_pins(prepared):
    setup_sh = (ROOT / "scripts" / "setup.sh").read_text()
    pins = dict(re.findall(r"\b(torch|torchvision)==([0-9][0-9.]*)", setup_sh))
    assert set(pins) == {"torch", "torchvision"}
    setup = " ".join(prepared["setup_commands"])
    for name, version in pins.items():
        assert f'"{name}=={version}"' in setup, name
    assert not re.search(r"torch(vision)?\s*>=", setup)
