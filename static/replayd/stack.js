// Error.stack (Chromium, Firefox, Safari) → Sentry stack frames, oldest first. Pure; no DOM.

// Chromium: "    at fn (url:1:2)", "    at url:1:2", "    at async fn (url:1:2)",
// "    at eval (eval at <anonymous> (url:1:2), <anonymous>:3:4)", "    at new Promise (<anonymous>)".
const CHROME = /^\s*at (?:(.+?) \((.+)\)|(.+))$/;
// Firefox / Safari: "fn@url:1:2", "@url:1:2", "global code@url:1:2", "eval@[native code]".
const GECKO = /^\s*([^@]*)@(.+)$/;
// Firefox eval: "url line 26 > eval line 2 > eval:1:30" → the outermost real file and line.
const GECKO_EVAL = /^(.*?) line (\d+) > (?:eval|Function)/;
const LOCATION = /^(.*?):(\d+)(?::(\d+))?$/;
const CHROME_EVAL = /\(([^()]+?:\d+:\d+)\)/;

export const MAX_FRAMES = 50;

function frame(fn, loc) {
  let file = loc, line, col, m;
  if ((m = GECKO_EVAL.exec(loc))) {
    file = m[1];
    line = +m[2];
  } else if ((m = LOCATION.exec(loc))) {
    file = m[1];
    line = +m[2];
    col = m[3] ? +m[3] : undefined;
  }
  fn = (fn || '').replace(/^async /, '');
  return {
    filename: file,
    function: fn || '?',
    lineno: line,
    colno: col,
    in_app: !/^(\[native code\]|native|<anonymous>)$/.test(file),
  };
}

export function parseStack(stack) {
  const lines = String(stack || '').split('\n');
  const chrome = lines.some((l) => /^\s+at /.test(l));
  const frames = [];
  for (const line of lines) {
    if (frames.length >= MAX_FRAMES) break;
    let m, fn, loc;
    if (chrome) {
      if (!(m = CHROME.exec(line))) continue;
      fn = m[1];
      loc = m[2] || m[3].replace(/^async /, '');
      if (/^eval at /.test(loc) && (m = CHROME_EVAL.exec(loc))) loc = m[1];
    } else {
      if (!(m = GECKO.exec(line))) continue;
      fn = m[1];
      loc = m[2].trim();
    }
    frames.push(frame(fn, loc));
  }
  return frames.reverse();
}
