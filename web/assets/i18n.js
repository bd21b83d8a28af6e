// The page's two languages: Japanese by default, English on request (remembered in this
// browser). t('key', {name: 'x'}) fills {name} placeholders; an unknown key shows itself.
import ja from './i18n/ja.js';
import en from './i18n/en.js';

const dictionaries = { ja, en };
const storageKey = 'tsunagu.language';
let current = readSaved();

function readSaved() {
  try {
    const saved = localStorage.getItem(storageKey);
    return saved === 'en' ? 'en' : 'ja';
  } catch {
    return 'ja';
  }
}

export function language() {
  return current;
}

export function setLanguage(code) {
  current = code === 'en' ? 'en' : 'ja';
  document.documentElement.lang = current;
  try {
    localStorage.setItem(storageKey, current);
  } catch {
    // Private windows may refuse storage: the choice then lasts until reload.
  }
}

export function t(key, values = {}) {
  const text = dictionaries[current][key] ?? dictionaries.ja[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

// The label in the current language from an object with label_ja / label_en, else `fallback`.
export function labelOf(thing, fallback) {
  if (!thing) return fallback;
  const label = current === 'en' ? thing.label_en ?? thing.label_ja : thing.label_ja ?? thing.label_en;
  return label || fallback;
}

// What to tell the user about a failed request (an ApiError): the page's own words for the
// server's error codes it knows (error.<code>), else the server's message as it came.
export function errorText(error) {
  const key = `error.${error.code}`;
  return key in dictionaries[current] || key in dictionaries.ja ? t(key) : error.message;
}
