import { describe, expect, it } from 'vitest';
import { Registry } from './registry.ts';

/** The text format's sample line: name, optional labels, a number (Prometheus exposition 0.0.4). */
const SAMPLE =
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? (?:[-+]?(?:\d+(?:\.\d+)?(?:e[-+]?\d+)?|Inf)|NaN)$/;

/** Every line is a HELP, a TYPE or a sample, and each family's HELP and TYPE come before its samples. */
function checkFormat(text: string): void {
  expect(text.endsWith('\n')).toBe(true);
  let family = '';
  for (const line of text.trimEnd().split('\n')) {
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line);
    if (help) {
      family = help[1] ?? '';
      continue;
    }
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary)$/.exec(line);
    if (type) {
      expect(type[1]).toBe(family);
      continue;
    }
    expect(line, line).toMatch(SAMPLE);
    expect(line.startsWith(family), `${line} outside its family ${family}`).toBe(true);
  }
}

describe('Registry exposition', () => {
  it('renders counters, histograms, gauges and summaries in the text format', () => {
    const r = new Registry();
    const c = r.counter('t_requests_total', 'Requests.', ['route', 'code']);
    const h = r.histogram('t_latency_seconds', 'Latency.', ['route'], [0.1, 1]);
    r.gauge('t_up', 'Up.', () => 1);
    r.summary('t_lag_seconds', 'Lag.', () => [
      { labels: { quantile: '0.5' }, value: 0.01 },
      { suffix: '_sum', value: 0.5 },
      { suffix: '_count', value: 50 },
    ]);
    c.inc({ route: 'a', code: 'ok' });
    c.inc({ route: 'a', code: 'ok' }, 2);
    c.inc({ code: 'E', route: 'we"ird\\\nname' });
    h.observe({ route: 'a' }, 0.05);
    h.observe({ route: 'a' }, 0.5);
    h.observe({ route: 'a' }, 5);
    const text = r.render();
    checkFormat(text);
    expect(text).toContain('t_requests_total{route="a",code="ok"} 3\n');
    // Label values escaped (\\, \", \n), labels in the family's order whatever the caller's.
    expect(text).toContain('t_requests_total{route="we\\"ird\\\\\\nname",code="E"} 1\n');
    // Buckets are cumulative, +Inf is the count.
    expect(text).toContain('t_latency_seconds_bucket{route="a",le="0.1"} 1\n');
    expect(text).toContain('t_latency_seconds_bucket{route="a",le="1"} 2\n');
    expect(text).toContain('t_latency_seconds_bucket{route="a",le="+Inf"} 3\n');
    expect(text).toContain('t_latency_seconds_sum{route="a"} 5.55\n');
    expect(text).toContain('t_latency_seconds_count{route="a"} 3\n');
    expect(text).toContain('# TYPE t_up gauge\nt_up 1\n');
    expect(text).toContain('# TYPE t_lag_seconds summary\nt_lag_seconds{quantile="0.5"} 0.01\n');
    expect(text).toContain('t_lag_seconds_sum 0.5\nt_lag_seconds_count 50\n');
  });

  it('lists a family before its first sample and refuses a name twice', () => {
    const r = new Registry();
    r.counter('t_errors_total', 'Errors by code.', ['code']);
    r.histogram('t_step_seconds', 'Steps.', ['step'], [1]);
    const text = r.render();
    checkFormat(text);
    expect(text).toBe(
      '# HELP t_errors_total Errors by code.\n# TYPE t_errors_total counter\n' +
        '# HELP t_step_seconds Steps.\n# TYPE t_step_seconds histogram\n',
    );
    expect(() => r.counter('t_errors_total', 'again')).toThrow(/twice/);
  });
});
