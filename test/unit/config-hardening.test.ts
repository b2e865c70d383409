/**
 * The config as a hostile or unlucky user writes it: listen addresses, credentials in URLs, password
 * files anyone may read, durations that make the state machine meaningless, paths that do not exist,
 * and files big enough to make parsing slow. (Each rejection of the schema also has its fixture in
 * test/fixtures/config/.)
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from '@commander-js/extra-typings';
import { hostListArg, listenArg } from '../../cli/args.ts';
import { MAX_CONFIG_BYTES, MAX_LISTED_ISSUES } from '../../core/config/yaml.ts';
import {
  checkConfigPaths,
  exporterConfig,
  loadExporterConfig,
  MAX_PASSWORD_FILE_BYTES,
  parseExporterConfig,
  resolvePassword,
} from '../../exporter/config.ts';
import { parseListen } from '../../exporter/listen.ts';
import { readFileBounded, FileTooLargeError } from '../../io/config-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'xenha-config-hardening-'));
let n = 0;
/** A file in the test's directory with that content and mode. */
function file(content: string | Buffer, mode = 0o600): string {
  const path = join(dir, `f${n++}`);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

const pool = (extra = '') => `pools: [{name: a, urls: ["http://h"], passwordEnv: A${extra}}]`;

describe('parseListen (the config key and --listen)', () => {
  it.each([
    ['127.0.0.1:9945', '127.0.0.1', 9945],
    ['0.0.0.0:0', '0.0.0.0', 0],
    ['localhost:9945', 'localhost', 9945],
    ['exporter-1.example.com:65535', 'exporter-1.example.com', 65535],
    ['[::1]:9945', '::1', 9945],
    ['[::]:0', '::', 0],
    ['[fe80::1%eth0]:9945', 'fe80::1%eth0', 9945],
  ])('%s → host %s, port %i', (value, host, port) => {
    expect(parseListen(value)).toEqual({ host, port });
  });

  it.each([
    ['foo', /expected host:port or \[ipv6\]:port, got "foo"/],
    [':0', /no host in ":0": to listen on every interface say so, 0\.0\.0\.0:0 or \[::\]:0/],
    [':9945', /0\.0\.0\.0:9945 or \[::\]:9945/],
    ['localhost:http', /port must be a number 0\.\.65535, got "http"/],
    ['localhost:', /port must be a number 0\.\.65535, got ""/],
    ['127.0.0.1:-1', /port must be a number/],
    ['127.0.0.1:65536', /port must be 0\.\.65535, got 65536/],
    ['127.0.0.1:123456', /port must be a number 0\.\.65535/],
    ['::1:9945', /an IPv6 address goes in brackets/],
    ['[::1]', /expected host:port or \[ipv6\]:port/],
    ['[localhost]:9945', /"localhost" in brackets is not an IPv6 address/],
    ['[::1]9945', /expected host:port or \[ipv6\]:port, got "\[::1\]9945"/],
    ['300.0.0.1:9945', /"300\.0\.0\.1" is not an IPv4 address, a host name/],
    ['1.2.3:9945', /"1\.2\.3" is not an IPv4 address/],
    ['my host:9945', /"my host" is not an IPv4 address/],
    [' 127.0.0.1:9945', /is not an IPv4 address/],
  ])('%j is refused', (value, reason) => {
    expect(() => parseListen(value)).toThrow(reason);
  });

  it('--listen fails through commander with its reason (InvalidArgumentError), and keeps the value as written', () => {
    expect(listenArg('[::1]:0')).toBe('[::1]:0');
    const e = (() => {
      try {
        listenArg(':0');
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect((e as Error).message).toMatch(/no host in ":0"/);
  });

  it("the config's listen accepts IPv6 and refuses what parseListen refuses", () => {
    expect(parseExporterConfig(`listen: "[::1]:9945"\n${pool()}`).listen).toBe('[::1]:9945');
    expect(() => parseExporterConfig(`listen: ":0"\n${pool()}`)).toThrow(/listen \(line 1\): no host in ":0"/);
  });
});

describe('credentials in a URL', () => {
  it.each(['http://root:SECRET@10.0.0.1', 'https://root:SECRET@10.0.0.1:443/', 'http://:SECRET@h'])(
    '%s is refused, pointing to passwordFile/passwordEnv, without showing the password',
    (url) => {
      let message = '';
      try {
        parseExporterConfig(`pools: [{name: a, urls: ["${url}"], passwordEnv: A}]`, 'x.yaml');
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(/pools\.0\.urls\.0 \(line 1\): credentials in a URL are refused .*passwordFile or passwordEnv/);
      expect(message).not.toContain('SECRET');
    },
  );

  it('a user alone in the URL is refused as well (it goes in `user`)', () => {
    expect(() => parseExporterConfig('pools: [{name: a, urls: ["http://root@h"], passwordEnv: A}]')).toThrow(/credentials in a URL/);
  });

  it('a URL without credentials is accepted', () => {
    expect(parseExporterConfig(pool()).pools[0]!.urls).toEqual(['http://h']);
  });
});

describe('durations consistent with the sample interval', () => {
  it('deadAfter and flapWindow at their minimum are accepted (the rule is ≥)', () => {
    const c = parseExporterConfig(
      pool(', timing: {sampleInterval: 1s, confirmSamples: 2, deadAfter: 2s, flapThreshold: 6, flapWindow: 6s}'),
    );
    expect(c.pools[0]!.timing).toMatchObject({ deadAfter: 2000, flapWindow: 6000 });
  });

  it('one millisecond under is refused', () => {
    expect(() => parseExporterConfig(pool(', timing: {deadAfter: 1999ms}'))).toThrow(
      /deadAfter must be at least sampleInterval × confirmSamples/,
    );
    expect(() => parseExporterConfig(pool(', timing: {flapWindow: 5999ms}'))).toThrow(
      /flapWindow must be at least sampleInterval × flapThreshold/,
    );
  });
});

describe('passwordFile', () => {
  const cfg = (path: string) => parseExporterConfig(`pools: [{name: p, urls: ["http://h"], passwordFile: "${path}"}]`).pools[0]!;

  it('reads a file only its owner may read, without its trailing newline', () => {
    expect(resolvePassword(cfg(file('s3cret\n', 0o600)))).toBe('s3cret');
    expect(resolvePassword(cfg(file('s3cret', 0o400)))).toBe('s3cret');
  });

  it.each(['0644', '0640', '0604', '0620', '0601', '0660'])('mode %s is refused, naming the mode and chmod 600', (shown) => {
    const path = file('s3cret\n', parseInt(shown, 8));
    expect(() => resolvePassword(cfg(path))).toThrow(
      new RegExp(
        `^pool p: passwordFile ${path} has mode ${shown}: a password file must grant nothing to group and others \\(chmod 600 ${path}\\)$`,
      ),
    );
  });

  it.each([
    ['empty', ''],
    ['a newline only', '\n'],
    ['a CRLF only', '\r\n'],
  ])('%s is refused', (_what, content) => {
    expect(() => resolvePassword(cfg(file(content)))).toThrow(/passwordFile .* is empty/);
  });

  it('a file over 4 KiB is refused; 4 KiB is read', () => {
    expect(resolvePassword(cfg(file('x'.repeat(MAX_PASSWORD_FILE_BYTES))))).toHaveLength(MAX_PASSWORD_FILE_BYTES);
    expect(() => resolvePassword(cfg(file('x'.repeat(MAX_PASSWORD_FILE_BYTES + 1))))).toThrow(
      /is over 4 KiB: it must hold the password alone/,
    );
  });

  it('a directory and a FIFO are refused (the FIFO without waiting for a writer)', () => {
    const d = join(dir, 'a-directory');
    mkdirSync(d, { mode: 0o700 });
    expect(() => resolvePassword(cfg(d))).toThrow(/passwordFile .*a-directory is not a regular file/);
    const fifo = join(dir, 'a-fifo');
    const made = spawnSync('mkfifo', ['-m', '600', fifo]);
    expect(made.status, `mkfifo: ${made.stderr?.toString()}`).toBe(0);
    expect(() => resolvePassword(cfg(fifo))).toThrow(/passwordFile .*a-fifo is not a regular file/);
  });

  it('a missing file says it cannot be read', () => {
    expect(() => resolvePassword(cfg(join(dir, 'nope')))).toThrow(/pool p: cannot read passwordFile .*nope: ENOENT/);
  });
});

describe('checkConfigPaths (start-up)', () => {
  const config = (devices: { home: string; path: string }[], passwordFile?: string) =>
    exporterConfig.parse({
      pools: [
        {
          name: 'prod-a',
          urls: ['https://10.0.0.1'],
          ...(passwordFile ? { passwordFile } : { passwordEnv: 'A' }),
          probes: { 'network-tcp': {}, 'storage-statefile': { devices } },
        },
      ],
    });

  it('passes when every device exists and is readable', () => {
    expect(() => checkConfigPaths(config([{ home: 'a', path: file(Buffer.alloc(16)) }]))).not.toThrow();
  });

  it('names the pool, the home and the path of a missing device', () => {
    const missing = join(dir, 'no-such-lun');
    expect(() =>
      checkConfigPaths(
        config([
          { home: 'a', path: file(Buffer.alloc(16)) },
          { home: 'b', path: missing },
        ]),
      ),
    ).toThrow(new RegExp(`^pool prod-a: storage-statefile device of home b: ${missing} does not exist$`));
  });

  it('refuses a device that is a directory, and lists every problem, a bad passwordFile too', () => {
    const d = join(dir, 'not-a-device');
    mkdirSync(d);
    const pw = file('pw\n', 0o644);
    let message = '';
    try {
      checkConfigPaths(config([{ home: 'a', path: d }], pw));
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message.split('\n')).toEqual([
      `pool prod-a: storage-statefile device of home a: ${d} is not a block device or a file`,
      `pool prod-a: passwordFile ${pw} has mode 0644: a password file must grant nothing to group and others (chmod 600 ${pw})`,
    ]);
  });
});

describe('YAML: bounded size, linear work, core schema only', () => {
  it('80,000 unknown keys: the error lists the first 20 and counts the others (zod quotes none of them)', () => {
    const keys = 80_000;
    const text = `${pool()}\n${Array.from({ length: keys }, (_, i) => `k${i}: 1`).join('\n')}\n`;
    expect(text.length).toBeLessThan(MAX_CONFIG_BYTES);
    let message = '';
    try {
      parseExporterConfig(text, 'big.yaml');
    } catch (e) {
      message = (e as Error).message;
    }
    const lines = message.split('\n');
    expect(lines[0]).toBe('big.yaml is invalid:');
    expect(lines.slice(1, -1)).toHaveLength(MAX_LISTED_ISSUES);
    expect(lines[1]).toBe('  k0 (line 2): Unrecognized key: "k0"');
    expect(lines[20]).toBe('  k19 (line 21): Unrecognized key: "k19"');
    expect(lines.at(-1)).toBe(`  … and ${keys - MAX_LISTED_ISSUES} more`);
  });

  it('80,000 duplicate keys: found (linear check), 20 listed', () => {
    const text = `${pool()}\n${Array.from({ length: 80_000 }, (_, i) => `k${i % 1000}: 1`).join('\n')}\n`;
    let message = '';
    try {
      parseExporterConfig(text, 'dup.yaml');
    } catch (e) {
      message = (e as Error).message;
    }
    const lines = message.split('\n');
    expect(lines[1]).toBe('  line 1002: duplicate key "k0" (first on line 2)');
    expect(lines).toHaveLength(MAX_LISTED_ISSUES + 2);
    expect(lines.at(-1)).toBe(`  … and ${79_000 - MAX_LISTED_ISSUES} more`);
  });

  it('keys that become one property are duplicates (1 and "1")', () => {
    expect(() => parseExporterConfig(`${pool()}\nx: {1: a, "1": b}`)).toThrow(/line 2: duplicate key "1"/);
  });

  it('a text over 1 MiB is refused before it is parsed (invalid YAML gives the size error, not a syntax error)', () => {
    const text = '['.repeat(MAX_CONFIG_BYTES + 1);
    expect(() => parseExporterConfig(text, 'huge.yaml')).toThrow(/^huge\.yaml: 1048577 characters, over the 1 MiB limit of a config file$/);
    // One character less is parsed: its error is YAML's.
    expect(() => parseExporterConfig(text.slice(1), 'huge.yaml')).toThrow(/^huge\.yaml: nested more than 64 levels deep/);
  });

  it('a config file over 1 MiB is refused with its size; /dev/zero after reading 1 MiB + 1 byte', () => {
    const big = file(`${pool()}\n#${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
    expect(() => loadExporterConfig(big)).toThrow(
      new RegExp(`^${big} is ${MAX_CONFIG_BYTES + pool().length + 3} bytes, over the limit of 1 MiB`),
    );
    expect(() => loadExporterConfig('/dev/zero')).toThrow(/^\/dev\/zero is more than 1048576 bytes, over the limit of 1 MiB/);
  });

  it('readFileBounded returns up to the bound and refuses one byte more', () => {
    expect(readFileBounded(file('0123456789'), 10).toString()).toBe('0123456789');
    expect(() => readFileBounded(file('0123456789!'), 10)).toThrow(FileTooLargeError);
    expect(() => readFileBounded('/dev/zero', 10)).toThrow(/^\/dev\/zero is more than 10 bytes, over the limit of 10 bytes$/);
  });

  it('core-schema tags are accepted (!!str, !!int, !)', () => {
    const c = parseExporterConfig('pools: [{name: !!str a, urls: [! "http://h"], passwordEnv: A, timing: {confirmSamples: !!int 3}}]');
    expect(c.pools[0]!.timing.confirmSamples).toBe(3);
  });

  it.each(['!!binary aGVsbG8=', '!!timestamp 2001-12-14', '!!set {a}', '!<tag:example.com,2000:x> y', '!!python/object:os.system x'])(
    'the tag of %s is refused',
    (value) => {
      expect(() => parseExporterConfig(`${pool()}\nx: ${value}`)).toThrow(/line 2: tag .* is not allowed/);
    },
  );

  it('a few aliases are accepted', () => {
    const c = parseExporterConfig(
      'pools:\n  - {name: a, urls: ["http://h"], passwordEnv: A, timing: &t {deadAfter: 40s}}\n  - {name: b, urls: ["http://h"], passwordEnv: A, timing: *t}\n',
    );
    expect(c.pools[1]!.timing.deadAfter).toBe(40_000);
  });
});

describe('--fail (what-if)', () => {
  it('splits, trims and keeps the order', () => {
    expect(hostListArg('xs-a, xs-b')).toEqual(['xs-a', 'xs-b']);
  });

  it.each([
    ['', /no host given/],
    [',', /no host given/],
    [' , ', /no host given/],
    ['a,,b', /an empty host name in "a,,b"/],
    ['a,b,a', /host "a" named twice/],
  ])('%j is refused', (value, reason) => {
    expect(() => hostListArg(value)).toThrow(reason);
  });
});
