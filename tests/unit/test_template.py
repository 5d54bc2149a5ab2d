"""template.yaml says what AWS will run: these tests read it (no AWS, no SAM CLI) and check the
settings that decide whether chunks are lost, retried forever, or run with too much privilege.

cfn-lint (`sam validate --lint`, in infra/sam-check.sh) does not flag an unknown runtime, an
out-of-range SQS batch size, or the bucket <-> function circular dependency: those are tested here.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from leadimport_local.wiring import CloudFormationLoader

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SUPPORTED_RUNTIMES = {"python3.11", "python3.12", "python3.13"}
PSEUDO = {
    "AWS::StackName",
    "AWS::AccountId",
    "AWS::Region",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::NoValue",
    "AWS::StackId",
    "AWS::NotificationARNs",
}


# ----------------------------------------------------------------------------- loading


# The template is read with the same loader the local runner uses (local/wiring.py).
CfnLoader = CloudFormationLoader


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load()


# ----------------------------------------------------------------------------- helpers


def resources(t: dict[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in t["Resources"].items() if v.get("Type") == rtype}


def functions(t: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources(t, "AWS::Serverless::Function")


def globals_fn(t: dict[str, Any]) -> dict[str, Any]:
    return (t.get("Globals") or {}).get("Function") or {}


def fn_prop(t: dict[str, Any], fn: dict[str, Any], key: str, default: Any = None) -> Any:
    """A function property as SAM sees it: the function's own, else Globals'."""
    props = fn.get("Properties") or {}
    return props.get(key, globals_fn(t).get(key, default))


def value(t: dict[str, Any], expr: Any) -> Any:
    """A literal, or a !Ref to a parameter resolved to its default."""
    if isinstance(expr, dict) and set(expr) == {"Ref"}:
        param = t["Parameters"][expr["Ref"]]
        assert "Default" in param, f"parameter {expr['Ref']} needs a default for this check"
        return param["Default"]
    return expr


def param_of(t: dict[str, Any], expr: Any) -> dict[str, Any] | None:
    if isinstance(expr, dict) and set(expr) == {"Ref"} and expr["Ref"] in t.get("Parameters", {}):
        return t["Parameters"][expr["Ref"]]
    return None


def target(expr: Any) -> str:
    """Logical id named by !Ref X / !GetAtt X.Attr."""
    if isinstance(expr, dict) and "Ref" in expr:
        return expr["Ref"]
    if isinstance(expr, dict) and "Fn::GetAtt" in expr:
        return expr["Fn::GetAtt"][0]
    raise AssertionError(f"expected !Ref or !GetAtt, got {expr!r}")


def events(fn: dict[str, Any], etype: str) -> list[dict[str, Any]]:
    evs = (fn.get("Properties") or {}).get("Events") or {}
    return [e.get("Properties") or {} for e in evs.values() if e.get("Type") == etype]


def sqs_sources(t: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(function id, source) for SAM SQS events and plain event source mappings on an SQS queue,
    a mapping's properties renamed like a SAM event's (EventSourceArn -> Queue)."""
    found = [(name, ev) for name, fn in functions(t).items() for ev in events(fn, "SQS")]
    for esm in resources(t, "AWS::Lambda::EventSourceMapping").values():
        props = dict(esm["Properties"])
        queue = props.pop("EventSourceArn")
        if t["Resources"][target(queue)]["Type"] == "AWS::SQS::Queue":
            found.append((target(props.pop("FunctionName")), {"Queue": queue, **props}))
    return found


def worker(t: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    found = sqs_sources(t)
    assert len(found) == 1, "exactly one function (the worker) should consume the chunk queue"
    name, source = found[0]
    return name, t["Resources"][name], source


def splitter(t: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    found = [(name, fn) for name, fn in functions(t).items() if events(fn, "S3")]
    assert len(found) == 1, "exactly one function (the splitter) should receive S3 events"
    return found[0]


def chunk_queue_ids(t: dict[str, Any]) -> tuple[str, str]:
    _, _, ev = worker(t)
    queue = target(ev["Queue"])
    dlq = target(t["Resources"][queue]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
    return queue, dlq


def all_policy_statements(t: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(owner, statement) for every statement of every function's Policies and every IAM role/policy."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name, fn in functions(t).items():
        for i, policy in enumerate(fn_prop(t, fn, "Policies", []) or []):
            assert isinstance(policy, dict) and "Statement" in policy, (
                f"{name}.Policies[{i}] must be an inline policy document with explicit statements "
                f"(managed policies and SAM policy templates cannot be checked here): {policy!r}"
            )
            out += [(f"{name}.Policies[{i}]", s) for s in policy["Statement"]]
    for name, role in resources(t, "AWS::IAM::Role").items():
        assert not role["Properties"].get("ManagedPolicyArns"), f"{name}: use inline statements"
        for p in role["Properties"].get("Policies", []):
            out += [(f"{name}.{p['PolicyName']}", s) for s in p["PolicyDocument"]["Statement"]]
    for rtype in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for name, pol in resources(t, rtype).items():
            out += [(name, s) for s in pol["Properties"]["PolicyDocument"]["Statement"]]
    return out


def strings_in(expr: Any) -> list[str]:
    """Every literal string an IAM Resource/Action expression can produce (all !If branches, !Sub texts)."""
    if isinstance(expr, str):
        return [expr]
    if isinstance(expr, list):
        return [s for x in expr for s in strings_in(x)]
    if isinstance(expr, dict):
        if "Fn::Sub" in expr:
            arg = expr["Fn::Sub"]
            return [arg] if isinstance(arg, str) else [arg[0]]
        if "Fn::If" in expr:
            return strings_in(expr["Fn::If"][1]) + strings_in(expr["Fn::If"][2])
        return []  # Ref / GetAtt of one resource or parameter: a single ARN
    return []


# ----------------------------------------------------------------------------- the queue and the worker


def test_worker_sqs_event_reports_batch_item_failures(template):
    _, _, ev = worker(template)
    assert "ReportBatchItemFailures" in ev.get("FunctionResponseTypes", [])


def test_chunk_queue_redrives_to_a_dlq(template):
    queue, dlq = chunk_queue_ids(template)
    assert dlq != queue
    assert template["Resources"][dlq]["Type"] == "AWS::SQS::Queue"
    redrive = template["Resources"][queue]["Properties"]["RedrivePolicy"]
    assert int(value(template, redrive["maxReceiveCount"])) >= 1
    param = param_of(template, redrive["maxReceiveCount"])
    if param is not None:
        assert int(param.get("MinValue", 0)) >= 1, "a deployer must not be able to set maxReceiveCount 0"


def test_queues_are_encrypted_and_keep_messages_long_enough(template):
    queue, dlq = chunk_queue_ids(template)
    q, d = template["Resources"][queue]["Properties"], template["Resources"][dlq]["Properties"]
    assert q.get("SqsManagedSseEnabled") is True and d.get("SqsManagedSseEnabled") is True
    assert int(q["MessageRetentionPeriod"]) == 4 * 24 * 3600
    assert int(d["MessageRetentionPeriod"]) == 14 * 24 * 3600


def test_visibility_timeout_is_at_least_six_worker_timeouts(template):
    _, fn, ev = worker(template)
    queue, _ = chunk_queue_ids(template)
    timeout = int(value(template, fn_prop(template, fn, "Timeout", 3)))
    visibility = int(value(template, template["Resources"][queue]["Properties"].get("VisibilityTimeout", 30)))
    window = int(value(template, ev.get("MaximumBatchingWindowInSeconds", 0)))
    assert visibility >= 6 * timeout + window, f"VisibilityTimeout {visibility} < 6 x {timeout} + {window}"


def test_worker_batch_size_is_within_sqs_limits(template):
    _, _, ev = worker(template)
    has_window = "MaximumBatchingWindowInSeconds" in ev
    limit = 10_000 if has_window else 10
    batch = int(value(template, ev.get("BatchSize", 10)))
    assert 1 <= batch <= limit
    param = param_of(template, ev.get("BatchSize"))
    if param is not None:  # what a deployer may choose must be valid too
        assert 1 <= int(param["MinValue"]) and int(param["MaxValue"]) <= limit


def test_no_sam_event_that_brings_a_star_managed_policy(template):
    # SAM attaches AWSLambdaSQSQueueExecutionRole (sqs:* on Resource "*") to a function with a
    # `Type: SQS` event (likewise for Kinesis/DynamoDB): the worker uses a plain mapping instead.
    for name, fn in functions(template).items():
        for kind in ("SQS", "Kinesis", "DynamoDB", "MSK"):
            assert not events(fn, kind), f"{name}: a {kind} event adds a managed policy on Resource '*'"
    worker_id, _, source = worker(template)
    statements = [st for owner, st in all_policy_statements(template) if owner.startswith(worker_id + ".")]
    granted = {a for st in statements if st["Resource"] == source["Queue"] for a in strings_in(st["Action"])}
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= granted


def test_worker_concurrency_is_bounded(template):
    _, _, ev = worker(template)
    concurrency = int(value(template, ev["ScalingConfig"]["MaximumConcurrency"]))
    assert 2 <= concurrency <= 1000


# ----------------------------------------------------------------------------- functions


def test_core_layer_is_attached_to_every_function(template):
    layers = resources(template, "AWS::Serverless::LayerVersion")
    core = [
        name
        for name, layer in layers.items()
        if layer["Properties"]["ContentUri"].rstrip("/") == "layers/core"
    ]
    assert len(core) == 1, "one AWS::Serverless::LayerVersion with ContentUri layers/core"
    global_layers = [target(x) for x in globals_fn(template).get("Layers", [])]
    for name, fn in functions(template).items():
        own = [target(x) for x in (fn.get("Properties") or {}).get("Layers", [])]
        assert core[0] in global_layers + own, f"{name} lacks the core layer"


def test_runtime_is_supported_and_matches_the_layer_build(template):
    layer = next(iter(resources(template, "AWS::Serverless::LayerVersion").values()))
    for name, fn in functions(template).items():
        runtime = fn_prop(template, fn, "Runtime")
        assert runtime in SUPPORTED_RUNTIMES, f"{name}: runtime {runtime!r}"
        # the layer's wheels are built for one Python: it must be the functions' one
        assert layer["Metadata"]["BuildMethod"] == runtime
        assert runtime in layer["Properties"]["CompatibleRuntimes"]
        arch = fn_prop(template, fn, "Architectures", ["x86_64"])
        assert arch == [layer["Metadata"].get("BuildArchitecture", "x86_64")], (
            f"{name}: layer built for another CPU"
        )


@pytest.mark.parametrize("logical_id", sorted(functions(load())))
def test_handler_points_at_a_defined_function(template, logical_id):
    fn = template["Resources"][logical_id]
    code_uri = fn_prop(template, fn, "CodeUri")
    module, _, attr = fn_prop(template, fn, "Handler").rpartition(".")
    path = ROOT / code_uri / (module.replace(".", "/") + ".py")
    assert path.is_file(), f"{logical_id}: {path.relative_to(ROOT)} does not exist"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    defined = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):
            defined |= {a.asname or a.name for a in node.names}
    assert attr in defined, f"{logical_id}: {path.relative_to(ROOT)} defines no {attr!r}"


def test_every_function_gets_the_app_settings(template):
    env = globals_fn(template)["Environment"]["Variables"]
    for var in (
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
        "DATABASE_SECRET_ARN",
        "DATABASE_HOST",
        "REDIS_URL",
        "UPLOAD_BUCKET",
        "UPLOAD_PREFIX",
        "DROP_PREFIX",
        "CHUNK_QUEUE_URL",
        "SPLITTER_FUNCTION_NAME",
        "CHUNK_ROWS",
        "MAX_UPLOAD_BYTES",
    ):
        assert var in env, var
    assert env["UPLOAD_PREFIX"] == "uploads/" and env["DROP_PREFIX"] == "drop/"
    assert int(value(template, env["CHUNK_ROWS"])) == 2000
    assert int(value(template, env["MAX_UPLOAD_BYTES"])) == 2 * 1024**3
    for name, fn in functions(template).items():
        assert fn_prop(template, fn, "Tracing") == "Active", name
        assert fn_prop(template, fn, "VpcConfig"), f"{name} must run in the VPC"


def test_api_routes_and_auth(template):
    api_fns = [(n, f) for n, f in functions(template).items() if events(f, "HttpApi")]
    assert len(api_fns) == 1
    name, fn = api_fns[0]
    routes = {(e["Method"].upper(), e["Path"]): e for e in events(fn, "HttpApi")}
    expected = {
        ("POST", "/imports"),
        ("GET", "/imports"),
        ("GET", "/imports/{id}"),
        ("PATCH", "/imports/{id}"),
        ("GET", "/imports/{id}/preview"),
        ("POST", "/imports/{id}/start"),
        ("POST", "/imports/{id}/cancel"),
        ("POST", "/imports/{id}/undo"),
        ("GET", "/imports/{id}/errors"),
        ("GET", "/imports/{id}/errors.csv"),
        ("GET", "/openapi.json"),
    }
    assert set(routes) == expected
    for key, ev in routes.items():
        authorizer = (ev.get("Auth") or {}).get("Authorizer")
        assert (authorizer == "NONE") == (key == ("GET", "/openapi.json")), key
    api = template["Resources"][target(next(iter(routes.values()))["ApiId"])]
    assert api["Type"] == "AWS::Serverless::HttpApi"
    auth = api["Properties"]["Auth"]
    jwt = auth["Authorizers"][auth["DefaultAuthorizer"]]["JwtConfiguration"]
    assert param_of(template, jwt["issuer"]) and param_of(template, jwt["audience"])
    assert "COMPANY_CLAIM" in fn["Properties"]["Environment"]["Variables"], name


# ----------------------------------------------------------------------------- least privilege


def grants_whole_service(arn: str) -> bool:
    """arn:...:*, arn:...:function:*, arn:...:table/* and the like (after ${...} are blanked out)."""
    parts = re.sub(r"\$\{[^}]*\}", "X", arn).split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return False
    return parts[5] == "*" or re.fullmatch(r"[A-Za-z-]+[:/]\*", parts[5]) is not None


def test_no_policy_grants_every_resource(template):
    statements = all_policy_statements(template)
    assert statements, "no policy statements found"
    for owner, st in statements:
        for res in strings_in(st.get("Resource", [])):
            assert res != "*", f"{owner} {st.get('Sid', '')}: Resource '*'"
            assert not grants_whole_service(res), f"{owner} {st.get('Sid', '')}: whole-service wildcard {res}"
        assert "NotResource" not in st, owner
        for action in strings_in(st.get("Action", [])):
            assert action != "*" and not action.endswith(":*"), f"{owner}: wildcard action {action}"


def test_database_secret_is_readable_only_by_arn(template):
    for owner, st in all_policy_statements(template):
        actions = strings_in(st.get("Action", []))
        if any(a.startswith("secretsmanager:") for a in actions):
            assert actions == ["secretsmanager:GetSecretValue"], owner
            assert not strings_in(st["Resource"]), f"{owner}: the secret's ARN, not a pattern"


# ----------------------------------------------------------------------------- bucket


def upload_bucket(t: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    _, fn = splitter(t)
    ids = {target(e["Bucket"]) for e in events(fn, "S3")}
    assert len(ids) == 1
    bucket_id = ids.pop()
    return bucket_id, t["Resources"][bucket_id]


def test_splitter_is_notified_for_uploads_and_drops(template):
    _, fn = splitter(template)
    prefixes = set()
    for ev in events(fn, "S3"):
        assert "s3:ObjectCreated:*" in ([ev["Events"]] if isinstance(ev["Events"], str) else ev["Events"])
        rules = ev["Filter"]["S3Key"]["Rules"]
        prefixes |= {r["Value"] for r in rules if r["Name"].lower() == "prefix"}
    assert prefixes == {"uploads/", "drop/"}
    env = globals_fn(template)["Environment"]["Variables"]
    assert {env["UPLOAD_PREFIX"], env["DROP_PREFIX"]} == prefixes


def test_bucket_blocks_public_access_is_encrypted_and_versioned(template):
    bucket_id, bucket = upload_bucket(template)
    props = bucket["Properties"]
    block = props["PublicAccessBlockConfiguration"]
    assert all(
        block.get(k) is True
        for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    )
    rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rules[0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["VersioningConfiguration"]["Status"] == "Enabled"  # the splitter keys on the version


def test_bucket_denies_plain_http(template):
    bucket_id, _ = upload_bucket(template)
    policies = [
        p
        for p in resources(template, "AWS::S3::BucketPolicy").values()
        if target(p["Properties"]["Bucket"]) == bucket_id
    ]
    assert len(policies) == 1
    statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] in ("false", False)
        for s in statements
    )


def test_bucket_cors_and_lifecycle(template):
    _, bucket = upload_bucket(template)
    props = bucket["Properties"]
    (cors,) = props["CorsConfiguration"]["CorsRules"]
    assert set(cors["AllowedMethods"]) == {"POST", "PUT"}
    origins = param_of(template, cors["AllowedOrigins"])
    assert origins is not None and "Default" not in origins, (
        "allowed origins: a required parameter, never '*'"
    )
    assert not re.match(origins["AllowedPattern"], "*")
    rules = props["LifecycleConfiguration"]["Rules"]
    expiring = {r.get("Prefix") for r in rules if "ExpirationInDays" in r}
    assert expiring == {"uploads/", "drop/", "exports/", "rejected/"}
    assert any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 1 for r in rules)


# ----------------------------------------------------------------------------- circular dependencies


def _refs(expr: Any, known: set[str]) -> set[str]:
    """Logical ids of resources an expression refers to (Ref, GetAtt, ${X} in Sub), every !If branch."""
    found: set[str] = set()
    if isinstance(expr, list):
        for x in expr:
            found |= _refs(x, known)
    elif isinstance(expr, dict):
        for k, v in expr.items():
            if k == "Ref" and v in known:
                found.add(v)
            elif k == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else v.split(".")[0])
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else v[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)} & known
                if not isinstance(v, str):
                    found |= _refs(v[1], known)
            else:
                found |= _refs(v, known)
    return found


def dependency_graph(t: dict[str, Any]) -> dict[str, set[str]]:
    """Resource -> resources it needs, with what SAM generates folded in.

    A function stands for itself and its role (Globals and Policies included); each event stands
    for what SAM makes of it (permission, event source mapping, rule). An S3 event also puts the
    function's ARN in the bucket's NotificationConfiguration and makes the bucket depend on the
    permission: that is the edge that closes the classic bucket <-> function loop.
    """
    known = set(t["Resources"])
    graph: dict[str, set[str]] = {}
    for name, res in t["Resources"].items():
        body = copy.deepcopy(res.get("Properties") or {})
        events_ = body.pop("Events", {}) if res["Type"] == "AWS::Serverless::Function" else {}
        deps = _refs(body, known) | set(_as_list(res.get("DependsOn")))
        if res["Type"] == "AWS::Serverless::Function":
            deps |= _refs(globals_fn(t), known)
        graph.setdefault(name, set()).update(deps - {name})
        for ev_name, ev in events_.items():
            node = f"{name}.{ev_name}"
            graph[node] = _refs(ev.get("Properties") or {}, known) | {name}
            if ev["Type"] == "S3":  # SAM's permission names the account, not the bucket
                bucket = target(ev["Properties"]["Bucket"])
                graph[node] = {name}
                graph.setdefault(bucket, set()).update({name, node})
            if ev["Type"] in ("HttpApi", "Api"):
                api = ev["Properties"].get("ApiId") or ev["Properties"].get("RestApiId")
                if api is not None:
                    graph.setdefault(target(api), set()).add(name)  # the API's integration names the function
    return graph


def _as_list(x: Any) -> list[str]:
    return [] if x is None else [x] if isinstance(x, str) else list(x)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_circular_dependency(template):
    assert find_cycle(dependency_graph(template)) is None


def test_the_cycle_check_catches_a_function_that_refs_the_bucket(template):
    broken = copy.deepcopy(template)
    bucket_id, _ = upload_bucket(broken)
    broken["Globals"]["Function"]["Environment"]["Variables"]["UPLOAD_BUCKET"] = {"Ref": bucket_id}
    cycle = find_cycle(dependency_graph(broken))
    assert cycle is not None and bucket_id in cycle


# ----------------------------------------------------------------------------- alarms


def test_alarms_watch_the_dlq_worker_errors_and_queue_age(template):
    queue, dlq = chunk_queue_ids(template)
    worker_id, _, _ = worker(template)
    alarms = resources(template, "AWS::CloudWatch::Alarm").values()

    def watching(namespace: str, metric: str, dim_target: str) -> list[dict[str, Any]]:
        return [
            a["Properties"]
            for a in alarms
            if a["Properties"]["Namespace"] == namespace
            and a["Properties"]["MetricName"] == metric
            and any(target(d["Value"]) == dim_target for d in a["Properties"]["Dimensions"])
        ]

    (dlq_alarm,) = watching("AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq)
    assert dlq_alarm["ComparisonOperator"] == "GreaterThanThreshold" and float(dlq_alarm["Threshold"]) == 0
    (errors,) = watching("AWS/Lambda", "Errors", worker_id)
    assert errors["ComparisonOperator"] == "GreaterThanThreshold" and float(errors["Threshold"]) == 0
    (age,) = watching("AWS/SQS", "ApproximateAgeOfOldestMessage", queue)
    assert int(value(template, age["Threshold"])) == 900


# ----------------------------------------------------------------------------- layer dependencies


def test_layer_requirements_match_the_project_pins():
    layer = {
        line.strip()
        for line in (ROOT / "layers/core/requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    project = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    assert not any(p.lower().startswith(("boto3", "botocore")) for p in layer), (
        "the Lambda runtime ships boto3"
    )
    assert layer == {p for p in project if not p.lower().startswith(("boto3", "botocore"))}


def test_cfn_lint_passes():
    """The same lint as `sam validate --lint` (skipped where cfn-lint is not installed)."""
    api = pytest.importorskip("cfnlint.api")
    matches = api.lint(TEMPLATE.read_text(), config=api.ManualArgs(regions=["us-east-1"]))
    assert [str(m) for m in matches] == []


def test_a_drop_writer_may_write_one_company_prefix_only(template):
    """The splitter trusts the company id in a drop key: the optional grant names one company's prefix."""
    (policy,) = resources(template, "AWS::S3::BucketPolicy").values()
    grants = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if isinstance(s, dict) and "Fn::If" in s]
    (grant,) = grants
    condition, statement, otherwise = grant["Fn::If"]
    assert template["Conditions"][condition] and otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Effect"] == "Allow" and statement["Action"] == "s3:PutObject"
    assert statement["Principal"] == {"AWS": {"Ref": "DropWriterPrincipalArn"}}
    assert statement["Resource"] == {"Fn::Sub": "${UploadBucket.Arn}/drop/${DropWriterCompanyId}/*"}
    assert not re.match(template["Parameters"]["DropWriterCompanyId"]["AllowedPattern"], "0012")


def test_the_splitter_may_move_a_rejected_drop_and_delete_an_oversize_upload(template):
    _, fn = splitter(template)
    statements = fn["Properties"]["Policies"][0]["Statement"]
    by_action = {a: s for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert "/rejected/*" in json.dumps(by_action["s3:PutObject"]["Resource"])
    assert "/drop/*" in json.dumps(by_action["s3:DeleteObject"]["Resource"])
    assert "/uploads/*" in json.dumps(by_action["s3:DeleteObject"]["Resource"])  # an oversize upload: deleted
    assert "exports" not in json.dumps(by_action["s3:DeleteObject"]["Resource"])
