// Task: the request as HTQ sends it, every delivery attempt, the state;
// retry, cancel, copy as curl. Refreshes every 2 seconds while the task is
// not finished, so a retry is seen to run.
import { h, clear, append, link, fmtTime, table } from './dom.js';
import * as api from './api.js';
import { action, confirm, flash, errorBox, badge } from './ui.js';

const REFRESH_MS = 2000;
const FINISHED = new Set(['succeeded', 'dead', 'cancelled']);
const RETRYABLE = new Set(['dead', 'cancelled']); // POST /v1/tasks/{id}/retry refuses the others

// headerPairs reads a task's headers whichever way the API lists them:
// an object of strings or string arrays, or a list of {name, value} or
// [name, value].
export function headerPairs(hs) {
  if (!hs) return [];
  if (Array.isArray(hs)) return hs.map((x) => (Array.isArray(x) ? [String(x[0]), String(x[1])] : [String(x.name ?? x.n ?? ''), String(x.value ?? x.v ?? '')]));
  const out = [];
  for (const [k, v] of Object.entries(hs)) for (const one of Array.isArray(v) ? v : [v]) out.push([k, String(one)]);
  return out;
}

// shellQuote quotes s for a POSIX shell.
function shellQuote(s) { return "'" + String(s).replace(/'/g, "'\\''") + "'"; }

// requestOf is what GET /v1/tasks/{id} says is sent besides the method and
// URL (its "request" object): headers and form as [name, value] pairs in
// order, the body as text or base64, and how a form is sent.
export function requestOf(t) {
  const r = t.request;
  if (!r) return null;
  return {
    headers: headerPairs(r.headers), kind: r.body_kind || '',
    form: r.form ? headerPairs(r.form) : null, body: typeof r.body === 'string' ? r.body : null,
    bodyBase64: r.body_base64 || '',
  };
}

// curl is the command that sends the task's request as HTQ would.
export function curl(t) {
  const r = requestOf(t) || { headers: [], form: null, body: null, bodyBase64: '', kind: '' };
  const parts = ['curl', '-X', t.method || 'POST', shellQuote(t.url)];
  for (const [k, v] of r.headers) parts.push('-H', shellQuote(`${k}: ${v}`));
  if (r.form) for (const [k, v] of r.form) parts.push(r.kind === 'multipart' ? '-F' : '--data-urlencode', shellQuote(`${k}=${v}`));
  else if (r.body !== null && r.body !== '') parts.push('--data-binary', shellQuote(r.body));
  else if (r.bodyBase64) parts.splice(0, 0, `printf %s ${shellQuote(r.bodyBase64)} | base64 -d |`), parts.push('--data-binary', '@-');
  return parts.join(' ');
}

export async function taskPage(main, id) {
  const body = h('div', { 'data-testid': 'task' });
  append(main, body);
  const ctl = new AbortController();
  let timer = null;
  let last = '';
  async function load() {
    try {
      const t = await api.get(`/tasks/${api.seg(id)}`, ctl.signal);
      const sig = JSON.stringify(t);
      if (sig !== last) { // redraw only on change: keep the reader's selection
        last = sig;
        clear(body);
        draw(body, t, load);
      }
      if (!FINISHED.has(t.state)) timer = setTimeout(load, REFRESH_MS);
    } catch (e) {
      if (e.name === 'AbortError') return;
      clear(body);
      append(body, h('h1', {}, 'Task ', h('code', { text: id })), errorBox(e, 'GET /v1/tasks/' + id));
    }
  }
  await load();
  return () => { ctl.abort(); clearTimeout(timer); };
}

function dl(pairs) {
  return h('dl', { class: 'props' }, pairs.filter((p) => p).map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]));
}

function draw(body, t, reload) {
  const cmd = curl(t);
  const curlBox = h('pre', { class: 'curl', 'data-testid': 'curl', hidden: true, text: cmd });
  const req = requestOf(t);
  append(body,
    h('h1', {}, 'Task ', h('code', { 'data-testid': 'task-id', text: t.id }), ' ', h('span', { 'data-testid': 'task-state' }, badge(t.state))),
    h('div', { class: 'toolbar' },
      action('Retry', async () => {
        await api.post(`/tasks/${api.seg(t.id)}/retry`);
        flash(`Task ${t.id} queued again.`);
        reload();
      }, { name: 'retry', disabled: !RETRYABLE.has(t.state), title: 'only a dead or cancelled task runs again' }),
      t.state === 'dead'
        ? action('Delete', async () => {
          if (!(await confirm(`Delete dead task ${t.id} of queue “${t.queue}” for good?`, 'Delete'))) return;
          await api.del(`/tasks/${api.seg(t.id)}`);
          flash(`Dead task ${t.id} deleted.`);
          location.hash = '#/queue/' + encodeURIComponent(t.queue);
        }, { name: 'delete', danger: true })
        : action('Cancel', async () => {
          if (!(await confirm(`Cancel task ${t.id} of queue “${t.queue}”?`, 'Cancel task'))) return;
          await api.del(`/tasks/${api.seg(t.id)}`);
          flash(`Task ${t.id} cancelled.`);
          reload();
        }, { name: 'cancel', danger: true, disabled: FINISHED.has(t.state), title: 'a finished task cannot be cancelled' }),
      h('button', { type: 'button', 'data-testid': 'copy-curl', on: { click: async () => {
        curlBox.hidden = false;
        try { await navigator.clipboard.writeText(cmd); flash('curl command copied.'); } catch (_) { flash('Select the command below to copy it.'); }
      } } }, 'Copy as curl')),
    curlBox,
    h('section', {}, h('h2', { text: 'Request' }),
      dl([
        ['Queue', link(t.queue, 'queue', t.queue)],
        ['Method', h('code', { text: t.method || 'POST' })],
        ['URL', h('code', { class: 'url', 'data-testid': 'task-url', text: t.url })],
        req ? ['Headers', req.headers.length ? h('table', { class: 'headers', 'data-testid': 'task-headers' },
          h('tbody', {}, req.headers.map(([k, v]) => h('tr', {}, h('th', { text: k }), h('td', { text: v }))))) : h('span', { class: 'muted', text: 'none' })] : null,
        req && req.form ? [`Form (${req.kind || 'urlencoded'})`, h('pre', { 'data-testid': 'task-form', text: req.form.map(([k, v]) => `${k}=${v}`).join('\n') })] : null,
        req && req.body !== null ? ['Body', h('pre', { class: 'body', 'data-testid': 'task-body', text: req.body })] : null,
        req && req.bodyBase64 ? ['Body (base64)', h('pre', { class: 'body', 'data-testid': 'task-body', text: req.bodyBase64 })] : null,
      ])),
    h('section', {}, h('h2', { text: 'State' }),
      dl([
        ['State', badge(t.state)], ['Attempts', `${t.attempts}${t.max_attempts ? ' of ' + t.max_attempts : ''}`],
        ['Created', fmtTime(t.created_at)], t.run_at ? ['Runs at', fmtTime(t.run_at)] : null,
        ['Updated', fmtTime(t.updated_at)], t.finished_at ? ['Finished', fmtTime(t.finished_at)] : null,
        t.last_status ? ['Last status', String(t.last_status)] : null,
        t.last_error ? ['Last error', h('span', { class: 'err', text: t.last_error })] : null,
        t.cancel_requested ? ['Cancel', 'requested: the running attempt is being stopped'] : null,
      ])),
    h('section', {}, h('h2', { text: 'Attempts' }),
      (t.history || []).length
        ? table(['#', 'At', 'Status', 'Latency', 'Error', 'Answer (first bytes)'], (t.history || []).slice().reverse().map((a) => h('tr', { 'data-attempt': a.attempt },
          h('td', { class: 'num', text: a.attempt }), h('td', {}, fmtTime(a.at)),
          h('td', { class: 'num' }, a.status ? badge(a.status, a.status < 300 ? 'succeeded' : 'failed') : h('span', { class: 'muted', text: '–' })),
          h('td', { class: 'num', text: a.latency_ms + ' ms' }), h('td', { class: 'err', text: a.error || '' }),
          h('td', {}, a.body ? h('pre', { class: 'answer', text: a.body }) : h('span', { class: 'muted', text: '–' })))), { 'data-testid': 'attempts' })
        : h('p', { class: 'muted', 'data-testid': 'no-attempts', text: 'No attempt yet.' })));
}
