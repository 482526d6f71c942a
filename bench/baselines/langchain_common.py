"""What every LangChain tutorial handler does at module level: key, embeddings, model, store.

The key comes from Secrets Manager like ours (same work: one call at init), or from
``UPSTAGE_API_KEY`` when set; base URL, index and OpenSearch URL from the environment.
"""

from __future__ import annotations

import os

import boto3
from langchain_community.vectorstores import OpenSearchVectorSearch
from langchain_upstage import ChatUpstage, UpstageEmbeddings

BASE_URL = os.environ["UPSTAGE_BASE_URL"]
INDEX = os.environ.get("LANGCHAIN_INDEX", "langchain-docs")
API_KEY = os.environ.get("UPSTAGE_API_KEY") or boto3.client("secretsmanager").get_secret_value(
    SecretId=os.environ["UPSTAGE_SECRET_ID"])["SecretString"]


_OPTIONS = {"api_key": API_KEY, "base_url": BASE_URL}


def embeddings() -> UpstageEmbeddings:
    return UpstageEmbeddings(model="solar-embedding-2", **_OPTIONS)


def chat_model() -> ChatUpstage:
    return ChatUpstage(model="solar-pro3", **_OPTIONS)


def vector_store() -> OpenSearchVectorSearch:
    # engine="faiss": LangChain's default (nmslib) is refused by OpenSearch 3.
    return OpenSearchVectorSearch(opensearch_url=os.environ["OPENSEARCH_URL"], index_name=INDEX,
                                  embedding_function=embeddings(), engine="faiss")
