"""rrweb recordings: every place text lives, DOM rules in snapshots and later mutations, state
across segments (through bytes, in a fresh Scrubber as another process would), inputs, CSS,
deep documents."""

from __future__ import annotations

import json
import re

from replayd.scrubbing import ReplayState, RuleSet, Scrubber, parse_rules

SECRET = b"test-secret"
EMAIL = "jane.roe@example.net"


# ----------------------------------------------------------------------------- builders
def E(nid, tag, attrs=None, *kids):
    return {"type": 2, "id": nid, "tagName": tag, "attributes": attrs or {}, "childNodes": list(kids)}


def T(nid, text, **kw):
    return {"type": 3, "id": nid, "textContent": text, **kw}


def doc(*kids):
    return {"type": 0, "id": 1, "childNodes": list(kids)}


def full(node):
    return {"type": 2, "data": {"node": node, "initialOffset": {"left": 0, "top": 0}}, "timestamp": 1}


def mut(adds=(), texts=(), attributes=(), removes=()):
    return {"type": 3, "data": {"source": 0, "adds": list(adds), "texts": list(texts),
                                "attributes": list(attributes), "removes": list(removes)}, "timestamp": 2}


def add(parent, node, next_id=None):
    return {"parentId": parent, "nextId": next_id, "node": node}


def inp(nid, text, checked=False):
    return {"type": 3, "data": {"source": 5, "text": text, "isChecked": checked, "id": nid}, "timestamp": 3}


def page(*body_kids, head=()):
    return doc(E(2, "html", {}, E(3, "head", {}, *head), E(4, "body", {}, *body_kids)))


def scrub(events, rules=None, state=None):
    s = Scrubber(parse_rules(rules) if rules is not None else RuleSet.default(), secret=SECRET)
    return s.scrub_recording(events, state)


def next_segment(events, prev_state, rules=None):
    """Scrub a later segment the way another worker process would: a fresh Scrubber and the
    state only as bytes."""
    return scrub(events, rules, ReplayState.from_bytes(prev_state.to_bytes()))


def find(node, nid):
    stack = [node]
    while stack:
        n = stack.pop()
        if n.get("id") == nid:
            return n
        stack.extend(n.get("childNodes", ()))
    raise KeyError(nid)


def dumps(events) -> str:
    return json.dumps(events)


# ----------------------------------------------------------------------------- full snapshots
def test_full_snapshot_every_text_place():
    head = (
        E(10, "title", {}, T(11, f"Inbox of {EMAIL}")),
        E(12, "meta", {"name": "csrf-token", "content": "Zx81kQ0p"}),
        E(13, "meta", {"name": "description", "content": "Docs for everyone"}),
        E(14, "style", {}, T(15, ".password-field { color: red } /* a@b.com */", isStyle=True)),
    )
    body = (
        E(20, "p", {"title": f"mail {EMAIL}", "data-user": EMAIL, "class": "lead"},
          T(21, f"Hello {EMAIL}, call +44 20 7946 0958")),
        E(22, "input", {"type": "password", "value": "hunter2!", "placeholder": "Password"}),
        E(23, "input", {"type": "text", "autocomplete": "cc-number", "value": "4111 1111 1111 1111"}),
        E(24, "input", {"type": "text", "value": EMAIL, "placeholder": "you@example.com"}),
        E(25, "a", {"href": "https://x.test/reset?token=abc123&lang=en"}, T(26, "Reset")),
        E(27, "img", {"src": "/a.png?sig=zz", "srcset": "/a.png?sig=zz 1x, /b.png?key=k 2x",
                      "alt": f"photo of {EMAIL}"}),
        E(28, "select", {}, E(29, "option", {"value": EMAIL}, T(30, EMAIL))),
        {"type": 5, "id": 31, "textContent": f" contact {EMAIL} "},
        E(32, "form", {"action": "/login?password=pw1"}),
    )
    events = [full(page(*body, head=head))]
    res = scrub(events)
    node = events[0]["data"]["node"]
    assert EMAIL not in dumps(events)
    assert find(node, 11)["textContent"] == "Inbox of [email]"
    assert find(node, 12)["attributes"]["content"] == "********"  # csrf-meta: mask_attributes
    assert find(node, 13)["attributes"]["content"] == "Docs for everyone"
    assert find(node, 15)["textContent"] == ".password-field { color: red } /* [email] */"
    assert find(node, 20)["attributes"] == {"title": "mail [email]", "data-user": "[email]", "class": "lead"}
    assert find(node, 21)["textContent"] == "Hello [email], call *** ** **** ****"
    assert find(node, 22)["attributes"] == {"type": "password", "value": "********", "placeholder": "********"}
    assert find(node, 23)["attributes"]["value"] == "**** **** **** ****"
    assert find(node, 24)["attributes"] == {"type": "text", "value": "[email]", "placeholder": "[email]"}
    assert find(node, 25)["attributes"]["href"] == "https://x.test/reset?token=[Filtered]&lang=en"
    assert find(node, 27)["attributes"]["srcset"] == "/a.png?sig=[Filtered] 1x, /b.png?key=[Filtered] 2x"
    assert find(node, 27)["attributes"]["src"] == "/a.png?sig=[Filtered]"
    assert find(node, 30)["textContent"] == "[email]"
    assert find(node, 31)["textContent"] == " contact [email] "
    assert find(node, 32)["attributes"]["action"] == "/login?password=[Filtered]"
    report = res.report.to_dict()
    assert report["by_rule"]["dom:password-input"] == 2
    assert report["by_rule"]["dom:card-autocomplete"] == 1
    assert report["by_rule"]["dom:csrf-meta"] == 1
    assert report["by_location"]["dom.comment"] == 1
    assert report["by_location"]["css"] == 1
    assert report["total"] == sum(report["by_rule"].values()) == sum(report["by_location"].values())


def test_report_never_holds_values():
    planted = [EMAIL, "4111 1111 1111 1111", "hunter2!", "abc123", "+44 20 7946 0958"]
    events = [full(page(
        E(20, "p", {}, T(21, f"{EMAIL} +44 20 7946 0958, 4111 1111 1111 1111")),
        E(22, "input", {"type": "password", "value": "hunter2!"}),
        E(25, "a", {"href": "/r?token=abc123"}),
    ))]
    res = scrub(events)
    text = json.dumps(res.report.to_dict())
    assert res.report.total == 5
    for value in planted:
        assert value not in text
        assert value not in dumps(events)
    assert re.fullmatch(r'[\w\s{}":,.@\-]*', text)  # names and numbers only


def test_meta_href():
    events = [{"type": 4, "data": {"href": "https://x.test/p?session=s3cr3t&q=1", "width": 1, "height": 1}}]
    res = scrub(events)
    assert events[0]["data"]["href"] == "https://x.test/p?session=[Filtered]&q=1"
    assert res.report.to_dict()["by_location"] == {"meta.href": 1}


# ----------------------------------------------------------------------------- DOM rules across segments
MASK_RULES = {"dom": {"rules": [{"name": "private", "selector": ".private", "action": "mask"}]}}


def test_mask_rule_in_snapshot_and_later_segments():
    seg1 = [full(page(
        E(20, "div", {"class": "card private"}, E(21, "span", {"title": "Jane"}, T(22, "Jane Roe")), T(23, "  ")),
        E(30, "div", {"class": "public"}, T(31, "Public text")),
    ))]
    r1 = scrub(seg1, MASK_RULES)
    node = seg1[0]["data"]["node"]
    assert find(node, 22)["textContent"] == "**** ***"
    assert find(node, 21)["attributes"]["title"] == "****"
    assert find(node, 23)["textContent"] == "  "
    assert find(node, 31)["textContent"] == "Public text"
    assert r1.report.to_dict()["by_rule"] == {"dom:private": 2}

    seg2 = [
        mut(adds=[add(21, E(40, "b", {}, )), add(40, T(41, "Secret note"))],
            texts=[{"id": 22, "value": "Janet Roe"}, {"id": 31, "value": "Still public"}],
            attributes=[{"id": 21, "attributes": {"title": "Janet", "class": "x"}}]),
        inp(21, "typed"),
    ]
    r2 = next_segment(seg2, r1.state, MASK_RULES)
    d = seg2[0]["data"]
    assert d["adds"][1]["node"]["textContent"] == "****** ****"
    assert d["texts"] == [{"id": 22, "value": "***** ***"}, {"id": 31, "value": "Still public"}]
    assert d["attributes"][0]["attributes"] == {"title": "*****", "class": "x"}
    assert seg2[1]["data"]["text"] == "*****"
    assert r2.report.to_dict()["by_location"] == {"dom.text": 2, "dom.attr": 1, "input": 1}

    # and a third segment still knows (state carried again through bytes)
    seg3 = [mut(texts=[{"id": 41, "value": "Another secret"}])]
    next_segment(seg3, r2.state, MASK_RULES)
    assert seg3[0]["data"]["texts"][0]["value"] == "******* ******"


def test_same_segments_without_state_are_not_masked():
    """The state is what carries the rule: without it the later segment cannot know."""
    seg2 = [mut(texts=[{"id": 22, "value": "Janet Roe"}])]
    scrub(seg2, MASK_RULES)
    assert seg2[0]["data"]["texts"][0]["value"] == "Janet Roe"


BLOCK_RULES = {"dom": {"rules": [{"selector": "img.avatar, .ad", "action": "block"}]}}


def test_block_rule_keeps_element_and_size_drops_subtree():
    seg1 = [full(page(
        E(20, "img", {"class": "avatar", "src": "/u/jane.png", "alt": "Jane", "width": "64", "height": 64,
                      "style": "float:left"}),
        E(30, "div", {"class": "ad", "data-x": "1"}, E(31, "p", {}, T(32, "Buy now, Jane")), T(33, "more")),
    ))]
    r1 = scrub(seg1, BLOCK_RULES)
    node = seg1[0]["data"]["node"]
    assert find(node, 20)["attributes"] == {"class": "avatar", "width": "64", "height": 64, "style": "float:left",
                                             "rr_width": "64px", "rr_height": "64px"}
    assert find(node, 30) == {"type": 2, "id": 30, "tagName": "div", "attributes": {"class": "ad"}, "childNodes": []}
    assert "Jane" not in dumps(seg1)
    assert r1.report.to_dict()["by_rule"] == {"dom:img.avatar, .ad": 2}

    seg2 = [
        mut(adds=[add(30, T(50, "New ad text")), add(4, T(51, "ok"))],
            texts=[{"id": 32, "value": "Jane again"}],
            attributes=[{"id": 31, "attributes": {"title": "x"}},
                        {"id": 20, "attributes": {"src": "/u/jane2.png", "class": "avatar big"}}],
            removes=[{"parentId": 31, "id": 32}, {"parentId": 4, "id": 99}]),
        inp(31, "x"),
    ]
    next_segment(seg2, r1.state, BLOCK_RULES)
    d = seg2[0]["data"]
    assert [a["node"]["id"] for a in d["adds"]] == [51]
    assert d["texts"] == []
    assert d["attributes"] == [{"id": 20, "attributes": {"class": "avatar big"}}]
    assert d["removes"] == [{"parentId": 4, "id": 99}]
    assert "Jane" not in dumps(seg2)


def test_mask_attributes_rule():
    rules = {"dom": {"rules": [{"selector": 'a[href^="mailto:"]', "action": "mask_attributes",
                                "attributes": ["title", "data-name"]}]}}
    link = E(20, "a", {"href": "mailto:x@example.com", "title": "Write to Jane", "data-name": "Jane"}, T(21, "Contact"))
    seg1 = [full(page(link))]
    r1 = scrub(seg1, rules)
    a = find(seg1[0]["data"]["node"], 20)["attributes"]
    assert a == {"href": "mailto:[email]", "title": "***** ** ****", "data-name": "****"}
    assert find(seg1[0]["data"]["node"], 21)["textContent"] == "Contact"
    seg2 = [mut(attributes=[{"id": 20, "attributes": {"title": "Jane R"}}])]
    next_segment(seg2, r1.state, rules)
    assert seg2[0]["data"]["attributes"][0]["attributes"]["title"] == "**** *"


def test_rule_starts_matching_after_attribute_mutation():
    seg1 = [full(page(E(20, "div", {"class": "box"}, T(21, "before"))))]
    r1 = scrub(seg1, MASK_RULES)
    seg2 = [mut(attributes=[{"id": 20, "attributes": {"class": "box private"}}])]
    r2 = next_segment(seg2, r1.state, MASK_RULES)
    seg3 = [mut(adds=[add(20, T(22, "Jane's notes"))])]
    next_segment(seg3, r2.state, MASK_RULES)
    assert seg3[0]["data"]["adds"][0]["node"]["textContent"] == "****** *****"


def test_combinator_selectors_across_segments():
    rules = {"dom": {"rules": [{"selector": "section.account span, form#pay > label", "action": "mask"}]}}
    seg1 = [full(page(
        E(20, "section", {"class": "account"},
          E(21, "div", {}, E(22, "span", {}, T(23, "Jane Roe")), T(24, "div text"))),
        E(30, "span", {}, T(31, "outside")),
        E(40, "form", {"id": "pay"},
          E(41, "label", {}, T(42, "Card holder")), E(43, "div", {}, E(44, "label", {}, T(45, "nested")))),
    ))]
    r1 = scrub(seg1, rules)
    node = seg1[0]["data"]["node"]
    assert find(node, 23)["textContent"] == "**** ***"
    assert find(node, 24)["textContent"] == "div text"
    assert find(node, 31)["textContent"] == "outside"
    assert find(node, 42)["textContent"] == "**** ******"
    assert find(node, 45)["textContent"] == "nested"
    seg2 = [mut(adds=[
        add(21, E(50, "p", {})), add(50, E(51, "span", {})), add(51, T(52, "Jane again")),
        add(4, E(60, "span", {})), add(60, T(61, "free")),
        add(40, E(70, "label", {})), add(70, T(71, "Holder name")),
        add(43, E(80, "label", {})), add(80, T(81, "free too")),
    ])]
    next_segment(seg2, r1.state, rules)
    texts = {a["node"]["id"]: a["node"].get("textContent") for a in seg2[0]["data"]["adds"] if a["node"]["type"] == 3}
    assert texts == {52: "**** *****", 61: "free", 71: "****** ****", 81: "free too"}


def test_adds_out_of_order_in_one_mutation():
    seg1 = [full(page(E(20, "div", {"class": "private"})))]
    r1 = scrub(seg1, MASK_RULES)
    # the child's add comes before its parent's add
    seg2 = [mut(adds=[add(30, T(31, "Jane Roe")), add(20, E(30, "p", {}))])]
    next_segment(seg2, r1.state, MASK_RULES)
    assert seg2[0]["data"]["adds"][0]["node"]["textContent"] == "**** ***"


def test_full_snapshot_resets_state():
    seg1 = [full(page(E(20, "div", {"class": "private"}, T(21, "x"))))]
    r1 = scrub(seg1, MASK_RULES)
    seg2 = [full(page(E(20, "div", {}, T(21, "Public now"))))]
    r2 = next_segment(seg2, r1.state, MASK_RULES)
    assert find(seg2[0]["data"]["node"], 21)["textContent"] == "Public now"
    assert 20 not in r2.state.flags


# ----------------------------------------------------------------------------- inputs
def test_input_events_password_from_earlier_segment():
    seg1 = [full(page(
        E(20, "input", {"type": "password"}),
        E(21, "input", {"type": "text"}),
        E(22, "input", {"type": "checkbox", "value": "on"}),
        E(23, "input", {"type": "text", "autocomplete": "cc-csc"}),
    ))]
    r1 = scrub(seg1)
    assert len(r1.state.to_bytes()) < 200  # compact: only what the rules need
    seg2 = [inp(20, "hunter2!"), inp(21, f"mail {EMAIL} now"), inp(22, "on", checked=True), inp(23, "123"),
            inp(21, "plain words")]
    r2 = next_segment(seg2, r1.state)
    assert [e["data"]["text"] for e in seg2] == ["********", "mail [email] now", "on", "***", "plain words"]
    assert seg2[2]["data"]["isChecked"] is True
    assert r2.report.to_dict()["by_rule"] == {"dom:password-input": 1, "@email": 1, "dom:card-autocomplete": 1}
    assert r2.report.to_dict()["by_location"] == {"input": 3}


def test_password_toggle_stays_masked():
    """type=password -> text (a "show password" button) keeps masking: matches are sticky."""
    seg1 = [full(page(E(20, "input", {"type": "text"})))]
    r1 = scrub(seg1)
    seg2 = [mut(attributes=[{"id": 20, "attributes": {"type": "password"}}]), inp(20, "s3cret")]
    r2 = next_segment(seg2, r1.state)
    assert seg2[1]["data"]["text"] == "******"
    seg3 = [mut(attributes=[{"id": 20, "attributes": {"type": "text", "value": "s3cret"}}]), inp(20, "s3cret!")]
    next_segment(seg3, r2.state)
    assert seg3[0]["data"]["attributes"][0]["attributes"]["value"] == "******"
    assert seg3[1]["data"]["text"] == "*******"


def test_input_detectors_can_be_turned_off():
    seg1 = [full(page(E(21, "input", {"type": "text"})))]
    r1 = scrub(seg1, {"inputs": {"detectors": False}})
    seg2 = [inp(21, EMAIL)]
    next_segment(seg2, r1.state, {"inputs": {"detectors": False}})
    assert seg2[0]["data"]["text"] == EMAIL


# ----------------------------------------------------------------------------- CSS
CSS = (
    '@font-face{font-family:"X";'
    'src:url(data:font/woff2;base64,d09GMgABAAAAAAQ0AA4111111111111111AAA8wAAAPd) format("woff2")}'
    ".password, input[type=password], #login-password:focus"
    "{border:1px solid #123456;background:url(/img/bg.png?v=1.2.3.4)}"
    '.token-list > li::before{content:"secret token"}'
    "@media (max-width: 600px){.a{margin:0 0 0 0;width:calc(100% - 12px)}}"
    ".b{background-image:url(\"data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4=\")}"
    ".c{grid-template-columns:repeat(12,1fr);transition:all .3s cubic-bezier(.25,.1,.25,1);color:rgba(0,0,0,.5)}"
    ".d{font-feature-settings:'tnum' 1;z-index:2147483647}"
    '.uuid[data-id="550e8400-e29b-41d4-a716-446655440000"]{top:1.5em}'
)


def test_css_with_password_words_untouched_everywhere():
    events = [
        full(page(E(20, "style", {"_cssText": CSS}), E(21, "style", {}, T(22, CSS, isStyle=True)),
                  E(23, "div", {"style": "color: red; background: url(/a.png)"}))),
        {"type": 3, "data": {"source": 8, "id": 20, "adds": [{"rule": ".password{color:red}", "index": 0}],
                             "replace": CSS, "replaceSync": CSS}},
        {"type": 3, "data": {"source": 15, "id": 1, "styleIds": [1],
                             "styles": [{"styleId": 1, "rules": [{"rule": CSS, "index": 0}]}]}},
        {"type": 3, "data": {"source": 13, "id": 20, "index": [0],
                             "set": {"property": "content", "value": '"password"', "priority": ""}}},
    ]
    before = dumps(events)
    res = scrub(events)
    assert dumps(events) == before
    assert res.report.total == 0


def test_mask_rule_never_masks_css_inside_it():
    css = ".password{color:red}"
    seg1 = [full(page(E(20, "div", {"class": "private"}, E(21, "style", {}, T(22, css, isStyle=True)), T(23, "Jane"))))]
    r1 = scrub(seg1, MASK_RULES)
    node = seg1[0]["data"]["node"]
    assert find(node, 22)["textContent"] == css
    assert find(node, 23)["textContent"] == "****"
    seg2 = [mut(texts=[{"id": 22, "value": ".password{color:blue}"}])]
    next_segment(seg2, r1.state, MASK_RULES)
    assert seg2[0]["data"]["texts"][0]["value"] == ".password{color:blue}"


def test_css_keeps_valid_when_personal_data_is_in_it():
    css = '.who::after{content:"jane.roe@example.net"} .x{background:url(https://cdn.test/a.png?token=abc)}'
    events = [
        full(page(E(20, "style", {"_cssText": css}))),
        {"type": 3, "data": {"source": 8, "id": 20, "adds": [{"rule": css, "index": 0}]}},
        mut(attributes=[{"id": 20, "attributes": {"style": {
            "background": "url(/x.png?token=abc)", "content": ['"jane.roe@example.net"', "important"],
            "color": False}}}]),
    ]
    res = scrub(events)
    expected = '.who::after{content:"[email]"} .x{background:url(https://cdn.test/a.png?token=[Filtered])}'
    assert find(events[0]["data"]["node"], 20)["attributes"]["_cssText"] == expected
    assert events[1]["data"]["adds"][0]["rule"] == expected
    style = events[2]["data"]["attributes"][0]["attributes"]["style"]
    assert style == {"background": "url(/x.png?token=[Filtered])", "content": ['"[email]"', "important"],
                     "color": False}
    for css_out in (expected, style["background"], style["content"][0]):
        assert css_out.count("(") == css_out.count(")") and css_out.count('"') % 2 == 0
    assert res.report.to_dict()["by_location"] == {"css": 6}


# ----------------------------------------------------------------------------- deep documents
DEPTH = 12_000


def deep_chain(first_id, depth, leaf_text):
    root = {"type": 2, "id": first_id, "tagName": "div", "attributes": {}, "childNodes": []}
    cur = root
    for i in range(1, depth):
        child = {"type": 2, "id": first_id + i, "tagName": "div", "attributes": {"title": "t"}, "childNodes": []}
        cur["childNodes"].append(child)
        cur = child
    cur["childNodes"].append({"type": 3, "id": first_id + depth, "textContent": leaf_text})
    return root, cur


def test_deep_full_snapshot_no_recursion():
    root, leaf_parent = deep_chain(10, DEPTH, f"deep {EMAIL}")
    root["attributes"]["class"] = "private"
    events = [full(doc(E(2, "html", {}, E(4, "body", {}, root))))]
    res = scrub(events, MASK_RULES)
    assert leaf_parent["childNodes"][0]["textContent"] == "**** ********************"
    # every node under the masked root is remembered for later mutations
    assert len(res.state.flags) == DEPTH + 1
    seg2 = [mut(texts=[{"id": 10 + DEPTH, "value": "still secret"}])]
    next_segment(seg2, res.state, MASK_RULES)
    assert seg2[0]["data"]["texts"][0]["value"] == "***** ******"


def test_deep_iframe_document_in_mutation_no_recursion():
    seg1 = [full(page(E(20, "iframe", {"src": "/frame.html?code=xyz"})))]
    r1 = scrub(seg1)
    assert find(seg1[0]["data"]["node"], 20)["attributes"]["src"] == "/frame.html?code=[Filtered]"
    root, leaf_parent = deep_chain(100, DEPTH, f"deep {EMAIL}")
    password = E(96, "input", {"type": "password", "value": "pw"})
    iframe_doc = {"type": 0, "id": 99, "childNodes": [E(98, "html", {}, E(97, "body", {}, root, password))]}
    seg2 = [mut(adds=[add(20, iframe_doc)])]
    r2 = next_segment(seg2, r1.state)
    assert leaf_parent["childNodes"][0]["textContent"] == "deep [email]"
    assert find(iframe_doc, 96)["attributes"]["value"] == "**"
    seg3 = [inp(96, "typed-pw")]
    next_segment(seg3, r2.state)
    assert seg3[0]["data"]["text"] == "********"


# ----------------------------------------------------------------------------- other sources
def test_canvas_font_and_custom_events():
    events = [
        {"type": 3, "data": {"source": 9, "id": 5, "type": 0, "commands": [
            {"property": "fillText", "args": [f"Hi {EMAIL}", 10, 20]},
            {"property": "drawImage", "args": [{"rr_type": "HTMLImageElement",
                                                "src": "data:image/png;base64,iVBORw0KGgo4111111111111111"}, 0, 0]},
        ]}},
        {"type": 3, "data": {"source": 10, "family": "X", "fontSource": 'url("https://f.test/x.woff?token=t")',
                             "buffer": False}},
        {"type": 5, "data": {"tag": "breadcrumb", "payload": {
            "category": "console", "message": f"user {EMAIL} logged in",
            "data": {"url": "https://x.test/cb?code=123&ok=1"}}}},
        {"type": 5, "data": {"tag": "performanceSpan", "payload": {
            "op": "resource.fetch", "description": "https://api.test/v1/me?api_key=k1",
            "data": {"method": "POST", "statusCode": 200,
                     "request": {"headers": {"Authorization": "Bearer abc.def.ghi", "Cookie": "sid=1",
                                             "Content-Type": "application/json"},
                                 "body": {"email": EMAIL, "password": "hunter2!", "remember": True}},
                     "response": {"headers": {"set-cookie": "sid=2", "x-api-key": "k"},
                                  "body": '{"token":"t0k3n","name":"Jane","phone":"+44 20 7946 0958"}'}}}}},
        {"type": 5, "data": {"tag": "options", "payload": {"maskAllText": False, "sessionSampleRate": 1}}},
        {"type": 6, "data": {"plugin": "rrweb/console@1", "payload": {
            "level": "log", "trace": ["at f (https://x.test/a.js?sig=s:1:2)"],
            "payload": [f'"{EMAIL}"', '{"card":"4111 1111 1111 1111"}']}}},
    ]
    res = scrub(events)
    out = dumps(events)
    for planted in (EMAIL, "hunter2!", "t0k3n", "abc.def.ghi", "sid=1", "sid=2", "code=123", "api_key=k1", "token=t\"",
                    "sig=s:", "7946 0958", "4111 1111"):
        assert planted not in out, planted
    assert events[0]["data"]["commands"][0]["args"] == ["Hi [email]", 10, 20]
    assert events[0]["data"]["commands"][1]["args"][0]["src"].endswith("4111111111111111")  # base64 image untouched
    span = events[3]["data"]["payload"]
    assert span["data"]["request"]["headers"] == {"Authorization": "[Filtered]", "Cookie": "[Filtered]",
                                                   "Content-Type": "application/json"}
    assert span["data"]["request"]["body"] == {"email": "[Filtered]", "password": "[Filtered]", "remember": True}
    assert json.loads(span["data"]["response"]["body"]) == {"token": "[Filtered]", "name": "Jane",
                                                            "phone": "*** ** **** ****"}
    assert events[4]["data"]["payload"] == {"maskAllText": False, "sessionSampleRate": 1}
    locs = res.report.to_dict()["by_location"]
    assert set(locs) == {"canvas", "font", "breadcrumb", "span", "console"}


def test_breadcrumb_click_on_masked_node():
    seg1 = [full(page(E(20, "button", {"class": "private"}, T(21, "Pay Jane"))))]
    r1 = scrub(seg1, MASK_RULES)
    button = {"id": 20, "tagName": "button", "textContent": "Pay Jane", "attributes": {"class": "private"}}
    seg2 = [{"type": 5, "data": {"tag": "breadcrumb", "payload": {
        "category": "ui.click", "message": "body > button.private", "data": {"nodeId": 20, "node": button}}}}]
    next_segment(seg2, r1.state, MASK_RULES)
    assert seg2[0]["data"]["payload"]["data"]["node"]["textContent"] == "*** ****"


def test_breadcrumb_click_on_blocked_node():
    """The SDK describes the clicked element itself: a blocked element's text goes as a masked one's."""
    seg1 = [full(page(E(20, "div", {"class": "ad"}, T(21, "Jane Doe, 12 Main St"))))]
    r1 = scrub(seg1, BLOCK_RULES)
    node = {"id": 20, "tagName": "div", "textContent": "Jane Doe, 12 Main St", "attributes": {"class": "ad"}}
    seg2 = [{"type": 5, "data": {"tag": "breadcrumb", "payload": {
        "category": "ui.click", "message": "body > div.ad", "data": {"nodeId": 20, "node": node}}}}]
    next_segment(seg2, r1.state, BLOCK_RULES)
    assert "Jane" not in json.dumps(seg2)


def snippet_click(node_id, node):
    return {"type": 5, "timestamp": 4, "data": {"tag": "breadcrumb", "payload": {
        "category": "ui.click", "data": {"nodeId": node_id, "node": node}}}}


def test_snippet_click_breadcrumb_text_nodes_each_scrubbed_by_their_own_flags():
    """replayd's snippet describes the clickable element with its text nodes apart: a masked span
    inside a button is masked, a blocked one's text dropped, the rest scrubbed like DOM text."""
    rules = {"dom": {"rules": [{"selector": ".private", "action": "mask"}, {"selector": ".ad", "action": "block"},
                               {"selector": "button", "action": "mask_attributes", "attributes": ["title"]}]}}
    seg1 = [full(page(E(20, "button", {"title": "For Jane", "id": "pay"},
                        T(21, "Pay "), E(22, "span", {"class": "private"}, T(23, "Jane Roe")),
                        E(24, "span", {"class": "ad"}, T(25, "Ad for Jane")), T(26, f"or mail {EMAIL}")),
                      E(30, "div", {"class": "ad"}, E(31, "a", {"id": "in-ad"}, T(32, "Jane's ad")))))]
    r1 = scrub(seg1, rules)
    button = {"id": 20, "tagName": "BUTTON", "attributes": {"id": "pay", "title": "For Jane"},
              "texts": [[21, "Pay "], [23, "Jane Roe"], [25, "Ad for Jane"], [26, f"or mail {EMAIL}"], ["x", "Jane"],
                        [21]]}
    inside_ad = {"id": 31, "tagName": "A", "attributes": {"id": "in-ad"}, "texts": [[32, "Jane's ad"]]}
    seg2 = [snippet_click(20, button), snippet_click(31, inside_ad)]
    next_segment(seg2, r1.state, rules)
    node = seg2[0]["data"]["payload"]["data"]["node"]
    assert node["attributes"] == {"id": "pay", "title": "*** ****"}
    assert node["texts"] == [[21, "Pay "], [23, "**** ***"], [26, "or mail [email]"]]
    assert "node" not in seg2[1]["data"]["payload"]["data"]  # inside a blocked subtree: never stored
    assert "Jane" not in json.dumps(seg2)


def sentry_click(node, message=None, category="ui.click"):
    payload = {"category": category, "data": {"nodeId": node.get("id"), "node": node}}
    if message is not None:
        payload["message"] = message
    return {"type": 5, "timestamp": 4, "data": {"tag": "breadcrumb", "payload": payload}}


def test_click_breadcrumb_attributes_as_the_dom_rules_name_them():
    """The Sentry SDK renames data-testid testId: a mask_attributes rule on data-testid masks it; an
    attribute named in another case is the same attribute; a value that is not a string (no
    recorder sends one) cannot be checked against the rules and goes."""
    rules = {"dom": {"rules": [{"selector": ".private", "action": "mask"},
                               {"selector": "button", "action": "mask_attributes", "attributes": ["data-testid"]}]}}
    seg1 = [full(page(E(20, "button", {"data-testid": "pay-jane"}, T(21, "Pay")),
                      E(30, "a", {"class": "private", "aria-label": "Jane's page"}, T(31, "Jane"))))]
    r1 = scrub(seg1, rules)
    seg2 = [sentry_click({"id": 20, "tagName": "button", "textContent": "Pay", "attributes": {"testId": "pay-jane"}}),
            sentry_click({"id": 30, "tagName": "a", "textContent": "Jane",
                          "attributes": {"ARIA-LABEL": "Jane's page", "title": ["Jane"], "alt": {"x": "Jane"}}})]
    next_segment(seg2, r1.state, rules)
    assert seg2[0]["data"]["payload"]["data"]["node"]["attributes"] == {"testId": "********"}
    assert seg2[1]["data"]["payload"]["data"]["node"]["attributes"] == {"ARIA-LABEL": "****** ****"}
    assert "jane" not in json.dumps(seg2).lower()


def test_click_breadcrumb_ids_that_are_bools_and_texts_of_a_masked_element():
    """True is an int to Python (node 1's flags): a description whose id is a bool goes; a masked
    element's texts are masked whatever node ids they name (the text is the element's)."""
    seg1 = [full(page(E(20, "button", {"class": "private", "aria-label": "Pay Jane"}, T(21, "Pay Jane"))))]
    r1 = scrub(seg1, MASK_RULES)
    seg2 = [sentry_click({"id": True, "tagName": "button", "textContent": "Pay Jane"}),
            snippet_click(20, {"id": 20, "tagName": "BUTTON", "attributes": {},
                               "texts": [[99, "Pay Jane"], [True, "Jane"], [21, "Pay Jane"]]})]
    next_segment(seg2, r1.state, MASK_RULES)
    assert "node" not in seg2[0]["data"]["payload"]["data"]
    assert seg2[1]["data"]["payload"]["data"]["node"]["texts"] == [[99, "*** ****"], [21, "*** ****"]]
    assert "Jane" not in json.dumps(seg2)


def test_click_breadcrumb_message_of_a_masked_blocked_or_dropped_element():
    """The Sentry SDK's message is a path with attribute values (aria-label, title, alt, name): those
    of a masked, blocked or dropped element are masked (all from the first '['); others are kept."""
    rules = {"dom": {"rules": [{"selector": ".private", "action": "mask"}, {"selector": ".ad", "action": "block"}]}}
    seg1 = [full(page(E(20, "button", {"class": "private", "aria-label": "Pay Jane"}, T(21, "Pay")),
                      E(30, "div", {"class": "ad"}, E(31, "a", {"title": "Jane's ad"})),
                      E(40, "button", {"title": "Help"}, T(41, "Help"))))]
    r1 = scrub(seg1, rules)
    seg2 = [sentry_click({"id": 20, "tagName": "button"}, 'body > button.private[aria-label="Pay Jane"]'),
            sentry_click({"id": 31, "tagName": "a"}, 'div.ad > a[title="Jane\'s ad"]'),
            sentry_click({"id": 40, "tagName": "button"}, 'body > button[title="Help"]')]
    next_segment(seg2, r1.state, rules)
    assert seg2[0]["data"]["payload"]["message"] == "body > button.private" + "*" * 16 + " " + "*" * 6
    assert seg2[2]["data"]["payload"]["message"] == 'body > button[title="Help"]'
    assert "Jane" not in json.dumps(seg2)


def test_snippet_click_texts_that_form_a_personal_value_only_together_are_scrubbed_together():
    """The click index joins an element's texts: a card number split over two text nodes (as a
    formatted price or number field renders one) is caught in the joined text."""
    seg1 = [full(page(E(20, "button", {}, E(21, "span", {}, T(22, "4111 1111")),
                        E(23, "span", {}, T(24, "1111 1111")))))]
    r1 = scrub(seg1)
    seg2 = [snippet_click(20, {"id": 20, "tagName": "BUTTON", "attributes": {},
                               "texts": [[22, "4111 1111"], [24, "1111 1111"]]})]
    next_segment(seg2, r1.state)
    texts = seg2[0]["data"]["payload"]["data"]["node"]["texts"]
    assert "4111" not in json.dumps(texts) and len(texts) == 1, texts


def test_malformed_events_do_not_crash_and_are_still_scrubbed():
    events = [
        {"type": 2, "data": {"node": {"type": 2, "id": 1, "tagName": 5, "attributes": ["x", EMAIL]}}},
        {"type": 3, "data": {"source": 0, "adds": [{"parentId": 1, "node": "nonsense"}],
                             "texts": [{"id": 3, "value": EMAIL}], "attributes": "bad"}},
        {"type": 3, "data": {"source": 5, "id": 9, "text": 42}},
        "not an event",
        {"type": 99, "data": {"x": EMAIL}},
    ]
    scrub(events)
    assert EMAIL not in dumps(events[:3])


def test_events_edited_in_place_and_state_reused():
    events = [full(page(E(20, "p", {}, T(21, EMAIL))))]
    state = ReplayState()
    res = scrub(events, None, state)
    assert res.events is events and res.state is state


def test_network_plugin_payload():
    events = [{"type": 6, "data": {"plugin": "rrweb/network@1", "payload": {"requests": [{
        "name": "https://api.test/login?redirect=/home&sig=abc", "method": "POST", "status": 200,
        "requestHeaders": {"authorization": "Basic dXNlcjpwYXNz", "content-type": "application/json"},
        "responseHeaders": {"Set-Cookie": "session=s1; HttpOnly"},
        "requestBody": '{"username":"jane","password":"hunter2!","email":"jane.roe@example.net"}',
        "responseBody": {"access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijklmno",
                         "user": {"phone": "555-123-4567"}},
    }]}}}]
    res = scrub(events)
    r = events[0]["data"]["payload"]["requests"][0]
    assert r["name"] == "https://api.test/login?redirect=/home&sig=[Filtered]"
    assert r["requestHeaders"] == {"authorization": "[Filtered]", "content-type": "application/json"}
    assert r["responseHeaders"] == {"Set-Cookie": "[Filtered]"}
    assert json.loads(r["requestBody"]) == {"username": "jane", "password": "[Filtered]", "email": "[Filtered]"}
    assert r["responseBody"] == {"access_token": "[Filtered]", "user": {"phone": "************"}}
    assert res.report.to_dict()["by_location"] == {"plugin": 7}


def test_network_bodies_can_be_dropped():
    events = [{"type": 5, "data": {"tag": "performanceSpan", "payload": {"op": "resource.xhr", "description": "/api",
               "data": {"request": {"body": {"note": "x"}}, "response": {"body": "free text"}}}}}]
    scrub(events, {"network": {"bodies": False}})
    data = events[0]["data"]["payload"]["data"]
    assert data == {"request": {"body": None}, "response": {"body": None}}


def test_keystrokes_before_and_after_a_detected_value_are_masked():
    """rrweb sends an Input event per keystroke: "jane.ro" is the e-mail before a detector can
    recognise it, "jane.roe@example" is it after a few backspaces. Related values of the same field
    in the segment are masked; unrelated values, and other fields, keep the detectors' verdict."""
    seg1 = [full(page(E(21, "input", {"type": "text"}), E(22, "input", {"type": "text"})))]
    r1 = scrub(seg1)
    typed = [EMAIL[:i] for i in range(1, len(EMAIL) + 1)]  # j, ja, ..., jane.roe@example.net
    seg2 = ([inp(21, "hello")] + [inp(21, v) for v in typed] + [inp(22, "jane")]
            + [inp(21, EMAIL[:-4]), inp(21, "plain words"), inp(21, "+1 202 5"), inp(21, "+1 202 555 0175")])
    r2 = next_segment(seg2, r1.state)
    out = [e["data"]["text"] for e in seg2]
    assert out[0] == "hello"  # typed earlier, unrelated to the e-mail
    # every keystroke state is masked; the detector takes over once the e-mail is recognisable
    # ("+1 202 5" below: masked when the whole number is detected later in the segment)
    assert all(o in ("*" * len(v), "[email]") for v, o in zip(typed, out[1:], strict=False)), out
    masked = sum(o.startswith("*") for o in out[1:len(EMAIL) + 1])
    assert masked >= len("jane.roe@example.") and out[len(EMAIL)] == "[email]"
    assert out[len(EMAIL) + 1] == "jane"  # another field
    assert out[len(EMAIL) + 2:] == ["*" * (len(EMAIL) - 4), "plain words", "********", "** *** *** ****"]
    by_rule = r2.report.to_dict()["by_rule"]
    assert by_rule["@typing"] == masked + 1 + 1  # the prefixes, the edit, "+1 202 5"
    assert by_rule["@email"] == len(EMAIL) - masked and by_rule["@phone"] == 1
    assert "jane" not in r2.state.to_bytes().decode("latin-1")  # the matched value is never kept


def test_contact_fields_are_masked_from_the_first_keystroke():
    """A segment can end mid-word, before a detector could recognise the value: fields made for an
    address or a phone number are masked whatever their content, in this segment and later ones."""
    scrubber = Scrubber(RuleSet.default(), secret=b"k")
    snapshot = {"type": 2, "timestamp": 1, "data": {"node": {"type": 0, "id": 1, "childNodes": [
        {"type": 2, "id": 2, "tagName": "input", "attributes": {"type": "email"}, "childNodes": []},
        {"type": 2, "id": 3, "tagName": "input", "attributes": {"type": "text", "name": "phone_number"},
         "childNodes": []},
        {"type": 2, "id": 4, "tagName": "input", "attributes": {"type": "text", "name": "city"}, "childNodes": []},
    ]}}}
    typed = {"type": 3, "timestamp": 2, "data": {"source": 5, "id": 2, "text": "jan"}}
    first = scrubber.scrub_recording([snapshot, typed])
    assert first.events[1]["data"]["text"] == "***"
    later = [{"type": 3, "timestamp": 3, "data": {"source": 5, "id": i, "text": t}}
             for i, t in ((2, "jane.roe@exa"), (3, "+1 202"), (4, "Springfield"))]
    second = scrubber.scrub_recording(later, ReplayState.from_bytes(first.state.to_bytes()))
    assert [e["data"]["text"] for e in second.events] == ["************", "******", "Springfield"]
    assert second.report.to_dict()["by_rule"]["dom:contact-input"] == 2
