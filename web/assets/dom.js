// Building the page without innerHTML: text always goes in as text, so nothing a record holds
// can become markup or script. No style attributes either (the Content-Security-Policy forbids
// them): looks come from classes in app.css.

// h('button', {class: 'primary', onclick: fn, dataset: {id: 'x'}}, 'text', child, ...)
export function h(tag, attributes = {}, ...children) {
  const element = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'style') throw new Error('no style attributes: use a class (Content-Security-Policy)');
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(element.dataset, value);
    } else if (name === 'value' || name === 'checked') {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Replaces everything inside `element` with `children`.
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

// <select> with options [{value, label}], the current one selected.
export function select(attributes, options, current) {
  return h('select', attributes,
    options.map((o) => h('option', { value: o.value, selected: String(o.value) === String(current ?? '') }, o.label)));
}

// A labelled form control.
export function field(label, control) {
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), control);
}
