/** Every probe registers itself on import; this file is the list (as node_exporter's collectors). */
import './network-tcp.ts';
import './network-xapi.ts';
import './storage-xapi.ts';
import './storage-statefile.ts';

export { probeDefinition, probeNames, type Probe, type ProbeContext, type ProbeResult } from './contract.ts';
