// Teams, which are the city's areas (administrators): the list with member counts, and a new one.
import { get, post } from '../api.js';
import { field, h, replace } from '../dom.js';
import { t } from '../i18n.js';

export async function render(root, app) {
  const [{ teams }, { users }] = await Promise.all([get('/v1/admin/teams'), get('/v1/admin/users')]);
  const name = h('input', { name: 'name', required: true, maxlength: 100 });
  replace(root,
    h('h1', {}, t('teams.title')),
    h('table', { class: 'teams' },
      h('thead', {}, h('tr', {}, h('th', {}, t('teams.name')), h('th', {}, t('teams.members')))),
      h('tbody', {}, teams.map((team) => h('tr', { dataset: { team: team.name } },
        h('td', {}, team.name),
        h('td', { class: 'number' }, String(users.filter((u) => u.team_id === team.id).length)))))),
    h('form', {
      class: 'panel create-team',
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          await post('/v1/admin/teams', { name: name.value.trim() });
          app.notify(t('teams.created', { name: name.value.trim() }));
          app.show('teams');
        } catch (error) {
          app.notify(error.message, 'error');
        }
      },
    }, h('h2', {}, t('teams.add')), field(t('teams.name'), name), h('button', { type: 'submit', class: 'primary' }, t('teams.create'))));
}
