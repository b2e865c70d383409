/**
 * Reading a statefile (xhad's, or xenha-heartbeat's file on an HA-off pool: told apart by signature) without disturbing xhad: read-only, only the layout prefix (266240 bytes),
 * retried on a torn read (bad checksum), as xhad itself retries. On a block device (a real pool's
 * heartbeat LUN attached to the monitoring host) the read bypasses the page cache with O_DIRECT
 * through `dd iflag=direct` (Node cannot align its buffers for O_DIRECT itself); on a regular file
 * (the simulator's) a plain read sees every write. Never written.
 */
import { open, stat } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { decodeStatefile, detectFlavour, LAYOUT_BYTES, type DecodedStatefile, type XenhaHostSlot } from '../core/statefile/layout.ts';

export type ReadMode = 'auto' | 'direct' | 'buffered';

async function readBuffered(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(LAYOUT_BYTES);
    const { bytesRead } = await fh.read(buf, 0, LAYOUT_BYTES, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

function readDirect(path: string, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(
      'dd',
      [`if=${path}`, `bs=${LAYOUT_BYTES}`, 'count=1', 'iflag=direct', 'status=none'],
      { encoding: 'buffer', maxBuffer: LAYOUT_BYTES * 2, signal },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`dd iflag=direct ${path}: ${stderr.toString().trim() || err.message}`));
        else resolve(stdout);
      },
    );
  });
}

/** Whose file it is, by its signature (xhad's statefile, or xenha-heartbeat's file), decoded as such. */
export type StatefileRead =
  | { flavour: 'xhad'; decoded: DecodedStatefile; attempts: number }
  | { flavour: 'xenha'; decoded: DecodedStatefile<XenhaHostSlot>; attempts: number };

const torn = (d: DecodedStatefile) =>
  (!d.global.ok && d.global.error.kind === 'bad_checksum') || d.slots.some((s) => !s.ok && s.error.kind === 'bad_checksum');

/** Reads and decodes, up to `tries` times while a section fails its checksum. Throws on I/O errors. */
export async function readStatefile(path: string, mode: ReadMode, signal: AbortSignal, tries = 3): Promise<StatefileRead> {
  const direct = mode === 'direct' || (mode === 'auto' && (await stat(path)).isBlockDevice());
  let read: StatefileRead | undefined;
  for (let attempt = 1; attempt <= tries; attempt++) {
    signal.throwIfAborted();
    const buf = direct ? await readDirect(path, signal) : await readBuffered(path);
    // Neither signature: decoded as xhad's, which says what is wrong with it.
    read =
      detectFlavour(buf) === 'xenha'
        ? { flavour: 'xenha', decoded: decodeStatefile(buf, 'xenha'), attempts: attempt }
        : { flavour: 'xhad', decoded: decodeStatefile(buf, 'xhad'), attempts: attempt };
    if (!torn(read.decoded)) return read;
    await new Promise((r) => setTimeout(r, 20));
  }
  return read!;
}
