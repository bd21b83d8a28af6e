// The page's shell: sign-in state, the navigation for the signed-in role, the language switch,
// the idle sign-out, and which screen shows. The screen and the record being looked at live in
// this page's memory only: nothing about records ever goes into the address bar.
import { ApiError, get, post, setCsrfToken, whenSessionEnds } from './api.js';
import { h, replace } from './dom.js';
import { forgetDirectory } from './directory.js';
import { errorText, language, setLanguage, t } from './i18n.js';
import { IdleTimer } from './idle.js';
import * as signIn from './screens/sign_in.js';
import * as password from './screens/password.js';
import * as inbox from './screens/inbox.js';
import * as record from './screens/record.js';
import * as conflicts from './screens/conflicts.js';
import * as refused from './screens/refused.js';
import * as indicators from './screens/indicators.js';
import * as users from './screens/users.js';
import * as teams from './screens/teams.js';
import * as caseload from './screens/caseload.js';
import * as devices from './screens/devices.js';
import * as targets from './screens/targets.js';
import * as backups from './screens/backups.js';

const screens = { inbox, record, conflicts, refused, indicators, users, teams, caseload, devices, targets, backups };
// Which screens each role's navigation offers, the first being where a sign-in lands.
const navigation = {
  supervisor: ['inbox', 'conflicts', 'refused', 'indicators'],
  admin: ['users', 'teams', 'caseload', 'devices', 'targets', 'indicators', 'backups'],
};

const state = { session: null, screen: null, params: {}, memory: {}, idle: null, signInMessage: null };
const elements = {
  main: document.getElementById('main'),
  nav: document.getElementById('nav'),
  who: document.getElementById('who'),
  language: document.getElementById('language'),
  signOut: document.getElementById('sign-out'),
  notice: document.getElementById('notice'),
};

// What screens get: navigation, notices, the signed-in user, and a place to keep filters.
const app = {
  show,
  notify,
  get user() { return state.session?.user; },
  memory: state.memory,
  signedIn,
};

function notify(text, kind = 'info') {
  elements.notice.textContent = text;
  elements.notice.className = `notice ${kind}`;
  elements.notice.hidden = !text;
}

// The record view belongs to the inbox's tab.
const isCurrent = (name) => name === state.screen || (name === 'inbox' && state.screen === 'record');

function renderHeader() {
  elements.language.textContent = t('language.other');
  elements.signOut.textContent = t('sign_out');
  const user = state.session?.user;
  elements.signOut.hidden = !user;
  replace(elements.who, user ? t('who.signed_in', { name: user.display_name || user.username, role: t(`role.${user.role}`) }) : '');
  const items = user ? navigation[user.role] ?? [] : [];
  replace(elements.nav, items.map((name) => h('button', {
    type: 'button',
    class: isCurrent(name) ? 'nav-item current' : 'nav-item',
    'aria-current': isCurrent(name) ? 'page' : null,
    dataset: { screen: name },
    onclick: () => { notify(''); show(name); },
  }, t(`nav.${name}`))));
}

async function show(screen, params = {}) {
  state.screen = screen;
  state.params = params;
  renderHeader();
  // A password an administrator set opens nothing else (the server refuses the rest): only the
  // panel to choose one's own, then the screen.
  if (state.session?.must_change_password) {
    replace(elements.main, password.render(app, () => { state.session.must_change_password = false; show(state.screen, state.params); }));
    return;
  }
  const root = h('section', { class: `screen screen-${screen}` });
  replace(elements.main, root);
  replace(root, h('p', { class: 'loading' }, t('app.loading')));
  try {
    await screens[screen].render(root, app, params);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;  // the sign-in screen took over
    replace(root, h('p', { class: 'error' }, t('app.error', { message: error.message })),
      h('button', { type: 'button', onclick: () => show(screen, params) }, t('app.retry')));
  }
}

// `message`: null, {key, values} to translate, or {text} as the server said it.
function showSignIn(message = null) {
  state.session = null;
  state.screen = null;
  state.memory = {};
  app.memory = state.memory;
  state.signInMessage = message;
  state.idle?.stop();
  setCsrfToken('');
  forgetDirectory();
  renderHeader();
  replace(elements.main, signIn.render(app, message));
}

function signedIn(session) {
  state.session = session;
  setCsrfToken(session.csrf_token);
  state.idle?.stop();
  state.idle = new IdleTimer(session.idle_seconds, async () => {
    try { await post('/v1/web/sign-out'); } catch { /* the server ends it on its own anyway */ }
    showSignIn({ key: 'sign_in.expired', values: { minutes: Math.round(session.idle_seconds / 60) } });
  }, () => get('/v1/web/session').catch(() => { /* a 401 signs the page out; the rest can wait */ }));
  state.idle.start();
  notify('');
  show(navigation[session.user.role][0]);
}

// A sign-out in one tab signs out every tab of the page: the cookie they share is gone, and on a
// shared office computer the next person would otherwise find a record on screen in another tab
// until its idle time ran out. Told through localStorage (a time, nothing else), which fires
// 'storage' in the other tabs only.
const signedOutKey = 'tsunagu.signed_out';
window.addEventListener('storage', (event) => {
  if (event.key === signedOutKey && state.session) showSignIn({ key: 'sign_in.signed_out' });
});

async function signOut() {
  try {
    await post('/v1/web/sign-out');
  } catch (error) {
    // Said signed out only when it is: on a shared office computer, the next person would
    // otherwise find the session open.
    if (!(error instanceof ApiError && error.status === 401)) {
      notify(t('sign_in.sign_out_failed', { message: errorText(error) }), 'error');
      return;
    }
  }
  try { localStorage.setItem(signedOutKey, String(Date.now())); } catch { /* storage off: each tab on its own */ }
  showSignIn({ key: 'sign_in.signed_out' });
}

whenSessionEnds((error) => {
  if (!state.session) return;
  const minutes = Math.round((state.session.idle_seconds || 900) / 60);
  if (error.code === 'session_expired') showSignIn({ key: 'sign_in.expired', values: { minutes } });
  else if (error.code === 'wipe') showSignIn({ key: 'sign_in.revoked' });
  else showSignIn({ text: error.message });
});

elements.language.addEventListener('click', () => {
  setLanguage(language() === 'ja' ? 'en' : 'ja');
  if (state.session && state.screen) show(state.screen, state.params);
  else showSignIn(state.signInMessage);
});
elements.signOut.addEventListener('click', signOut);

async function start() {
  setLanguage(language());
  try {
    signedIn(await get('/v1/web/session'));
  } catch {
    showSignIn();
  }
}

start();
