// The API as devices and scripts use it (bearer tokens), to set up the organisation, push
// records from a worker's device and check what reaches it.
import { randomBytes } from 'node:crypto';

export const newId = () => randomBytes(16).toString('hex');

export class ApiClient {
  constructor(url) {
    this.url = url;
    this.token = '';
  }

  async call(method, path, body, { expect } = {}) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const response = await fetch(this.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    let data = null;
    try { data = JSON.parse(text); } catch { data = text; }
    if (expect !== undefined && response.status !== expect) {
      throw new Error(`${method} ${path}: expected ${expect}, got ${response.status}: ${text.slice(0, 300)}`);
    }
    return { status: response.status, data, headers: response.headers };
  }

  async signIn(username, password, deviceName = 'e2e script') {
    const { data } = await this.call('POST', '/v1/auth/sign-in', { username, password, device_name: deviceName }, { expect: 200 });
    this.token = data.token;
    this.user = data.user;
    this.deviceId = data.device_id;
    return data;
  }
}

// A worker's device as the sync protocol sees it: change sets stamped with its replica id and
// a hybrid logical clock, pushed to /v1/sync/push; pulls from /v1/sync/pull after its cursor.
export class Device extends ApiClient {
  constructor(url) {
    super(url);
    this.counter = 0;
    this.cursor = 0;
    this.changes = new Map();  // record id -> id of the change set that last set each field
  }

  clock() {
    this.counter += 1;
    return `${Date.now()}-${this.counter}`;
  }

  change(collection, record, set, { create = false } = {}) {
    const id = newId();
    const base = {};
    if (!create) for (const field of Object.keys(set)) base[field] = [this.changes.get(record)?.[field]].filter(Boolean);
    const known = this.changes.get(record) ?? {};
    for (const field of Object.keys(set)) known[field] = id;
    this.changes.set(record, known);
    return { id, collection, record, hlc: this.clock(), replica: this.deviceId, user: this.user.id, schema: 1, create, set, base };
  }

  // Pushes change sets every one of which must be taken; throws on any refusal. `clockOffset`:
  // how far the server's clock is ahead of this device's, as a device library reports it.
  async push(changes, { clockOffset } = {}) {
    const data = await this.offer(changes, { clockOffset });
    const refused = data.outcomes.filter((o) => o.status === 'refused');
    if (refused.length) throw new Error(`push refused: ${JSON.stringify(refused)}`);
    return data;
  }

  // Pushes change sets the server may refuse: the answer, one outcome per change set, as it came.
  async offer(changes, { clockOffset } = {}) {
    const body = clockOffset === undefined ? { changes } : { changes, clock_offset: clockOffset };
    const { data } = await this.call('POST', '/v1/sync/push', body, { expect: 200 });
    return data;
  }

  // Pulls until up to date; returns the records received, by id, with their fields parsed.
  async pull() {
    const received = new Map();
    for (;;) {
      const { data } = await this.call('POST', '/v1/sync/pull', { after: this.cursor }, { expect: 200 });
      for (const r of data.records) received.set(r.id, { ...r, fields: JSON.parse(r.fields) });
      this.cursor = data.next;
      if (!data.more) return received;
    }
  }
}
