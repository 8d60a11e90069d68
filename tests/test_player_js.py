"""The player's pure browser modules under Node: plan arithmetic mirrors player/timeline.py, the
state machine's transitions, and the URL policy of the replay iframe."""

from __future__ import annotations

import json
import random
import subprocess

from replayd.player import timeline
from tests.harness import REPO

NODE = "node"  # `make test` needs Node.js for npm ci: without it these fail rather than skip
STATIC = REPO / "static" / "player"


def run_js(code: str) -> object:
    result = subprocess.run([NODE, "--input-type=module"], input=code, capture_output=True, text=True, timeout=30,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_js_plan_mirrors_python():
    rng = random.Random(6)
    cases = []
    for _ in range(40):
        n = rng.randint(1, 30)
        starts = sorted(rng.sample(range(0, 400_000, 250), n))
        table = [{"id": i, "start": s, "end": s + 4000, "full": i == 0 or rng.random() < 0.2}
                 for i, s in enumerate(starts)]
        for t in [rng.randint(-1000, 420_000) for _ in range(5)]:
            cases.append({"table": table, "t": t, "expected": timeline.plan(table, t)})
    code = f"""
import {{ plan, segmentAt, ranges, formatTime }} from '{(STATIC / "timeline.js").as_uri()}';
const cases = {json.dumps(cases)};
const got = cases.map((c) => plan(c.table, c.t));
const table = [{{start: 0, end: 4000}}, {{start: 5000, end: 9000}}, {{start: 20000, end: 24000}}];
console.log(JSON.stringify({{got, ranges: ranges(table, [2, 0, 1]), gap: ranges(table, [0, 2]),
  times: [formatTime(0), formatTime(65500), formatTime(3723000)]}}));
"""
    out = run_js(code)
    assert out["got"] == [c["expected"] for c in cases]
    assert out["ranges"] == [[0, 24000]]
    assert out["gap"] == [[0, 5000], [20000, 24000]]
    assert out["times"] == ["0:00", "1:05", "1:02:03"]


def test_state_machine_transitions():
    code = f"""
import {{ transition, initialState }} from '{(STATIC / "machine.js").as_uri()}';
const run = (events, s = initialState) => events.reduce((state, type) => transition(state, {{ type }}), s);
console.log(JSON.stringify({{
  loadedPaused: run(['LOADED']).name,
  autoplay: run(['PLAY', 'LOADED']).name,
  toggledTwice: run(['TOGGLE', 'TOGGLE', 'LOADED']).name,
  playPause: run(['LOADED', 'PLAY', 'PAUSE']).name,
  seekWhilePlaying: run(['LOADED', 'PLAY', 'SEEK_UNLOADED']),
  resumesAfterLoad: run(['LOADED', 'PLAY', 'SEEK_UNLOADED', 'LOADED']).name,
  staysPausedAfterLoad: run(['LOADED', 'SEEK_UNLOADED', 'LOADED']).name,
  ended: run(['LOADED', 'PLAY', 'END']).name,
  replay: run(['LOADED', 'PLAY', 'END', 'PLAY']),
  seekAfterEnd: run(['LOADED', 'PLAY', 'END', 'SEEK']).name,
  failed: run(['LOADED', 'PLAY']).name && transition(run(['LOADED']), {{ type: 'FAIL', error: 'x' }}),
  failedIsFinal: run(['PLAY', 'LOADED'], transition(initialState, {{ type: 'FAIL' }})).name,
  seekRetriesAfterFailure: run(['SEEK_UNLOADED', 'LOADED'], transition(initialState, {{ type: 'FAIL' }})).name,
  endIgnoredWhileLoading: run(['END']).name,
}}));
"""
    out = run_js(code)
    assert out["loadedPaused"] == "paused"
    assert out["autoplay"] == "playing"
    assert out["toggledTwice"] == "paused"
    assert out["playPause"] == "paused"
    assert out["seekWhilePlaying"] == {"name": "loading", "resume": True}
    assert out["resumesAfterLoad"] == "playing"
    assert out["staysPausedAfterLoad"] == "paused"
    assert out["ended"] == "ended"
    assert out["replay"] == {"name": "playing", "resume": False, "restart": True}
    assert out["seekAfterEnd"] == "paused"
    assert out["failed"] == {"name": "failed", "resume": False, "error": "x"}
    assert out["failedIsFinal"] == "failed"
    assert out["seekRetriesAfterFailure"] == "paused"  # a seek retries what failed to load
    assert out["endIgnoredWhileLoading"] == "loading"


# --- the replay iframe's URL policy (static/player/urlpolicy.js) --------------------------------

URLPOLICY = (STATIC / "urlpolicy.js").as_uri()
BLOCKED = "about:invalid"


def url_policy(code: str, app_host: str = "replayd.example.org",
               base: str = "https://shop.example.com/cart/") -> object:
    """Run ``code`` with ``policy`` (a UrlPolicy whose recorded page is ``base``) and its module's exports."""
    return run_js(f"""
import {{ UrlPolicy, isPrivateHost, rewriteCss, BLOCKED }} from '{URLPOLICY}';
const policy = new UrlPolicy({{ appHost: {json.dumps(app_host)} }});
policy.event({{ type: 4, timestamp: 1, data: {{ href: {json.dumps(base)}, width: 800, height: 600 }} }});
{code}
""")


PRIVATE_URLS = [
    # loopback, in every spelling the URL parser turns into 127.0.0.1 or ::1
    "http://127.0.0.1:8080/x", "http://127.255.255.254/", "http://2130706433/", "http://0x7f.1/", "http://0177.0.0.1/",
    "http://127.1/", "http://127.0.0.1./", "http://%31%32%37.0.0.1/", "http://１２７.０.０.１/", "https://[::1]/",
    "http://[0:0:0:0:0:0:0:1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[::127.0.0.1]/",
    "http://localhost/", "http://LOCALHOST./", "http://api.localhost/", "http://%6cocalhost/", "http://ⓛocalhost/",
    # the unspecified address, private, shared, link-local and other non-public ranges
    "http://0.0.0.0/", "http://0/", "http://[::]/", "http://10.0.0.1/", "http://10.255.255.255/", "http://172.16.0.1/",
    "http://172.31.255.255/", "http://192.168.1.1/", "http://100.64.0.1/", "http://100.127.255.255/",
    "http://169.254.169.254/latest/meta-data/", "http://192.0.0.1/", "http://198.18.0.1/", "http://224.0.0.1/",
    "http://255.255.255.255/", "http://[fc00::1]/", "http://[fd12:3456::1]/", "http://[fe80::1]/", "http://[febf::1]/",
    "http://[ff02::1]/", "http://[::ffff:10.0.0.1]/", "http://[::ffff:192.168.0.1]/", "http://[64:ff9b::7f00:1]/",
    "http://[2002:c0a8:101::]/",
    # names of local networks, and single labels (resolved through the local search domains)
    "http://printer.local/", "http://db.internal/", "http://nas.home.arpa/", "http://router.lan/", "http://intranet/",
    # this replayd, any port or scheme
    "https://replayd.example.org/api/0/projects/1/replays/", "http://replayd.example.org:8000/x", "http://REPLAYD.example.org./",
    # a fragment where it would be fetched: the replay page itself
    "#top",
    # schemes that are not for subresources
    "javascript:alert(1)", "ftp://files.example.com/a.png", "file:///etc/passwd", "ws://example.com/", "about:blank",
    "chrome://settings", "  jav\tascript:alert(1)",
]

PUBLIC_URLS = {
    "https://cdn.example.com/app.css": "https://cdn.example.com/app.css",
    "http://cdn.example.com/logo.png": "https://cdn.example.com/logo.png",  # upgraded
    "http://cdn.example.com:80/logo.png": "https://cdn.example.com/logo.png",
    "http://cdn.example.com:8080/a.png": "https://cdn.example.com:8080/a.png",
    "//cdn.example.com/font.woff2": "https://cdn.example.com/font.woff2",
    "/img/a.png": "https://shop.example.com/img/a.png",  # the recorded page's, not replayd's
    "b.png?x=1": "https://shop.example.com/cart/b.png?x=1",
    "https://8.8.8.8/x": "https://8.8.8.8/x",
    "http://172.32.0.1/": "https://172.32.0.1/",
    "http://100.128.0.1/": "https://100.128.0.1/",
    "http://[2606:4700::1111]/": "https://[2606:4700::1111]/",
    "http://[::ffff:8.8.8.8]/": "https://[::ffff:808:808]/",
    "data:image/png;base64,iVBORw0KGgo=": "data:image/png;base64,iVBORw0KGgo=",
    "blob:https://shop.example.com/0b7d": "blob:https://shop.example.com/0b7d",
    "": "",  # nothing is fetched for an empty URL ...
    "  ": "",  # ... and a blank one would be the replay page itself
}


def test_url_policy_blocks_the_developers_network_and_keeps_public_hosts():
    out = url_policy(f"""
console.log(JSON.stringify({{
  private: {json.dumps(PRIVATE_URLS)}.map((u) => policy.url(u)),
  public: {json.dumps(list(PUBLIC_URLS))}.map((u) => policy.url(u)),
  noBase: new UrlPolicy({{ appHost: 'x.example' }}).url('/img/a.png'),
  reference: policy.url(' #icon', {{ reference: true }}),
  hosts: ['example.com', 'localhost', '10.0.0.1', '[::1]', 'service.corp', 'a.b.c.d.example'].map(isPrivateHost),
}}));
""")
    assert dict(zip(PRIVATE_URLS, out["private"], strict=True)) == dict.fromkeys(PRIVATE_URLS, BLOCKED)
    assert dict(zip(PUBLIC_URLS, out["public"], strict=True)) == PUBLIC_URLS
    assert out["noBase"] == BLOCKED  # a relative URL before any Meta event has nothing to resolve against
    assert out["reference"] == " #icon"  # a part of the replayed document (<use href="#icon">)
    assert out["hosts"] == [False, True, True, True, True, False]


def test_url_policy_finds_every_url_in_css():
    cases = {
        "a{background:url(http://127.0.0.1/a.png) no-repeat}": 'a{background:url("about:invalid") no-repeat}',
        "a{background:URL( 'http://10.0.0.1/a.png' )}": 'a{background:URL( "about:invalid" )}',
        "a{background:\\75 rl(http://localhost/a.png)}": 'a{background:url("about:invalid")}',  # escaped name
        "a{background:u\\72l('http://localhost/a.png')}": 'a{background:u\\72l("about:invalid")}',
        "a{background:url(http://127.0.0.1/a\\29 .png)}": 'a{background:url("about:invalid")}',  # escaped ")"
        "a{background:url(http://127.0.0.1/a.png": 'a{background:url("about:invalid")',  # unclosed at the end
        '@import "http://127.0.0.1/a.css"; @import url(//localhost/b.css) print;':
            '@import "about:invalid"; @import url("about:invalid") print;',
        "@\\69mport /* c */ 'http://[::1]/a.css';": '@\\69mport /* c */ "about:invalid";',
        'a{background:image-set("http://127.0.0.1/1.png" 1x, "b.png" type("image/png") 2x)}':
            'a{background:image-set("about:invalid" 1x, "https://shop.example.com/cart/b.png" type("image/png") 2x)}',
        "a{background:-webkit-image-set('http://127.0.0.1/1.png' 1x)}":
            'a{background:-webkit-image-set("about:invalid" 1x)}',
        "@font-face{src:url(http://127.0.0.1/f.woff2) format('woff2'),url(https://cdn.example.com/f.woff)}":
            "@font-face{src:url(\"about:invalid\") format('woff2'),url(https://cdn.example.com/f.woff)}",
        "a{background:url(/bg.png)}": 'a{background:url("https://shop.example.com/bg.png")}',
        'a{background:url("http://cdn.example.com/a\\"b.png")}': 'a{background:url("https://cdn.example.com/a%22b.png")}',
        # not fetched, so kept as written: strings elsewhere, comments, references to SVG elements, bad url tokens
        'a{content:"http://127.0.0.1/"} /* url(http://127.0.0.1/) */ b:hover{fill:url(#g);clip-path:url(#c)}':
            'a{content:"http://127.0.0.1/"} /* url(http://127.0.0.1/) */ b:hover{fill:url(#g);clip-path:url(#c)}',
        # a fragment elsewhere would fetch the replay page itself
        "a{fill:url(#g);background:url(#g)} @import '#x'; @font-face{src:url(#f)}":
            'a{fill:url(#g);background:url("about:invalid")} @import "about:invalid"; '
            '@font-face{src:url("about:invalid")}',
        'a{background:url(http://127.0.0.1/a"b)}': 'a{background:url(http://127.0.0.1/a"b)}',
        'a\\"{background:url(http://127.0.0.1/a)}': 'a\\"{background:url("about:invalid")}',
        "a{color:red}": "a{color:red}",
    }
    out = url_policy(f"console.log(JSON.stringify({json.dumps(list(cases))}.map((c) => policy.css(c))));")
    assert dict(zip(cases, out, strict=True)) == cases


def test_url_policy_rewrites_every_place_rrweb_carries_a_url():
    private = "http://127.0.0.1:9/"
    snapshot_html = {"type": 2, "tagName": "html", "id": 3, "attributes": {}, "childNodes": [
        {"type": 2, "tagName": "head", "id": 4, "attributes": {}, "childNodes": [
            {"type": 2, "tagName": "link", "id": 5, "attributes": {"rel": "stylesheet", "href": private + "a.css",
                                                                     "_cssText": f"@import '{private}i.css';"},
             "childNodes": []},
            {"type": 2, "tagName": "link", "id": 19, "attributes": {"rel": "stylesheet", "href": "#x"},
             "childNodes": []},
            {"type": 2, "tagName": "style", "id": 6, "attributes": {}, "childNodes": [
                {"type": 3, "id": 7, "textContent": f"a{{background:url({private}s.png)}}", "isStyle": True}]},
            {"type": 2, "tagName": "style", "id": 8, "attributes": {}, "childNodes": [
                {"type": 3, "id": 9, "textContent": "a{color:red}"}]},
        ]},
        {"type": 2, "tagName": "body", "id": 10, "attributes": {"background": private + "b.png"}, "childNodes": [
            {"type": 2, "tagName": "img", "id": 11, "childNodes": [], "attributes": {
                "src": private + "i.png", "srcset": f"{private}1.png 1x, https://cdn.example.com/2.png 2x",
                "rr_dataURL": private + "d.png", "alt": "url(http://127.0.0.1:9/not-css)"}},
            {"type": 2, "tagName": "iframe", "id": 12, "childNodes": [],
             "attributes": {"srcdoc": f"<img src={private}>"}},
            {"type": 2, "tagName": "svg", "id": 13, "isSVG": True, "childNodes": [
                {"type": 2, "tagName": "use", "id": 14, "isSVG": True, "childNodes": [],
                 "attributes": {"href": "#icon", "fill": "url(#g)", "style": "stroke:url(#s);cursor:url(#c)"}},
                {"type": 2, "tagName": "image", "id": 15, "isSVG": True, "childNodes": [],
                 "attributes": {"xlink:href": private + "x.png", "filter": f"url({private}f.svg#f)"}},
            ], "attributes": {}},
            {"type": 2, "tagName": "video", "id": 16, "childNodes": [],
             "attributes": {"poster": private + "p.png", "style": f"background:url({private}v.png)"}},
            {"type": 2, "tagName": "a", "id": 17, "childNodes": [],
             "attributes": {"href": "javascript:x()", "ping": private}},
            {"type": 3, "id": 18, "textContent": f"url({private}plain-text)"},
        ]},
    ]}
    events = [
        {"type": 2, "timestamp": 2, "data": {"node": {"type": 0, "id": 1, "childNodes": [snapshot_html]}}},
        {"type": 3, "timestamp": 3, "data": {"source": 0, "removes": [], "texts": [
            {"id": 7, "value": f"a{{background:url({private}t.png)}}"},  # a <style>'s text: CSS
            {"id": 18, "value": f"url({private}plain-text)"},  # a paragraph's text: kept
        ], "attributes": [
            {"id": 11, "attributes": {"src": private + "m.png", "srcdoc": "x", "width": "10"}},
            {"id": 19, "attributes": {"href": "#y"}},
            {"id": 14, "attributes": {"href": "#other", "style": {"fill": "url(#h)", "background": "url(#b)"}}},
            {"id": 16, "attributes": {"style": {"background-image": f"url({private}o.png)",
                                                 "border-image": [f"url({private}q.png)", "important"],
                                                 "color": False}}},
        ], "adds": [
            {"parentId": 10, "nextId": None, "node": {"type": 2, "tagName": "style", "id": 20, "attributes": {},
                                                       "childNodes": []}},
            {"parentId": 20, "nextId": None,
             "node": {"type": 3, "id": 21, "textContent": f"a{{b:url({private}n.png)}}"}},
            {"parentId": 10, "nextId": None, "node": {"type": 2, "tagName": "img", "id": 22, "attributes":
                                                       {"src": private + "a.png"}, "childNodes": []}},
        ]}},
        {"type": 3, "timestamp": 4, "data": {"source": 0, "removes": [], "attributes": [], "adds": [],
                                             "texts": [{"id": 21, "value": f"a{{b:url({private}u.png)}}"}]}},
        {"type": 3, "timestamp": 5, "data": {"source": 8, "id": 8,
                                             "adds": [{"rule": f"a{{b:url({private}r.png)}}", "index": 0}],
                                             "replace": f"@import '{private}p.css';",
                                             "replaceSync": f"a{{b:url({private}y.png)}}"}},
        {"type": 3, "timestamp": 6, "data": {"source": 13, "id": 8, "index": [0],
                                             "set": {"property": "background", "value": f"url({private}c.png)"}}},
        {"type": 3, "timestamp": 6, "data": {"source": 13, "id": 8, "index": [0],
                                             "set": {"property": "Fill", "value": "url(#g)"}}},
        {"type": 3, "timestamp": 7, "data": {"source": 15, "id": 1, "styleIds": [1], "styles": [
            {"styleId": 1, "rules": [{"rule": f"a{{b:url({private}e.png)}}", "index": 0}]}]}},
        {"type": 3, "timestamp": 8, "data": {"source": 10, "family": "F", "fontSource": f"url({private}f.woff2)",
                                             "buffer": False, "descriptors": {}}},
        {"type": 3, "timestamp": 9, "data": {"source": 10, "family": "G", "fontSource": "[0,1,2]", "buffer": True,
                                             "descriptors": {}}},
    ]
    out = url_policy(f"""
const events = {json.dumps(events)};
const once = JSON.stringify(policy.events(events));
const again = new UrlPolicy({{ appHost: 'replayd.example.org' }});
again.base = policy.base;
console.log(JSON.stringify({{ events, idempotent: JSON.stringify(again.events(JSON.parse(once))) === once }}));
""")
    text = json.dumps(out["events"])
    # what is left of the private host: only what no browser fetches (an alt text, a paragraph's text)
    assert text.count("127.0.0.1") == 3, text
    body = out["events"][0]["data"]["node"]["childNodes"][0]["childNodes"][1]
    img, iframe, svg, video, link = body["childNodes"][:5]
    assert img["attributes"] == {"src": BLOCKED, "srcset": "https://cdn.example.com/2.png 2x", "rr_dataURL": BLOCKED,
                                 "alt": "url(http://127.0.0.1:9/not-css)"}
    assert "srcdoc" not in iframe["attributes"]
    assert svg["childNodes"][0]["attributes"] == {"href": "#icon", "fill": "url(#g)",
                                                  "style": 'stroke:url(#s);cursor:url("about:invalid")'}
    assert out["events"][0]["data"]["node"]["childNodes"][0]["childNodes"][0]["childNodes"][1]["attributes"]["href"] \
        == BLOCKED  # <link href="#x"> would fetch the replay page
    assert svg["childNodes"][1]["attributes"] == {"xlink:href": BLOCKED, "filter": 'url("about:invalid")'}
    assert video["attributes"]["style"] == 'background:url("about:invalid")'
    assert link["attributes"] == {"href": BLOCKED, "ping": ""}
    mutation = out["events"][1]["data"]
    assert mutation["texts"] == [{"id": 7, "value": 'a{background:url("about:invalid")}'},
                                 {"id": 18, "value": f"url({private}plain-text)"}]
    assert mutation["attributes"][0]["attributes"] == {"src": BLOCKED, "width": "10"}
    assert mutation["attributes"][1]["attributes"] == {"href": BLOCKED}
    assert mutation["attributes"][2]["attributes"] == {
        "href": "#other", "style": {"fill": "url(#h)", "background": 'url("about:invalid")'}}
    assert mutation["attributes"][3]["attributes"]["style"] == {
        "background-image": 'url("about:invalid")', "border-image": ['url("about:invalid")', "important"],
        "color": False}
    assert out["events"][2]["data"]["texts"][0]["value"] == 'a{b:url("about:invalid")}'
    assert out["events"][5]["data"]["set"]["value"] == "url(#g)"
    assert out["events"][7]["data"]["fontSource"] == 'url("about:invalid")'
    assert out["events"][8]["data"]["fontSource"] == "[0,1,2]"
    assert out["idempotent"]


def test_js_clamp_moment_mirrors_python():
    """?t= past the end is the end, before the start or not a number is the start, in both."""
    duration = 1_837_400
    cases = [-5000, 0, 1.5, 1_836_400, duration, duration + 0.4, 1e12, float("inf"), float("-inf"), float("nan")]
    expected = [timeline.clamp_moment(t, duration) for t in cases]
    assert expected == [0, 0, 1.5, 1_836_400, duration, duration, duration, duration, 0, 0]
    code = f"""
import {{ clampMoment }} from '{(STATIC / "timeline.js").as_uri()}';
const cases = [-5000, 0, 1.5, 1836400, {duration}, {duration} + 0.4, 1e12, Infinity, -Infinity, NaN];
const strings = ['abc', '', '12.5', '-3', 'Infinity', undefined, null];
console.log(JSON.stringify({{numbers: cases.map((t) => clampMoment(t, {duration})),
  strings: strings.map((t) => clampMoment(t, {duration})), noDuration: clampMoment(500, undefined)}}));
"""
    out = run_js(code)
    assert out["numbers"] == expected
    assert out["strings"] == [0, 0, 12.5, 0, duration, 0, 0]
    assert out["noDuration"] == 0


def test_panel_helpers():
    """The detail pane's body text (JSON pretty-printed, whatever the recorder kept), sizes, console levels."""
    code = f"""
import {{ bodyText, consoleLevel, formatBytes }} from '{(STATIC / "panels.js").as_uri()}';
console.log(JSON.stringify({{
  object: bodyText({{a: 1, b: [true, null]}}),
  jsonString: bodyText(' {{"x": "[email]"}} '),
  cutJson: bodyText('{{"x": "abc'),
  text: bodyText('name=[Filtered]&q=1'),
  none: [bodyText(undefined), bodyText(null), bodyText('')],
  number: bodyText(42),
  levels: ['log', 'info', 'warning', 'warn', 'error', 'assert', 'debug', 'trace', undefined, 'WARN'].map(consoleLevel),
  sizes: [0, 1023, 1024, 43520, 5 * 1024 * 1024, -1, 'x', undefined].map(formatBytes),
}}));
"""
    out = run_js(code)
    assert out["object"] == {"text": '{\n  "a": 1,\n  "b": [\n    true,\n    null\n  ]\n}', "json": True}
    assert out["jsonString"] == {"text": '{\n  "x": "[email]"\n}', "json": True}
    assert out["cutJson"] == {"text": '{"x": "abc', "json": False}
    assert out["text"] == {"text": "name=[Filtered]&q=1", "json": False}
    assert out["none"] == [None, None, None]
    assert out["number"] == {"text": "42", "json": False}
    assert out["levels"] == ["log", "info", "warn", "warn", "error", "error", "log", "log", "log", "warn"]
    assert out["sizes"] == ["0 B", "1023 B", "1.0 KB", "42.5 KB", "5.0 MB", "—", "—", "—"]
