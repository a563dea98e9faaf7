// The console's only way to the API: fetch() on this origin's /v1 with the
// bearer token from sessionStorage in the Authorization header. The token
// never goes into a URL, a cookie or the console's own output.

const KEY = 'htq.console.token';

export const token = {
  get: () => sessionStorage.getItem(KEY) || '',
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

// APIError is a refused or failed call: its HTTP status and the API's error
// code and message.
export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let unauthorized = () => {};

// onUnauthorized sets what happens when the API answers 401 (the token was
// revoked or is wrong): the console signs out.
export function onUnauthorized(fn) { unauthorized = fn; }

function headers(extra) {
  return Object.assign({ Authorization: 'Bearer ' + token.get(), Accept: 'application/json' }, extra || {});
}

// call sends one request to /v1 and returns the decoded JSON answer (null
// for 204), or throws an APIError.
export async function call(method, path, body, signal) {
  const init = { method, headers: headers(), cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer', signal };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch('/v1' + path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new APIError(0, 'network', 'the API did not answer: ' + e.message);
  }
  if (r.status === 204) return null;
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  if (!r.ok) {
    const err = data && data.error ? data.error : {};
    if (r.status === 401) unauthorized();
    throw new APIError(r.status, err.code || 'http_' + r.status, err.message || (text.slice(0, 200) || r.statusText));
  }
  return data;
}

export const get = (path, signal) => call('GET', path, undefined, signal);
export const post = (path, body) => call('POST', path, body === undefined ? {} : body);
export const put = (path, body) => call('PUT', path, body);
export const del = (path) => call('DELETE', path);

// seg encodes one path segment (a queue, task or schedule name).
export const seg = encodeURIComponent;

// query builds "?k=v&..." from the non-empty values of params.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? '?' + s : '';
}

// stream reads GET /v1<path> as server-sent events with fetch() and a
// stream reader (EventSource cannot send the Authorization header), calling
// onEvent(type, data) for each event until signal aborts or the stream ends.
// onOpen runs once the server has accepted the stream.
export async function stream(path, onEvent, signal, onOpen) {
  const r = await fetch('/v1' + path, {
    headers: headers({ Accept: 'text/event-stream' }), cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer', signal,
  });
  if (!r.ok) {
    let err = {};
    try { err = (await r.json()).error || {}; } catch (_) { /* not JSON */ }
    if (r.status === 401) unauthorized();
    throw new APIError(r.status, err.code || 'http_' + r.status, err.message || r.statusText);
  }
  if (onOpen) onOpen();
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let type = 'message';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let nl;
    while ((nl = buf.search(/\r?\n/)) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf[nl] === '\r' ? 2 : 1));
      if (line === '') { // end of an event
        if (data.length) {
          let parsed = data.join('\n');
          try { parsed = JSON.parse(parsed); } catch (_) { /* keep the text */ }
          onEvent(type, parsed);
        }
        type = 'message';
        data = [];
      } else if (line.startsWith(':')) {
        // a comment (keepalive)
      } else {
        const i = line.indexOf(':');
        const name = i < 0 ? line : line.slice(0, i);
        let val = i < 0 ? '' : line.slice(i + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (name === 'event') type = val;
        else if (name === 'data') data.push(val);
      }
    }
  }
}
