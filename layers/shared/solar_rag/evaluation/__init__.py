"""``rag eval``: retrieval and answer quality of a running service, measured over HTTP.

``dataset`` reads the questions (JSONL), ``metrics`` is the pure arithmetic, ``runner`` asks the
service (``client`` speaks HTTP, ``local`` starts the local service in-process), ``report``
summarises, prints and compares runs. docs/evaluation.md describes the file format and every
figure.
"""
