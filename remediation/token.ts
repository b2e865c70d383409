/**
 * The webhook's bearer token: what Alertmanager sends with `http_config.authorization` (type Bearer,
 * `credentials_file`). It is read from a file or from an environment variable named by the config,
 * never written in the config itself, and compared in constant time.
 */
import * as crypto from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { z } from 'zod';

/** Longest token accepted, in bytes. */
export const MAX_TOKEN_BYTES = 4096;

/** Where the token comes from: exactly one of a file and an environment variable. */
export type TokenSource = { tokenFile: string; tokenEnv?: undefined } | { tokenEnv: string; tokenFile?: undefined };

/** The config's part that names the token's source; an inline `token` is refused. */
export const tokenSourceSchema = z
  .object({
    tokenFile: z.string().min(1).optional(),
    tokenEnv: z.string().min(1).optional(),
    token: z.unknown().optional(),
  })
  .superRefine((v, ctx) => {
    if (v.token !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['token'],
        message: 'the token is never written in the config: put it in a file (tokenFile, mode 0600) or an environment variable (tokenEnv)',
      });
    if ((v.tokenFile === undefined) === (v.tokenEnv === undefined))
      ctx.addIssue({ code: 'custom', message: 'exactly one of tokenFile and tokenEnv is required' });
  })
  .transform((v): TokenSource => (v.tokenFile !== undefined ? { tokenFile: v.tokenFile } : { tokenEnv: v.tokenEnv! }));

/** A token that cannot be used; the message says why and what to do. */
export class TokenError extends Error {
  override name = 'TokenError';
}

/** Printable ASCII without spaces: what an Authorization header carries unchanged (RFC 6750 b64token is a subset). */
const TOKEN_CHARS = /^[\x21-\x7e]+$/;

function checked(token: string, where: string): Buffer {
  if (token.length === 0) throw new TokenError(`${where} is empty`);
  const bytes = Buffer.from(token, 'utf8');
  if (bytes.length > MAX_TOKEN_BYTES) throw new TokenError(`${where} is longer than ${MAX_TOKEN_BYTES} bytes`);
  if (!TOKEN_CHARS.test(token))
    throw new TokenError(
      `${where} has a character an HTTP Authorization header cannot carry (a space, a control character or non-ASCII); use printable ASCII, e.g. \`openssl rand -hex 32\``,
    );
  return bytes;
}

async function readTokenFile(path: string): Promise<Buffer> {
  const where = `token file ${path}`;
  // stat before open: opening a FIFO would block until someone writes to it.
  const before = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new TokenError(`${where}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  if (!before.isFile()) throw new TokenError(`${where} is not a regular file`);
  const fh = await open(path, 'r').catch((e: Error) => {
    throw new TokenError(`${where}: ${e.message}`);
  });
  try {
    // What is checked is what is read: the open file's own mode, not the path's.
    const st = await fh.stat();
    if (!st.isFile()) throw new TokenError(`${where} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new TokenError(
        `${where}: permissions ${mode} are too open. The token file must not be accessible by group or others: chmod 600 ${path}`,
      );
    }
    // Room for a token of the largest size and its line end.
    if (st.size > MAX_TOKEN_BYTES + 2) throw new TokenError(`${where} is larger than ${MAX_TOKEN_BYTES} bytes`);
    const buf = Buffer.alloc(MAX_TOKEN_BYTES + 3);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_TOKEN_BYTES + 2) throw new TokenError(`${where} is larger than ${MAX_TOKEN_BYTES} bytes`);
    const text = buf
      .subarray(0, bytesRead)
      .toString('utf8')
      .replace(/[\r\n]+$/, '');
    return checked(text, where);
  } finally {
    await fh.close();
  }
}

/**
 * The token as bytes. A file must be a regular file accessible by its owner only (like ssh's private
 * keys), hold 1 to 4096 bytes once its trailing newline is trimmed; an environment variable must be
 * set and not empty. Throws TokenError with a message for the operator.
 */
export async function loadToken(source: TokenSource, env: NodeJS.ProcessEnv = process.env): Promise<Buffer> {
  if (source.tokenFile !== undefined) return readTokenFile(source.tokenFile);
  const name = source.tokenEnv;
  const value = env[name];
  if (value === undefined) throw new TokenError(`environment variable ${name} (tokenEnv) is not set`);
  return checked(value, `environment variable ${name} (tokenEnv)`);
}

type OneShot = (algorithm: string, data: Buffer, encoding: 'buffer') => Buffer;

/**
 * crypto.hash where Node has it (20.12 and later: one call, no Hash object, on every webhook request)
 * and it answers a Buffer, else createHash.
 */
const oneShot = ((): OneShot | undefined => {
  const hash = (crypto as { hash?: OneShot }).hash;
  try {
    return hash && Buffer.isBuffer(hash('sha256', Buffer.alloc(0), 'buffer')) ? hash : undefined;
  } catch {
    return undefined;
  }
})();
const sha256 = (b: Buffer): Buffer => (oneShot ? oneShot('sha256', b, 'buffer') : crypto.createHash('sha256').update(b).digest());

/**
 * Whether an Authorization header is exactly `Bearer <token>` (the scheme in any case, one space).
 * The candidate and the token are compared through their SHA-256 digests with timingSafeEqual, so
 * neither the token's bytes nor its length show in the time taken. An empty token matches nothing.
 */
export function tokenMatches(header: string | undefined, token: Buffer): boolean {
  if (header === undefined || token.length === 0) return false;
  const m = /^bearer (.+)$/is.exec(header);
  if (!m) return false;
  // Node gives header values as latin1: this is the header's bytes as they came.
  return crypto.timingSafeEqual(sha256(Buffer.from(m[1]!, 'latin1')), tokenDigest(token));
}

/** The token's digest, computed once per token (it does not change while the service runs). */
const digests = new WeakMap<Buffer, Buffer>();
function tokenDigest(token: Buffer): Buffer {
  let d = digests.get(token);
  if (!d) {
    d = sha256(token);
    digests.set(token, d);
  }
  return d;
}
