// Talking to tsunagu-server. The session is an HttpOnly cookie the page never sees; every
// state-changing request carries the session's CSRF token in X-CSRF-Token, which the page keeps
// in memory only. Errors come back as ApiError with the server's code and message.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let csrfToken = '';
let onSessionEnded = () => {};

export function setCsrfToken(token) {
  csrfToken = token || '';
}

// Called with the ApiError when the server says the session is over (idle, revoked, signed out).
export function whenSessionEnds(callback) {
  onSessionEnded = callback;
}

// Query string from an object, leaving out empty values.
export function withQuery(path, parameters) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(parameters)) {
    if (value !== undefined && value !== null && value !== '') query.set(name, value);
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

export async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
      redirect: 'error',
    });
  } catch {
    throw new ApiError(0, 'unreachable', 'the server cannot be reached; check the connection and try again');
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data?.error ?? `http_${response.status}`,
      data?.message ?? response.statusText);
    if (response.status === 401 && !path.startsWith('/v1/web/sign-in')) onSessionEnded(error);
    throw error;
  }
  return data;
}

// An answer that says the screen is out of date: what it showed is gone (404) or no longer in the
// state it showed (409, e.g. a record changed since it was read). The screen is read again.
export function showsStaleScreen(error) {
  return error instanceof ApiError && (error.status === 409 || error.status === 404);
}

export const get = (path) => request('GET', path);
export const post = (path, body = {}) => request('POST', path, body);
export const put = (path, body) => request('PUT', path, body);
export const patch = (path, body) => request('PATCH', path, body);
