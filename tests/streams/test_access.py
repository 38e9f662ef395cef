"""Access to a worker's web port: mutating requests need the token, reads are open unless asked."""

from __future__ import annotations

import pytest

from streams.access import AccessPolicy, decide_access

TOKEN = "0123456789abcdef0123456789abcdef"
GOOD = f"Bearer {TOKEN}"
WITH_TOKEN = AccessPolicy(token=TOKEN)
READS_TOO = AccessPolicy(token=TOKEN, reads="token")
NO_TOKEN = AccessPolicy()


@pytest.mark.parametrize(
    ("policy", "method", "path", "authorization", "status"),
    [
        # mutating requests need the right token
        (WITH_TOKEN, "POST", "/assetwatch/inferences/", GOOD, None),
        (WITH_TOKEN, "POST", "/assetwatch/inferences/", None, 401),
        (WITH_TOKEN, "POST", "/assetwatch/inferences/", "Basic dXNlcjpwdw==", 401),
        (WITH_TOKEN, "POST", "/assetwatch/inferences/", "Bearer ", 401),
        (WITH_TOKEN, "POST", "/assetwatch/inferences/", "Bearer " + TOKEN[:-1] + "0", 403),
        (WITH_TOKEN, "POST", "/assetwatch/inferences/", "bearer " + TOKEN, None),
        (WITH_TOKEN, "DELETE", "/anything/", None, 401),
        (WITH_TOKEN, "PUT", "/anything/", "Bearer nope", 403),
        (WITH_TOKEN, "PATCH", "/anything/", GOOD, None),
        # a POST to a probe path is still a mutating request
        (WITH_TOKEN, "POST", "/healthz", None, 401),
        # with no token configured, nothing mutates: 403 whatever is sent
        (NO_TOKEN, "POST", "/assetwatch/inferences/x/pause/", None, 403),
        (NO_TOKEN, "POST", "/assetwatch/inferences/x/pause/", GOOD, 403),
        # reads are open by default, token or not
        (NO_TOKEN, "GET", "/assetwatch/inferences/", None, None),
        (WITH_TOKEN, "GET", "/metrics", None, None),
        (WITH_TOKEN, "HEAD", "/assetwatch/status/", "Bearer nope", None),
        # reads can be closed too, probes excepted
        (READS_TOO, "GET", "/metrics", None, 401),
        (READS_TOO, "GET", "/assetwatch/inferences/x/", "Bearer nope", 403),
        (READS_TOO, "GET", "/assetwatch/inferences/x/", GOOD, None),
        (READS_TOO, "GET", "/healthz", None, None),
        (READS_TOO, "GET", "/readyz", None, None),
    ],
)
def test_access_decision(policy: AccessPolicy, method: str, path: str, authorization: str | None,
                         status: int | None) -> None:
    refusal = decide_access(policy, method, path, authorization)
    assert (refusal.status if refusal else None) == status


def test_a_refusal_without_a_configured_token_says_how_to_configure_one() -> None:
    refusal = decide_access(NO_TOKEN, "POST", "/assetwatch/inferences/", None)
    assert refusal is not None and "ASSETWATCH_API_TOKEN" in refusal.reason


def test_only_a_missing_token_is_challenged() -> None:
    missing = decide_access(WITH_TOKEN, "POST", "/x/", None)
    wrong = decide_access(WITH_TOKEN, "POST", "/x/", "Bearer nope")
    assert missing is not None and missing.challenge
    assert wrong is not None and not wrong.challenge


@pytest.mark.parametrize(("token", "reads", "problem"), [
    ("short", "open", "at least 16 characters"),
    ("has a space in it, long enough", "open", "without spaces"),
    (None, "token", "no token is configured"),
    (TOKEN, "sometimes", "read access must be one of open, token"),
])
def test_an_unusable_policy_is_refused_with_its_reason(token: str | None, reads: str,
                                                        problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        AccessPolicy(token=token, reads=reads)  # type: ignore[arg-type]
    assert token is None or token not in str(info.value)


def test_the_token_never_shows_in_a_repr() -> None:
    assert TOKEN not in repr(WITH_TOKEN)
