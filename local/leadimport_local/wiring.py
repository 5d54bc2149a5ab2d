"""The local runner's wiring, read from template.yaml so that local runs and the stack cannot drift.

`load_wiring()` reads the SAM template (its parameter defaults, Globals and resources) and returns
the names and numbers the local runner needs to build the same pipeline AWS runs: the bucket and
its prefixes, the chunk queue and its DLQ with the same maxReceiveCount and visibility timeout, the
worker's batch size and timeout, the chunk size and the upload limit.

Resources are found by their role, not by logical id: the worker is the function with an SQS
event source (a SAM `Type: SQS` event or a plain AWS::Lambda::EventSourceMapping), the chunk queue
is that source's queue, the DLQ is the queue's redrive target, and the upload bucket is the bucket
of the S3 events.

Names (the rule):
* A name parameter with a non-empty default (UploadBucketName, ChunkQueueName) is used as is.
* When the default is empty, the deployed stack derives the name from the stack (for example
  `${AWS::StackName}-uploads-${AWS::AccountId}-${AWS::Region}`). The wiring evaluates that very
  expression with fixed local pseudo parameters: stack name `leadimport-local`, account
  `123456789012` (moto's default account) and region `us-east-1`. So locally the bucket is
  `leadimport-local-uploads-123456789012-us-east-1` and the queues `leadimport-local-chunks` and
  `leadimport-local-chunks-dlq`: stable across runs, and following any change to the template.

Only the local runner and the tests import this module (it needs PyYAML, a dev dependency); no
Lambda handler does.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs (types-PyYAML is not a dev dependency)

LOCAL_PSEUDO_PARAMETERS: dict[str, str] = {
    "AWS::StackName": "leadimport-local",
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}


class WiringError(ValueError):
    """template.yaml lacks something the local runner needs, or uses what the wiring cannot resolve."""


@dataclass(frozen=True)
class LocalWiring:
    bucket_name: str
    upload_prefix: str
    drop_prefix: str
    queue_name: str
    dlq_name: str
    max_receive_count: int
    worker_batch_size: int
    worker_timeout: int
    visibility_timeout: int
    chunk_rows: int
    max_upload_bytes: int

    def settings_environment(self) -> dict[str, str]:
        """The variables the stack sets from these values (Globals, and MAX_RECEIVE_COUNT on the worker)."""
        return {
            "UPLOAD_BUCKET": self.bucket_name,
            "UPLOAD_PREFIX": self.upload_prefix,
            "DROP_PREFIX": self.drop_prefix,
            "CHUNK_ROWS": str(self.chunk_rows),
            "MAX_UPLOAD_BYTES": str(self.max_upload_bytes),
            "MAX_RECEIVE_COUNT": str(self.max_receive_count),
        }


def default_template_path() -> Path:
    # local/leadimport_local/wiring.py -> parents[2] is the repository root
    return Path(__file__).resolve().parents[2] / "template.yaml"


# ----------------------------------------------------------------------------- YAML with CFN tags


# libyaml's safe loader where PyYAML has it (its wheels do): the pure-Python one took ~0.3 s of every CLI
# command's start to read template.yaml.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CloudFormationLoader(_SafeLoader):  # type: ignore[misc, valid-type]
    """A safe loader that turns CloudFormation short tags into their long form (`!Ref X` -> {"Ref": X})."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {f"Fn::{tag_suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        template = yaml.load(f, Loader=CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(template, dict) or "Resources" not in template:
        raise WiringError(f"{path} is not a CloudFormation template")
    return template


# ----------------------------------------------------------------------------- a small resolver


class _Resolver:
    """Evaluates the intrinsics the wiring meets, with parameter defaults and local pseudo parameters."""

    def __init__(self, template: Mapping[str, Any], pseudo: Mapping[str, str]):
        self.parameters = template.get("Parameters") or {}
        self.conditions = template.get("Conditions") or {}
        self.pseudo = pseudo

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        param = self.parameters.get(name)
        if param is None:
            raise WiringError(
                f"Ref {name}: not a parameter (a resource's runtime value is not known locally)"
            )
        if "Default" not in param:
            raise WiringError(f"parameter {name} has no default")
        default = param["Default"]
        if str(param.get("Type", "String")).startswith(("CommaDelimitedList", "List<")):
            return [s.strip() for s in str(default).split(",")] if default != "" else []
        return default

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            raise WiringError(f"unknown condition {name}")
        return bool(self.resolve_condition(self.conditions[name]))

    def resolve_condition(self, expr: Any) -> bool:
        if isinstance(expr, dict) and len(expr) == 1:
            ((key, arg),) = expr.items()
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve_condition(arg[0])
            if key == "Fn::And":
                return all(self.resolve_condition(x) for x in arg)
            if key == "Fn::Or":
                return any(self.resolve_condition(x) for x in arg)
        raise WiringError(f"cannot evaluate condition {expr!r}")

    def resolve(self, expr: Any) -> Any:
        if isinstance(expr, list):
            return [self.resolve(x) for x in expr]
        if not isinstance(expr, dict):
            return expr
        if len(expr) == 1:
            ((key, arg),) = expr.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                sep, items = arg
                return str(sep).join(str(x) for x in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key.startswith("Fn::") or key == "Condition":
                raise WiringError(f"{key} cannot be resolved locally: {expr!r}")
        return {k: self.resolve(v) for k, v in expr.items()}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        values = {k: self.resolve(v) for k, v in variables.items()}
        out, i = [], 0
        while True:
            start = text.find("${", i)
            if start < 0:
                out.append(text[i:])
                return "".join(out)
            end = text.find("}", start)
            if end < 0:
                raise WiringError(f"unterminated ${{ in {text!r}")
            out.append(text[i:start])
            name = text[start + 2 : end]
            if name.startswith("!"):  # ${!Literal}
                out.append("${" + name[1:] + "}")
            elif name in values:
                out.append(str(values[name]))
            elif "." in name:
                raise WiringError(f"${{{name}}} (a resource attribute) cannot be resolved locally")
            else:
                out.append(str(self.ref(name)))
            i = end + 1


# ----------------------------------------------------------------------------- the wiring


def _functions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: res
        for name, res in template["Resources"].items()
        if isinstance(res, dict) and res.get("Type") == "AWS::Serverless::Function"
    }


def _events_of_type(function: Mapping[str, Any], event_type: str) -> list[dict[str, Any]]:
    events = (function.get("Properties") or {}).get("Events") or {}
    return [e.get("Properties") or {} for e in events.values() if e.get("Type") == event_type]


def _logical_id(expr: Any, what: str) -> str:
    """The resource named by `!Ref X` or `!GetAtt X.Arn`."""
    if isinstance(expr, dict):
        if "Ref" in expr:
            return str(expr["Ref"])
        if "Fn::GetAtt" in expr:
            return str(expr["Fn::GetAtt"][0])
    raise WiringError(f"{what} must be a !Ref or !GetAtt of a resource in the template, got {expr!r}")


def sqs_event_sources(template: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(function logical id, source) for every SQS event source, SAM event or plain mapping.

    A source is normalised to the keys of a SAM SQS event: Queue, BatchSize, FunctionResponseTypes,
    MaximumBatchingWindowInSeconds, ScalingConfig (those present).
    """
    keys = ("BatchSize", "FunctionResponseTypes", "MaximumBatchingWindowInSeconds", "ScalingConfig")
    found: list[tuple[str, dict[str, Any]]] = []
    for name, fn in _functions(template).items():
        found += [(name, dict(e)) for e in _events_of_type(fn, "SQS")]
    for res in template["Resources"].values():
        if not isinstance(res, dict) or res.get("Type") != "AWS::Lambda::EventSourceMapping":
            continue
        props = res.get("Properties") or {}
        source = props.get("EventSourceArn")
        if not (isinstance(source, dict) and "Fn::GetAtt" in source):
            continue
        queue_id = _logical_id(source, "EventSourceArn")
        if (template["Resources"].get(queue_id) or {}).get("Type") != "AWS::SQS::Queue":
            continue
        normalised = {"Queue": source} | {k: props[k] for k in keys if k in props}
        found.append(
            (_logical_id(props.get("FunctionName"), "an event source mapping's FunctionName"), normalised)
        )
    return found


def _function_property(template: Mapping[str, Any], function: Mapping[str, Any], key: str) -> Any:
    props = function.get("Properties") or {}
    if key in props:
        return props[key]
    globals_ = ((template.get("Globals") or {}).get("Function")) or {}
    if key in globals_:
        return globals_[key]
    raise WiringError(f"no {key} on the function nor in Globals")


def _global_env(template: Mapping[str, Any], name: str) -> Any:
    env = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get(
        "Variables"
    ) or {}
    if name not in env:
        raise WiringError(f"Globals.Function.Environment.Variables has no {name}")
    return env[name]


def _int(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise WiringError(f"{what} is not an integer: {value!r}") from exc


def load_wiring(template_path: Path | None = None) -> LocalWiring:
    path = Path(template_path) if template_path is not None else default_template_path()
    if not path.is_file():
        raise WiringError(f"template not found: {path}")
    stat = path.stat()
    # Parsing the template costs ~0.1 s and every local run and test asks for it: read it once per version.
    return _wiring_of(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _wiring_of(path_text: str, mtime_ns: int, size: int) -> LocalWiring:
    path = Path(path_text)
    template = load_template(path)
    resources = template["Resources"]
    r = _Resolver(template, LOCAL_PSEUDO_PARAMETERS)

    workers = sqs_event_sources(template)
    if len(workers) != 1:
        raise WiringError(f"expected exactly one SQS event source (the worker's), found {len(workers)}")
    worker_id, sqs_event = workers[0]
    worker = resources[worker_id]

    queue_id = _logical_id(sqs_event.get("Queue"), "the worker's SQS event Queue")
    queue_props = resources[queue_id].get("Properties") or {}
    redrive = queue_props.get("RedrivePolicy")
    if not redrive:
        raise WiringError(f"the chunk queue {queue_id} has no RedrivePolicy")
    dlq_id = _logical_id(redrive.get("deadLetterTargetArn"), "RedrivePolicy.deadLetterTargetArn")
    dlq_props = resources[dlq_id].get("Properties") or {}

    buckets = {
        _logical_id(e.get("Bucket"), "an S3 event's Bucket")
        for f in _functions(template).values()
        for e in _events_of_type(f, "S3")
    }
    if len(buckets) != 1:
        raise WiringError(f"expected the S3 events on exactly one bucket, found {sorted(buckets)}")
    bucket_props = resources[buckets.pop()].get("Properties") or {}

    def name_of(props: Mapping[str, Any], key: str, what: str) -> str:
        if key not in props:
            raise WiringError(f"{what} has no {key}: give it an explicit (derived) name")
        return str(r.resolve(props[key]))

    return LocalWiring(
        bucket_name=name_of(bucket_props, "BucketName", "the upload bucket"),
        upload_prefix=str(r.resolve(_global_env(template, "UPLOAD_PREFIX"))),
        drop_prefix=str(r.resolve(_global_env(template, "DROP_PREFIX"))),
        queue_name=name_of(queue_props, "QueueName", "the chunk queue"),
        dlq_name=name_of(dlq_props, "QueueName", "the DLQ"),
        max_receive_count=_int(r.resolve(redrive.get("maxReceiveCount")), "maxReceiveCount"),
        worker_batch_size=_int(r.resolve(sqs_event.get("BatchSize", 10)), "the worker's BatchSize"),
        worker_timeout=_int(
            r.resolve(_function_property(template, worker, "Timeout")), "the worker's Timeout"
        ),
        visibility_timeout=_int(r.resolve(queue_props.get("VisibilityTimeout", 30)), "VisibilityTimeout"),
        chunk_rows=_int(r.resolve(_global_env(template, "CHUNK_ROWS")), "CHUNK_ROWS"),
        max_upload_bytes=_int(r.resolve(_global_env(template, "MAX_UPLOAD_BYTES")), "MAX_UPLOAD_BYTES"),
    )
