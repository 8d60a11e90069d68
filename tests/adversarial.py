"""Text built to make a regular expression backtrack: near misses of every detector, repeated.

The scrubbing tests check what the scrubber makes of them; how long it takes is measured by
bench/bench_adversarial.py (timings belong in benchmarks, not in tests on a shared machine).
"""

# Repeated to 200 KB: each almost matches a detector and then does not.
NEAR_MISS_UNITS = [
    "+1" + "2" * 40 + "x ", "2" * 40 + "x ", "4111 " * 30 + "x", "@a." * 30 + "1 ", "eyJ" + "a" * 300 + " ",
    "a1:" * 50 + "g ", "DE89" + "A1B2" * 20 + "x ", "sk_live_" + "a" * 200 + " ", "0" + "1 2" * 40 + " ",
    "data:image/png;base64," + "QUJD" * 100 + "(", "?" + "a" * 150 + " ", "1.2." * 50,
]


def near_miss_text(unit: str, size: int = 200_000) -> str:
    return unit * (size // len(unit))


# About 100 KB each, aimed at the URL, header, form, JSON and key-block rules too.
CRAFTED = {
    "pem_begins": "-----BEGIN RSA PRIVATE KEY-----\n" * 3000,
    "ats": "a@" * 50_000, "dots_at": "a." * 50_000 + "@", "at_dots": "@" + "a." * 50_000,
    "digits_sp": "1 " * 50_000, "plus": "+1 " * 33_000, "colons": "::1:" * 25_000, "ibans": "DE89 " * 20_000,
    "jwt": "eyJ" + "a." * 50_000, "bearer": "Bearer " * 14_000, "slack": "xoxb-" + "a-" * 50_000,
    "params": "?a=" * 33_000, "form": "a=b&" * 25_000 + " x", "headers": "A: b\n" * 20_000,
    "url_at": "https://" + "a@" * 50_000, "data_uri": "data:a/b;" + "c=d;" * 25_000,
    "header_spaces": "A:" + " " * 100_000 + "x", "json_quotes": '"' * 100_000, "json_keys": '"k":' * 25_000,
    "slashes": "030/" * 25_000, "paren0": "(030) " * 16_000, "idn": "x@" + "ä." * 50_000,
}
