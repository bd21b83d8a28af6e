// Backups (administrators): the server's own backups of its store (--backup-dir), newest first,
// each with why the rotation keeps it (one of the newest, its week's or its month's newest);
// when the next one is due and what seals them; why the last one failed, if it did; and one taken
// at once; that the schedule took none because nothing was written since the newest; and, with a
// copy command, where the copies off the machine stand. A server started
// without a backup folder says how to give it one; one on PostgreSQL, that pg_dump backs it up.
import { get, post } from '../api.js';
import { h, replace } from '../dom.js';
import { numberOf, timeOf } from '../format.js';
import { t } from '../i18n.js';

export async function render(root, app) {
  const status = await get('/v1/admin/backups');
  if (!status.enabled) {
    replace(root, h('h1', {}, t('backups.title')),
      h('div', { class: 'panel warning', id: 'backups-off' },
        h('p', {}, t(status.store === 'postgres' ? 'backups.postgres' : 'backups.off'))));
    return;
  }
  const takeNow = h('button', {
    type: 'button', id: 'back-up-now',
    onclick: async () => {
      takeNow.disabled = true;
      try {
        const taken = await post('/v1/admin/backups');
        app.notify(t('backups.done', { file: taken.file }));
        app.show('backups');
      } catch (error) {
        app.notify(error.message, 'error');
        takeNow.disabled = false;
      }
    },
  }, t('backups.now'));
  const failure = status.last_failure;
  const copy = status.copy;
  const copyLine = !copy ? h('p', { class: 'muted', id: 'backup-copy' }, t('backups.copy_off'))
    : copy.last_failure ? h('div', { class: 'panel warning', id: 'backup-copy' },
      h('p', {}, t('backups.copy_failed', { at: timeOf(copy.last_failure.at), reason: copy.last_failure.reason })))
    : h('p', { class: 'muted', id: 'backup-copy' }, copy.last_copied
      ? t('backups.copied', { file: copy.last_copied, at: timeOf(copy.last_copied_at), waiting: copy.waiting })
      : t('backups.copy_waiting', { waiting: copy.waiting }));
  replace(root,
    h('h1', {}, t('backups.title')),
    failure ? h('div', { class: 'panel warning', id: 'backup-failed' },
      h('p', {}, t('backups.failed', { at: timeOf(failure.at), reason: failure.reason }))) : null,
    h('p', { class: 'backup-schedule' }, t('backups.schedule', {
      every: numberOf(status.every_hours), keep: status.keep, next: timeOf(status.next_at),
      sealed: t(`backups.sealed_${status.sealed_with}`),
    })),
    status.keep_weekly || status.keep_monthly ? h('p', { class: 'backup-keep-more' },
      t(status.keep_weekly && status.keep_monthly ? 'backups.keep_both'
        : status.keep_weekly ? 'backups.keep_weeks' : 'backups.keep_months',
      { weekly: status.keep_weekly, monthly: status.keep_monthly })) : null,
    h('p', { class: 'muted' }, t('backups.folder', { folder: status.folder })),
    status.unchanged ? h('p', { class: 'muted', id: 'backup-unchanged' },
      t('backups.unchanged', { file: status.unchanged.backup, at: timeOf(status.unchanged.at) })) : null,
    copyLine,
    h('div', { class: 'actions' }, takeNow),
    status.backups.length === 0 ? h('p', { class: 'muted' }, t('backups.none')) : h('table', { class: 'backups' },
      h('thead', {}, h('tr', {}, ['taken', 'file', 'size', 'kept_as'].map((c) => h('th', {}, t(`backups.${c}`))))),
      h('tbody', {}, status.backups.map((backup) => h('tr', { dataset: { file: backup.file } },
        h('td', {}, timeOf(backup.taken_at)),
        h('td', {}, backup.file),
        h('td', { class: 'number' }, t('backups.megabytes', { mb: numberOf(Math.max(0.1, backup.bytes / 1e6).toFixed(1)) })),
        h('td', { class: 'kept-as' }, (backup.kept_as || []).length === 0 ? t('backups.kept_none')
          : backup.kept_as.map((why) => t(`backups.kept_${why}`)).join(', ')))))));
}
