/** The example files in deploy/ stay valid. */
import { describe, expect, it } from 'vitest';
import { loadExporterConfig } from '../../exporter/config.ts';

describe('deploy examples', () => {
  it('the example exporter config loads', () => {
    const c = loadExporterConfig(new URL('../../deploy/xenha.example.yaml', import.meta.url).pathname);
    expect(c.pools[0]!.name).toBe('prod-a');
    expect(Object.keys(c.pools[0]!.probes).sort()).toEqual(['network-tcp', 'network-xapi', 'storage-statefile', 'storage-xapi']);
  });
});
