// A confirmation dialog: the native <dialog> opened modally, so focus stays
// inside it, Escape cancels and focus returns to the button that opened it.
// No window.confirm (it cannot be styled, labelled or tested for a11y).

import { h } from './dom.js';

let serial = 0;

/**
 * Ask before an action. Resolves with `{ value }` (the text typed, when
 * `input` is given) on confirm, or `null` on cancel / Escape.
 *
 * @param {{title: string, body?: string, confirm: string, danger?: boolean,
 *          input?: {label: string, maxLength?: number}}} options
 */
export function ask({ title, body, confirm, danger = false, input }) {
  serial += 1;
  const id = `dialog-${serial}`;
  return new Promise((resolve) => {
    const field = input
      ? h('textarea', { id: `${id}-input`, name: 'value', rows: 3, required: true, maxlength: input.maxLength || 1024 })
      : null;
    const dialog = h('dialog.confirm', { 'aria-labelledby': `${id}-title`, 'aria-describedby': body ? `${id}-body` : undefined },
      h('form', { method: 'dialog' },
        h('h2', { id: `${id}-title` }, title),
        body ? h('p', { id: `${id}-body` }, body) : null,
        field ? [h('label', { for: `${id}-input` }, input.label), field] : null,
        h('div.dialog-actions', {},
          h('button', { type: 'button', value: 'cancel', onclick: () => dialog.close('cancel') }, 'Cancel'),
          h(`button${danger ? '.danger' : '.primary'}`, { type: 'submit', value: 'confirm' }, confirm))));
    dialog.addEventListener('close', () => {
      const ok = dialog.returnValue === 'confirm';
      const value = field ? field.value.trim() : undefined;
      dialog.remove();
      resolve(ok && (!field || value) ? { value } : null);
    });
    document.body.append(dialog);
    dialog.showModal();
    // Start on the text field, or on Cancel for a destructive action.
    (field || dialog.querySelector(danger ? 'button[value=cancel]' : 'button[type=submit]')).focus();
  });
}
