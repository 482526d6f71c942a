"""The deployment tier's harness: the synthesized stack, "deployed" on 127.0.0.1.

``DeploymentEnvironment`` (once per test session) synthesizes the CDK app, builds the bare
Lambda runtime, stages the code and layer assets read-only and starts the backends: moto in
server mode (S3, SQS, DynamoDB, Secrets Manager), the OpenSearch stub and the fake Upstage.

``Deployed`` (one per ``deploy()``) creates in moto the resources the template declares
(queues with their redrive policy, the registry table, the secret with its generated
placeholder, the buckets with their notification configuration), resolves each Python
function's environment against them, and drives the functions as AWS would:

- ``http(method, path, ...)``: an API Gateway REST proxy event for the method and resource the
  template declares, delivered to the function its integration URI names (API key and body
  model checked as the gateway does; function errors become the gateway's 502);
- ``put_object``/``delete_object`` then ``deliver_notifications()``: the messages S3 (moto)
  sent to the queue, delivered in batches of the event source mapping's ``BatchSize`` to the
  function it names, with partial batch responses honoured;
- ``custom_resource(logical_id, "Create"|"Update"|"Delete")``: the event CDK's provider
  framework passes to the user ``onEvent`` function named in its environment; with an
  ``isComplete`` function, the framework's waiter is played too: ``isComplete`` at once, then
  again (without waiting the query interval: the harness plays the time) up to the waiter state
  machine's ``MaxAttempts``, read from the template.

Two values are not taken verbatim from the template, because they name services outside the
test: the Upstage base URL (the real one, replaced by the fake's) and the scheme of the domain
endpoint (``https://`` + the domain endpoint; the stub speaks plain HTTP, so it becomes
``http://``). AWS SDK calls reach moto through ``AWS_ENDPOINT_URL``, which the managed
runtime does not set.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import string
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import boto3
from moto.server import ThreadedMotoServer

from tests.deployment.lambda_process import FunctionConfig, FunctionError, FunctionProcess, Invocation
from tests.deployment.runtime_env import BareRuntime, bare_runtime
from tests.deployment.template import CloudAssembly, Resolver, SynthJob, Unresolved
from tests.deployment.web_adapter import StreamedResponse, WebAdapterProcess, is_web_adapter_layer
from tests.fakes import events
from tests.fakes.opensearch_stub import OpenSearchStub
from tests.fakes.upstage_server import FakeUpstage

Variant = Literal["domain", "serverless", "prod"]
VARIANTS: dict[Variant, dict[str, str]] = {
    "domain": {},  # cdk.json's defaults: stage dev, managed domain
    "serverless": {"vector_store": "serverless"},
    # SnapStart (targets are "live" aliases), CORS (MOCK OPTIONS methods), another region.
    "prod": {"stage": "prod", "alarm_email": "ops@example.com", "cors_origins": "https://app.example.com",
             "account": "123456789012", "region": "ap-northeast-2"},
}
REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's default account
UPSTAGE_KEY = "up_deploytier_6c1f0a9e2b7d4c3a8e5f1b90"
REAL_UPSTAGE_URL = "https://api.upstage.ai/v1"
API_KEY_VALUE = events.API_KEY
GATEWAY_TIMEOUT_MS = 29_000  # REST API default integration timeout
GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024  # REST API payload quota
LAMBDA_MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024  # synchronous invocation request and response
PROXY = "AWS_PROXY"


# --------------------------------------------------------------------------- session environment

class DeploymentEnvironment:
    """Synths, bare runtime, staged assets and backends shared by every deployment of a session."""

    def __init__(self, workdir: Path, variants: tuple[Variant, ...] = ("domain", "serverless", "prod")) -> None:
        self.workdir = workdir
        self._synths = {v: SynthJob(v, VARIANTS[v]) for v in variants}
        self._assemblies: dict[Variant, CloudAssembly] = {}
        self._lock = threading.Lock()
        self.runtime: BareRuntime = bare_runtime()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        self.opensearch = OpenSearchStub("domain").start()
        self.upstage = FakeUpstage(api_key=UPSTAGE_KEY).start()
        self.current: Deployed | None = None

    def assembly(self, variant: Variant) -> CloudAssembly:
        with self._lock:
            if variant not in self._assemblies:
                if variant not in self._synths:
                    self._synths[variant] = SynthJob(variant, VARIANTS[variant])
                self._assemblies[variant] = self._synths[variant].result()
            return self._assemblies[variant]

    def staged(self, source: Path) -> Path:
        """The asset folder, copied once and made read-only."""
        from tests.deployment.lambda_process import stage_read_only

        return stage_read_only(source, self.workdir / "staged" / source.name)

    def client(self, service: str, region: str) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=self.moto_url,  # type: ignore[call-overload]
                            aws_access_key_id="test", aws_secret_access_key="test")

    def reset_backends(self, variant: Variant) -> None:
        import urllib.request

        request = urllib.request.Request(f"{self.moto_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass
        self.opensearch.reset(self._stub_mode(variant))
        self.upstage.reset()
        self.upstage.latency = 0.0

    def _stub_mode(self, variant: Variant) -> Literal["domain", "serverless", "serverless-classic"]:
        """The stub behaves as the target the template's functions are configured for."""
        # Functions that never reach OpenSearch (the key authorizer) set no target.
        targets = {env["OPENSEARCH_TARGET"] for env in self.python_function_envs(variant)
                   if "OPENSEARCH_TARGET" in env} or {"domain"}
        if len(targets) != 1 or not targets <= {"domain", "serverless", "serverless-classic"}:
            raise AssertionError(f"the functions disagree on OPENSEARCH_TARGET: {targets}")
        target = targets.pop()
        return "serverless-classic" if target == "serverless-classic" else (
            "serverless" if target == "serverless" else "domain")

    def python_function_envs(self, variant: Variant) -> Iterator[Mapping[str, Any]]:
        for resource in self.assembly(variant).of_type("AWS::Lambda::Function").values():
            props = resource["Properties"]
            if str(props.get("Runtime", "")).startswith("python"):
                yield props.get("Environment", {}).get("Variables", {})

    def deploy(self, variant: Variant = "domain") -> Deployed:
        """A fresh deployment. The backends are shared and reset: the previous ``Deployed`` is
        closed and refuses further use (one live deployment at a time)."""
        if self.current is not None:
            self.current.close()
        self.reset_backends(variant)
        self.current = Deployed(self, variant)
        return self.current

    def close(self) -> None:
        for job in self._synths.values():
            job.cancel()
        self.upstage.stop()
        self.opensearch.stop()
        self.moto.stop()


# --------------------------------------------------------------------------- results

@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    function: str | None = None
    invocation: Invocation | None = None
    gateway: bool = False
    """True when API Gateway answered by itself (no route, no key, invalid body, 502, 504)."""

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        source = "gateway" if self.gateway else self.function
        return f"<HttpResponse {self.status} from {source}: {self.text[:500]}>"


@dataclass
class Batch:
    function: str
    message_ids: list[str]
    failed_ids: list[str]
    invocation: Invocation


@dataclass
class CustomResourceResult:
    physical_id: str
    data: dict[str, Any]
    invocation: Invocation
    """The last invocation: ``isComplete``'s when the provider has one, else ``onEvent``'s."""
    polls: int = 0
    """``isComplete`` calls (0 without one)."""
    waited_seconds: float = 0.0
    """What the framework's waiter would have waited between them (played, not slept)."""


class CustomResourceTimeout(AssertionError):
    """The framework's waiter ran out of attempts: CloudFormation hears "Operation timed out"."""


@dataclass(frozen=True)
class Route:
    method: str
    resource_path: str
    resource_id: str
    function: str | None
    integration_type: str
    api_key_required: bool
    body_schema: Mapping[str, Any] | None
    timeout_ms: int
    authorizer: str | None = None
    """Logical id of the method's ``AWS::ApiGateway::Authorizer`` (CUSTOM authorization)."""
    streamed: bool = False
    """``ResponseTransferMode: STREAM``: the gateway passes the body on as it comes."""

    def match(self, path: str) -> dict[str, str] | None:
        pattern_parts = [p for p in self.resource_path.split("/") if p]
        parts = [p for p in path.split("/") if p]
        params: dict[str, str] = {}
        for i, pattern in enumerate(pattern_parts):
            if pattern.startswith("{") and pattern.endswith("+}"):
                if i >= len(parts):
                    return None
                params[pattern[1:-2]] = "/".join(parts[i:])
                return params
            if i >= len(parts):
                return None
            if pattern.startswith("{") and pattern.endswith("}"):
                params[pattern[1:-1]] = parts[i]
            elif pattern != parts[i]:
                return None
        return params if len(parts) == len(pattern_parts) else None


# --------------------------------------------------------------------------- a deployment

class Deployed:
    def __init__(self, environment: DeploymentEnvironment, variant: Variant) -> None:
        self.environment = environment
        self.variant = variant
        self.assembly = environment.assembly(variant)
        self.template = self.assembly.template
        self.stack_name = self.assembly.stack_name
        self.region = _region(self.assembly)
        self.upstage = environment.upstage
        self.opensearch = environment.opensearch
        self.workdir = environment.workdir / f"deploy-{variant}-{uuid.uuid4().hex[:8]}"
        self.workdir.mkdir(parents=True)
        self.s3 = environment.client("s3", self.region)
        self.sqs = environment.client("sqs", self.region)
        self.secretsmanager = environment.client("secretsmanager", self.region)
        self.dynamodb = environment.client("dynamodb", self.region)
        self.physical: dict[str, dict[str, Any]] = {}
        self.resolver = Resolver(
            refs={"AWS::AccountId": ACCOUNT, "AWS::Region": self.region, "AWS::Partition": "aws",
                  "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": self.stack_name,
                  "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{ACCOUNT}:stack/{self.stack_name}/"
                                  f"{uuid.uuid4()}"},
            fallback=self._physical_value,
        )
        self._provision()
        self.functions: dict[str, FunctionProcess | WebAdapterProcess] = {}
        self.web_adapted: set[str] = set()
        """Functions that attach the Lambda Web Adapter layer: the harness plays the adapter."""
        for logical_id, config in self._function_configs().items():
            kind = WebAdapterProcess if logical_id in self.web_adapted else FunctionProcess
            self.functions[logical_id] = kind(
                config, environment.runtime, scratch=self.workdir / "tmp" / logical_id,
                logs=self.workdir, extra_env={"AWS_ENDPOINT_URL": environment.moto_url})
        self.authorizers = self._authorizers()
        self.api_key_source = str(next(iter(self.assembly.of_type("AWS::ApiGateway::RestApi").values()), {})
                                  .get("Properties", {}).get("ApiKeySourceType", "HEADER"))
        self.routes = self._routes()
        self._custom_physical_ids: dict[str, str] = {}

    # -- template → physical resources ------------------------------------------------------

    def _physical_value(self, logical_id: str, attribute: str | None) -> Any:
        resource = self.template["Resources"].get(logical_id)
        if resource is None:
            return None
        kind = resource["Type"]
        known = self.physical.get(logical_id)
        if known is not None:
            return known.get(attribute or "Ref")
        arn_prefix = f"arn:aws:lambda:{self.region}:{ACCOUNT}"
        if kind == "AWS::Lambda::Function":
            name = resource["Properties"].get("FunctionName") or f"{self.stack_name}-{logical_id}"
            return {None: name, "Arn": f"{arn_prefix}:function:{name}"}.get(attribute)
        if kind == "AWS::Lambda::Alias" and attribute is None:
            function = self.resolver(resource["Properties"]["FunctionName"])
            function_arn = function if str(function).startswith("arn:") else f"{arn_prefix}:function:{function}"
            return f"{function_arn}:{resource['Properties']['Name']}"
        if kind == "AWS::Lambda::LayerVersion" and attribute is None:
            return f"{arn_prefix}:layer:{logical_id}:1"
        stub_host = self.opensearch.url.removeprefix("http://")
        if kind == "AWS::OpenSearchService::Domain":
            name = resource["Properties"].get("DomainName", logical_id.lower())
            arn = f"arn:aws:es:{self.region}:{ACCOUNT}:domain/{name}"
            return {"DomainEndpoint": stub_host, "Arn": arn, "DomainArn": arn, None: name}.get(attribute)
        if kind == "AWS::OpenSearchServerless::Collection":
            arn = f"arn:aws:aoss:{self.region}:{ACCOUNT}:collection/{logical_id.lower()}"
            return {"CollectionEndpoint": self.opensearch.url, "Arn": arn, "Id": logical_id.lower(),
                    None: logical_id.lower()}.get(attribute)
        return None

    def _provision(self) -> None:
        """Create, in dependency order, the resources moto can hold."""
        creators = {
            "AWS::SQS::Queue": self._create_queue,
            "AWS::SecretsManager::Secret": self._create_secret,
            "AWS::DynamoDB::Table": self._create_table,
            "AWS::S3::Bucket": self._create_bucket,
        }
        pending = {k: r for k, r in self.template["Resources"].items() if r["Type"] in creators}
        while pending:
            progressed = False
            for logical_id, resource in list(pending.items()):
                try:
                    self.physical[logical_id] = creators[resource["Type"]](logical_id, resource["Properties"])
                except Unresolved:
                    continue
                del pending[logical_id]
                progressed = True
            if not progressed:
                raise Unresolved(f"cannot create {sorted(pending)}: unresolvable references")

    def _create_queue(self, logical_id: str, props: Mapping[str, Any]) -> dict[str, Any]:
        attributes: dict[str, str] = {}
        for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds"):
            if key in props:
                attributes[key] = str(props[key])
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(self.resolver(props["RedrivePolicy"]))
        name = self.resolver(props.get("QueueName")) or f"{self.stack_name}-{logical_id}"
        url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url,
                "VisibilityTimeout": int(props.get("VisibilityTimeout", 30))}

    def _create_secret(self, logical_id: str, props: Mapping[str, Any]) -> dict[str, Any]:
        name = self.resolver(props.get("Name")) or f"{logical_id}-{uuid.uuid4().hex[:12]}"
        value = props.get("SecretString")
        generate = props.get("GenerateSecretString")
        if value is None and generate is not None:
            alphabet = string.ascii_letters + string.digits
            generated = "".join(secrets.choice(alphabet) for _ in range(int(generate.get("PasswordLength", 32))))
            if "SecretStringTemplate" in generate:
                document = json.loads(generate["SecretStringTemplate"])
                document[generate["GenerateStringKey"]] = generated
                value = json.dumps(document)
            else:
                value = generated
        arn = self.secretsmanager.create_secret(Name=name, SecretString=self.resolver(value or ""))["ARN"]
        return {"Ref": arn, "Id": arn, "Name": name}

    def _create_table(self, logical_id: str, props: Mapping[str, Any]) -> dict[str, Any]:
        name = self.resolver(props.get("TableName")) or f"{self.stack_name}-{logical_id}-{uuid.uuid4().hex[:8]}"
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if kwargs["BillingMode"] == "PROVISIONED":
            kwargs["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in props:
                kwargs[key] = props[key]
        description = self.dynamodb.create_table(**kwargs)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            self.dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        return {"Ref": name, "Arn": description["TableArn"]}

    def _create_bucket(self, logical_id: str, props: Mapping[str, Any]) -> dict[str, Any]:
        name = self.resolver(props.get("BucketName")) or f"{self.stack_name}-{logical_id}".lower()[:63]
        location = {} if self.region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": self.region}}
        self.s3.create_bucket(Bucket=name, **location)
        if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            self.s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        notifications = props.get("NotificationConfiguration")
        if notifications:
            unsupported = set(notifications) - {"QueueConfigurations"}
            if unsupported:
                raise NotImplementedError(f"bucket notifications {sorted(unsupported)} are not emulated")
            queues = []
            for entry in notifications["QueueConfigurations"]:
                config: dict[str, Any] = {"QueueArn": self.resolver(entry["Queue"]), "Events": [entry["Event"]]}
                rules = entry.get("Filter", {}).get("S3Key", {}).get("Rules")
                if rules:
                    config["Filter"] = {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]}
                                                                for r in rules]}}
                queues.append(config)
            self.s3.put_bucket_notification_configuration(
                Bucket=name, NotificationConfiguration={"QueueConfigurations": queues})
        return {"Ref": name, "Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"}

    def _function_configs(self) -> dict[str, FunctionConfig]:
        configs = {}
        for logical_id, resource in self.assembly.of_type("AWS::Lambda::Function").items():
            props = resource["Properties"]
            runtime = str(props.get("Runtime", ""))
            if not runtime.startswith("python"):
                continue
            code = self.environment.staged(self.assembly.asset_dir(props["Code"]))
            layers = []
            for layer_ref in props.get("Layers", []):
                layer_id = layer_ref["Ref"] if isinstance(layer_ref, dict) and "Ref" in layer_ref else None
                if layer_id is None:
                    if is_web_adapter_layer(str(self.resolver(layer_ref))):
                        self.web_adapted.add(logical_id)  # played by the harness (web_adapter.py)
                        continue
                    raise NotImplementedError(f"{logical_id}: only layers of this stack and the Lambda Web "
                                              f"Adapter's can be run ({layer_ref})")
                layer = self.template["Resources"][layer_id]["Properties"]
                layers.append(self.environment.staged(self.assembly.asset_dir(layer["Content"])))
            variables = self.resolver(props.get("Environment", {}).get("Variables", {}))
            configs[logical_id] = FunctionConfig(
                logical_id=logical_id,
                name=str(self.resolver.ref(logical_id)),
                code_name=_code_name(code),
                handler=props["Handler"],
                runtime=runtime,
                memory_mb=int(props.get("MemorySize", 128)),
                timeout_seconds=int(props.get("Timeout", 3)),
                environment=self._external_endpoints({k: str(v) for k, v in variables.items()}),
                code_dir=code,
                layer_dirs=tuple(layers),
                tracing_active=props.get("TracingConfig", {}).get("Mode") == "Active",
                region=self.region,
                account=ACCOUNT,
            )
        return configs

    def _external_endpoints(self, env: dict[str, str]) -> dict[str, str]:
        stub_host = self.opensearch.url.removeprefix("http://")
        for key, value in env.items():
            if value == REAL_UPSTAGE_URL:
                env[key] = self.upstage.base_url
            elif value == f"https://{stub_host}":
                env[key] = self.opensearch.url
        return env

    # -- functions --------------------------------------------------------------------------

    def function_for(self, reference: object) -> str | None:
        """The logical id of the Python function a name, ARN, ``name:qualifier`` or alias ARN
        designates (how CloudFormation lets a reference name a function), or None."""
        text = str(reference)
        name = text.split(":")[6] if text.startswith("arn:") and ":function:" in text else text.split(":")[0]
        return next((f for f in self.functions if str(self.resolver.ref(f)) == name), None)

    def _check_live(self) -> None:
        if self.environment.current is not self:
            raise RuntimeError("this deployment was replaced by a newer deploy(): its resources are gone")

    def function(self, name: str) -> FunctionProcess | WebAdapterProcess:
        """A function by logical id or by code name (``chat`` = ``functions/chat``)."""
        self._check_live()
        if name in self.functions:
            return self.functions[name]
        matches = [f for f in self.functions.values() if f.config.code_name == name]
        if len(matches) != 1:
            raise KeyError(f"no single function for {name!r}: {sorted(self.functions)}")
        return matches[0]

    def invoke(self, function: str, event: Mapping[str, Any], *, strict: bool = True) -> Invocation:
        """Invoke with ``event`` (for a web-adapted function: a REST proxy event, forwarded as HTTP)."""
        process = self.function(function)
        invocation = process.invoke(event)
        if strict and invocation.error is not None:
            raise FunctionError(process.config.logical_id, invocation.error, process.log_tail())
        return invocation

    def close(self) -> None:
        for process in self.functions.values():
            process.stop()

    # -- API Gateway ------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        resources = self.template["Resources"]
        paths: dict[str, str] = {}

        def path_of(resource_id: str) -> str:
            if resource_id in paths:
                return paths[resource_id]
            props = resources[resource_id]["Properties"]
            parent = props["ParentId"]
            root = isinstance(parent, dict) and "Fn::GetAtt" in parent  # RestApi.RootResourceId
            base = "" if root else path_of(parent["Ref"])
            paths[resource_id] = f"{base}/{props['PathPart']}"
            return paths[resource_id]

        validators = {k: r["Properties"] for k, r in resources.items()
                      if r["Type"] == "AWS::ApiGateway::RequestValidator"}
        models = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::ApiGateway::Model"}
        routes = []
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::ApiGateway::Method":
                continue
            props = resource["Properties"]
            resource_ref = props["ResourceId"]
            path = "/" if isinstance(resource_ref, dict) and "Fn::GetAtt" in resource_ref else path_of(resource_ref["Ref"])
            integration = props.get("Integration", {})
            function = None
            if integration.get("Type") == PROXY:
                uri = str(self.resolver(integration["Uri"]))
                match = re.search(r"/functions/(.+)/(?:response-streaming-)?invocations$", uri)
                function = self.function_for(match.group(1)) if match else None
                if function is None:
                    raise AssertionError(f"{logical_id}: integration {uri} targets no Python function of the stack")
            schema = None
            validator = validators.get(props.get("RequestValidatorId", {}).get("Ref", ""), {})
            model_ref = (props.get("RequestModels") or {}).get("application/json")
            if validator.get("ValidateRequestBody") and isinstance(model_ref, dict):
                schema = models[model_ref["Ref"]]["Schema"]
            authorizer = None
            if props.get("AuthorizationType") == "CUSTOM":
                authorizer = str(props["AuthorizerId"]["Ref"])
                if authorizer not in self.authorizers:
                    raise AssertionError(f"{logical_id}: authorizer {authorizer} is not a Lambda authorizer")
            elif props.get("AuthorizationType", "NONE") != "NONE":
                raise NotImplementedError(f"{logical_id}: {props['AuthorizationType']} authorization")
            routes.append(Route(
                method=props["HttpMethod"], resource_path=path, resource_id=logical_id, function=function,
                integration_type=str(integration.get("Type")), api_key_required=bool(props.get("ApiKeyRequired")),
                body_schema=schema, timeout_ms=int(integration.get("TimeoutInMillis", GATEWAY_TIMEOUT_MS)),
                authorizer=authorizer, streamed=integration.get("ResponseTransferMode") == "STREAM",
            ))
        return routes

    def _authorizers(self) -> dict[str, dict[str, Any]]:
        """Lambda authorizers of the RestApi: the function their URI names, type, caching."""
        found = {}
        for logical_id, resource in self.assembly.of_type("AWS::ApiGateway::Authorizer").items():
            props = resource["Properties"]
            uri = str(self.resolver(props["AuthorizerUri"]))
            match = re.search(r"/functions/(.+)/invocations$", uri)
            function = self.function_for(match.group(1)) if match else None
            if function is None:
                raise AssertionError(f"{logical_id}: authorizer URI {uri} targets no Python function of the stack")
            if props["Type"] != "REQUEST":
                raise NotImplementedError(f"{logical_id}: {props['Type']} authorizers are not emulated")
            found[logical_id] = {"function": function, "ttl": int(props.get("AuthorizerResultTtlInSeconds", 300)),
                                 "identity_source": str(props.get("IdentitySource") or "")}
        return found

    @property
    def rest_api_id(self) -> str:
        return str(events.API_ID)

    @property
    def stage_name(self) -> str:
        stages = [r["Properties"]["StageName"] for r in self.template["Resources"].values()
                  if r["Type"] == "AWS::ApiGateway::Stage"]
        return str(stages[0]) if stages else "prod"

    def route_for(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        raw_path = path.split("?", 1)[0]
        candidates = []
        for route in self.routes:
            if route.method not in (method.upper(), "ANY"):
                continue
            params = route.match(raw_path)
            if params is not None:
                literal = sum(1 for p in route.resource_path.split("/") if p and not p.startswith("{"))
                candidates.append((literal, route, params))
        if not candidates:
            return None
        _, route, params = max(candidates, key=lambda c: c[0])
        return route, params

    def _through_gateway(self, method: str, path: str, body: Any, headers: Mapping[str, str] | None,
                         query: Mapping[str, str | list[str]] | None, api_key: str | None,
                         ) -> HttpResponse | tuple[Route, dict[str, Any]]:
        """What API Gateway does before the integration: route, authorizer, API key, body model,
        payload quotas. Either its own answer or the route and the proxy event for the function."""
        self._check_live()
        found = self.route_for(method, path)
        if found is None:
            return _gateway(403, {"message": "Missing Authentication Token"})
        route, params = found
        event = events.api_event(method, path, body=body, headers=headers, query=query, api_key=api_key,
                                 stage=self.stage_name)
        event["resource"] = route.resource_path
        event["pathParameters"] = params or None
        event["requestContext"]["resourcePath"] = route.resource_path
        event["requestContext"]["path"] = f"/{self.stage_name}{path}"
        key = api_key
        if route.authorizer is not None:
            outcome = self._authorize(route, event)
            if isinstance(outcome, HttpResponse):
                return outcome
            key = outcome.get("usageIdentifierKey") if self.api_key_source == "AUTHORIZER" else api_key
            event["requestContext"]["authorizer"] = {"principalId": outcome.get("principalId"),
                                                     **(outcome.get("context") or {})}
        elif self.api_key_source == "AUTHORIZER":
            key = None  # the key may only come from an authorizer
        event["requestContext"]["identity"]["apiKey"] = key if route.api_key_required else None
        if route.api_key_required and key != API_KEY_VALUE:
            return _gateway(403, {"message": "Forbidden"})
        if route.body_schema is not None and method.upper() in {"POST", "PUT", "PATCH"}:
            problem = _schema_problem(route.body_schema, body)
            if problem:
                return _gateway(400, {"message": "Invalid request body"})
        if route.function is None:
            raise NotImplementedError(f"{route.method} {route.resource_path}: {route.integration_type} "
                                      "integrations are not emulated")
        raw_body = event.get("body") or ""
        if len(raw_body.encode("utf-8")) > GATEWAY_MAX_BODY_BYTES:
            return _gateway(413, {"message": "Request Too Long"})
        if len(json.dumps(event).encode("utf-8")) > LAMBDA_MAX_SYNC_PAYLOAD_BYTES:
            # Lambda refuses the invocation (RequestEntityTooLarge): the code never runs.
            return _gateway(502, {"message": "Internal server error"}, route.function)
        return route, event

    def _authorize(self, route: Route, event: Mapping[str, Any]) -> HttpResponse | dict[str, Any]:
        """A REQUEST authorizer's event, its function invoked, its answer applied as API Gateway
        does: ``Unauthorized`` → 401, any other error or a malformed answer → 500, a policy that
        does not allow ``execute-api:Invoke`` on the method ARN → 403. (TTL 0 in this stack: no
        cache to emulate.)"""
        assert route.authorizer is not None
        authorizer = self.authorizers[route.authorizer]
        if authorizer["ttl"] != 0:
            raise NotImplementedError("authorizer result caching is not emulated")
        method_arn = (f"arn:aws:execute-api:{self.region}:{ACCOUNT}:{self.rest_api_id}/{self.stage_name}/"
                      f"{route.method}{event['path'].split('?', 1)[0]}")
        request = {"type": "REQUEST", "methodArn": method_arn,
                   **{k: event.get(k) for k in ("resource", "path", "httpMethod", "headers", "multiValueHeaders",
                                                "queryStringParameters", "multiValueQueryStringParameters",
                                                "pathParameters", "stageVariables", "requestContext")}}
        process = self.function(authorizer["function"])
        invocation = process.invoke(request)
        if invocation.error is not None:
            if invocation.error.get("errorMessage") == "Unauthorized":
                return _gateway(401, {"message": "Unauthorized"}, authorizer["function"], invocation)
            return _gateway(500, {"message": None}, authorizer["function"], invocation)
        answer = invocation.payload
        if not isinstance(answer, dict) or "policyDocument" not in answer or "principalId" not in answer:
            return _gateway(500, {"message": None}, authorizer["function"], invocation)
        effect = _policy_effect(answer["policyDocument"], method_arn)
        if effect != "Allow":
            message = ("User is not authorized to access this resource with an explicit deny" if effect == "Deny"
                       else "User is not authorized to access this resource")
            return _gateway(403, {"Message": message}, authorizer["function"], invocation)
        return answer

    def http(self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None, *,
             query: Mapping[str, str | list[str]] | None = None, api_key: str | None = API_KEY_VALUE,
             strict: bool = True) -> HttpResponse:
        """A request as API Gateway would hand it to the function (``path`` as the client sent it,
        percent-encoding kept), the response buffered. ``api_key`` goes in ``x-api-key`` (None: no
        such header). ``strict``: a function error raises instead of becoming a 502."""
        outcome = self._through_gateway(method, path, body, headers, query, api_key)
        if isinstance(outcome, HttpResponse):
            return outcome
        route, event = outcome
        assert route.function is not None
        process = self.function(route.function)
        if isinstance(process, WebAdapterProcess):
            streamed = process.forward(event)
            invocation = streamed.invocation
            assert invocation is not None
            if invocation.error is not None:
                if strict:
                    raise FunctionError(route.function, invocation.error, process.log_tail())
                status = 504 if invocation.error.get("errorType") == "Sandbox.Timedout" else 502
                return _gateway(status, {"message": "Internal server error"}, route.function, invocation)
            return HttpResponse(streamed.status, streamed.headers, streamed.body, route.function, invocation)
        invocation = process.invoke(event)
        if invocation.error is not None:
            if strict:
                raise FunctionError(route.function, invocation.error, process.log_tail())
            if invocation.error.get("errorType") == "Sandbox.Timedout" or invocation.duration_ms > route.timeout_ms:
                return _gateway(504, {"message": "Endpoint request timed out"}, route.function, invocation)
            return _gateway(502, {"message": "Internal server error"}, route.function, invocation)
        if invocation.duration_ms > route.timeout_ms:
            return _gateway(504, {"message": "Endpoint request timed out"}, route.function, invocation)
        payload = invocation.payload
        too_large = len(json.dumps(payload).encode("utf-8")) > LAMBDA_MAX_SYNC_PAYLOAD_BYTES
        if too_large or not isinstance(payload, dict) or "statusCode" not in payload:
            return _gateway(502, {"message": "Internal server error"}, route.function, invocation)
        headers_out = {k.lower(): str(v) for k, v in (payload.get("headers") or {}).items()}
        for key, values in (payload.get("multiValueHeaders") or {}).items():
            headers_out[key.lower()] = ", ".join(str(v) for v in values)
        raw = payload.get("body") or ""
        data = base64.b64decode(raw) if payload.get("isBase64Encoded") else str(raw).encode("utf-8")
        return HttpResponse(int(payload["statusCode"]), headers_out, data, route.function, invocation)

    def stream(self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None, *,
               query: Mapping[str, str | list[str]] | None = None,
               api_key: str | None = API_KEY_VALUE) -> StreamedResponse | HttpResponse:
        """Like ``http`` for a streamed route (``ResponseTransferMode: STREAM``) of a web-adapted
        function: the body's chunks with their arrival times. The gateway's own answers
        (403, 400, ...) come back as ``HttpResponse``."""
        outcome = self._through_gateway(method, path, body, headers, query, api_key)
        if isinstance(outcome, HttpResponse):
            return outcome
        route, event = outcome
        assert route.function is not None
        process = self.function(route.function)
        if not route.streamed or not isinstance(process, WebAdapterProcess):
            raise AssertionError(f"{route.method} {route.resource_path} is not a streamed route of a web-adapted "
                                 "function")
        response = process.forward(event)
        assert response.invocation is not None
        if response.invocation.error is not None:
            raise FunctionError(route.function, response.invocation.error, process.log_tail())
        return response

    # -- S3 → SQS → indexer -----------------------------------------------------------------

    @property
    def documents_bucket(self) -> str:
        names = [p["Ref"] for k, p in self.physical.items()
                 if self.template["Resources"][k]["Type"] == "AWS::S3::Bucket"
                 and self.template["Resources"][k]["Properties"].get("NotificationConfiguration")]
        if len(names) != 1:
            raise AssertionError(f"expected one bucket with notifications, found {names}")
        return str(names[0])

    def put_object(self, key: str, body: bytes | str, **kwargs: Any) -> None:
        self._check_live()
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.s3.put_object(Bucket=self.documents_bucket, Key=key, Body=data, **kwargs)

    def delete_object(self, key: str) -> None:
        """Delete as a client does (no version id). On the versioned documents bucket S3 creates a
        delete marker and notifies ``ObjectRemoved:DeleteMarkerCreated``; moto (5.x) creates the
        marker but sends nothing, so the harness sends what S3 would, to the configured queues."""
        bucket = self.documents_bucket
        depths = {arn: self._depth(arn) for arn in self._notified_queues(bucket, "ObjectRemoved:DeleteMarkerCreated", key)}
        response = self.s3.delete_object(Bucket=bucket, Key=key)
        if not response.get("DeleteMarker"):
            return
        for arn, depth in depths.items():
            if self._depth(arn) == depth:
                record = events.s3_record("ObjectRemoved:DeleteMarkerCreated", key, bucket=bucket,
                                          version_id=response.get("VersionId"))
                record["awsRegion"] = self.region
                self.sqs.send_message(QueueUrl=self._queue_by_arn(arn)["QueueUrl"],
                                      MessageBody=json.dumps({"Records": [record]}))

    def _notified_queues(self, bucket: str, event_name: str, key: str) -> list[str]:
        configuration = self.s3.get_bucket_notification_configuration(Bucket=bucket)
        queues = []
        for entry in configuration.get("QueueConfigurations", []):
            if not any(_event_matches(pattern, event_name) for pattern in entry["Events"]):
                continue
            rules = {r["Name"].lower(): r["Value"] for r in entry.get("Filter", {}).get("Key", {}).get("FilterRules", [])}
            if key.startswith(rules.get("prefix", "")) and key.endswith(rules.get("suffix", "")):
                queues.append(str(entry["QueueArn"]))
        return queues

    def _queue_by_arn(self, arn: str) -> Mapping[str, Any]:
        return next(p for p in self.physical.values() if p.get("Arn") == arn and "QueueUrl" in p)

    def _depth(self, arn: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self._queue_by_arn(arn)["QueueUrl"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def event_source_mappings(self) -> list[dict[str, Any]]:
        mappings = []
        for resource in self.template["Resources"].values():
            if resource["Type"] != "AWS::Lambda::EventSourceMapping":
                continue
            props = resource["Properties"]
            queue_arn = self.resolver(props["EventSourceArn"])
            queue = next((p for p in self.physical.values() if p.get("Arn") == queue_arn), None)
            if queue is None:
                raise AssertionError(f"event source {queue_arn} is not a queue of the stack")
            function = self.function_for(self.resolver(props["FunctionName"]))
            if function is None:
                raise AssertionError(f"event source mapping to {props['FunctionName']}: no Python function")
            mappings.append({"queue": queue, "function": function, "batch_size": int(props.get("BatchSize", 10)),
                             "partial": "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])})
        return mappings

    def deliver_notifications(self, *, max_batches: int = 50, strict: bool = True) -> list[Batch]:
        """Poll each event source queue as Lambda does until it is empty; failed messages stay
        invisible for the queue's visibility timeout (redelivered later by SQS, not here).
        ``strict``: a function error raises; otherwise the whole batch counts as failed."""
        self._check_live()
        batches: list[Batch] = []
        for mapping in self.event_source_mappings():
            queue = mapping["queue"]
            for _ in range(max_batches):
                messages = self._receive(queue, mapping["batch_size"])
                if not messages:
                    break
                event = {"Records": [self._sqs_record(queue, m) for m in messages]}
                process = self.function(mapping["function"])
                invocation = process.invoke(event)
                ids = [m["MessageId"] for m in messages]
                failed: list[str] = []
                if invocation.error is not None:
                    if strict:
                        raise FunctionError(mapping["function"], invocation.error, process.log_tail())
                    failed = list(ids)
                elif mapping["partial"] and isinstance(invocation.payload, dict):
                    failed = [str(f["itemIdentifier"]) for f in invocation.payload.get("batchItemFailures", [])]
                for message in messages:
                    if message["MessageId"] not in failed:
                        self.sqs.delete_message(QueueUrl=queue["QueueUrl"], ReceiptHandle=message["ReceiptHandle"])
                batches.append(Batch(mapping["function"], ids, failed, invocation))
        return batches

    def _receive(self, queue: Mapping[str, Any], batch_size: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < batch_size:
            got = self.sqs.receive_message(
                QueueUrl=queue["QueueUrl"], MaxNumberOfMessages=min(10, batch_size - len(messages)),
                WaitTimeSeconds=0, VisibilityTimeout=queue["VisibilityTimeout"],
                AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
            if not got:
                break
            messages += got
        return messages

    def _sqs_record(self, queue: Mapping[str, Any], message: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": {k: {"stringValue": v.get("StringValue"), "binaryValue": v.get("BinaryValue"),
                                      "stringListValues": [], "binaryListValues": [], "dataType": v["DataType"]}
                                  for k, v in message.get("MessageAttributes", {}).items()},
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": queue["Arn"],
            "awsRegion": self.region,
        }

    # -- Secrets Manager ----------------------------------------------------------------------

    @property
    def secret_arn(self) -> str:
        arns = [p["Ref"] for k, p in self.physical.items()
                if self.template["Resources"][k]["Type"] == "AWS::SecretsManager::Secret"]
        if len(arns) != 1:
            raise AssertionError(f"expected one secret, found {arns}")
        return str(arns[0])

    def set_secret(self, value: str = UPSTAGE_KEY) -> None:
        """What the operator does after deploying (``put-secret-value``)."""
        self._check_live()
        self.secretsmanager.put_secret_value(SecretId=self.secret_arn, SecretString=value)

    def secret_value(self) -> str:
        return str(self.secretsmanager.get_secret_value(SecretId=self.secret_arn)["SecretString"])

    # -- CloudFormation custom resources ------------------------------------------------------

    def custom_resources(self) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.template["Resources"].items()
                if r["Type"].startswith("Custom::") or r["Type"] == "AWS::CloudFormation::CustomResource"}

    def custom_resource(self, logical_id: str, request_type: Literal["Create", "Update", "Delete"], *,
                        old_properties: Mapping[str, Any] | None = None) -> CustomResourceResult:
        """Invoke the user ``onEvent`` function of CDK's provider framework as it would."""
        resource = self.template["Resources"][logical_id]
        properties = self.resolver(resource["Properties"])
        token = properties["ServiceToken"]
        provider = next((f for f, r in self.template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"
                         and self.resolver.get_att(f, "Arn") == token), None)
        if provider is None:
            raise AssertionError(f"{logical_id}: service token {token} is no function of the stack")
        provider_env = self.template["Resources"][provider]["Properties"].get("Environment", {}).get("Variables", {})
        if provider in self.functions:
            raise NotImplementedError("a Python function used directly as a service token (cfn-response)")
        target = self.function_for(self.resolver(provider_env["USER_ON_EVENT_FUNCTION_ARN"]))
        if target is None:
            raise AssertionError(f"{logical_id}: the provider's onEvent function is not a Python function")
        request_id = str(uuid.uuid4())
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": token,
            "ResponseURL": f"https://cloudformation-custom-resource-response-{self.region}.s3.amazonaws.com/x",
            "StackId": self.resolver.ref("AWS::StackId"),
            "RequestId": request_id,
            "LogicalResourceId": logical_id,
            "ResourceType": resource["Type"],
            "ResourceProperties": properties,
        }
        if request_type != "Create":
            event["PhysicalResourceId"] = self._custom_physical_ids.get(logical_id, request_id)
        if request_type == "Update":
            event["OldResourceProperties"] = dict(old_properties or properties)
        invocation = self.invoke(target, event)
        payload = invocation.payload if isinstance(invocation.payload, dict) else {}
        physical_id = str(payload.get("PhysicalResourceId") or event.get("PhysicalResourceId") or request_id)
        result = CustomResourceResult(physical_id, dict(payload.get("Data") or {}), invocation)
        if "USER_IS_COMPLETE_FUNCTION_ARN" in provider_env:
            result = self._until_complete(logical_id, provider_env, {**event, **payload, "PhysicalResourceId": physical_id})
        if request_type == "Delete":
            self._custom_physical_ids.pop(logical_id, None)
        else:
            self._custom_physical_ids[logical_id] = physical_id
        return result

    def _until_complete(self, logical_id: str, provider_env: Mapping[str, Any],
                        event: dict[str, Any]) -> CustomResourceResult:
        """The provider framework's waiter (``framework.ts`` ``isComplete`` and the waiter state
        machine): the user ``isComplete`` function at once, then once per ``IntervalSeconds`` up
        to ``MaxAttempts`` more times; a function error fails the resource at once; ``Data`` only
        with ``IsComplete: true`` (merged over onEvent's); out of attempts, "Operation timed out"."""
        checker = self.function_for(self.resolver(provider_env["USER_IS_COMPLETE_FUNCTION_ARN"]))
        if checker is None:
            raise AssertionError(f"{logical_id}: the provider's isComplete function is not a Python function")
        machine = provider_env["WAITER_STATE_MACHINE_ARN"]["Ref"]
        definition = json.loads(self.resolver(self.template["Resources"][machine]["Properties"]["DefinitionString"]))
        [waiter] = definition["States"]["framework-isComplete-task"]["Retry"]
        interval, retries = float(waiter["IntervalSeconds"]), int(waiter["MaxAttempts"])
        assert float(waiter.get("BackoffRate", 1)) == 1.0, waiter
        for poll in range(1, retries + 2):
            invocation = self.invoke(checker, event)
            answer = invocation.payload if isinstance(invocation.payload, dict) else {}
            if answer.get("IsComplete") is True:
                data = {**(event.get("Data") or {}), **(answer.get("Data") or {})}
                return CustomResourceResult(str(event["PhysicalResourceId"]), data, invocation, poll,
                                            (poll - 1) * interval)
            if answer.get("Data"):
                raise AssertionError(f'{logical_id}: "Data" is not allowed if "IsComplete" is "False"')
        raise CustomResourceTimeout(f"{logical_id}: Operation timed out ({retries + 1} isComplete calls, "
                                    f"{retries * interval:.0f} s)")


# --------------------------------------------------------------------------- helpers

def _gateway(status: int, body: Mapping[str, Any], function: str | None = None,
             invocation: Invocation | None = None) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(body).encode(), function,
                        invocation, gateway=True)


def _policy_effect(policy: Mapping[str, Any], method_arn: str) -> str | None:
    """``Deny`` if a statement denies ``execute-api:Invoke`` on the ARN, else ``Allow`` if one
    allows it, else None (IAM's evaluation, for the policies authorizers return)."""
    def listed(value: Any) -> list[str]:
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    def matches(pattern: str, value: str) -> bool:
        return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), value) is not None

    effects = set()
    for statement in listed_statements(policy):
        actions = listed(statement.get("Action", []))
        resources = listed(statement.get("Resource", []))
        if any(matches(a, "execute-api:Invoke") for a in actions) and any(matches(r, method_arn) for r in resources):
            effects.add(str(statement.get("Effect")))
    return "Deny" if "Deny" in effects else "Allow" if "Allow" in effects else None


def listed_statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = policy.get("Statement", [])
    return list(statements) if isinstance(statements, list) else [statements]


def _event_matches(pattern: str, event_name: str) -> bool:
    pattern = pattern.removeprefix("s3:")
    return pattern == event_name or (pattern.endswith("*") and event_name.startswith(pattern[:-1]))


def _schema_problem(schema: Mapping[str, Any], body: Any) -> str | None:
    """The subset of JSON Schema draft 4 the stack's body model uses (type, minProperties)."""
    supported = {"$schema", "type", "minProperties", "title"}
    if set(schema) - supported:
        raise NotImplementedError(f"body model keywords {sorted(set(schema) - supported)} are not emulated")
    try:
        document = json.loads(body) if isinstance(body, str | bytes) else body
    except ValueError:
        return "not JSON"
    if schema.get("type") == "object" and not isinstance(document, dict):
        return "not an object"
    if isinstance(document, dict) and len(document) < int(schema.get("minProperties", 0)):
        return "too few properties"
    return None


def _region(assembly: CloudAssembly) -> str:
    manifest = json.loads((assembly.outdir / "manifest.json").read_text(encoding="utf-8"))
    for artifact in manifest["artifacts"].values():
        environment = artifact.get("environment", "")
        if artifact.get("type") == "aws:cloudformation:stack" and environment.startswith("aws://"):
            region = environment.rsplit("/", 1)[-1]
            if region and region != "unknown-region":
                return str(region)
    return "us-east-1"


def _code_name(code_dir: Path) -> str | None:
    handler = code_dir / "handler.py"
    if not handler.is_file():
        return None
    content = handler.read_bytes()
    for candidate in sorted((REPO_ROOT / "functions").glob("*/handler.py")):
        if candidate.read_bytes() == content:
            return candidate.parent.name
    return None


def document_path(document_id: str) -> str:
    """``/v1/documents/<id>`` with the id percent-encoded as a client would send it."""
    return "/v1/documents/" + quote(document_id, safe="")

