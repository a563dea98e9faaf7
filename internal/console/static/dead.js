// Dead letters across queues (or one): filter, select, retry or delete the
// selection, or everything matching the filter: the count comes first, then
// a loop of bounded calls with a progress bar.
import { h, clear, append, link, fmtTime, table, field } from './dom.js';
import * as api from './api.js';
import { action, confirm, flash, errorBox, pager, toRFC3339, describe } from './ui.js';

const PAGE = 50;
const BULK = 500;

export async function dead(main, _arg, params) {
  const f = {
    queue: h('input', { type: 'text', name: 'queue', value: params.get('queue') || '', placeholder: 'all queues', 'data-testid': 'dead-queue' }),
    q: h('input', { type: 'search', name: 'q', placeholder: 'task id or URL part', 'data-testid': 'dead-q' }),
    code: h('input', { type: 'number', name: 'code', min: 100, max: 599, 'data-testid': 'dead-code' }),
    since: h('input', { type: 'datetime-local', name: 'since', step: 1 }),
    until: h('input', { type: 'datetime-local', name: 'until', step: 1 }),
  };
  const list = h('div', { 'data-testid': 'dead-list' });
  const progress = h('div', { class: 'progress', 'data-testid': 'bulk-progress' });
  const selected = new Set();
  const countLabel = h('span', { class: 'muted', 'data-testid': 'selected-count' });
  let filter = {};

  function readFilter() {
    const out = {};
    for (const k of ['queue', 'q']) if (f[k].value.trim()) out[k] = f[k].value.trim();
    if (f.code.value) out.code = Number(f.code.value);
    for (const k of ['since', 'until']) if (f[k].value) out[k] = toRFC3339(f[k].value);
    return out;
  }
  function showSelected() { countLabel.textContent = selected.size ? `${selected.size} selected` : ''; }

  const pg = pager(async (cursor) => {
    try {
      const r = await api.get('/dead' + api.query({ ...filter, cursor, limit: PAGE }));
      const tasks = r.tasks || [];
      clear(list);
      const all = h('input', { type: 'checkbox', 'aria-label': 'select this page', 'data-testid': 'select-page' });
      const boxes = tasks.map((t) => {
        const b = h('input', { type: 'checkbox', checked: selected.has(t.id), 'data-id': t.id, 'aria-label': 'select ' + t.id });
        b.addEventListener('change', () => { if (b.checked) selected.add(t.id); else selected.delete(t.id); showSelected(); });
        return b;
      });
      all.addEventListener('change', () => {
        boxes.forEach((b) => { b.checked = all.checked; if (all.checked) selected.add(b.dataset.id); else selected.delete(b.dataset.id); });
        showSelected();
      });
      append(list, table([all, 'Task', 'Queue', 'URL', 'Attempts', 'Last status', 'Last error', 'Died'],
        tasks.map((t, i) => h('tr', { 'data-task': t.id },
          h('td', {}, boxes[i]), h('td', {}, link(t.id, 'task', t.id)), h('td', {}, link(t.queue, 'queue', t.queue)),
          h('td', { class: 'url', text: t.url }), h('td', { class: 'num', text: t.attempts }),
          h('td', { class: 'num', text: t.last_status || '' }), h('td', { class: 'err', text: t.last_error || '' }),
          h('td', {}, fmtTime(t.finished_at || t.updated_at))))));
      if (!tasks.length) append(list, h('p', { class: 'muted', 'data-testid': 'dead-empty', text: 'No dead task matches.' }));
      return r.next_cursor;
    } catch (e) {
      clear(list);
      append(list, errorBox(e, 'GET /v1/dead'));
      return '';
    }
  });

  async function onSelection(verb) {
    const ids = [...selected];
    if (!ids.length) { flash('Select tasks first.', 'error'); return; }
    if (verb === 'delete' && !(await confirm(`Delete ${ids.length} dead task(s) for good?`, 'Delete'))) return;
    const r = await api.post(`/dead/${verb}`, { ids });
    selected.clear();
    showSelected();
    flash(`${verb === 'retry' ? 'Retried' : 'Deleted'} ${r.done} of ${r.matched} selected task(s).`);
    await pg.reload();
  }

  // onFilter handles everything matching the filter: count, confirm, then
  // calls of at most BULK tasks until none remain.
  async function onFilter(verb) {
    const fl = filter;
    const { count } = await api.get('/dead/count' + api.query(fl));
    if (!count) { flash('No dead task matches the filter.'); return; }
    const what = describeFilter(fl);
    if (!(await confirm(`${verb === 'retry' ? 'Retry' : 'Delete'} ${count} dead task(s) matching ${what}?`, verb === 'retry' ? 'Retry all' : 'Delete all'))) return;
    const bar = h('progress', { max: count, value: 0 });
    const label = h('span', { 'data-testid': 'bulk-label', text: `0 of ${count}` });
    clear(progress);
    append(progress, bar, ' ', label);
    let done = 0;
    try {
      for (;;) {
        const r = await api.post(`/dead/${verb}`, { filter: fl, limit: BULK });
        done += r.done;
        bar.max = Math.max(count, done + r.remaining);
        bar.value = done;
        label.textContent = `${done} of ${done + r.remaining}`;
        if (!r.remaining) break;
        if (!r.done) throw new Error(`the API handled none of the ${r.remaining} remaining task(s); stopped`);
      }
      label.textContent = `${verb === 'retry' ? 'Retried' : 'Deleted'} ${done} task(s).`;
      flash(label.textContent);
    } catch (e) {
      label.textContent = `stopped after ${done}: ${describe(e)}`;
      throw e;
    } finally {
      selected.clear();
      showSelected();
      await pg.reset();
    }
  }

  const form = h('form', { class: 'toolbar search', 'data-testid': 'dead-filter' },
    field('Queue', f.queue), field('Search', f.q), field('Last status', f.code), field('Since', f.since), field('Until', f.until),
    h('button', { type: 'submit', 'data-testid': 'dead-apply', text: 'Filter' }));
  form.addEventListener('submit', (e) => { e.preventDefault(); filter = readFilter(); selected.clear(); showSelected(); pg.reset(); });
  filter = readFilter();
  append(main, h('h1', { text: 'Dead letters' }), form,
    h('div', { class: 'toolbar' },
      action('Retry selected', () => onSelection('retry'), { name: 'retry-selected' }),
      action('Delete selected', () => onSelection('delete'), { name: 'delete-selected', danger: true }),
      countLabel,
      action('Retry all matching', () => onFilter('retry'), { name: 'retry-matching' }),
      action('Delete all matching', () => onFilter('delete'), { name: 'delete-matching', danger: true })),
    progress, list, pg.el);
  await pg.reset();
  return null;
}

function describeFilter(fl) {
  const parts = Object.entries(fl).map(([k, v]) => `${k}=${v}`);
  return parts.length ? 'the filter ' + parts.join(', ') : 'no filter (every dead task)';
}
