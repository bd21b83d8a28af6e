// Devices (administrators): every registered device with its user and last connection; revoking
// one ends its sessions, and its next request tells it to erase its replica.
import { get, post } from '../api.js';
import { h, replace } from '../dom.js';
import { timeOf } from '../format.js';
import { t } from '../i18n.js';

export async function render(root, app) {
  const [{ devices }, { users }] = await Promise.all([get('/v1/admin/devices'), get('/v1/admin/users')]);
  const nameOf = (id) => {
    const user = users.find((u) => u.id === id);
    return user ? user.display_name || user.username : id;
  };
  const confirmBox = h('div', { class: 'confirm-box' });

  const askToRevoke = (device) => {
    replace(confirmBox, h('div', { class: 'panel warning', role: 'alertdialog' },
      h('p', {}, t('devices.confirm', { name: device.name, user: nameOf(device.user_id) })),
      h('div', { class: 'actions' },
        h('button', {
          type: 'button', class: 'danger', id: 'confirm-revoke',
          onclick: async () => {
            try {
              await post(`/v1/admin/devices/${encodeURIComponent(device.id)}/revoke`);
              app.notify(t('devices.done'));
              app.show('devices');
            } catch (error) {
              app.notify(error.message, 'error');
            }
          },
        }, t('devices.confirm_yes')),
        h('button', { type: 'button', onclick: () => replace(confirmBox) }, t('devices.cancel')))));
  };

  const newestFirst = [...devices].sort((a, b) => b.last_seen_at - a.last_seen_at);
  replace(root,
    h('h1', {}, t('devices.title')),
    confirmBox,
    h('table', { class: 'devices' },
      h('thead', {}, h('tr', {}, ['user', 'name', 'registered', 'last_seen', 'state'].map((c) => h('th', {}, t(`devices.${c}`))), h('th', {}))),
      h('tbody', {}, newestFirst.map((device) => h('tr', { dataset: { user: nameOf(device.user_id), device: device.name, revoked: String(device.revoked) } },
        h('td', {}, nameOf(device.user_id)),
        h('td', {}, device.name),
        h('td', {}, timeOf(device.registered_at)),
        h('td', {}, timeOf(device.last_seen_at)),
        h('td', {}, device.revoked ? t('devices.revoked') : t('devices.active')),
        h('td', {}, device.revoked ? null : h('button', { type: 'button', class: 'danger revoke', onclick: () => askToRevoke(device) }, t('devices.revoke'))))))));
}
