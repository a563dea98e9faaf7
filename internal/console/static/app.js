// The console's shell: sign-in, navigation and the hash router. Pages are
// addressed by the URL fragment (#/queues, #/queue/NAME, #/task/ID, #/dead,
// #/schedules, #/live, #/ for the overview); each page module renders into
// the main element and returns a function that stops its timers and streams.
import { h, clear, append } from './dom.js';
import * as api from './api.js';
import { session, setFlashBox, describe } from './ui.js';
import { overview } from './overview.js';
import { queues, queue } from './queues.js';
import { taskPage } from './task.js';
import { dead } from './dead.js';
import { schedules } from './schedules.js';
import { live } from './live.js';

const root = document.getElementById('app');
let stopPage = null;

const nav = [
  ['#/', 'Overview'], ['#/queues', 'Queues'], ['#/dead', 'Dead letters'], ['#/schedules', 'Schedules'], ['#/live', 'Live'],
];

// route parses the fragment into a page name and its decoded argument.
function route() {
  const [path, qs] = location.hash.replace(/^#\/?/, '').split('?');
  const parts = path.split('/');
  const page = parts[0] || 'overview';
  let arg = '';
  try { arg = parts.slice(1).map(decodeURIComponent).join('/'); } catch (_) { arg = parts.slice(1).join('/'); }
  return { page, arg, params: new URLSearchParams(qs || '') };
}

function signIn(message) {
  stop();
  main = null; // no page renders until signed in again
  clear(root);
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true, 'data-testid': 'token' });
  const err = h('div', { 'data-testid': 'signin-error' });
  if (message) append(err, h('div', { class: 'flash error', role: 'alert' }, message));
  const form = h('form', { class: 'signin', 'data-testid': 'signin' },
    h('h1', { text: 'HTQ console' }),
    h('label', { for: 'token', text: 'API token' }),
    input,
    h('button', { type: 'submit', 'data-testid': 'signin-submit', text: 'Sign in' }),
    err,
    h('p', { class: 'muted', text: 'The token stays in this tab (sessionStorage) and is sent only as an Authorization header to this server.' }));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    api.token.set(input.value.trim());
    input.value = '';
    try {
      await whoami();
      start();
    } catch (ex) {
      api.token.clear();
      signIn(ex.status === 401 ? 'This token was refused.' : describe(ex));
    }
  });
  root.appendChild(form);
  input.focus();
}

// whoami asks the API whether the token is read-only. A server without the
// route (404) has no read-only tokens: then a call every token may make
// checks the token instead.
async function whoami() {
  try {
    const me = await api.get('/whoami');
    session.readOnly = !!(me && me.read_only);
  } catch (e) {
    if (e.status !== 404) throw e;
    await api.get('/queues?limit=1');
    session.readOnly = false;
  }
}

function signOut() {
  api.token.clear();
  session.readOnly = false;
  signIn();
}

function stop() {
  if (stopPage) { try { stopPage(); } catch (_) { /* already stopped */ } }
  stopPage = null;
}

let main = null;
let flashBox = null;
let navLinks = [];

function shell() {
  clear(root);
  navLinks = nav.map(([href, label]) => h('a', { href, text: label }));
  flashBox = h('div', { class: 'flash-box' });
  setFlashBox(flashBox);
  main = h('main', { id: 'main' });
  append(root,
    h('header', {},
      h('a', { href: '#/', class: 'brand', text: 'HTQ' }),
      h('nav', {}, navLinks),
      session.readOnly ? h('span', { class: 'badge readonly', 'data-testid': 'readonly', text: 'read-only' }) : null,
      h('button', { type: 'button', class: 'signout', 'data-testid': 'signout', on: { click: signOut } }, 'Sign out')),
    session.readOnly ? h('div', { class: 'flash info', text: 'This token is read-only: you can look at everything, every action is disabled.' }) : null,
    flashBox,
    main);
}

const pages = { overview, queues, queue, task: taskPage, dead, schedules, live };

async function render() {
  stop();
  if (!main) return;
  const { page, arg, params } = route();
  const cur = '#/' + (page === 'overview' ? '' : page);
  for (const a of navLinks) a.classList.toggle('current', a.getAttribute('href') === cur || (page === 'queue' && a.getAttribute('href') === '#/queues'));
  clear(main);
  clear(flashBox); // a message belongs to the page it was shown on
  const fn = pages[page];
  if (!fn) {
    append(main, h('h1', { text: 'Not found' }), h('p', {}, 'No console page is called ', h('code', { text: page }), '.'));
    return;
  }
  try {
    stopPage = (await fn(main, arg, params)) || null;
  } catch (e) {
    append(main, h('div', { class: 'flash error', role: 'alert' }, describe(e)));
  }
}

function start() {
  shell();
  render();
}

api.onUnauthorized(() => signIn('The API refused the token (401): sign in again.'));
window.addEventListener('hashchange', render);
if (api.token.get()) {
  whoami().then(start, (e) => { api.token.clear(); signIn(describe(e)); });
} else {
  signIn();
}
