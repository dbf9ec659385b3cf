// The HTML page: every string escaped (hostile host names, reasons, notices and operator names),
// nothing external, only the elements the renderer writes itself.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { temporal } from '@temporalio/proto';
import { describe, expect, test } from 'vitest';
import { readHistory } from '../../lib/report-history.js';
import { esc, renderReportHtml } from '../../lib/report-html.js';
import { campaignReport, hostReport, type ReportModel } from '../../lib/report-model.js';

// The histories as first recorded, which are never re-recorded (the replay test keeps them as
// the version already out there): the client identities asserted below are theirs.
const HISTORIES = join(import.meta.dirname, '..', 'histories');
const facts = (name: string) => readHistory(temporal.api.history.v1.History.fromObject(JSON.parse(readFileSync(join(HISTORIES, `${name}.profile-checked-in-sandbox.json`), 'utf8'))));

/** The elements renderReportHtml writes; anything else in its output was injected. */
const OWN_TAGS = new Set(
  'html head meta title style body header h1 h2 h3 p b span section table thead tbody tr th td svg line text g rect i ul li code details summary footer div'.split(' '),
);
const tagsOf = (html: string) => new Set([...html.matchAll(/<([a-zA-Z][a-zA-Z0-9-]*)/g)].map((x) => x[1]!.toLowerCase()));

const HOSTILE = [
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(2)>',
  "'><svg onload=alert(3)>",
  '</title></style><iframe src="http://evil.example/">',
  'a & b <b>bold</b> \u0000\u0007 end',
];

function hostileModel(): ReportModel {
  const f = facts('upgrade-rolled-back-operator');
  const m = hostReport({ status: f.result, workflowId: 'ab-upgrade/h', history: f, now: f.closedAt! });
  const run = m.runs[0]!;
  Object.assign(m, { name: HOSTILE[0], reason: HOSTILE[1], waitingFor: HOSTILE[2], requestedBy: HOSTILE[3], notices: [...HOSTILE], problems: [HOSTILE[4]] });
  Object.assign(run, { host: HOSTILE[0], reason: HOSTILE[1], notices: [...HOSTILE], requestedBy: HOSTILE[2], release: HOSTILE[3], state: HOSTILE[2], problems: [HOSTILE[1]] });
  run.phases[0]!.detail = HOSTILE[1];
  run.phases[1]!.phase = HOSTILE[2]!;
  run.phases[2]!.outcome = HOSTILE[3];
  for (const a of m.approvals) Object.assign(a, { who: HOSTILE[0], identity: HOSTILE[1], reason: HOSTILE[3], what: HOSTILE[4], via: HOSTILE[2] });
  m.waves = [{ number: 1, round: 1, hosts: [HOSTILE[0]!, HOSTILE[1]!], state: HOSTILE[2]!, approvedBy: HOSTILE[3]!, failed: [HOSTILE[4]!] }];
  m.skipped = [HOSTILE[1]!];
  return m;
}

describe('renderReportHtml', () => {
  test('esc escapes the five HTML specials and control characters', () => {
    expect(esc(`<a href="x" title='y'>&</a>\u0000`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;\ufffd');
  });

  test('hostile strings everywhere come out as text: no injected element, attribute or character reference', () => {
    const html = renderReportHtml(hostileModel());
    expect([...tagsOf(html)].filter((t) => !OWN_TAGS.has(t))).toEqual([]);
    expect(html).not.toMatch(/<script|<img|<iframe|\u0000|\u0007/i);
    // Inside a tag: no event handler attribute (the hostile text stays outside tags, escaped).
    expect([...html.matchAll(/<[a-zA-Z][^>]*>/g)].map((x) => x[0]).filter((tag) => /\son[a-z]+\s*=/i.test(tag))).toEqual([]);
    expect(html).toContain(esc(HOSTILE[0]));
    expect(html).toContain(esc(HOSTILE[1]));
    expect(html).toContain('a &amp; b &lt;b&gt;bold&lt;/b&gt; \ufffd\ufffd end');
    // <title> and <style> each appear once: the hostile "</title></style>" did not close them.
    expect(html.match(/<\/title>/g)?.length).toBe(html.match(/<title>/g)?.length);
    expect(html.match(/<style>/g)).toHaveLength(1);
    expect(html.match(/<\/style>/g)).toHaveLength(1);
  });

  test('self-contained: no script, no link, no external URL, no remote resource', () => {
    const f = facts('campaign-committed');
    const html = renderReportHtml(campaignReport({ status: f.result, histories: [f], live: new Map(), now: f.closedAt! }));
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(|src=|href=/i);
    // The only URL is the SVG namespace, which is an identifier, not a fetch.
    expect(new Set([...html.matchAll(/https?:\/\/[^\s"'<>]+/g)].map((x) => x[0]))).toEqual(new Set(['http://www.w3.org/2000/svg']));
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
  });

  test('the campaign page names every host, each phase, the downtime and the waves', () => {
    const f = facts('campaign-committed');
    const m = campaignReport({ status: f.result, histories: [f], live: new Map(), now: f.closedAt! });
    const html = renderReportHtml(m);
    for (const r of m.runs) {
      expect(html).toContain(`<td class="name">${esc(r.host)}</td>`);
      expect(html).toContain(`${formatMs(r.downtime!.ourMs)}</td>`);
      expect(html).toContain('sshd 0.4s, services 0.6s');
    }
    expect(html.match(/<rect [^>]*fill="#43a047"/g)?.length).toBe(m.runs.flatMap((r) => r.phases.filter((p) => p.outcome === 'ok' && p.kind === 'run')).length);
    expect(html).toContain('<section id="waves">');
  });

  test('a rolled-back host: its reason, its rollback steps, the operator who reset it', () => {
    const f = facts('upgrade-rolled-back-operator');
    const html = renderReportHtml(hostReport({ status: f.result, workflowId: 'ab-upgrade/h', history: f, now: f.closedAt! }));
    expect(html).toContain('<div class="failure">');
    expect(html).toContain('<code>rollback.awaitOperator</code>');
    expect(html).toMatch(/<td class="name">erin<\/td><td>30328@vm<\/td>/);
    expect(html).toContain('(from the timeline)');
  });
});

const formatMs = (ms: number) => (ms < 999.5 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`);
