// A first password must be changed: a panel above every screen until it is (POST /v1/me/password,
// which takes the current password too).
import { post } from '../api.js';
import { field, h } from '../dom.js';
import { t } from '../i18n.js';

export function render(app, done) {
  const current = h('input', { type: 'password', name: 'current-password', autocomplete: 'current-password', required: true });
  const input = h('input', { type: 'password', name: 'new-password', autocomplete: 'new-password', required: true, minlength: 8 });
  return h('form', {
    class: 'panel warning change-password',
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        await post('/v1/me/password', { current_password: current.value, password: input.value });
        current.value = '';
        input.value = '';
        app.notify(t('password.changed'));
        done();
      } catch (error) {
        app.notify(error.message, 'error');
      }
    },
  },
  h('h2', {}, t('password.title')),
  h('p', {}, t('password.lead')),
  field(t('password.current'), current),
  field(t('password.new'), input),
  h('button', { type: 'submit' }, t('password.save')));
}
