// The stack parser against real Error.stack strings of Chromium, Firefox and Safari.
// Run by tests/test_snippet.py with `node --test`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseStack } from '../../../static/replayd/stack.js';

const top = (frames) => frames[frames.length - 1]; // frames run oldest first, like Sentry's

test('chromium', () => {
  const stack = `TypeError: Cannot read properties of undefined (reading 'total')
    at checkout (http://127.0.0.1:8795/app.js:12:28)
    at HTMLButtonElement.<anonymous> (http://127.0.0.1:8795/app.js:30:5)
    at async submit (http://127.0.0.1:8795/app.js:40:3)
    at http://127.0.0.1:8795/todo2.html?session=abc123:32:28
    at new Promise (<anonymous>)
    at Array.forEach (<anonymous>)
    at eval (eval at <anonymous> (http://127.0.0.1:8795/app.js:26:17), <anonymous>:1:1)`;
  const frames = parseStack(stack);
  assert.equal(frames.length, 7);
  assert.deepEqual(top(frames), { filename: 'http://127.0.0.1:8795/app.js', function: 'checkout', lineno: 12, colno: 28, in_app: true });
  assert.deepEqual(frames[0], { filename: 'http://127.0.0.1:8795/app.js', function: 'eval', lineno: 26, colno: 17, in_app: true });
  assert.equal(frames[4].function, 'submit');
  assert.deepEqual(frames[3], { filename: 'http://127.0.0.1:8795/todo2.html?session=abc123', function: '?', lineno: 32, colno: 28, in_app: true });
  assert.equal(frames[2].filename, '<anonymous>');
  assert.equal(frames[2].in_app, false);
  assert.equal(frames[5].function, 'HTMLButtonElement.<anonymous>');
});

test('chromium: message with an at-sign and no frames of its own', () => {
  const frames = parseStack('Error: mail jane@example.com failed\n    at send (https://shop.example/js/app.min.js:1:2045)');
  assert.deepEqual(frames, [{ filename: 'https://shop.example/js/app.min.js', function: 'send', lineno: 1, colno: 2045, in_app: true }]);
});

test('firefox', () => {
  const stack = `checkout@http://127.0.0.1:8795/app.js:12:28
render/<@http://127.0.0.1:8795/app.js:30:5
@http://127.0.0.1:8795/todo2.html?session=abc123:32:28
`;
  const frames = parseStack(stack);
  assert.equal(frames.length, 3);
  assert.deepEqual(top(frames), { filename: 'http://127.0.0.1:8795/app.js', function: 'checkout', lineno: 12, colno: 28, in_app: true });
  assert.equal(frames[1].function, 'render/<');
  assert.equal(frames[0].function, '?');
});

test('firefox eval', () => {
  const stack = `baz@http://localhost:8080/file.js line 26 > eval line 2 > eval:1:30
foo@http://localhost:8080/file.js line 26 > eval:2:96
@http://localhost:8080/file.js line 26 > eval:4:18
speak@http://localhost:8080/file.js:26:17
@http://localhost:8080/file.js:33:9`;
  const frames = parseStack(stack);
  assert.equal(frames.length, 5);
  assert.deepEqual(top(frames), { filename: 'http://localhost:8080/file.js', function: 'baz', lineno: 26, colno: undefined, in_app: true });
  assert.equal(frames[1].function, 'speak');
});

test('safari', () => {
  const stack = `checkout@http://127.0.0.1:8795/app.js:12:28
forEach@[native code]
global code@http://127.0.0.1:8795/todo2.html:32:28`;
  const frames = parseStack(stack);
  assert.equal(frames.length, 3);
  assert.deepEqual(top(frames), { filename: 'http://127.0.0.1:8795/app.js', function: 'checkout', lineno: 12, colno: 28, in_app: true });
  assert.deepEqual(frames[1], { filename: '[native code]', function: 'forEach', lineno: undefined, colno: undefined, in_app: false });
  assert.equal(frames[0].function, 'global code');
});

test('safari eval and async', () => {
  const stack = `eval code
eval@[native code]
speak@http://localhost:8080/file.js:26:21
async*load@http://localhost:8080/file.js:40:5
global code@http://localhost:8080/file.js:33:18`;
  const frames = parseStack(stack);
  assert.equal(frames.length, 4);
  assert.equal(top(frames).function, 'eval');
  assert.equal(frames[1].function, 'async*load');
});

test('nothing to parse', () => {
  assert.deepEqual(parseStack(undefined), []);
  assert.deepEqual(parseStack(''), []);
  assert.deepEqual(parseStack('just a message'), []);
});
