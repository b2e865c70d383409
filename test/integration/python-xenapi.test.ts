/** The Python XenAPI client shipped with Debian's fence-agents, over XML-RPC, against the simulator. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Simulator } from '../../simulator/simulator.ts';
import { PASSWORD, requireFile, startTestSim } from '../helpers/sim.ts';

const run = promisify(execFile);
const XENAPI = '/usr/share/fence/XenAPI.py';
const PYTHON = '/usr/bin/python3';

const SCRIPT = `
import json, sys
sys.path.insert(0, '/usr/share/fence')
import XenAPI
url, password = sys.argv[1], sys.argv[2]
out = {}
bad = XenAPI.Session(url)
try:
    bad.xenapi.login_with_password('root', 'wrong', '1.0', 'xenha-test')
except XenAPI.Failure as f:
    out['bad_login'] = f.details
s = XenAPI.Session(url)
s.xenapi.login_with_password('root', password, '1.0', 'xenha-test')
vms = s.xenapi.VM.get_all_records()
out['vms'] = sorted(r['name_label'] for r in vms.values() if not r['is_control_domain'])
out['priorities'] = sorted(set(r['ha_restart_priority'] for r in vms.values()))
out['memory_type'] = type(list(vms.values())[0]['memory_static_max']).__name__
ref = s.xenapi.VM.get_by_name_label('vm-0001')[0]
out['record_name'] = s.xenapi.VM.get_record(ref)['name_label']
try:
    s.xenapi.VM.get_record('OpaqueRef:nope')
except XenAPI.Failure as f:
    out['handle_invalid'] = f.details
s.xenapi.session.logout()
print(json.dumps(out))
`;

let sim: Simulator;
beforeAll(async () => {
  sim = await startTestSim();
});
afterAll(async () => {
  await sim?.stop();
});

describe('Python XenAPI (fence-agents) client', () => {
  it('logs in over XML-RPC and reads VM records', async () => {
    requireFile(PYTHON, 'apt-get install python3');
    requireFile(XENAPI, 'apt-get install fence-agents');
    const slave = sim.info().hosts.find((h) => !h.master)!;
    // The Python client does not follow HOST_IS_SLAVE: it must be pointed at the master, and a slave refuses it.
    const { stdout } = await run(PYTHON, ['-c', SCRIPT, `${sim.info().masterUrl}/`, PASSWORD], { timeout: 30_000 });
    const out = JSON.parse(stdout) as Record<string, unknown>;
    const expected = sim.pool.built.db
      .all('VM')
      .filter(([, v]) => !v.is_control_domain)
      .map(([, v]) => v.name_label)
      .sort();
    expect(out.vms).toEqual(expected);
    expect(out.memory_type).toBe('str'); // int64 as an XML-RPC string, as xapi sends it
    expect(out.record_name).toBe('vm-0001');
    expect(out.priorities).toEqual(expect.arrayContaining(['', 'restart']));
    expect(out.bad_login).toEqual(['SESSION_AUTHENTICATION_FAILED', 'root', 'Authentication failure']);
    expect(out.handle_invalid).toEqual(['HANDLE_INVALID', 'VM', 'OpaqueRef:nope']);
    const refused = await run(PYTHON, ['-c', SCRIPT, `${slave.urls[0]}/`, PASSWORD], { timeout: 30_000 }).catch(
      (e: { stderr: string }) => e,
    );
    expect('stderr' in refused ? refused.stderr : '').toContain('HOST_IS_SLAVE');
  });
});
