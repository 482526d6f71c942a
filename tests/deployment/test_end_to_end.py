"""The scenario a new user goes through after ``cdk deploy``, run on what ships."""

from __future__ import annotations

import json

from tests.deployment.documents import make_docx, make_pdf
from tests.deployment.harness import Deployed, document_path

LEAVE_MD = "# Leave policy\n\nEmployees get 25 days of paid leave per year. Unused days expire in March.\n"
OFFICE_HTML = ("<html><head><title>Office hours</title></head><body><h1>Office hours</h1>"
               "<p>The Seoul office opens at 8:00 and closes at 19:00 on weekdays.</p></body></html>")


def _cited(response_json: dict[str, object]) -> list[str]:
    citations = response_json["citations"]
    assert isinstance(citations, list)
    return [str(c["document_id"]) for c in citations]


def test_placeholder_secret_then_index_query_delete_and_chat(deployed: Deployed) -> None:
    # 1. Right after deploy the secret holds the stack's placeholder: a clear 503, not a crash.
    chat = {"messages": [{"role": "user", "content": "Say hello."}]}
    response = deployed.http("POST", "/v1/chat", chat)
    assert response.status == 503, response
    assert response.headers["content-type"].startswith("application/json")
    assert "placeholder" in response.json()["detail"]
    assert deployed.secret_value() not in response.text

    # 2. The operator stores the key; CloudFormation runs the index bootstrap.
    deployed.set_secret()
    [init] = [k for k, r in deployed.custom_resources().items() if r["Type"] == "Custom::OpenSearchIndex"]
    created = deployed.custom_resource(init, "Create")
    assert created.physical_id
    assert deployed.opensearch.aliases, "the init function created no alias"

    # 3. Documents arrive in the bucket; S3 notifies the queue; the indexer gets the batches.
    deployed.put_object("handbook/leave.md.metadata.json", json.dumps({"metadataAttributes": {"team": "hr"}}))
    deployed.put_object("handbook/leave.md", LEAVE_MD)
    deployed.put_object("handbook/office hours.html", OFFICE_HTML)
    deployed.put_object("reports/q3-results.pdf", make_pdf(
        ["Quarterly results", "Revenue grew 18 percent to 42 million won in the third quarter."],
        title="Q3 results"))
    deployed.put_object("legal/nda.docx", make_docx(
        ["The confidentiality obligation lasts five years after the contract ends."], heading="NDA"))
    batches = deployed.deliver_notifications()
    assert batches and not [b for b in batches if b.failed_ids], batches

    for document_id in ("handbook/leave.md", "handbook/office hours.html", "reports/q3-results.pdf",
                        "legal/nda.docx"):
        status = deployed.http("GET", document_path(document_id))
        assert status.status == 200, status
        assert status.json()["status"] == "indexed", status.json()
    assert deployed.http("GET", document_path("handbook/leave.md")).json()["metadata"]["team"] == "hr"

    # 4. Questions through the query function cite the right document.
    for question, expected in (
        ("How many days of paid leave do employees get?", "handbook/leave.md"),
        ("When does the Seoul office open?", "handbook/office hours.html"),
        ("How much did revenue grow in the third quarter?", "reports/q3-results.pdf"),
        ("How long does the confidentiality obligation last?", "legal/nda.docx"),
    ):
        answer = deployed.http("POST", "/v1/query", {"query": question, "top_k": 3})
        assert answer.status == 200, answer
        assert _cited(answer.json())[0] == expected, answer.json()
        assert "[1]" in answer.json()["answer"]
    filtered = deployed.http("POST", "/v1/search", {"query": "leave", "filters": {"team": "hr"}})
    assert {r["document_id"] for r in filtered.json()["results"]} == {"handbook/leave.md"}

    # 5. Deleting the object removes the document.
    deployed.delete_object("handbook/leave.md")
    batches = deployed.deliver_notifications()
    assert batches and not [b for b in batches if b.failed_ids]
    assert deployed.http("GET", document_path("handbook/leave.md")).status == 404
    answer = deployed.http("POST", "/v1/query", {"query": "How many days of paid leave do employees get?"})
    assert "handbook/leave.md" not in _cited(answer.json())

    # 6. Chat answers through the fake Upstage with the stored key.
    response = deployed.http("POST", "/v1/chat", chat)
    assert response.status == 200, response
    assert response.json()["answer"]
    assert deployed.upstage.chat_requests()[-1].headers["authorization"].endswith(deployed.secret_value())
