// Showing values: times of changes, numbers, rates and field values in the current language.
import { language, t } from './i18n.js';

// "1732500000000-3" (a hybrid logical clock reading) or unix seconds -> local date and time.
export function timeOf(reading) {
  const milliseconds = typeof reading === 'string' ? Number(reading.split('-')[0]) : Number(reading) * 1000;
  if (!Number.isFinite(milliseconds) || milliseconds <= 0) return t('value.none');
  return new Date(milliseconds).toLocaleString(language() === 'en' ? 'en-GB' : 'ja-JP', {
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
  });
}

export function numberOf(value) {
  if (value === null || value === undefined) return t('value.none');
  return Number(value).toLocaleString(language() === 'en' ? 'en-GB' : 'ja-JP');
}

// A rate as the server formatted it (rate_text: "63.6%", rounded once, there, as in the CSV);
// null or "" -> "—".
export function rateOf(rateText) {
  if (rateText === null || rateText === undefined || rateText === '') return t('value.none');
  return String(rateText);
}

// A field's value as text (lists joined, nothing as a dash).
export function valueOf(value) {
  if (value === null || value === undefined || value === '') return t('value.none');
  if (Array.isArray(value)) return value.length ? value.map((v) => valueOf(v)).join('、') : t('value.none');
  if (typeof value === 'boolean') return value ? t('value.yes') : t('value.no');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

// A short form of an id nobody has a name for: its first 8 characters.
export function shortId(id) {
  return id ? `${String(id).slice(0, 8)}…` : t('value.none');
}
