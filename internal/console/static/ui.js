// Shared pieces of the pages: the session state, action buttons that a
// read-only token disables, the confirmation dialog, messages, pagers.
import { h, clear, append } from './dom.js';

// session holds what the console knows about its token.
export const session = { readOnly: false };

let flashBox = null;

// setFlashBox names the element messages go to.
export function setFlashBox(el) { flashBox = el; }

// flash shows a message (kind: ok or error) until the next one or a click.
export function flash(message, kind) {
  if (!flashBox) return;
  clear(flashBox);
  append(flashBox, h('div', {
    class: 'flash ' + (kind || 'ok'), role: kind === 'error' ? 'alert' : 'status', 'data-testid': 'flash',
    on: { click: () => clear(flashBox) },
  }, message));
}

// describe turns an error into one line for a person.
export function describe(err) {
  if (err && err.status !== undefined) {
    return err.status ? `${err.message} (HTTP ${err.status}, ${err.code})` : err.message;
  }
  return String(err && err.message ? err.message : err);
}

// errorBox is an inline error for a part of a page that failed to load.
export function errorBox(err, what) {
  return h('div', { class: 'flash error', role: 'alert', 'data-testid': 'load-error' },
    (what ? what + ': ' : '') + describe(err));
}

// action is a button that runs fn (async) and reports its error; it is
// disabled for a read-only token, and while fn runs.
export function action(label, fn, opts) {
  const o = opts || {};
  const b = h('button', {
    type: 'button', class: 'action' + (o.danger ? ' danger' : ''), 'data-action': o.name || label.toLowerCase(),
    disabled: session.readOnly || !!o.disabled, title: session.readOnly ? 'read-only token: actions are disabled' : (o.disabled ? o.title : undefined),
  }, label);
  b.addEventListener('click', async () => {
    if (session.readOnly) return;
    b.disabled = true;
    try {
      await fn();
    } catch (e) {
      flash(describe(e), 'error');
    } finally {
      if (b.isConnected) b.disabled = false;
    }
  });
  return b;
}

// confirm asks a question in a modal dialog; resolves true on Confirm.
export function confirm(message, confirmLabel) {
  return new Promise((resolve) => {
    const dlg = h('dialog', { class: 'confirm', 'data-testid': 'confirm' });
    const done = (ok) => { dlg.close(); dlg.remove(); resolve(ok); };
    append(dlg,
      h('p', { 'data-testid': 'confirm-message' }, message),
      h('div', { class: 'buttons' },
        h('button', { type: 'button', 'data-testid': 'confirm-cancel', on: { click: () => done(false) } }, 'Cancel'),
        h('button', { type: 'button', class: 'danger', 'data-testid': 'confirm-ok', on: { click: () => done(true) } }, confirmLabel || 'Confirm')));
    dlg.addEventListener('cancel', (e) => { e.preventDefault(); done(false); });
    document.body.appendChild(dlg);
    dlg.showModal();
  });
}

// pager keeps a cursor stack for "newer / older" paging over an API that
// returns next_cursor. load(cursor) renders a page and returns next_cursor.
export function pager(load) {
  const stack = ['']; // the cursor of each page shown so far
  const prev = h('button', { type: 'button', 'data-testid': 'page-prev', text: '‹ Previous' });
  const next = h('button', { type: 'button', 'data-testid': 'page-next', text: 'Next ›' });
  const label = h('span', { class: 'muted' });
  let nextCursor = '';
  async function show() {
    nextCursor = (await load(stack[stack.length - 1])) || '';
    prev.disabled = stack.length <= 1;
    next.disabled = !nextCursor;
    label.textContent = 'page ' + stack.length;
  }
  prev.addEventListener('click', () => { if (stack.length > 1) { stack.pop(); show(); } });
  next.addEventListener('click', () => { if (nextCursor) { stack.push(nextCursor); show(); } });
  return {
    el: h('div', { class: 'pager' }, prev, label, next),
    reset: () => { stack.length = 1; return show(); },
    reload: show,
  };
}

// toRFC3339 turns a datetime-local value into an RFC 3339 time ('' stays '').
export function toRFC3339(v) {
  if (!v) return '';
  const d = new Date(v);
  return isNaN(d) ? v : d.toISOString();
}

// statusBadge shows a task state or an HTTP status.
export function badge(text, kind) {
  return h('span', { class: 'badge ' + (kind || String(text)) }, String(text));
}
