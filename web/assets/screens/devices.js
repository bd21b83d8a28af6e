// Devices (administrators): every registered device with its user, last connection and how wrong
// its clock was at its last sync (a phone whose clock is off loses no work, but its worker should
// set it right); a device that has not synced for long is flagged as probably lost (until revoked,
// the server keeps its worker's records' history for it); revoking one ends its sessions, and its
// next request tells it to erase its replica.
import { get, post } from '../api.js';
import { h, replace } from '../dom.js';
import { timeOf } from '../format.js';
import { t } from '../i18n.js';

export async function render(root, app) {
  const [{ devices, stale_after_days: staleDays }, { users }] =
    await Promise.all([get('/v1/admin/devices'), get('/v1/admin/users')]);
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
  const stale = devices.filter((d) => d.stale);
  // --stale-after may be a fraction of a day: said in days, hours or minutes.
  const period = roughDuration(staleDays * 24 * 60 * 60 * 1000);
  replace(root,
    h('h1', {}, t('devices.title')),
    stale.length ? h('div', { class: 'panel warning', id: 'stale-devices' },
      h('p', {}, t('devices.stale_notice', { n: stale.length, period }))) : null,
    confirmBox,
    h('table', { class: 'devices' },
      h('thead', {}, h('tr', {}, ['user', 'name', 'registered', 'last_seen', 'clock', 'state'].map((c) => h('th', {}, t(`devices.${c}`))), h('th', {}))),
      h('tbody', {}, newestFirst.map((device) => h('tr', { dataset: { user: nameOf(device.user_id), device: device.name, revoked: String(device.revoked) } },
        h('td', {}, nameOf(device.user_id)),
        h('td', {}, device.name),
        h('td', {}, timeOf(device.registered_at)),
        h('td', {}, timeOf(device.last_seen_at)),
        clockCell(device),
        stateCell(device, period),
        h('td', {}, device.revoked ? null : h('button', { type: 'button', class: 'danger revoke', onclick: () => askToRevoke(device) }, t('devices.revoke'))))))));
}

// Off by less than this, a clock counts as right (a push's reading includes the network's delay).
const clockSlackMs = 2 * 60 * 1000;

// Revoked, in use, or stale: not synced for longer than the server's --stale-after days.
function stateCell(device, period) {
  if (device.revoked) return h('td', {}, t('devices.revoked'));
  if (!device.stale) return h('td', {}, t('devices.active'));
  return h('td', { class: 'stale', title: t('devices.stale_hint', { period }) },
    t('devices.stale', { since: timeOf(device.synced_at) }));
}

// The device's clock at its last sync: unknown, right, or how far ahead or behind, coarsely. A
// device that never synced (a web page's session) has none.
function clockCell(device) {
  if (!device.clock_read_at && !device.synced_at) return h('td', { class: 'muted clock', title: t('devices.clock_no_sync') }, '—');
  if (!device.clock_read_at) return h('td', { class: 'muted clock' }, t('devices.clock_unknown'));
  const ahead = device.clock_ahead_ms;
  if (Math.abs(ahead) < clockSlackMs) return h('td', { class: 'clock' }, t('devices.clock_right'));
  const text = t(ahead > 0 ? 'devices.clock_ahead' : 'devices.clock_behind', { by: roughDuration(Math.abs(ahead)) });
  return h('td', { class: 'clock clock-wrong', dataset: { clockAheadMs: String(ahead) }, title: t('devices.clock_hint') }, text);
}

function roughDuration(ms) {
  const minutes = Math.floor(ms / 60000);
  const hours = Math.floor(minutes / 60);
  const days = Math.floor(hours / 24);
  if (days > 0) return t('duration.days', { n: days });
  if (hours > 0) return t('duration.hours', { n: hours });
  return t('duration.minutes', { n: minutes });
}
