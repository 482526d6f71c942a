"""Chat as a LangChain tutorial deploys it: ChatUpstage behind a plain Lambda handler."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from bench.baselines.langchain_common import chat_model

llm = chat_model()
_ROLES = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = json.loads(event["body"])
    messages = [_ROLES[m["role"]](content=m["content"]) for m in body["messages"]]
    reply = llm.invoke(messages)
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"answer": reply.content, "model": llm.model_name})}
