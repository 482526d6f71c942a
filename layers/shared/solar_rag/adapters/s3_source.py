"""The documents bucket: streamed reads with a size limit, HEAD, writes, deletes and
presigned uploads (``ObjectStore`` port)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from solar_rag.adapters.aws_clients import client, error_code
from solar_rag.errors import DocumentNotFound, PayloadTooLarge, RagError, UpstreamError, UpstreamTimeout
from solar_rag.ports import PresignedUpload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

READ_CHUNK_BYTES = 1024 * 1024
_NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchVersion"}


class S3ObjectSource:
    def __init__(self, bucket: str, *, s3_client: S3Client | None = None) -> None:
        if not bucket:
            raise ValueError("bucket must not be empty")
        self._bucket = bucket
        self._client = s3_client

    @property
    def bucket(self) -> str:
        return self._bucket

    def _s3(self) -> S3Client:
        if self._client is None:
            self._client = client("s3")
        return self._client

    def read(self, key: str, *, max_bytes: int) -> tuple[bytes, dict[str, str]]:
        """The object's bytes and ``etag``, ``version_id``, ``content_type``, ``size``.

        Raises ``DocumentNotFound`` when the object is gone and ``PayloadTooLarge`` beyond
        ``max_bytes`` (checked on the declared length, then while streaming).
        """
        try:
            response = self._s3().get_object(Bucket=self._bucket, Key=key)
        except Exception as error:
            raise self._translate(key, error) from None
        body = response["Body"]
        try:
            declared = int(response.get("ContentLength", 0) or 0)
            if declared > max_bytes:
                raise self._too_large(key, declared, max_bytes)
            data = self._read_limited(key, body, max_bytes)
        finally:
            body.close()
        attributes = {"etag": str(response.get("ETag", "")).strip('"'),
                      "content_type": str(response.get("ContentType", "") or ""),
                      "size": str(len(data))}
        version = response.get("VersionId")
        if version and version != "null":
            attributes["version_id"] = str(version)
        return data, attributes

    def read_optional(self, key: str, *, max_bytes: int) -> bytes | None:
        try:
            data, _ = self.read(key, max_bytes=max_bytes)
        except DocumentNotFound:
            return None
        return data

    def exists(self, key: str) -> bool:
        try:
            self._s3().head_object(Bucket=self._bucket, Key=key)
        except Exception as error:
            translated = self._translate(key, error)
            if isinstance(translated, DocumentNotFound):
                return False
            raise translated from None
        return True

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        try:
            self._s3().put_object(Bucket=self._bucket, Key=key, Body=data, ContentType=content_type)
        except Exception as error:
            raise self._translate(key, error, action="write") from None

    def delete(self, key: str) -> None:
        try:
            self._s3().delete_object(Bucket=self._bucket, Key=key)
        except Exception as error:
            translated = self._translate(key, error, action="delete")
            if not isinstance(translated, DocumentNotFound):
                raise translated from None

    def presign_upload(self, key: str, *, max_bytes: int, expires_in: int,
                       content_type: str | None = None) -> PresignedUpload:
        """A presigned POST: unlike a presigned PUT, its policy bounds the object's size."""
        fields: dict[str, str] = {}
        conditions: list[Any] = [["content-length-range", 1, max_bytes]]
        if content_type:
            fields["Content-Type"] = content_type
            conditions.append({"Content-Type": content_type})
        try:
            post = self._s3().generate_presigned_post(
                Bucket=self._bucket, Key=key, Fields=fields, Conditions=conditions,
                ExpiresIn=expires_in)
        except Exception as error:
            raise self._translate(key, error, action="presign an upload for") from None
        return PresignedUpload(url=str(post["url"]),
                               fields={str(k): str(v) for k, v in post["fields"].items()},
                               expires_in=expires_in, min_bytes=1, max_bytes=max_bytes)

    def _read_limited(self, key: str, body: Any, max_bytes: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        try:
            while chunk := body.read(READ_CHUNK_BYTES):
                total += len(chunk)
                if total > max_bytes:
                    raise self._too_large(key, total, max_bytes)
                parts.append(chunk)
        except PayloadTooLarge:
            raise
        except Exception as error:
            raise self._translate(key, error) from None
        return b"".join(parts)

    @staticmethod
    def _too_large(key: str, size: int, max_bytes: int) -> PayloadTooLarge:
        return PayloadTooLarge(f"object {key!r} is larger than the limit of {max_bytes} bytes "
                               f"(MAX_OBJECT_BYTES); at least {size} bytes")

    def _translate(self, key: str, error: Exception, *, action: str = "read") -> Exception:
        if isinstance(error, RagError):  # the deadline, refused before sending
            return error
        code = error_code(error)
        if code in _NOT_FOUND:
            return DocumentNotFound(f"object {key!r} not found in bucket {self._bucket!r}")
        name = type(error).__name__
        if "Timeout" in name or "EndpointConnection" in name or "ConnectionClosed" in name:
            return UpstreamTimeout(f"S3 timed out when asked to {action} object {key!r} ({name})")
        return UpstreamError(f"could not {action} object {key!r} in S3 ({code or name})")
