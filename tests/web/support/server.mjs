// Starts the real tsunagu-server on 127.0.0.1 with a random free port over a fresh data folder,
// waits until it listens, and reads the administrator's one-time password it prints once (or, with
// `adminPassword`, gives the administrator that one from a file, usable at once).
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

// `extraArgs`: more of the server's options (e.g. ['--stale-after', '0.00001']).
export async function startServer(binary, logFile, extraArgs = [], { adminPassword: given } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'tsunagu-web-e2e-'));
  if (given) {
    writeFileSync(join(dataDir, 'admin-password'), given, { mode: 0o600 });
    extraArgs = [...extraArgs, '--admin-password-file', join(dataDir, 'admin-password')];
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // The server backs itself up into a folder beside its data, as an office would on another disk,
  // and copies each backup to a third folder, as it would to another machine.
  mkdirSync(join(dataDir, 'offsite'));
  const child = spawn(binary, ['--data', join(dataDir, 'data'), '--listen', url, '--backup-dir', join(dataDir, 'backups'),
    '--backup-copy-command', `cp "$1" '${join(dataDir, 'offsite')}/'`, ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile);
  child.stderr.pipe(log);
  const output = await new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`tsunagu-server did not start within 20 s: ${seen}`)), 20000);
    child.once('exit', (code) => reject(new Error(`tsunagu-server exited with ${code} at start: ${seen}`)));
    child.stdout.on('data', (chunk) => {
      seen += chunk;
      if (seen.includes('listening on') && (seen.includes('(shown once') || (given && seen.includes('created with the password in')))) {
        clearTimeout(timer);
        resolve(seen);
      }
    });
  });
  const adminPassword = given ?? /one-time password (\S+)/.exec(output)?.[1];
  if (!adminPassword) throw new Error(`no one-time administrator password in: ${output}`);
  return {
    url,
    adminPassword,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      log.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
