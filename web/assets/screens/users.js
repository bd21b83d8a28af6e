// Users (administrators): everyone's role, team and state; add a user; move a user to another
// team; disable or enable an account. A field worker always has a team (the server refuses one
// without): its supervisors review her records. One left without by an older version is flagged.
import { get, patch, post } from '../api.js';
import { field, h, replace, select } from '../dom.js';
import { t } from '../i18n.js';

export const roles = ['peer_supporter', 'home_visitor', 'staff', 'supervisor', 'admin'];
const isFieldWorker = (role) => ['peer_supporter', 'home_visitor', 'staff'].includes(role);

export async function render(root, app) {
  const [{ users }, { teams }] = await Promise.all([get('/v1/admin/users'), get('/v1/admin/teams')]);
  const teamOptions = [{ value: '', label: t('users.no_team') }, ...teams.map((team) => ({ value: team.id, label: team.name }))];
  // A field worker's choices: the teams only, unless she has none yet.
  const teamOptionsFor = (user) => (isFieldWorker(user.role) && user.team_id ? teamOptions.slice(1) : teamOptions);

  const update = async (user, change) => {
    try {
      await patch(`/v1/admin/users/${encodeURIComponent(user.id)}`, change);
      app.notify(t('users.updated', { name: user.username }));
      app.show('users');
    } catch (error) {
      app.notify(error.message, 'error');
    }
  };

  const rows = users.map((user) => h('tr', { dataset: { username: user.username } },
    h('td', {}, user.username),
    h('td', {}, user.display_name),
    h('td', {}, t(`role.${user.role}`)),
    h('td', isFieldWorker(user.role) && !user.team_id ? { class: 'no-team', title: t('users.team_required') } : {},
      select({ 'aria-label': t('users.team'), class: 'team', onchange: (event) => update(user, { team_id: event.target.value }) }, teamOptionsFor(user), user.team_id)),
    h('td', {}, user.disabled ? t('users.disabled') : t('users.active')),
    h('td', {}, user.id === app.user.id ? null : h('button', { type: 'button', class: user.disabled ? '' : 'danger', onclick: () => update(user, { disabled: !user.disabled }) },
      user.disabled ? t('users.enable') : t('users.disable')))));

  const inputs = {
    username: h('input', { name: 'username', required: true, maxlength: 64, autocomplete: 'off' }),
    display_name: h('input', { name: 'display_name', maxlength: 100 }),
    role: select({ name: 'role' }, roles.map((r) => ({ value: r, label: t(`role.${r}`) })), 'peer_supporter'),
    team_id: select({ name: 'team_id' }, teamOptions, ''),
    password: h('input', { name: 'password', type: 'password', required: true, autocomplete: 'new-password' }),
  };
  const form = h('form', {
    class: 'panel create-user',
    onsubmit: async (event) => {
      event.preventDefault();
      const body = Object.fromEntries(Object.entries(inputs).map(([name, input]) => [name, input.value]));
      if (isFieldWorker(body.role) && !body.team_id) {
        app.notify(t('users.team_required'), 'error');
        return;
      }
      try {
        await post('/v1/admin/users', body);
        app.notify(t('users.created', { name: body.username }));
        app.show('users');
      } catch (error) {
        app.notify(error.message, 'error');
      }
    },
  },
  h('h2', {}, t('users.add')),
  h('div', { class: 'row' },
    field(t('users.username'), inputs.username),
    field(t('users.display_name'), inputs.display_name),
    field(t('users.role'), inputs.role),
    field(t('users.team'), inputs.team_id),
    field(t('users.password'), inputs.password)),
  h('button', { type: 'submit', class: 'primary' }, t('users.create')));

  replace(root,
    h('h1', {}, t('users.title')),
    h('table', { class: 'users' },
      h('thead', {}, h('tr', {}, ['username', 'display_name', 'role', 'team', 'state'].map((c) => h('th', {}, t(`users.${c}`))), h('th', {}))),
      h('tbody', {}, rows)),
    form);
}
