"""Rules for the platforms' verification handshakes: what we agree to sign or echo.

X's CRC makes us answer `HMAC(consumer secret, crc_token)`, the very value that signs a delivery
whose body is `crc_token`. So a CRC token must be one that can never be a delivery body: X
sends short opaque tokens (base64/base64url characters), and no JSON document is written with
only those characters. Anything else is refused before we compute an HMAC over it.
"""

from __future__ import annotations

import json
import re

#: Longest CRC token we sign; X's are a few dozen characters.
MAX_CRC_TOKEN = 255
#: base64 and base64url characters (and `=` padding): no braces, quotes, colons or spaces.
_CRC_TOKEN = re.compile(r"^[A-Za-z0-9_\-+/=]{1," + str(MAX_CRC_TOKEN) + r"}$")


def crc_token_problem(token: str) -> str | None:
    """Why `token` is not a CRC token we sign (None when it is one)."""
    if not _CRC_TOKEN.match(token):
        return (
            f"crc_token must be 1-{MAX_CRC_TOKEN} characters of A-Z, a-z, 0-9, '-', '_', '+', "
            "'/' and '='"
        )
    try:
        json.loads(token)
    except ValueError:
        return None
    # A bare number ("123") is valid JSON; X's random tokens are not, so refuse it too.
    return "crc_token must not be a JSON document"
