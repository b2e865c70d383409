/**
 * OpenTelemetry for the remediation service: one trace per notification (remediation.notification),
 * with spans for the re-check (remediation.recheck), the plan (remediation.plan) and each step
 * (remediation.step.<kind>), carrying xenha.pool, xenha.host, xenha.vm, xenha.plan and the result.
 *
 * The spans are made through @opentelemetry/api, a no-op until an SDK is registered. The SDK starts
 * only when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set and
 * OTEL_SDK_DISABLED is not "true": it then exports over OTLP (protobuf over HTTP; the OTEL_EXPORTER_OTLP_*
 * variables configure it) with the service name `xenha-remediation` unless OTEL_SERVICE_NAME says
 * otherwise. Unset, nothing is started and nothing is sent anywhere.
 */
import { SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { Logger } from 'pino';

export interface Telemetry {
  /** Whether an SDK was started (spans are exported). */
  exporting: boolean;
  shutdown(): Promise<void>;
}

export async function startTelemetry(log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<Telemetry> {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint || env.OTEL_SDK_DISABLED === 'true') return { exporting: false, shutdown: async () => {} };
  const [{ NodeSDK }, { OTLPTraceExporter }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/exporter-trace-otlp-proto'),
  ]);
  const sdk = new NodeSDK({
    serviceName: env.OTEL_SERVICE_NAME ?? 'xenha-remediation',
    traceExporter: new OTLPTraceExporter(),
    // Only xenha's own spans: no automatic instrumentation (ESM would need a loader hook for it).
    instrumentations: [],
  });
  sdk.start();
  log.info({ endpoint }, 'OpenTelemetry: exporting traces over OTLP');
  return {
    exporting: true,
    shutdown: async () => {
      try {
        await sdk.shutdown();
      } catch (e) {
        log.warn({ err: e }, 'OpenTelemetry shutdown failed');
      }
    },
  };
}

const tracer = trace.getTracer('xenha-remediation');

/** Runs `work` in an active span: an exception is recorded on it (status error) and rethrown; the span always ends. */
export function withSpan<T>(name: string, attributes: Record<string, string | number>, work: (span: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, async (span) => {
    span.setAttributes(attributes);
    try {
      return await work(span);
    } catch (e) {
      span.recordException(e as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw e;
    } finally {
      span.end();
    }
  });
}
