/**
 * XAPI's two wire envelopes, server side.
 *
 * XML-RPC (POST to `/` or any path below it): `methodCall` in; `methodResponse` out, always a struct
 * `{Status: "Success", Value}` or `{Status: "Failure", ErrorDescription: [code, ...params]}`, with
 * int64 as strings, Content-Type `text/xml`.
 * JSON-RPC (POST to `/jsonrpc`): 2.0 in and out, failures as `{code: 1, message: CODE, data: params}`
 * (1.0 requests, without `jsonrpc`, get `error: [CODE, ...params]`), Content-Type `application/json`.
 */
import { XMLParser } from 'fast-xml-parser';
import { z } from 'zod';
import type { XapiValue } from './database.ts';
import { XapiFailure } from './errors.ts';

export interface RpcCall {
  method: string;
  params: unknown[];
}

export class WireError extends Error {}

// ---------------------------------------------------------------- XML-RPC

type XmlNode = Record<string, unknown>;

/**
 * Elements nested deeper than this are refused. A real call nests a dozen deep (methodCall, params,
 * param, value, struct, member, value, array, data, value…); the bound keeps a 300 KiB body of
 * `<value><array><data>` from costing more than its parse (fast-xml-parser's own default, named here).
 */
export const MAX_XML_DEPTH = 100;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: true,
  trimValues: false,
  parseTagValue: false,
  // Entities are decoded below, as xapi's parser (xmlm, through rpclib's Xmlrpc) does: the five XML
  // ones and character references; a DOCTYPE's own entities are never expanded (xmlm ignores the DTD
  // and fails on an entity it does not know), so no entity can blow a small body up.
  processEntities: false,
  cdataPropName: '#cdata',
  ignoreDeclaration: true,
  ignorePiTags: true,
  maxNestedTags: MAX_XML_DEPTH,
});

const XML_ENTITIES: ReadonlyMap<string, string> = new Map([
  ['amp', '&'],
  ['lt', '<'],
  ['gt', '>'],
  ['quot', '"'],
  ['apos', "'"],
]);

/** XML's Char production: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]. */
function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

function decodeEntities(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(/&([^;&]*);?/g, (whole, name: string) => {
    if (!whole.endsWith(';')) throw new WireError(`XML-RPC: a bare "&" in ${JSON.stringify(text.slice(0, 80))}`);
    const named = XML_ENTITIES.get(name);
    if (named !== undefined) return named;
    const m = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(name);
    const cp = m ? parseInt(m[1] ?? m[2]!, m[1] ? 16 : 10) : NaN;
    if (!isXmlChar(cp)) throw new WireError(`XML-RPC: unknown entity &${name.slice(0, 40)};`);
    return String.fromCodePoint(cp);
  });
}

function tagOf(node: XmlNode): string | undefined {
  return Object.keys(node).find((k) => k !== '#text' && k !== '#cdata' && k !== ':@');
}

function elements(children: unknown): XmlNode[] {
  if (!Array.isArray(children)) return [];
  return (children as XmlNode[]).filter((n) => tagOf(n) !== undefined);
}

/** Raw text, as CDATA holds it. */
function rawText(children: unknown): string {
  if (!Array.isArray(children)) return '';
  return (children as XmlNode[]).map((n) => (typeof n['#text'] === 'string' ? n['#text'] : '')).join('');
}

/** The text of an element: character data with its entities decoded, and CDATA sections as they are. */
function textOf(children: unknown): string {
  if (!Array.isArray(children)) return '';
  return (children as XmlNode[])
    .map((n) => (typeof n['#text'] === 'string' ? decodeEntities(n['#text']) : Array.isArray(n['#cdata']) ? rawText(n['#cdata']) : ''))
    .join('');
}

function only(children: unknown, tag: string, where: string): XmlNode {
  const els = elements(children).filter((n) => tagOf(n) === tag);
  if (els.length !== 1) throw new WireError(`XML-RPC: expected one <${tag}> in ${where}`);
  return els[0]!;
}

function decodeValue(valueNode: XmlNode): unknown {
  const children = valueNode.value;
  const els = elements(children);
  if (els.length === 0) return textOf(children); // <value>text</value> is a string
  if (els.length !== 1) throw new WireError('XML-RPC: <value> with more than one type element');
  const el = els[0]!;
  const tag = tagOf(el)!;
  const inner = el[tag];
  switch (tag) {
    case 'string':
      return textOf(inner);
    case 'int':
    case 'i4':
    case 'i8': {
      const t = textOf(inner).trim();
      if (!/^[+-]?\d+$/.test(t)) throw new WireError(`XML-RPC: bad <${tag}> ${JSON.stringify(t)}`);
      return Number(t);
    }
    case 'double': {
      const n = Number(textOf(inner).trim());
      if (!Number.isFinite(n)) throw new WireError('XML-RPC: bad <double>');
      return n;
    }
    case 'boolean': {
      const t = textOf(inner).trim();
      if (t !== '0' && t !== '1') throw new WireError('XML-RPC: bad <boolean>');
      return t === '1';
    }
    case 'dateTime.iso8601':
      return textOf(inner).trim();
    case 'base64':
      return Buffer.from(textOf(inner).trim(), 'base64').toString('utf8');
    case 'nil':
      return null;
    case 'array': {
      const data = only(inner, 'data', '<array>');
      return elements(data.data)
        .filter((n) => tagOf(n) === 'value')
        .map(decodeValue);
    }
    case 'struct': {
      const out: Record<string, unknown> = {};
      for (const member of elements(inner).filter((n) => tagOf(n) === 'member')) {
        const name = textOf(only(member.member, 'name', '<member>').name);
        // A data property of its own, whatever the name: `out[name] = …` with "__proto__" would set the
        // object's prototype instead and lose the member.
        Object.defineProperty(out, name, {
          value: decodeValue(only(member.member, 'value', '<member>')),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    default:
      throw new WireError(`XML-RPC: unknown type <${tag}>`);
  }
}

export function parseXmlRpcCall(body: string): RpcCall {
  let doc: XmlNode[];
  try {
    doc = parser.parse(body) as XmlNode[];
  } catch (e) {
    throw new WireError(`XML-RPC: not XML (${(e as Error).message})`);
  }
  const call = only(doc, 'methodCall', 'document');
  const method = textOf(only(call.methodCall, 'methodName', '<methodCall>').methodName).trim();
  if (!method) throw new WireError('XML-RPC: empty <methodName>');
  const paramsEl = elements(call.methodCall).find((n) => tagOf(n) === 'params');
  const params = paramsEl
    ? elements(paramsEl.params)
        .filter((n) => tagOf(n) === 'param')
        .map((p) => decodeValue(only(p.param, 'value', '<param>')))
    : [];
  return { method, params };
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** XAPI's encoding: strings as bare `<value>` text, int64 as strings, floats as doubles. */
function encodeValue(v: unknown): string {
  if (typeof v === 'string') return `<value>${escapeXml(v)}</value>`;
  if (typeof v === 'boolean') return `<value><boolean>${v ? 1 : 0}</boolean></value>`;
  if (typeof v === 'number') {
    return Number.isInteger(v) ? `<value>${v}</value>` : `<value><double>${v}</double></value>`;
  }
  if (Array.isArray(v)) return `<value><array><data>${v.map(encodeValue).join('')}</data></array></value>`;
  if (v !== null && typeof v === 'object') {
    const members = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => `<member><name>${escapeXml(k)}</name>${encodeValue(x)}</member>`);
    return `<value><struct>${members.join('')}</struct></value>`;
  }
  throw new Error(`cannot encode ${String(v)} in XML-RPC`);
}

export function xmlRpcValueResponse(value: XapiValue): string {
  return `<?xml version="1.0"?><methodResponse><params><param>${encodeValue(value)}</param></params></methodResponse>`;
}

export function xmlRpcResponse(outcome: { value: XapiValue } | { failure: XapiFailure }): string {
  const result =
    'value' in outcome
      ? { Status: 'Success', Value: outcome.value }
      : { Status: 'Failure', ErrorDescription: [outcome.failure.code, ...outcome.failure.params] };
  return `<?xml version="1.0"?><methodResponse><params><param>${encodeValue(result)}</param></params></methodResponse>`;
}

// ---------------------------------------------------------------- JSON-RPC

const jsonRpcRequest = z.object({
  jsonrpc: z.literal('2.0').optional(),
  method: z.string().min(1),
  params: z.array(z.unknown()).default([]),
  id: z.union([z.string(), z.number(), z.null()]).optional(),
});

export interface JsonRpcCall extends RpcCall {
  id: string | number | null;
  version: '1.0' | '2.0';
}

export function parseJsonRpcCall(body: string): JsonRpcCall {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (e) {
    throw new WireError(`JSON-RPC: not JSON (${(e as Error).message})`);
  }
  const r = jsonRpcRequest.safeParse(raw);
  if (!r.success) throw new WireError(`JSON-RPC: ${z.prettifyError(r.error)}`);
  return { method: r.data.method, params: r.data.params, id: r.data.id ?? null, version: r.data.jsonrpc ?? '1.0' };
}

export function jsonRpcResponse(
  call: Pick<JsonRpcCall, 'id' | 'version'>,
  outcome: { value: XapiValue } | { failure: XapiFailure },
): string {
  if (call.version === '2.0') {
    return JSON.stringify(
      'value' in outcome
        ? { jsonrpc: '2.0', result: outcome.value, id: call.id }
        : { jsonrpc: '2.0', error: { code: 1, message: outcome.failure.code, data: outcome.failure.params }, id: call.id },
    );
  }
  return JSON.stringify(
    'value' in outcome
      ? { result: outcome.value, error: null, id: call.id }
      : { result: null, error: [outcome.failure.code, ...outcome.failure.params], id: call.id },
  );
}
