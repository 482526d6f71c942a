"""Lambda events as AWS sends them: API Gateway REST (v1 proxy), SQS wrapping S3 notifications.

Shapes follow the AWS documentation samples (API Gateway "Input format of a Lambda function
for proxy integration"; S3 "Event message structure", eventVersion 2.1; Lambda "Using Lambda
with Amazon SQS"). Keys in S3 records are URL-encoded with ``quote_plus`` (as moto does and as
S3 form-encodes spaces); the consumer must ``unquote_plus`` them.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, quote_plus

REGION = "us-east-1"
ACCOUNT = "123456789012"
API_ID = "a1b2c3d4e5"
API_KEY = "Xk3lTz8wq9PpR2v7Yb1nMs4Hc6Jd0FeGa5Uo9Wiq"
API_KEY_ID = "k7x2p9q4r1"
BUCKET = "rag-documents-123456789012"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:rag-ingest"


@dataclass
class FakeLambdaContext:
    """The attributes of ``awslambdaric``'s context that Powertools reads."""

    function_name: str = "solar-rag-chat"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    timeout_ms: int = 30_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/solar-rag-chat"
    log_stream_name: str = "2026/11/27/[$LATEST]0123456789abcdef"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


def lambda_context(function_name: str = "solar-rag-chat", timeout_ms: int = 30_000) -> FakeLambdaContext:
    return FakeLambdaContext(function_name=function_name, timeout_ms=timeout_ms,
                             log_group_name=f"/aws/lambda/{function_name}")


# --- API Gateway REST (v1 proxy) -----------------------------------------------------------------

def api_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str | list[str]] | None = None,
    api_key: str | None = API_KEY,
    stage: str = "prod",
    request_id: str | None = None,
    base64_body: bool = False,
) -> dict[str, Any]:
    """A REST API proxy event for ``path`` as the client sent it (percent-encoding kept:
    ``/v1/documents/reports%2F2024%2Fq1.md``), routed by a ``/{proxy+}`` resource."""
    request_id = request_id or str(uuid.uuid4())
    raw_body: str | None
    if body is None:
        raw_body = None
    elif isinstance(body, bytes | str):
        raw_body = body if isinstance(body, str) else body.decode("utf-8")
    else:
        raw_body = json.dumps(body)
    if raw_body is not None and base64_body:
        raw_body = base64.b64encode(raw_body.encode("utf-8")).decode("ascii")
    all_headers = {
        "Accept": "application/json",
        "Host": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
        "User-Agent": "curl/8.5.0",
        "X-Amzn-Trace-Id": "Root=1-67890abc-0123456789abcdef01234567",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if api_key:
        all_headers["x-api-key"] = api_key
    if raw_body is not None:
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    multi_query = ({k: (v if isinstance(v, list) else [v]) for k, v in query.items()}
                   if query else None)
    single_query = {k: v[-1] for k, v in multi_query.items()} if multi_query else None
    now = datetime.now(UTC)
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method.upper(),
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "x1y2z3",
            "resourcePath": "/{proxy+}",
            "httpMethod": method.upper(),
            "extendedRequestId": "Ab1CdEFGhIJKlmN=",
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": API_ID,
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None, "accountId": None, "cognitoIdentityId": None,
                "caller": None, "sourceIp": "203.0.113.7", "principalOrgId": None,
                "accessKey": None, "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None, "userArn": None,
                "userAgent": "curl/8.5.0", "user": None,
                "apiKey": api_key, "apiKeyId": API_KEY_ID if api_key else None,
            },
            "domainName": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
            "apiId": API_ID,
        },
        "body": raw_body,
        "isBase64Encoded": base64_body,
    }


def document_path(document_id: str) -> str:
    """``/v1/documents/<id>`` with the id percent-encoded, ``/`` included."""
    return "/v1/documents/" + quote(document_id, safe="")


def response_json(response: Mapping[str, Any]) -> Any:
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8")
    return json.loads(body) if body else None


# --- S3 notifications ----------------------------------------------------------------------------

class Sequencer:
    """Increasing S3-style sequencers (hex, fixed width), for ordering tests."""

    def __init__(self, start: int = 0x0055AED6DCD90281E5) -> None:
        self._next = itertools.count(start)

    def __call__(self) -> str:
        return f"{next(self._next):018X}"


def s3_record(
    event_name: str,
    key: str,
    *,
    bucket: str = BUCKET,
    size: int | None = None,
    etag: str | None = None,
    sequencer: str | None = None,
    version_id: str | None = None,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """One S3 event record (eventVersion 2.1). ``sequencer=None`` imitates moto (no sequencer).

    ObjectRemoved records carry no size or eTag, as in S3's own.
    """
    obj: dict[str, Any] = {"key": quote_plus(key)}
    if event_name.startswith("ObjectCreated"):
        obj["size"] = size if size is not None else 0
        obj["eTag"] = etag or hashlib.md5(key.encode(), usedforsecurity=False).hexdigest()
    if version_id is not None:
        obj["versionId"] = version_id
    if sequencer is not None:
        obj["sequencer"] = sequencer
    when = (event_time or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": when,
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810",
                             "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "documents-to-ingest-queue",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                       "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }


def created(key: str, **kwargs: Any) -> dict[str, Any]:
    return s3_record("ObjectCreated:Put", key, **kwargs)


def removed(key: str, **kwargs: Any) -> dict[str, Any]:
    return s3_record("ObjectRemoved:Delete", key, **kwargs)


def s3_notification(*records: Mapping[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def s3_test_event(bucket: str = BUCKET) -> dict[str, Any]:
    """What S3 sends once when a notification configuration is saved (no ``Records``)."""
    return {"Service": "Amazon S3", "Event": "s3:TestEvent",
            "Time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "Bucket": bucket, "RequestId": "5582815E1AEA5ADF",
            "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}


# --- SQS -------------------------------------------------------------------------------------------

def sqs_record(body: Mapping[str, Any] | str, *, message_id: str | None = None,
               receive_count: int = 1, queue_arn: str = QUEUE_ARN) -> dict[str, Any]:
    raw = body if isinstance(body, str) else json.dumps(body)
    sent = int(datetime.now(UTC).timestamp() * 1000)
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEB" + base64.b64encode(uuid.uuid4().bytes * 3).decode("ascii"),
        "body": raw,
        "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": str(sent),
                       "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                       "ApproximateFirstReceiveTimestamp": str(sent + 5)},
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(raw.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def sqs_event(*bodies: Mapping[str, Any] | str) -> dict[str, Any]:
    """One Lambda SQS event; each body is one message (an S3 notification or raw text)."""
    return {"Records": [sqs_record(body) for body in bodies]}


def sqs_event_from_received(messages: Iterable[Mapping[str, Any]],
                            queue_arn: str = QUEUE_ARN) -> dict[str, Any]:
    """Wrap ``sqs.receive_message(...)["Messages"]`` as the Lambda event SQS would deliver."""
    records = []
    for message in messages:
        record = sqs_record(message["Body"], message_id=message["MessageId"], queue_arn=queue_arn,
                            receive_count=int(message.get("Attributes", {})
                                              .get("ApproximateReceiveCount", "1")))
        record["receiptHandle"] = message["ReceiptHandle"]
        records.append(record)
    return {"Records": records}
