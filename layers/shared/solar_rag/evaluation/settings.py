"""What ``rag eval`` reads from the environment (or ``.env``); flags override it."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Estimates, not Upstage's price list: the per-token prices of the default chat model
# (solar-pro3) are third-party figures, $0.15 in / $0.60 out per million tokens (OpenRouter; the
# same as Upstage's published price of solar-pro2). Embedding prices are not published in what
# the project could verify, so the question's embedding is not priced. docs/evaluation.md.
DEFAULT_INPUT_PRICE_PER_MILLION = 0.15
DEFAULT_OUTPUT_PRICE_PER_MILLION = 0.60


class EvalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    rag_api_key: SecretStr | None = None
    """The deployed API's key, sent as ``x-api-key``."""
    eval_price_input_per_million: float = Field(DEFAULT_INPUT_PRICE_PER_MILLION, ge=0)
    eval_price_output_per_million: float = Field(DEFAULT_OUTPUT_PRICE_PER_MILLION, ge=0)
