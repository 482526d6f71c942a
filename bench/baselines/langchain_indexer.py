"""S3 -> SQS indexing as a LangChain tutorial deploys it: split, embed, add_texts."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

import boto3
from langchain_text_splitters import RecursiveCharacterTextSplitter

from bench.baselines.langchain_common import vector_store

s3 = boto3.client("s3")
store = vector_store()
splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    for record in event["Records"]:
        for s3_record in json.loads(record["body"]).get("Records", []):
            bucket = s3_record["s3"]["bucket"]["name"]
            key = unquote_plus(s3_record["s3"]["object"]["key"])
            text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
            chunks = splitter.split_text(text)
            store.add_texts(chunks, metadatas=[{"source": f"s3://{bucket}/{key}"}] * len(chunks),
                            bulk_size=max(500, len(chunks)))
    return {"batchItemFailures": []}
