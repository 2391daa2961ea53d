// `pageref report FILE`: what a capture holds, as text or JSON.

import { replayCapture } from '../capture/capture-reader';
import { CaptureSummary, reportJson } from '../report/capture-summary';
import { renderReport } from '../report/report-text';

export function reportCommand(path: string, options: { json: boolean; top: number; maxPfns: number }): string {
  const summary = new CaptureSummary(options.maxPfns);
  replayCapture(path, summary);
  const report = reportJson(summary, options.top);
  return options.json ? JSON.stringify(report, null, 2) + '\n' : renderReport(report);
}
