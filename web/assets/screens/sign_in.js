// Sign-in: username and password into POST /v1/web/sign-in, which sets the session cookie and
// answers the CSRF token. Field workers are told this page is not for them.
import { ApiError, post } from '../api.js';
import { field, h } from '../dom.js';
import { t } from '../i18n.js';

const knownRefusals = ['bad_credentials', 'not_for_field_workers', 'locked', 'slow_down', 'disabled'];

function textOf(message) {
  if (!message) return '';
  return message.key ? t(message.key, message.values) : message.text;
}

export function render(app, message) {
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const status = h('p', { class: message ? 'form-message' : 'form-message empty', role: 'alert', id: 'sign-in-message' }, textOf(message));
  const submit = h('button', { type: 'submit', class: 'primary' }, t('sign_in.submit'));
  const form = h('form', {
    class: 'sign-in',
    onsubmit: async (event) => {
      event.preventDefault();
      submit.disabled = true;
      status.textContent = '';
      try {
        const session = await post('/v1/web/sign-in', { username: username.value.trim(), password: password.value });
        password.value = '';
        app.signedIn(session);
      } catch (error) {
        password.value = '';
        submit.disabled = false;
        const known = error instanceof ApiError && knownRefusals.includes(error.code);
        status.textContent = known ? t(`sign_in.${error.code}`) : error.message;
        status.className = 'form-message';
        status.dataset.code = error.code ?? '';
      }
    },
  },
  h('h1', {}, t('sign_in.title')),
  h('p', { class: 'lead' }, t('sign_in.lead')),
  field(t('sign_in.username'), username),
  field(t('sign_in.password'), password),
  submit,
  status);
  return h('section', { class: 'screen screen-sign-in' }, form);
}
