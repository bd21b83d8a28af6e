// The care schema (GET /v1/sync/schema): record types and their fields, with Japanese and
// English labels where the schema has them (label_ja, label_en), else the names.
import { get } from './api.js';
import { labelOf, language } from './i18n.js';

let loaded = null;

export async function loadSchema() {
  if (!loaded) loaded = get('/v1/sync/schema').catch((error) => { loaded = null; throw error; });
  return loaded;
}

export function collectionOf(schema, name) {
  return schema.collections.find((c) => c.name === name);
}

export function fieldOf(schema, collection, name) {
  return collectionOf(schema, collection)?.fields.find((f) => f.name === name);
}

export function collectionLabel(schema, name) {
  return labelOf(collectionOf(schema, name), name);
}

export function fieldLabel(schema, collection, name) {
  return labelOf(fieldOf(schema, collection, name), name);
}

// Record types a supervisor reviews (clients are not reviewed).
export function reviewedCollections(schema) {
  return schema.collections.filter((c) => c.fields.some((f) => f.name === 'review_status'));
}

// A choice's label in the current language (choice_labels), else the choice itself.
export function choiceLabel(definition, choice) {
  const labels = definition?.choice_labels?.[choice];
  if (!labels) return String(choice);
  return (language() === 'en' ? labels.en || labels.ja : labels.ja || labels.en) || String(choice);
}

// A field's value for display: choices by their labels (one by one in a list), the rest as is.
export function displayValue(definition, value) {
  if (!definition?.choices) return value;
  return Array.isArray(value) ? value.map((v) => choiceLabel(definition, v)) : value === null || value === undefined ? value : choiceLabel(definition, value);
}
