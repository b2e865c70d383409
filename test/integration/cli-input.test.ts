/**
 * The CLI's input as a hostile or unlucky user gives it: listen addresses, URLs, host lists, snapshot
 * and config files that are too big, duplicated or point at what does not exist. Each case runs the
 * built CLI (bin/xenha.js) as a user does; the network is loopback only.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xenha, XENHA_BIN } from '../helpers/run.ts';

const EXAMPLE = join(import.meta.dirname, '../../deploy/planner-snapshot.example.json');
const dir = mkdtempSync(join(tmpdir(), 'xenha-cli-input-'));
let n = 0;
function file(content: string, mode = 0o600): string {
  const path = join(dir, `f${n++}`);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}
interface Snapshot {
  hosts: { uuid: string; name: string }[];
  vms: { uuid: string; name: string }[];
}
const example = () => JSON.parse(readFileSync(EXAMPLE, 'utf8')) as Snapshot;

describe('xenha exporter --listen', () => {
  it('refuses "foo" with the reason, not a NaN port', async () => {
    const r = await xenha(['exporter', '--simulate', '--listen', 'foo']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`option '--listen <host:port>' argument 'foo' is invalid. expected host:port or [ipv6]:port, got "foo"`);
    expect(r.stderr).not.toMatch(/NaN/);
  });

  it('refuses ":0" (every interface, unsaid), saying how to write it', async () => {
    const r = await xenha(['exporter', '--simulate', '--listen', ':0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no host in ":0": to listen on every interface say so, 0.0.0.0:0 or [::]:0');
  });

  describe('[::1]:0', () => {
    let child: ChildProcess | undefined;
    afterEach(() => {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });

    it('listens on IPv6 loopback, prints its URL with [::1], answers there and stops on SIGTERM', async () => {
      child = spawn(
        process.execPath,
        [
          XENHA_BIN,
          'exporter',
          '--simulate',
          '--hosts',
          '2',
          '--vms',
          '2',
          '--sim-port',
          '0',
          '--sim-control-port',
          '0',
          '--state-dir',
          join(dir, 'sim-state'),
          '--listen',
          '[::1]:0',
          '--log-level',
          'warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const p = child;
      let stdout = '';
      let stderr = '';
      p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL within 20 s; stdout: ${stdout}; stderr: ${stderr}`)), 20_000);
        const look = () => {
          const m = /xenha exporter: (http:\/\/\S+)\/metrics/.exec(stdout);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        };
        p.stdout!.on('data', look);
        // An error before the URL (the process may keep running: its simulator started).
        p.stderr!.on('data', () => {
          if (/^xenha: /m.test(stderr)) {
            clearTimeout(timer);
            reject(new Error(`failed before printing its URL: ${stderr}`));
          }
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`exited with ${code} before printing its URL; stderr: ${stderr}`));
        });
      });
      expect(url).toMatch(/^http:\/\/\[::1\]:\d+$/);
      const res = await fetch(`${url}/-/healthy`);
      expect(res.status).toBe(200);
      p.kill('SIGTERM');
      expect(await exited, stderr).toBe(0);
    }, 30_000);
  });
});

describe('xenha exporter --config', () => {
  const config = (extra: string) =>
    file(
      `pools:\n  - name: lab\n    urls: ["http://127.0.0.1:9"]\n${extra}    probes:\n      network-tcp: {}\n      storage-statefile:\n        devices:\n          - { home: a, path: ${join(dir, 'no-such-lun')} }\n`,
    );

  it('refuses at start-up a statefile device that does not exist, naming the pool, the home and the path', async () => {
    const r = await xenha(['exporter', '--config', config('    passwordEnv: XENHA_TEST_PW\n'), '--listen', '127.0.0.1:0']);
    expect(r.code, 'exits: nothing was started').toBe(1);
    expect(r.stderr).toContain(`xenha: pool lab: storage-statefile device of home a: ${join(dir, 'no-such-lun')} does not exist`);
    expect(r.stdout).not.toContain('xenha exporter:');
  });

  it('refuses at start-up a passwordFile others may read', async () => {
    const pw = file('pw\n', 0o644);
    const r = await xenha(['exporter', '--config', config(`    passwordFile: ${pw}\n`), '--listen', '127.0.0.1:0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `pool lab: passwordFile ${pw} has mode 0644: a password file must grant nothing to group and others (chmod 600 ${pw})`,
    );
  });

  it('refuses a URL with credentials without printing the password', async () => {
    const c = file('pools:\n  - name: lab\n    urls: ["http://root:SECRET@127.0.0.1:9"]\n    passwordEnv: X\n');
    const r = await xenha(['exporter', '--config', c]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/pools\.0\.urls\.0 \(line 3\): credentials in a URL are refused/);
    expect(r.stderr + r.stdout).not.toContain('SECRET');
  });

  it('refuses /dev/zero after reading 1 MiB', async () => {
    const r = await xenha(['exporter', '--config', '/dev/zero']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('xenha: /dev/zero is more than 1048576 bytes, over the limit of 1 MiB');
  });
});

describe('xenha plan / what-if input', () => {
  it('plan --input /dev/zero fails at the 64 MiB bound with a clear error', async () => {
    const r = await xenha(['plan', '--input', '/dev/zero']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toBe(
      'xenha: /dev/zero is more than 67108864 bytes, over the limit of 64 MiB (a pool snapshot is at most a few tens of MB)\n',
    );
  });

  it('plan --input refuses more JSON objects than a snapshot has, before building them', async () => {
    const bomb = file(`[${'{},'.repeat(200_000)}{}]`);
    const r = await xenha(['plan', '--input', bomb]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `xenha: ${bomb} is not a planner snapshot: more than 100080 JSON objects and arrays (a snapshot has one per host and per VM)\n`,
    );
  });

  it('plan --pool "not a url" is refused before any connection', async () => {
    const r = await xenha(['plan', '--pool', 'not a url'], { XENHA_PASSWORD: 'x' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('xenha: --pool: expected an http:// or https:// URL, got "not a url"\n');
  });

  it('plan --pool and --exporter with credentials or a bad URL are refused, the password not shown', async () => {
    const creds = await xenha(['plan', '--pool', 'http://root:SECRET@127.0.0.1:9'], { XENHA_PASSWORD: 'x' });
    expect(creds.code).toBe(1);
    expect(creds.stderr).toContain('--pool: credentials in a URL are refused');
    expect(creds.stderr).not.toContain('SECRET');
    const bad = await xenha(['plan', '--pool', 'http://127.0.0.1:9', '--exporter', 'ftp://127.0.0.1:9945'], { XENHA_PASSWORD: 'x' });
    expect(bad.stderr).toBe('xenha: --exporter: expected an http:// or https:// URL, got "ftp://127.0.0.1:9945"\n');
    const badCreds = await xenha(['plan', '--pool', 'http://:SECRET@'], { XENHA_PASSWORD: 'x' });
    expect(badCreds.stderr).toContain('--pool: expected an http:// or https:// URL');
    expect(badCreds.stderr).not.toContain('SECRET');
  });

  it('explain --exporter with credentials or a bad URL is refused before any connection, the password not shown', async () => {
    const creds = await xenha(['explain', '--pool', 'p', '--host', 'h', '--exporter', 'http://u:SECRET@127.0.0.1:9']);
    expect(creds.code).toBe(1);
    expect(creds.stderr).toBe('xenha: --exporter: credentials in a URL are refused (the exporter and XAPI are reached without them)\n');
    const bad = await xenha(['explain', '--pool', 'p', '--host', 'h', '--exporter', 'ftp://127.0.0.1:9']);
    expect(bad.stderr).toBe('xenha: --exporter: expected an http:// or https:// URL, got "ftp://127.0.0.1:9"\n');
  });

  it.each([[''], [','], [' , ']])('what-if --fail %j is refused: no host given (not SURVIVES)', async (fail) => {
    const r = await xenha(['what-if', '--input', EXAMPLE, '--fail', fail, '--format', 'table']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no host given: name at least one host');
    expect(r.stdout).not.toContain('SURVIVES');
  });

  it('what-if refuses a host named twice, by name or by name and UUID', async () => {
    const twice = await xenha(['what-if', '--input', EXAMPLE, '--fail', 'xs-b,xs-b']);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain('host "xs-b" named twice');
    const uuid = example().hosts.find((h) => h.name === 'xs-b')!.uuid;
    const same = await xenha(['what-if', '--input', EXAMPLE, '--fail', `xs-b,${uuid}`]);
    expect(same.code).toBe(1);
    expect(same.stderr).toContain(`"xs-b" and "${uuid}" are the same host`);
  });

  it('what-if refuses a name two hosts share, and takes either by UUID', async () => {
    const s = example();
    s.hosts[2]!.name = 'xs-b';
    const path = file(JSON.stringify(s));
    const r = await xenha(['what-if', '--input', path, '--fail', 'xs-b']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`2 hosts are named "xs-b": give its UUID (${s.hosts[1]!.uuid}, ${s.hosts[2]!.uuid})`);
    const byUuid = await xenha(['what-if', '--input', path, '--fail', s.hosts[2]!.uuid]);
    expect([0, 3], byUuid.stderr).toContain(byUuid.code);
    expect((JSON.parse(byUuid.stdout) as { failed: string[] }).failed).toEqual([s.hosts[2]!.uuid]);
  });

  it('a snapshot with a VM UUID twice is refused, naming it (the plan would start it twice)', async () => {
    const s = example();
    s.vms.push({ ...s.vms[0]!, name: 'copy' });
    const path = file(JSON.stringify(s));
    for (const args of [
      ['plan', '--input', path],
      ['what-if', '--input', path, '--fail', 'xs-a'],
    ]) {
      const r = await xenha(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${path} is not a valid planner snapshot`);
      expect(r.stderr).toContain(`duplicate VM UUID ${s.vms[0]!.uuid}`);
      expect(r.stderr).toContain(`at vms[${s.vms.length - 1}].uuid`);
    }
  });

  it('lists the first 20 issues of a bad snapshot and counts the others', async () => {
    const s = example();
    s.vms = Array.from({ length: 500 }, (_, i) => ({ ...s.vms[0]!, uuid: `vm-${i}`, memoryNeed: -1 }) as Snapshot['vms'][number]);
    const path = file(JSON.stringify(s));
    const r = await xenha(['plan', '--input', path]);
    expect(r.code).toBe(1);
    expect(r.stderr.match(/→ at vms\[\d+\]\.memoryNeed/g)).toHaveLength(20);
    expect(r.stderr).toContain('… and 480 more');
  });
});
