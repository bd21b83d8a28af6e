// Names instead of ids for a supervisor's screens (GET /v1/web/directory): their team, its
// members and their devices, and the pseudonym and area of each client in their scope.
import { get } from './api.js';
import { shortId } from './format.js';
import { t } from './i18n.js';

let loaded = null;

export async function loadDirectory({ fresh = false } = {}) {
  if (fresh || !loaded) loaded = get('/v1/web/directory').catch((error) => { loaded = null; throw error; });
  return loaded;
}

export function forgetDirectory() {
  loaded = null;
}

export function personName(directory, userId) {
  const member = directory.members.find((m) => m.id === userId);
  return member ? member.display_name || member.username : shortId(userId);
}

export function deviceName(directory, deviceId) {
  if (deviceId && deviceId === directory.server_replica) return t('record.server');
  const device = directory.devices.find((d) => d.id === deviceId);
  return device ? device.name : shortId(deviceId);
}

export function clientOf(directory, clientId) {
  return directory.clients.find((c) => c.id === clientId);
}

// Areas (the clients' area field), sorted, each once.
export function areasOf(directory) {
  return [...new Set(directory.clients.map((c) => c.area).filter(Boolean))].sort();
}
