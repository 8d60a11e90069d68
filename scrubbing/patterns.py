"""Built-in detectors: one named, commented pattern per kind of data, plus its validator.

Every pattern is written so that it can be joined with the others into ONE alternation
(``text.TextScrubber`` does that): no capturing groups, and each alternative starts with one
cheap consuming token (a digit, ``@``, ``+``, ``(``, a literal letter) so the regex engine
rejects most positions after one character test.

A validator gets ``(text, start, end)`` of a candidate and returns the span to redact
(``(start, end)``, possibly adjusted) or ``None`` to reject the candidate.  The false-positive
policy (versions, dates, times, prices, UUIDs, CSS...) lives here; docs/privacy-rules.md
describes it and tests/test_scrubbing_detectors.py pins it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

# Quantifiers that could split one run of characters in several ways are possessive (``++``,
# ``{m,n}+``, Python 3.11+): a candidate that fails is abandoned without trying every split, so
# no input makes a pattern backtrack exponentially (tests/test_scrubbing_detectors.py feeds
# adversarial strings).

Validator = Callable[[str, int, int], "tuple[int, int] | None"]


@dataclass(frozen=True)
class Pattern:
    r"""One detector: alternatives of ``(lead, rest)`` plus an optional validator.

    ``lead`` consumes exactly one character (a literal or a class) and ``rest`` continues; the
    look-behinds in ``rest`` therefore span the lead too (``(?<!\w.)`` = "the lead is not glued
    to a word").  Leading with a consuming token lets the regex engine's branch dispatch reject a
    position after one character test instead of evaluating a look-behind first (10x faster).
    """

    name: str
    alternatives: tuple[tuple[str, str], ...]
    validate: Validator | None = None
    # "num": needs a digit or "@" (cards, phones, e-mail...); "word": starts with a literal
    # prefix (secrets). Each family is its own combined regex, run only if its gate passes.
    family: str = "num"


# --------------------------------------------------------------------------- email
# Matched from the "@" rightwards (so the engine never backtracks over every word of a text);
# the validator walks left over the local part.  File names like "logo@2x.png" are not emails.
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_FILE_TLDS = frozenset(
    ["png", "jpg", "jpeg", "gif", "svg", "webp", "avif", "ico", "bmp", "tif", "tiff", "css", "js", "mjs", "cjs", "ts",
     "tsx", "jsx", "json", "map", "html", "htm", "xml", "txt", "md", "woff", "ttf", "otf", "eot", "mp3", "mp4", "webm",
     "ogg", "wav", "pdf", "zip", "gz"]
)
# Internationalised domains ("exämple.de", ".рф") are letters too: [^\W_] is any letter or digit.
EMAIL = ((r"@", r"(?:[^\W_](?:[\w-]{0,61}(?<!_)[^\W_])?\.)+(?:[^\W\d_]{2,24}|xn--[a-z0-9-]{1,59})(?![\w-])"),)


def _email(text: str, start: int, end: int) -> tuple[int, int] | None:
    i = start
    lo = max(0, start - 64)
    while i > lo and (text[i - 1] in _LOCAL_CHARS or (text[i - 1] > "\x7f" and text[i - 1].isalnum())):
        i -= 1
    while i < start and text[i] in ".-+%":
        i += 1
    if i == start:
        return None  # "@media", "@scope/pkg", "see @alice": no local part
    if i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
        return None  # local part longer than 64 chars or glued to a word: not an address
    dot = text.rindex(".", start, end)
    if text[dot + 1 : end].lower() in _FILE_TLDS:
        # "logo@2x.png" is a file; "jane@example.com.png" is a file named after an address.
        domain = text[start + 1 : dot]
        if "." not in domain or re.fullmatch(r"\d+x", domain.split(".", 1)[0]):
            return None
        inner = domain.rsplit(".", 1)[1].lower()
        if inner in _FILE_TLDS or not inner.isalpha() or len(inner) < 2:
            return None
        return i, dot
    return i, end


# --------------------------------------------------------------------------- payment cards
# 13-19 digits, bare or grouped with ONE kind of separator (space or dash), starting with a
# known issuer prefix (Visa 4, Mastercard 51-55/2221-2720, Amex 34/37, Discover 6011/644-65,
# JCB 35, Diners 30/36/38, UnionPay 62), and Luhn-valid.  Not preceded/followed by digits,
# dots or commas (prices "1,234,567.89", version strings, long numbers in tables).
CARD = ((r"[2-6]", r"(?<![\w.,+-].)(?<!\d[ -].)(?:\d{12,18}|\d{3}(?:[ -]\d{2,6}+){2,4})(?![\w]|[.,-]\d)"),)
_CARD_PREFIX = re.compile(r"4|5[1-5]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|3[47]|6011|64[4-9]|65|35|3[068]|62")


# How issuers print numbers: 4-4-4-4 (-3), Amex 4-6-5, Diners 4-6-4, 13-15 digit 4-4-4-x.
_CARD_GROUPS = frozenset({(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4),
                          (4, 4, 4, 1), (4, 4, 4, 2), (4, 4, 4, 3)})


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i & 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(text: str, start: int, end: int) -> tuple[int, int] | None:
    s = text[start:end]
    if " " in s and "-" in s:
        return None
    digits = s.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19 or not _CARD_PREFIX.match(digits):
        return None
    if len(digits) != len(s) and tuple(map(len, re.split("[ -]", s))) not in _CARD_GROUPS:
        return None  # grouped, but not the way cards are printed (IBAN tails, phone lists...)
    return (start, end) if luhn_ok(digits) else None


# --------------------------------------------------------------------------- IBAN
# Two-letter country code, two check digits, then the BBAN, optionally in groups of four.
# Checked against the country's IBAN length and the ISO 7064 mod-97 checksum.
IBAN = ((r"[A-Z]", r"(?<!\w.)[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,8}(?: ?[A-Z0-9]{1,3})?(?![\w])"),)
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def iban_ok(iban: str) -> bool:
    iban = iban.replace(" ", "")
    if IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    try:
        return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
    except ValueError:
        return False


def _iban(text: str, start: int, end: int) -> tuple[int, int] | None:
    want = IBAN_LENGTHS.get(text[start : start + 2])
    if want is None:
        return None
    # Take exactly the country's length of alphanumerics (the pattern may have run on).
    n = 0
    i = start
    while i < end and n < want:
        if text[i] != " ":
            n += 1
        i += 1
    if n != want or (i < end and text[i] not in " "):
        return None
    return (start, i) if iban_ok(text[start:i]) else None


# --------------------------------------------------------------------------- US SSN
# AAA-GG-SSSS with dashes only; area 000/666/9xx, group 00 and serial 0000 are never issued.
SSN = ((r"[0-8]", r"(?<![\w.-].)(?<!\d[ -].)\d{2}(?<!000)(?<!666)-(?!00)\d{2}-(?!0000)\d{4}(?![\w]|-\d)"),)


# --------------------------------------------------------------------------- phone numbers
# International: "+" country code, then 7-14 more digits in groups separated by space, dot or
# dash, parentheses allowed around the area code.  National: North-American "(555) 123-4567",
# "555-123-4567", "555.123.4567", "555 123 4567"; European trunk-prefix "020 7946 0958",
# "07700 900123", "01 23 45 67 89", "030-1234567".  Bare digit runs ("5551234567") are NOT
# phones (they are far more often ids and table numbers); dates like 2024-01-15 and 05.01.2024,
# times, prices and versions do not fit these shapes.  Like cards, a national number never
# starts in the middle of a run of digit groups ("DE89 3704 0044 0532 0130 01").
PHONE = (
    (r"\+", r"(?<![\w+].)[1-9]\d{0,2}+(?:[ .-]?\(?\d{1,5}+\)?){1,6}(?![\w]|[.-]\d)"),
    (r"\(", r"(?<![\w.+(-].)(?<!\d[ .-].)[2-9]\d{2}\) ?\d{3}[ .-]\d{4}(?![\w]|[.-]\d)"),
    (r"[2-9]", r"(?<![\w.+(-].)(?<!\d[ .-].)\d{2}[ .-]\d{3}[ .-]\d{4}(?![\w]|[.-]\d)"),
    (r"0", r"(?<![\w.+-].)(?<!\d[ .-].)[1-9]\d{0,4}+(?:[ .-]\d{2,8}+){1,4}(?![\w]|[.-]\d)"),
    # "00" international prefix ("0049 30 1234567"), checked like "+".
    (r"0", r"(?<![\w.+-].)(?<!\d[ .-].)0[1-9]\d{0,2}+(?:[ .-]?\(?\d{1,5}+\)?){1,6}(?![\w]|[.-]\d)"),
    # German-style area codes: "030/1234567", "089 / 123 456", "(030) 1234567".
    (r"0", r"(?<![\w.+/-].)(?<!\d[ .-].)[1-9]\d{1,4}+ ?/ ?\d{3,8}+(?:[ -]\d{2,8}+){0,3}(?![\w/]|[.-]\d)"),
    (r"\(", r"(?<![\w.+(-].)0[1-9]\d{1,4}+\) ?\d{3,8}+(?:[ -]\d{2,8}+){0,3}(?![\w]|[.-]\d)"),
    # North American with the leading 1: "1-800-555-0199", "1 (800) 555-0199".
    (r"1", r"(?<![\w.+(-].)(?<!\d[ .-].)[ .-]\(?[2-9]\d{2}\)?[ .-]?\d{3}[ .-]\d{4}(?![\w]|[.-]\d)"),
)


# ITU-T E.164 country codes by their first digits (1-, 2- and 3-digit codes).
_CC1 = frozenset("17")
_CC2 = frozenset(
    ["20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48", "49", "51",
     "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81", "82", "84", "86", "90",
     "91", "92", "93", "94", "95", "98"]
)
_CC3_PREFIX = frozenset(["21", "22", "23", "24", "25", "26", "29", "35", "37", "38", "42", "50", "59", "67", "68", "69",
                         "85", "87", "88", "96", "97", "99"])


def _country_code(digits: str) -> bool:
    """``digits`` (the 1-3 digits after "00") begin with an assigned country code."""
    return digits[:1] in _CC1 or digits[:2] in _CC2 or (len(digits) == 3 and digits[:2] in _CC3_PREFIX)


def _phone(text: str, start: int, end: int) -> tuple[int, int] | None:
    s = text[start:end]
    n = sum(c.isdigit() for c in s)
    if s[0] == "1":
        if "." in s and _VERSION_CONTEXT.search(text, max(0, start - 12), start):
            return None  # "version 1.234.567.8901"
        return (start, end) if n == 11 and ("(" in s or len({c for c in s if c in " .-"}) == 1) else None
    if s.startswith("00"):
        # "00" + a country code: only a full number (11+ digits) with an assigned code, so grouped
        # serials ("0012 3456 7890", "0034 5678 9012") are not read as phones.
        n -= 2
        cc = re.match(r"\d{1,3}", s[2:])
        if n < 11 or cc is None or not _country_code(cc.group()) or not any(ch in " .-(" for ch in s):
            return None  # a bare run of digits from "00" is an id, not a written phone number
        s = "+" + s[2:]
    if s[0] == "+":
        # The groups may have run on into the next number: drop trailing groups (E.164 <= 15).
        while n > 15:
            cut = max(s.rfind(" "), s.rfind("-"), s.rfind("."))
            if cut <= 0:
                return None
            s = s[:cut].rstrip(" .-(")
            n = sum(c.isdigit() for c in s)
        length = len(s) + (1 if text.startswith("00", start) else 0)
        return (start, start + length) if 8 <= n <= 15 else None
    if (s[0] == "0" and "/" in s) or s.startswith("(0"):
        return (start, end) if 9 <= n <= 12 else None
    seps = {c for c in s if c in " .-"}
    if len(seps) > 1 and s[0] != "(":
        return None  # "01-02 2024" mixes separators: not a written phone number
    if s[0] == "0":
        if not 9 <= n <= 12:
            return None
        groups = re.split(r"[ .-]", s)
        if "." in seps and not all(len(g) == 2 for g in groups[1:]):
            return None  # dotted only in the French 2-digit style (keeps 05.01.2024 dates)
        return start, end
    return (start, end) if n == 10 else None


# --------------------------------------------------------------------------- IP addresses
# Dotted quads with valid octets, not part of a longer dotted number and not after a version
# marker ("v", "version", "Chrome/" ...).  By default only GLOBAL addresses are personal data:
# loopback, private, link-local, documentation (RFC 5737 / 3849) and reserved ranges are kept
# (they identify no one and often appear in docs and dev setups); `include_private` changes that.
IPV4 = (r"\d", r"(?<![\w.:/-].)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\w-]|\.\d)")
# Candidate IPv6, matched from its first ":" (a hex lead would fire on every a-f letter of a
# text); the validator walks left over the first group.  ipaddress decides validity.
# A group followed by "." is the start of an embedded IPv4 ("::ffff:8.8.8.8"), not hex.
IPV6 = (r":", r"[0-9A-Fa-f]{0,4}+(?::(?:[0-9A-Fa-f]{1,4}+(?!\.\d))?){1,6}(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])")
_HEX = frozenset("0123456789abcdefABCDEF")
# "v1.2.3.4", "Chrome/120.0.0.0", "Section 22.1.4.1", "§ 6.1.7.1": numbered things, not hosts.
_VERSION_CONTEXT = re.compile(
    r"(?:\bv|version|ver|release|build|node|chrome|firefox|safari|edge|opera|webkit|gecko|os"
    r"|python|rev|section|sec|chapter|clause|figure|fig|table|step|item|article|paragraph"
    r"|part|appendix|annex|rfc|§)[\s:=/.]*$",
    re.IGNORECASE,
)


def make_ip_validator(include_private: bool) -> Validator:
    def _ip(text: str, start: int, end: int) -> tuple[int, int] | None:
        if text[start] == ":":
            i = start
            while i > start - 4 and i > 0 and text[i - 1] in _HEX:
                i -= 1
            if i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_:."):
                return None
            start = i
        s = text[start:end]
        if ":" in s:
            if s.count(":") < 2 or not any(c.isdigit() for c in s):
                return None
            try:
                v6 = ipaddress.IPv6Address(s)
            except ValueError:
                return None
            # "::ffff:8.8.8.8" is the IPv4 address
            addr: ipaddress.IPv4Address | ipaddress.IPv6Address = v6.ipv4_mapped or v6
            if addr.is_unspecified or addr.is_loopback:
                return None
            if not include_private and (not addr.is_global or addr.is_reserved or addr.is_multicast):
                return None
            return start, end
        if _VERSION_CONTEXT.search(text, max(0, start - 12), start):
            return None
        try:
            addr = ipaddress.IPv4Address(s)  # rejects octets > 255 and leading zeros
        except ValueError:
            return None
        if addr.is_unspecified or addr.is_loopback or s.startswith("255."):
            return None
        if not include_private and (not addr.is_global or addr.is_multicast):
            return None
        return start, end

    return _ip


# --------------------------------------------------------------------------- JWT
# header.payload.signature, base64url; the header is JSON so it starts with "eyJ" ('{"').
JWT = ((r"e", r"(?<![\w-].)yJ[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]{8,}+\.[A-Za-z0-9_-]*+(?![\w-])"),)


# --------------------------------------------------------------------------- secrets
AWS_KEY = ((r"A", r"(?<![A-Za-z0-9].)(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|PKA|ROA|SCA)[0-9A-Z]{16}(?![A-Za-z0-9])"),)
# Stripe-style: sk_live_..., pk_test_..., rk_live_..., whsec_...
STRIPE_KEY = ((r"[spr]", r"(?<!\w.)k_(?:live|test)_[0-9A-Za-z]{10,99}+(?!\w)"),
              (r"w", r"(?<!\w.)hsec_[0-9A-Za-z]{24,}+(?!\w)"))
GITHUB_TOKEN = ((r"g", r"(?<!\w.)(?:h[pousr]_[A-Za-z0-9]{36,251}+|ithub_pat_[A-Za-z0-9_]{40,251}+)(?!\w)"),)
SLACK_TOKEN = ((r"x", r"(?<![\w-].)ox[abposr]-[A-Za-z0-9-]{10,250}"),
               (r"h", r"ooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+"))
GOOGLE_API_KEY = ((r"A", r"(?<![\w-].)Iza[0-9A-Za-z_-]{35}(?![\w-])"),)
# Only the credential after "Bearer " is redacted; prose ("bearer authentication") is not a
# token: the credential must hold a digit, or be 16+ chars mixing upper and lower case.
# "Basic <base64 of user:password>" (HTTP basic auth) too: the credential must decode to text
# holding a ":", so prose ("Basic Information", "basic usage") never matches.
BEARER = (
    (r"[Bb]", r"(?<![\w-].)earer[ \t]+[A-Za-z0-9._~+/=-]{8,}"),
    (r"[Bb]", r"(?<![\w-].)asic[ \t]+[A-Za-z0-9+/]{4,}+={0,2}(?![\w+/=-])"),
)


def _bearer(text: str, start: int, end: int) -> tuple[int, int] | None:
    if text[start + 1 : start + 2] in "aA":  # Basic
        m = re.match(r"[Bb]asic[ \t]+", text[start:end])
        tok_start = start + m.end() if m else start
        try:
            decoded = base64.b64decode(text[tok_start:end], validate=True)
        except (ValueError, binascii.Error):
            return None
        return (tok_start, end) if b":" in decoded else None
    m = re.match(r"[Bb]earer[ \t]+", text[start:end])
    tok_start = start + (m.end() if m else 0)
    tok = text[tok_start:end]
    if any(c.isdigit() for c in tok) or (len(tok) >= 16 and not tok.islower() and not tok.isupper()):
        return tok_start, end
    return None


# The body may hold "Proc-Type:"/"DEK-Info:" headers but never another BEGIN line: stopping
# there keeps a text of many unterminated BEGIN lines linear.  A block split across text nodes
# leaves a tail "<base64>-----END ... PRIVATE KEY-----": the second alternative takes the END
# line and the validator walks left over the base64 before it.
PRIVATE_KEY = (
    (
        r"-",
        r"----BEGIN[A-Z ]{0,20} PRIVATE KEY-----"
        r"(?:(?:[^-]|-(?!----BEGIN)){0,20000}?-----END[A-Z ]{0,20} PRIVATE KEY-----|[A-Za-z0-9+/=\s\\]*+)",
    ),
    (r"-", r"----END[A-Z ]{0,20} PRIVATE KEY-----"),
)
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\\ \t\r\n")


def _private_key(text: str, start: int, end: int) -> tuple[int, int] | None:
    if text.startswith("-----BEGIN", start):
        return start, end
    i = start
    lo = max(0, start - 20000)
    while i > lo and text[i - 1] in _B64_CHARS:
        i -= 1
    while i < start and text[i] in " \t\r\n":
        i += 1
    return i, end


# --------------------------------------------------------------------------- skipped spans
# Consumed by the combined regex and never redacted, so nothing inside them is mistaken for
# data: base64 data: URIs (images, fonts: binary, often huge, and not text).  UUIDs need no
# skip: every numeric detector refuses to start or end next to "-" + hex, so their groups are
# never read as phone or card numbers (tests pin that).
SKIP_DATA_URI = (r"d", r"ata:[\w.+-]+/[\w.+-]+(?:;[\w.+-]+=[\w.+-]+)*;base64,[A-Za-z0-9+/=\s\\]*")


def builtin_patterns(include_private_ips: bool = False) -> dict[str, Pattern]:
    """Detector name -> pattern, in the order they are tried at one position."""
    ip = make_ip_validator(include_private_ips)
    return {
        "private_key": Pattern("private_key", PRIVATE_KEY, _private_key, family="word"),
        "jwt": Pattern("jwt", JWT, family="word"),
        "aws_key": Pattern("aws_key", AWS_KEY, family="word"),
        "stripe_key": Pattern("stripe_key", STRIPE_KEY, family="word"),
        "github_token": Pattern("github_token", GITHUB_TOKEN, family="word"),
        "slack_token": Pattern("slack_token", SLACK_TOKEN, family="word"),
        "google_api_key": Pattern("google_api_key", GOOGLE_API_KEY, family="word"),
        "bearer": Pattern("bearer", BEARER, _bearer, family="word"),
        "email": Pattern("email", EMAIL, _email),
        "iban": Pattern("iban", IBAN, _iban),
        "card": Pattern("card", CARD, _card),
        "ssn": Pattern("ssn", SSN),
        "phone": Pattern("phone", PHONE, _phone),
        "ip": Pattern("ip", (IPV4, IPV6), ip),
    }
