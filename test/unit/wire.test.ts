import { describe, expect, it } from 'vitest';
import { jsonRpcResponse, parseJsonRpcCall, parseXmlRpcCall, WireError, xmlRpcResponse } from '../../simulator/xapi/wire.ts';
import { XapiFailure } from '../../simulator/xapi/errors.ts';

describe('XML-RPC codec', () => {
  it('decodes every XML-RPC type, bare strings and whitespace included', () => {
    const call = parseXmlRpcCall(`<?xml version="1.0"?>
<methodCall>
  <methodName>event.from</methodName>
  <params>
    <param><value>OpaqueRef:abc</value></param>
    <param><value><array><data><value><string>VM</string></value><value>host</value></data></array></value></param>
    <param><value><string> spaced &amp; kept </string></value></param>
    <param><value><double>60.1</double></value></param>
    <param><value><i4>-3</i4></value></param>
    <param><value><boolean>1</boolean></value></param>
    <param><value><struct><member><name>k</name><value><int>7</int></value></member></struct></value></param>
    <param><value></value></param>
  </params>
</methodCall>`);
    expect(call).toEqual({
      method: 'event.from',
      params: ['OpaqueRef:abc', ['VM', 'host'], ' spaced & kept ', 60.1, -3, true, { k: 7 }, ''],
    });
  });

  it('refuses what is not a method call', () => {
    expect(() => parseXmlRpcCall('not xml at all <')).toThrow(WireError);
    expect(() => parseXmlRpcCall('<methodCall><params/></methodCall>')).toThrow(/methodName/);
    expect(() =>
      parseXmlRpcCall('<methodCall><methodName>x</methodName><params><param><value><int>x1</int></value></param></params></methodCall>'),
    ).toThrow(/bad <int>/);
  });

  it('encodes like xapi: compact, bare strings, int64 as strings, Status wrapper', () => {
    const ok = xmlRpcResponse({ value: { n: 5, f: 0.5, b: false, s: 'a<b', l: ['x'] } });
    expect(ok).toBe(
      '<?xml version="1.0"?><methodResponse><params><param><value><struct>' +
        '<member><name>Status</name><value>Success</value></member><member><name>Value</name><value><struct>' +
        '<member><name>n</name><value>5</value></member><member><name>f</name><value><double>0.5</double></value></member>' +
        '<member><name>b</name><value><boolean>0</boolean></value></member><member><name>s</name><value>a&lt;b</value></member>' +
        '<member><name>l</name><value><array><data><value>x</value></data></array></value></member>' +
        '</struct></value></member></struct></value></param></params></methodResponse>',
    );
    const ko = xmlRpcResponse({ failure: new XapiFailure('HANDLE_INVALID', ['VM', 'OpaqueRef:x']) });
    expect(ko).toContain('<member><name>Status</name><value>Failure</value></member>');
    expect(ko).toContain(
      '<member><name>ErrorDescription</name><value><array><data><value>HANDLE_INVALID</value><value>VM</value><value>OpaqueRef:x</value></data></array></value></member>',
    );
  });
});

describe('JSON-RPC codec', () => {
  it('answers 2.0 and 1.0 requests with their own error shapes', () => {
    const v2 = parseJsonRpcCall('{"jsonrpc":"2.0","method":"VM.get_all","params":["s"],"id":3}');
    expect(v2).toEqual({ method: 'VM.get_all', params: ['s'], id: 3, version: '2.0' });
    const f = new XapiFailure('SESSION_INVALID', ['s']);
    expect(JSON.parse(jsonRpcResponse(v2, { failure: f }))).toEqual({
      jsonrpc: '2.0',
      error: { code: 1, message: 'SESSION_INVALID', data: ['s'] },
      id: 3,
    });
    const v1 = parseJsonRpcCall('{"method":"VM.get_all","params":["s"],"id":"a"}');
    expect(JSON.parse(jsonRpcResponse(v1, { failure: f }))).toEqual({ result: null, error: ['SESSION_INVALID', 's'], id: 'a' });
    expect(JSON.parse(jsonRpcResponse(v2, { value: 12 }))).toEqual({ jsonrpc: '2.0', result: 12, id: 3 });
  });

  it('names what is wrong with a bad request', () => {
    expect(() => parseJsonRpcCall('{')).toThrow(/not JSON/);
    expect(() => parseJsonRpcCall('{"jsonrpc":"2.0","params":[]}')).toThrow(/method/);
  });
});
