"""Built-in tables: detectors (with their default redactions), URL parameter names, DOM rules,
always-redacted headers and sensitive payload keys.  Custom rules go through the same lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DetectorInfo:
    name: str  # config key; the report calls it "@<name>"
    style: str  # default redaction style
    summary: str  # one line for docs and `check-config`


DETECTORS: dict[str, DetectorInfo] = {
    d.name: d
    for d in (
        DetectorInfo("email", "replace", "e-mail addresses"),
        DetectorInfo("card", "mask", "payment card numbers, 13-19 digits, Luhn-checked"),
        DetectorInfo("iban", "mask", "IBANs, country length + mod-97 checked"),
        DetectorInfo("ssn", "mask", "US social security numbers AAA-GG-SSSS"),
        DetectorInfo("phone", "mask", "phone numbers, international (+CC) and common national formats"),
        DetectorInfo("ip", "replace", "public IPv4 and IPv6 addresses"),
        DetectorInfo("jwt", "replace", "JSON Web Tokens"),
        DetectorInfo("aws_key", "replace", "AWS access key ids (AKIA..., ASIA...)"),
        DetectorInfo("stripe_key", "replace", "Stripe-style keys sk_live_/pk_test_/rk_/whsec_"),
        DetectorInfo("github_token", "replace", "GitHub tokens ghp_/gho_/ghu_/ghs_/ghr_/github_pat_"),
        DetectorInfo("slack_token", "replace", "Slack tokens xox?- and webhook URLs"),
        DetectorInfo("google_api_key", "replace", "Google API keys AIza..."),
        DetectorInfo("bearer", "replace", "the credential after 'Bearer '"),
        DetectorInfo("private_key", "replace", "PEM private key blocks"),
    )
}

# Aliases usable as keys under `detectors:` (Relay-style): set several detectors at once.
DETECTOR_GROUPS: dict[str, tuple[str, ...]] = {
    "secrets": ("aws_key", "stripe_key", "github_token", "slack_token", "google_api_key", "bearer", "private_key"),
}

DEFAULT_URL_PARAMS: tuple[str, ...] = (
    "token", "access_token", "id_token", "key", "api_key", "apikey", "secret", "password",
    "passwd", "pwd", "session", "sessionid", "sid", "code", "auth", "signature", "sig", "email",
    "jsessionid", "phpsessid",
)
# Attributes holding URLs: query/fragment parameters are redacted by name in these.
URL_ATTRIBUTES = frozenset(
    ("href", "src", "action", "formaction", "poster", "cite", "background", "ping", "data",
     "xlink:href", "rr_src", "longdesc", "manifest", "codebase", "itemid", "content-url")
)
SRCSET_ATTRIBUTES = frozenset(("srcset", "imagesrcset"))

# Attributes whose value is text a person reads (masked, with text, by a `mask` DOM rule).
TEXT_ATTRIBUTES = frozenset(
    ("value", "placeholder", "title", "alt", "label", "content", "aria-label",
     "aria-description", "aria-valuetext", "aria-placeholder", "aria-roledescription", "summary")
)

# Attributes kept on a blocked element (so layout holds); everything else is dropped.
BLOCK_KEEP_ATTRIBUTES = frozenset(
    ("id", "class", "style", "width", "height", "rr_width", "rr_height", "type", "rel", "hidden", "dir")
)

# Always redacted whatever the rules say (network payloads, error requests, replay requests).
ALWAYS_REDACTED_HEADERS = frozenset(
    ("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key")
)

# Keys whose values are secrets in any JSON payload (network bodies, breadcrumb data, error
# extra).  With `DEFAULT_URL_PARAMS` and the header names above they make ONE list of secret
# names, applied the same way wherever a name stands next to a value (scrubbing/names.py).
DEFAULT_SENSITIVE_KEYS: tuple[str, ...] = (
    "password", "passwd", "pwd", "secret", "client_secret", "token", "access_token",
    "refresh_token", "id_token", "api_key", "apikey", "authorization", "auth", "credentials",
    "cookie", "set_cookie", "x_api_key", "session", "sessionid", "session_id", "session_key",
    "private_key", "csrf", "csrf_token", "xsrf", "xsrf_token", "card_number", "cvv", "cvc", "ssn",
)

# Secret names that also count inside a longer name ("reset_token", "newPassword",
# "X-CSRF-Token", "client_secret_v2"); the others ("key", "code", "auth", "sid", "session",
# ...) must be the whole name ("keyword", "postcode", "author", "sessionSampleRate" are not
# secrets).
NAME_PARTS = frozenset(
    ("password", "passwd", "secret", "token", "api_key", "apikey", "signature", "private_key", "csrf",
     "xsrf", "credentials", "card_number", "set_cookie")
)

# DOM rules that apply unless turned off under `dom.builtin`.
BUILTIN_DOM_RULES: tuple[dict[str, Any], ...] = (
    {"name": "password-input", "selector": "input[type=password i]", "action": "mask"},
    {"name": "card-autocomplete", "selector": "[autocomplete^=cc- i]", "action": "mask"},
    # Fields made for an address or a number are masked from the first keystroke: the detectors
    # only recognise a value once it is nearly complete, and a segment can end mid-word.
    {"name": "contact-input",
     "selector": "input[type=email i], input[type=tel i], [autocomplete^=email i], [autocomplete^=tel i], "
                 "[autocomplete=username i], input[name*=email i], input[name*=phone i], input[id*=email i], "
                 "input[id*=phone i]",
     "action": "mask"},
    {"name": "csrf-meta", "selector": "meta[name*=csrf i], meta[name*=token i], meta[name*=xsrf i]",
     "action": "mask_attributes", "attributes": ["content"]},
    # Fields whose autocomplete token says they hold a person's name, address, birthday,
    # password or one-time code (HTML autofill: name, given-name, family-name, nickname,
    # street-address, address-line1, postal-code, bday, new-password, one-time-code...).
    {"name": "personal-autocomplete",
     "selector": "[autocomplete*=name i], [autocomplete*=address i], [autocomplete*=postal i], "
                 "[autocomplete*=bday i], [autocomplete*=password i], [autocomplete=one-time-code i]",
     "action": "mask"},
    # Hidden form fields carry CSRF tokens (authenticity_token, csrfmiddlewaretoken, _token),
    # session and user ids: never shown, so masking their value costs the replay nothing.
    {"name": "hidden-input", "selector": "input[type=hidden i]", "action": "mask_attributes",
     "attributes": ["value"]},
)

URL_PARAM_LABEL = "[Filtered]"
