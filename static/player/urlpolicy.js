// What a recording may make the developer's browser fetch (docs/security.md, "Replays in the
// developer's browser").
//
// The Replayer rebuilds the recorded page in a same-origin iframe whose base URL is the replay page's,
// and the browser then loads every image, stylesheet, font and media file the recording names. Before
// events reach the Replayer, every URL in them is resolved (against the recorded page's address, from
// the Meta events) and kept only when it leads to a public host over http(s), or is a data:/blob: URL;
// http:// is upgraded to https:// (the pages' CSP allows https: only). Anything else — loopback,
// private, link-local and other non-public addresses in any spelling the URL parser accepts, names of
// local networks, this replayd host, other schemes — becomes BLOCKED, which nothing fetches.
// Fragment-only references (`#id`) are left alone where they name a part of the replayed document
// (links, SVG references, CSS url(#id)); where the browser would fetch them (img src, <link href>,
// @import) they would fetch the replay page itself, and are blocked.
//
// The rules are syntactic: a public DNS name that resolves to a private address, a redirect and the
// contents of a fetched stylesheet are out of reach here (see the docs for what covers those).

export const BLOCKED = 'about:invalid';

const ALLOWED_SCHEMES = new Set(['http:', 'https:', 'data:', 'blob:']);
// The URL parser strips leading C0 controls and spaces: "  #x" is a fragment, " " the base itself.
const PASS_THROUGH = /^[\x00-\x20]*(data|blob):/i; // kept as recorded (a 1 MB data: URL is not parsed)
const FRAGMENT = /^[\x00-\x20]*#/;
const BLANK = /^[\x00-\x20]*$/;

// Names that never lead to a public host: RFC 6761/6762/8375 special-use names and undelegated
// top-level names used on private networks.
const LOCAL_NAMES = ['localhost', 'local', 'internal', 'home.arpa', 'lan', 'home', 'corp', 'intranet', 'private'];

// IPv4 blocks that are not globally reachable (IANA special-purpose registry), as [first octets, prefix].
const IPV4_BLOCKED = [
  [[0], 8], // "this network"; 0.0.0.0 reaches the local host
  [[10], 8],
  [[100, 64], 10], // carrier-grade NAT
  [[127], 8],
  [[169, 254], 16], // link-local (cloud metadata services)
  [[172, 16], 12],
  [[192, 0, 0], 24],
  [[192, 0, 2], 24],
  [[192, 168], 16],
  [[198, 18], 15],
  [[198, 51, 100], 24],
  [[203, 0, 113], 24],
  [[224], 3], // multicast, reserved, broadcast
];

// URL-valued attributes (lower case), the space-separated URL list, and the srcset-valued ones.
const URL_ATTRIBUTES = new Set([
  'src', 'href', 'xlink:href', 'poster', 'background', 'action', 'formaction', 'data', 'codebase',
  'lowsrc', 'dynsrc', 'manifest', 'profile', 'icon', 'longdesc', 'rr_dataurl',
]);
const SRCSET_ATTRIBUTES = new Set(['srcset', 'imagesrcset']);
// Where a fragment-only URL refers to the document (<a href="#top">, <use href="#icon">) ...
const REFERENCE_ATTRIBUTES = new Set(['href', 'xlink:href']);
// ... except on the elements that fetch their href (<link>, SVG <image>) ...
const FETCHING_HREF_TAGS = new Set(['link', 'image']);
// ... and in CSS, the properties whose url(#id) names an SVG element (elsewhere, as in a background
// or a font, the browser fetches the replay page itself).
const REFERENCE_PROPERTIES = new Set([
  'fill', 'stroke', 'filter', 'mask', 'clip-path', 'marker', 'marker-start', 'marker-mid', 'marker-end',
]);
// CSS text: inline styles and the stylesheets rrweb inlines; SVG presentation attributes (fill="url(...)")
// are CSS values of the property they name.
const CSS_ATTRIBUTES = new Set(['style', '_csstext']);
const PRESENTATION_ATTRIBUTES = new Set([
  'fill', 'stroke', 'filter', 'mask', 'clip-path', 'cursor', 'marker', 'marker-start', 'marker-mid', 'marker-end',
]);

const NODE_ELEMENT = 2;
const NODE_TEXT = 3;
const EVENT_FULL_SNAPSHOT = 2;
const EVENT_INCREMENTAL = 3;
const EVENT_META = 4;
const SOURCE_MUTATION = 0;
const SOURCE_STYLE_SHEET_RULE = 8;
const SOURCE_FONT = 10;
const SOURCE_STYLE_DECLARATION = 13;
const SOURCE_ADOPTED_STYLE_SHEET = 15;

// --- hosts ----------------------------------------------------------------------------------------

function inPrefix(octets, [first, bits]) {
  let left = bits;
  for (let i = 0; left > 0; i += 1, left -= 8) {
    const mask = left >= 8 ? 0xff : (0xff << (8 - left)) & 0xff;
    if ((octets[i] & mask) !== ((first[i] || 0) & mask)) return false;
  }
  return true;
}

function ipv4Blocked(octets) {
  return IPV4_BLOCKED.some((block) => inPrefix(octets, block));
}

/** "::ffff:7f00:1" (the URL parser's canonical form) → eight 16-bit numbers. */
function ipv6Groups(text) {
  const [head, tail] = text.includes('::') ? text.split('::') : [text, null];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === null ? [] : Array(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((g) => parseInt(g, 16));
}

function ipv6Blocked(groups) {
  const [a, b, c, d, e, f, g, h] = groups;
  const v4 = [g >> 8, g & 0xff, h >> 8, h & 0xff];
  if (a === 0 && b === 0 && c === 0 && d === 0 && e === 0 && (f === 0 || f === 0xffff)) {
    return f === 0 && g === 0 ? true : ipv4Blocked(v4); // ::, ::1, IPv4-compatible, IPv4-mapped
  }
  if (a === 0x64 && b === 0xff9b) return c === 1 || ipv4Blocked(v4); // NAT64
  if (a === 0x2002) return ipv4Blocked([b >> 8, b & 0xff, c >> 8, c & 0xff]); // 6to4
  if (a === 0x2001 && (b === 0 || b === 0xdb8)) return true; // Teredo, documentation
  if (a === 0x100 && b === 0 && c === 0 && d === 0) return true; // discard-only
  return (a & 0xfe00) === 0xfc00 // unique local fc00::/7
    || (a & 0xffc0) === 0xfe80 || (a & 0xffc0) === 0xfec0 // link-local, site-local
    || (a & 0xff00) === 0xff00; // multicast
}

const IPV4_CANONICAL = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * Whether a hostname, as URL.hostname gives it, is not a public Internet host. The URL parser has
 * already turned every IPv4 spelling browsers accept (2130706433, 0x7f.1, 0177.0.0.1, 127.1) into
 * dotted decimal and IPv6 into its compressed form in brackets, decoded percent-escapes and mapped
 * Unicode look-alikes.
 */
export function isPrivateHost(hostname) {
  const host = hostname.toLowerCase().replace(/\.+$/, '');
  if (host.startsWith('[')) return ipv6Blocked(ipv6Groups(host.slice(1, -1)));
  const v4 = IPV4_CANONICAL.exec(host);
  if (v4) return ipv4Blocked(v4.slice(1).map(Number));
  if (!host.includes('.')) return true; // a single label resolves through the local search domains
  return LOCAL_NAMES.some((name) => host === name || host.endsWith(`.${name}`));
}

// --- CSS ------------------------------------------------------------------------------------------
// A tokenizer after CSS Syntax Level 3 (§4), just enough to find every place a browser fetches from:
// url(...) tokens and url("...")/src("...") functions (names may be escaped: \75 rl(), strings in
// image-set(), and the string of @import. It never fails: like a browser, it reads any text.

const WHITESPACE = /[ \t\n\r\f]/;
const HEX = /[0-9a-fA-F]/;
const IMAGE_SET_FUNCTIONS = new Set(['image-set', '-webkit-image-set', 'image']);
const URL_FUNCTIONS = new Set(['url', 'src']);
// Text without these names (or an escape, which could spell them) fetches nothing.
const MAY_FETCH = /url|src|image|import|\\/i;
// Runs read at once (sticky): whitespace, name characters, and characters that start no token of
// interest here (digits, punctuation; a run may split a number from its unit, which changes nothing).
const WHITESPACE_RUN = /[ \t\n\r\f]+/y;
const NAME_RUN = /[a-zA-Z0-9_\-\u0080-\uffff]+/y;
const OTHER_RUN = /[^/"'@\\()a-zA-Z_\-\u0080-\uffff \t\n\r\f]+/y;

function isNameStart(ch) {
  return ch !== undefined && (/[a-zA-Z_]/.test(ch) || ch.charCodeAt(0) >= 0x80);
}

function run(pattern, text, at) {
  pattern.lastIndex = at;
  return pattern.test(text) ? pattern.lastIndex : at;
}

class CssReader {
  constructor(text) {
    this.s = text;
    this.i = 0;
  }

  validEscape(at = this.i) {
    return this.s[at] === '\\' && at + 1 < this.s.length && !/[\n\r\f]/.test(this.s[at + 1]);
  }

  startsIdent(at = this.i) {
    const ch = this.s[at];
    if (ch === '-') return isNameStart(this.s[at + 1]) || this.s[at + 1] === '-' || this.validEscape(at + 1);
    return isNameStart(ch) || this.validEscape(at);
  }

  /** After a backslash: the escaped code point (hex digits and one whitespace, or the character). */
  escape() {
    if (this.i >= this.s.length) return '\uFFFD';
    let hex = '';
    while (hex.length < 6 && HEX.test(this.s[this.i] || '')) hex += this.s[this.i++];
    if (!hex) {
      const cp = this.s.codePointAt(this.i);
      this.i += cp > 0xffff ? 2 : 1;
      return String.fromCodePoint(cp);
    }
    if (this.s[this.i] === '\r' && this.s[this.i + 1] === '\n') this.i += 2;
    else if (WHITESPACE.test(this.s[this.i] || '')) this.i += 1;
    const cp = parseInt(hex, 16);
    return cp === 0 || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ? '\uFFFD' : String.fromCodePoint(cp);
  }

  name() {
    let out = '';
    for (;;) {
      const end = run(NAME_RUN, this.s, this.i);
      out += this.s.slice(this.i, end);
      this.i = end;
      if (!this.validEscape()) return out;
      this.i += 1;
      out += this.escape();
    }
  }

  string(quote) {
    let value = '';
    this.i += 1;
    while (this.i < this.s.length) {
      const ch = this.s[this.i];
      if (ch === quote) { this.i += 1; return { value, bad: false }; }
      if (/[\n\r\f]/.test(ch)) return { value, bad: true }; // the newline is not part of it
      if (ch === '\\') {
        this.i += 1;
        if (this.i >= this.s.length) break;
        if (this.s[this.i] === '\r' && this.s[this.i + 1] === '\n') this.i += 2;
        else if (/[\n\r\f]/.test(this.s[this.i])) this.i += 1;
        else value += this.escape();
      } else {
        value += ch;
        this.i += 1;
      }
    }
    return { value, bad: false };
  }

  skipWhitespace() {
    this.i = run(WHITESPACE_RUN, this.s, this.i);
  }

  /** After "url(" not followed by a quote: the unquoted URL up to ")", or null for a bad url. */
  unquotedUrl() {
    let value = '';
    this.skipWhitespace();
    while (this.i < this.s.length) {
      const ch = this.s[this.i];
      if (ch === ')') { this.i += 1; return value; }
      if (WHITESPACE.test(ch)) {
        this.skipWhitespace();
        if (this.i >= this.s.length) return value;
        if (this.s[this.i] === ')') { this.i += 1; return value; }
        break;
      }
      if (ch === '"' || ch === "'" || ch === '(' || /[\x00-\x08\x0b\x0e-\x1f\x7f]/.test(ch)) break;
      if (ch === '\\') {
        if (!this.validEscape()) break;
        this.i += 1;
        value += this.escape();
      } else {
        value += ch;
        this.i += 1;
      }
    }
    if (this.i >= this.s.length) return value;
    this.badUrlRemnants();
    return null;
  }

  badUrlRemnants() {
    while (this.i < this.s.length) {
      if (this.s[this.i] === ')') { this.i += 1; return; }
      if (this.validEscape()) { this.i += 1; this.escape(); } else this.i += 1;
    }
  }

  /**
   * Reads the next token and returns its type: ws, comment, string, url, function, at, ident, open,
   * close, other or eof. It spans this.start to this.i; strings, urls, functions, at-keywords and
   * idents have a (decoded; for names, lower case) this.value.
   */
  next() {
    const start = this.i;
    const ch = this.s[start];
    this.start = start;
    this.value = '';
    if (ch === undefined) return 'eof';
    if (ch === '/' && this.s[start + 1] === '*') {
      const close = this.s.indexOf('*/', start + 2);
      this.i = close < 0 ? this.s.length : close + 2;
      return 'comment';
    }
    if (WHITESPACE.test(ch)) { this.skipWhitespace(); return 'ws'; }
    if (ch === '"' || ch === "'") {
      const { value, bad } = this.string(ch);
      this.value = value;
      return bad ? 'other' : 'string';
    }
    if (ch === '@' && this.startsIdent(start + 1)) {
      this.i += 1;
      this.value = this.name().toLowerCase();
      return 'at';
    }
    if (this.startsIdent()) return this.identLike();
    this.i = Math.max(start + 1, run(OTHER_RUN, this.s, start));
    if (ch === '(') return 'open';
    if (ch === ')') return 'close';
    return 'other';
  }

  identLike() {
    this.value = this.name().toLowerCase();
    if (this.s[this.i] !== '(') return 'ident';
    this.i += 1;
    if (this.value === 'url') {
      const look = run(WHITESPACE_RUN, this.s, this.i);
      if (this.s[look] !== '"' && this.s[look] !== "'") {
        const value = this.unquotedUrl();
        this.value = value === null ? '' : value;
        return value === null ? 'other' : 'url';
      }
    }
    return 'function';
  }
}

function cssString(value) {
  return `"${value.replace(/[\\"\n\r\f]/g, (ch) => `\\${ch.charCodeAt(0).toString(16)} `)}"`;
}

/**
 * `text` with every URL a browser would fetch replaced by `rewrite(url, where)`, which returns the URL
 * to use; `where` is "@import" or the property of the declaration the URL is in (lower case; `property`
 * for text that is a value only, "" when unknown). Unchanged URLs keep their original spelling.
 */
export function rewriteCss(text, rewrite, property = '') {
  if (typeof text !== 'string' || !MAY_FETCH.test(text)) return text;
  const reader = new CssReader(text);
  const functions = []; // the names of the open functions and parentheses, innermost last
  let out = '';
  let copied = 0;
  let previous = ''; // the type of the previous token that is not whitespace or a comment
  let name = ''; // the last ident: a property when a colon follows
  let where = property;
  for (let type = reader.next(); type !== 'eof'; type = reader.next()) {
    if (type === 'ws' || type === 'comment') continue;
    const urlArgument = previous === 'function' && URL_FUNCTIONS.has(name);
    const imported = previous === 'at' && name === 'import';
    if (type === 'url' || (type === 'string'
        && (urlArgument || imported || IMAGE_SET_FUNCTIONS.has(functions[functions.length - 1])))) {
      const wanted = rewrite(reader.value, imported ? '@import' : where);
      if (wanted !== reader.value) {
        out += text.slice(copied, reader.start) + (type === 'url' ? `url(${cssString(wanted)})` : cssString(wanted));
        copied = reader.i;
      }
    } else if (type === 'other') {
      const chunk = text.slice(reader.start, reader.i);
      if (/[;{}]/.test(chunk)) where = ''; // a declaration, block or rule ends
      else if (chunk[0] === ':' && previous === 'ident') where = name; // (or a selector's ":hover": no URLs there)
    }
    if (type === 'function') functions.push(reader.value);
    else if (type === 'open') functions.push('');
    else if (type === 'close') functions.pop();
    if (type === 'ident' || type === 'function' || type === 'at') name = reader.value;
    previous = type;
  }
  return copied ? out + text.slice(copied) : text;
}

// --- the policy -----------------------------------------------------------------------------------

/** The candidates of a srcset: [url, descriptors] (HTML's "parse a srcset attribute"). */
function srcsetCandidates(value) {
  const candidates = [];
  let i = 0;
  while (i < value.length) {
    while (i < value.length && /[\s,]/.test(value[i])) i += 1;
    if (i >= value.length) break;
    const start = i;
    while (i < value.length && !/\s/.test(value[i])) i += 1;
    let url = value.slice(start, i);
    let descriptors = '';
    if (url.endsWith(',')) {
      url = url.replace(/,+$/, '');
    } else {
      const from = i;
      let depth = 0;
      while (i < value.length && (value[i] !== ',' || depth > 0)) {
        if (value[i] === '(') depth += 1;
        else if (value[i] === ')') depth = Math.max(0, depth - 1);
        i += 1;
      }
      descriptors = value.slice(from, i).trim();
    }
    candidates.push([url, descriptors]);
  }
  return candidates;
}

/**
 * Rewrites the URLs of rrweb events in place, one recording from a full snapshot on, in order (the
 * Meta events give the base for relative URLs; style elements are remembered so that later text
 * changes to them are read as CSS).
 */
export class UrlPolicy {
  /** appHost: the hostname replayd is served from (its API must not be reached through a recording). */
  constructor({ appHost }) {
    this.appHost = appHost.toLowerCase();
    this.base = null;
    this.styleElements = new Set(); // ids of <style> elements
    this.styleTexts = new Set(); // ids of text nodes inside them
    this.hrefFetchers = new Set(); // ids of <link> and SVG <image> elements
  }

  /**
   * The URL to load instead of `value`: itself resolved and upgraded to https, or BLOCKED.
   * `reference`: a fragment-only value names a part of the document, fetches nothing.
   */
  url(value, { reference = false } = {}) {
    if (BLANK.test(value)) return ''; // "" fetches nothing; " " would fetch the replay page itself
    if (FRAGMENT.test(value)) return reference ? value : BLOCKED;
    if (PASS_THROUGH.test(value)) return value;
    let url;
    try {
      url = new URL(value, this.base || undefined);
    } catch {
      return BLOCKED;
    }
    if (!ALLOWED_SCHEMES.has(url.protocol)) return BLOCKED;
    if (url.protocol === 'http:' || url.protocol === 'https:') {
      if (isPrivateHost(url.hostname) || url.hostname.replace(/\.+$/, '') === this.appHost) return BLOCKED;
      url.protocol = 'https:';
    }
    return url.href === value ? value : url.href;
  }

  srcset(value) {
    const kept = srcsetCandidates(value)
      .map(([url, descriptors]) => [this.url(url), descriptors])
      .filter(([url]) => url && url !== BLOCKED);
    return kept.map(([url, descriptors]) => (descriptors ? `${url} ${descriptors}` : url)).join(', ');
  }

  /** A space-separated list of URLs (a link's ping), without the blocked ones. */
  urlList(value) {
    return value.split(/\s+/).map((u) => this.url(u)).filter((u) => u && u !== BLOCKED).join(' ');
  }

  /** CSS text; `property`: the property it is the value of, when it is a value only. */
  css(text, property = '') {
    return rewriteCss(text, (url, where) => this.url(url, { reference: REFERENCE_PROPERTIES.has(where) }), property);
  }

  /** An attribute's new value; null removes it. `fetchesHref`: it is on a <link> or an SVG <image>. */
  attribute(name, value, fetchesHref = false) {
    const lower = name.toLowerCase();
    if (lower === 'srcdoc') return null; // a document of its own; rrweb records the frame's content apart
    if (typeof value !== 'string') return value;
    if (URL_ATTRIBUTES.has(lower)) {
      return this.url(value, { reference: REFERENCE_ATTRIBUTES.has(lower) && !fetchesHref });
    }
    if (SRCSET_ATTRIBUTES.has(lower)) return this.srcset(value);
    if (lower === 'ping') return this.urlList(value);
    if (CSS_ATTRIBUTES.has(lower)) return this.css(value);
    if (PRESENTATION_ATTRIBUTES.has(lower)) return this.css(value, lower);
    return value;
  }

  /** The attributes of element `id`, in place. */
  attributes(attrs, id) {
    if (!attrs || typeof attrs !== 'object') return;
    const fetchesHref = this.hrefFetchers.has(id);
    for (const name of Object.keys(attrs)) {
      const value = attrs[name];
      if (name.toLowerCase() === 'style' && value && typeof value === 'object') {
        this.styleObject(value);
        continue;
      }
      const next = this.attribute(name, value, fetchesHref);
      if (next === null && value !== null) delete attrs[name];
      else if (next !== value) attrs[name] = next;
    }
  }

  /** A mutation's style attribute as rrweb sends it: {property: value | [value, priority] | false}. */
  styleObject(style) {
    for (const [property, value] of Object.entries(style)) {
      const name = property.toLowerCase();
      if (typeof value === 'string') style[property] = this.css(value, name);
      else if (Array.isArray(value) && typeof value[0] === 'string') value[0] = this.css(value[0], name);
    }
  }

  /** A serialized node and its subtree (a full snapshot's document, or a mutation's added node). */
  node(root, parentId = null) {
    const stack = [[root, parentId]];
    while (stack.length) {
      const [node, parent] = stack.pop();
      if (!node || typeof node !== 'object') continue;
      if (node.type === NODE_ELEMENT) {
        const tag = String(node.tagName).toLowerCase();
        if (tag === 'style') this.styleElements.add(node.id);
        if (FETCHING_HREF_TAGS.has(tag)) this.hrefFetchers.add(node.id);
        this.attributes(node.attributes, node.id);
      } else if (node.type === NODE_TEXT && (node.isStyle || this.styleElements.has(parent))) {
        this.styleTexts.add(node.id);
        node.textContent = this.css(node.textContent);
      }
      if (Array.isArray(node.childNodes)) {
        for (let i = node.childNodes.length - 1; i >= 0; i -= 1) stack.push([node.childNodes[i], node.id]);
      }
    }
  }

  mutation(data) {
    for (const add of data.adds || []) this.node(add && add.node, add && add.parentId);
    for (const change of data.attributes || []) if (change) this.attributes(change.attributes, change.id);
    for (const change of data.texts || []) {
      if (change && this.styleTexts.has(change.id)) change.value = this.css(change.value);
    }
  }

  /** Rules added (or a whole sheet replaced) in a style sheet; also an adopted sheet's rules. */
  styleSheetRule(data) {
    for (const add of data.adds || []) if (add) add.rule = this.css(add.rule);
    if (typeof data.replace === 'string') data.replace = this.css(data.replace);
    if (typeof data.replaceSync === 'string') data.replaceSync = this.css(data.replaceSync);
  }

  incremental(data) {
    switch (data.source) {
      case SOURCE_MUTATION: this.mutation(data); break;
      case SOURCE_STYLE_SHEET_RULE: this.styleSheetRule(data); break;
      case SOURCE_STYLE_DECLARATION:
        if (data.set && typeof data.set.value === 'string') {
          data.set.value = this.css(data.set.value, String(data.set.property).toLowerCase());
        }
        break;
      case SOURCE_ADOPTED_STYLE_SHEET:
        for (const style of data.styles || []) this.styleSheetRule({ adds: style && style.rules });
        break;
      case SOURCE_FONT: // a CSS src descriptor such as url(...), unless the font's bytes are inline
        if (!data.buffer && typeof data.fontSource === 'string') data.fontSource = this.css(data.fontSource, 'src');
        break;
      default: // canvas mutations: never replayed (UNSAFE_replayCanvas is off); the rest hold no URLs
    }
  }

  event(event) {
    const data = event && event.data;
    if (!data || typeof data !== 'object') return event;
    if (event.type === EVENT_META) {
      try {
        this.base = typeof data.href === 'string' ? new URL(data.href).href : null;
      } catch {
        this.base = null;
      }
    } else if (event.type === EVENT_FULL_SNAPSHOT) {
      this.styleElements.clear();
      this.styleTexts.clear();
      this.hrefFetchers.clear();
      this.node(data.node);
    } else if (event.type === EVENT_INCREMENTAL) {
      this.incremental(data);
    }
    return event;
  }

  /** Rewrites a list of events in place and returns it. */
  events(list) {
    for (const event of list) this.event(event);
    return list;
  }
}
