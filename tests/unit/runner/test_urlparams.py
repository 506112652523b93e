"""Sensitive URL parameters masked as gitlab-runner's urlsanitizer does, however writes split."""

from __future__ import annotations

import pytest

from conveyor.runner.trace.urlparams import UrlParamMasker

pytestmark = pytest.mark.unit


class Collect:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def flush(self) -> None:
        pass


CASES = [
    (b"curl https://h/api?private_token=abc123&x=1\n", b"curl https://h/api?private_token=[MASKED]&x=1\n"),
    (b"GET /o?X-Amz-Credential=AK/2024/us/s3/aws4_request&X-Amz-Signature=deadbeef done",
     b"GET /o?X-Amz-Credential=[MASKED]&X-Amz-Signature=[MASKED] done"),
    (b"?rss_token=t", b"?rss_token=[MASKED]"),
    (b"a?private_tokens=keep&other=keep b?authenticity_token= c",
     b"a?private_tokens=keep&other=keep b?authenticity_token=[MASKED] c"),
    (b"no url here & private_token=x", b"no url here & private_token=x"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_every_split_gives_the_same_masked_output(text: bytes, expected: bytes) -> None:
    for cut in range(len(text) + 1):
        for second in range(cut, len(text) + 1):
            sink = Collect()
            masker = UrlParamMasker(sink)
            for part in (text[:cut], text[cut:second], text[second:]):
                masker.write(part)
            masker.flush()
            assert sink.data == expected, (cut, second)
