// Caseload assignment (administrators): a client's area and the field workers assigned to them.
// Administrators read no care records, so the client is named by the id shown on the device.
import { get, put } from '../api.js';
import { field, h, replace, select } from '../dom.js';
import { t } from '../i18n.js';

const fieldWorkerRoles = ['peer_supporter', 'home_visitor', 'staff'];

export async function render(root, app) {
  const [{ teams }, { users }] = await Promise.all([get('/v1/admin/teams'), get('/v1/admin/users')]);
  const clientId = h('input', { name: 'client', required: true, pattern: '[0-9a-f]{32}', size: 34, value: app.memory.caseloadClient ?? '', autocomplete: 'off' });
  const editor = h('div', { class: 'caseload-editor' });

  const load = async () => {
    app.memory.caseloadClient = clientId.value.trim();
    try {
      const caseload = await get(`/v1/admin/clients/${encodeURIComponent(app.memory.caseloadClient)}/caseload`);
      showEditor(caseload);
    } catch (error) {
      replace(editor, h('p', { class: 'error' }, error.message));
    }
  };

  const showEditor = (caseload) => {
    const team = select({ name: 'team' }, [{ value: '', label: t('caseload.none') }, ...teams.map((x) => ({ value: x.id, label: x.name }))], caseload.team_id);
    const workers = users.filter((u) => fieldWorkerRoles.includes(u.role) && !u.disabled).map((u) => ({
      user: u,
      box: h('input', { type: 'checkbox', name: 'worker', value: u.id, checked: caseload.worker_ids.includes(u.id) }),
    }));
    replace(editor, h('form', {
      class: 'panel',
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          await put(`/v1/admin/clients/${encodeURIComponent(caseload.client_id)}/caseload`, {
            team_id: team.value,
            worker_ids: workers.filter((w) => w.box.checked).map((w) => w.user.id),
          });
          app.notify(t('caseload.saved'));
        } catch (error) {
          app.notify(error.message, 'error');
        }
      },
    },
    field(t('caseload.team'), team),
    h('fieldset', { class: 'workers' }, h('legend', {}, t('caseload.workers')),
      workers.map((w) => h('label', { class: 'check', dataset: { username: w.user.username } }, w.box,
        ` ${w.user.display_name || w.user.username}（${t(`role.${w.user.role}`)}）`))),
    h('button', { type: 'submit', class: 'primary' }, t('caseload.save'))));
  };

  replace(root,
    h('h1', {}, t('caseload.title')),
    h('p', { class: 'lead' }, t('caseload.lead')),
    h('form', { class: 'filters', onsubmit: (event) => { event.preventDefault(); load(); } },
      field(t('caseload.client'), clientId), h('button', { type: 'submit' }, t('caseload.load'))),
    editor);
  if (clientId.value) await load();
}
