"""A generated, deterministic corpus: English and Korean documents of mixed sizes.

Sizes follow a knowledge base's long tail: many short notes, a good share of articles and a
few long manuals. Some documents are Markdown with sections, the rest plain text.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from solar_rag.domain import SourceDocument

_EN = (
    "the service stores each document as chunks with vectors so that questions find the "
    "passages that answer them and the model cites its sources clearly while the index keeps "
    "metadata filters for teams regions products and versions deployment uses lambda "
    "functions behind an api gateway with an opensearch domain in a private network the "
    "indexer reads objects from a bucket parses markdown html and pdf files then embeds "
    "passages in batches respecting rate limits and retries with backoff when the provider "
    "answers too many requests customers ask about billing invoices refunds accounts "
    "passwords security policies retention backups monitoring alarms dashboards latency "
    "throughput errors timeouts quotas limits regions availability maintenance windows "
    "upgrades releases changelog migration guides troubleshooting steps configuration "
    "settings environment variables secrets keys rotation audit logs compliance privacy "
    "encryption at rest in transit network access control roles permissions groups users "
    "onboarding support tickets escalation priority response time agreement contract "
    "renewal pricing plans discounts trial usage reports analytics export import format "
    "schema field record table query search ranking relevance recall precision evaluation"
).split()
_KO = (
    "서비스는 문서를 조각으로 나누어 벡터와 함께 저장하며 질문에 답하는 구절을 찾고 모델은 "
    "출처를 명확하게 인용합니다 색인은 팀 지역 제품 버전별 메타데이터 필터를 유지합니다 배포는 "
    "람다 함수와 게이트웨이를 사용하고 검색 도메인은 사설 네트워크에 있습니다 색인기는 버킷에서 "
    "객체를 읽고 마크다운 문서를 분석한 다음 요청 한도를 지키며 구절을 묶어서 임베딩합니다 "
    "고객은 청구서 환불 계정 비밀번호 보안 정책 보존 기간 백업 모니터링 경보 대시보드 지연 시간 "
    "처리량 오류 시간 초과 할당량 지역 가용성 점검 시간 업그레이드 릴리스 변경 내역 이전 안내 "
    "문제 해결 단계 설정 환경 변수 비밀 키 교체 감사 기록 규정 준수 개인정보 암호화 네트워크 "
    "접근 제어 역할 권한 그룹 사용자 온보딩 지원 요청 우선순위 응답 시간 계약 갱신 요금제 할인 "
    "체험 사용량 보고서 분석 내보내기 가져오기 형식 스키마 필드 기록 표 질의 검색 순위 관련성 "
    "재현율 정밀도 평가 결과를 확인하세요 자세한 내용은 관리자에게 문의하십시오"
).split()
_TEAMS = ("billing", "platform", "security", "support", "data", "mobile", "web", "search")


@dataclass(frozen=True, slots=True)
class CorpusStats:
    documents: int
    characters: int
    korean_documents: int
    bytes_utf8: int


def _sentence(rng: random.Random, words: tuple[str, ...] | list[str], korean: bool) -> str:
    count = rng.randint(6, 18)
    picked = [rng.choice(words) for _ in range(count)]
    if rng.random() < 0.3:
        picked.insert(rng.randrange(len(picked)), str(rng.randint(2, 2048)))
    text = " ".join(picked)
    if korean:
        return text + rng.choice((".", ".", ".", "?"))
    return text[0].upper() + text[1:] + rng.choice((".", ".", ".", "?", "!"))


def _paragraph(rng: random.Random, korean: bool) -> str:
    words = _KO if korean else _EN
    return " ".join(_sentence(rng, words, korean) for _ in range(rng.randint(2, 6)))


def _target_chars(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.45:
        return rng.randint(300, 1_500)
    if roll < 0.85:
        return rng.randint(1_500, 8_000)
    return rng.randint(8_000, 40_000)


def document(index: int, rng: random.Random) -> SourceDocument:
    korean = rng.random() < 0.4
    target = _target_chars(rng)
    markdown = rng.random() < 0.5
    title_words = _KO if korean else _EN
    title = " ".join(rng.choice(title_words) for _ in range(rng.randint(2, 5)))
    parts: list[str] = [f"# {title}"] if markdown else []
    size = 0
    section = 0
    while size < target:
        if markdown and (section == 0 or rng.random() < 0.25):
            section += 1
            heading = " ".join(rng.choice(title_words) for _ in range(rng.randint(1, 4)))
            parts.append(f"## {heading}")
        paragraph = _paragraph(rng, korean)
        parts.append(paragraph)
        size += len(paragraph) + 2
    return SourceDocument(
        id=f"doc-{index:05d}",
        text="\n\n".join(parts),
        title=title,
        content_type="text/markdown" if markdown else "text/plain",
        source=f"s3://bench-docs/{'ko' if korean else 'en'}/doc-{index:05d}.{'md' if markdown else 'txt'}",
        metadata={"lang": "ko" if korean else "en", "team": rng.choice(_TEAMS),
                  "year": rng.randint(2019, 2026)},
    )


def documents(count: int, *, seed: int = 7) -> list[SourceDocument]:
    rng = random.Random(seed)
    return [document(i, rng) for i in range(count)]


def iter_sentences(count: int, *, seed: int = 11) -> Iterator[str]:
    """Short chunk-like texts (one to three sentences), English and Korean mixed."""
    rng = random.Random(seed)
    for _ in range(count):
        korean = rng.random() < 0.4
        words = _KO if korean else _EN
        yield " ".join(_sentence(rng, words, korean) for _ in range(rng.randint(1, 3)))


def stats(docs: list[SourceDocument]) -> CorpusStats:
    return CorpusStats(
        documents=len(docs),
        characters=sum(len(d.text) for d in docs),
        korean_documents=sum(1 for d in docs if d.metadata.get("lang") == "ko"),
        bytes_utf8=sum(len(d.text.encode("utf-8")) for d in docs),
    )
