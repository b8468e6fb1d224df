/**
 * Symbols, colours and text hygiene for `ecsops get`. Colours are plain ANSI SGR codes, applied
 * only when the caller asks for them (a TTY without `--no-color` / `NO_COLOR`).
 */

/** How a state reads at a glance; each tone has one colour. */
export type Tone = 'ok' | 'bad' | 'warn' | 'busy' | 'muted' | 'plain';

/** A status cell: symbol + word, coloured by tone. */
export interface Status {
  symbol: string;
  text: string;
  tone: Tone;
}

const SGR: Record<Tone | 'dim' | 'bold', string> = {
  ok: '32', // green
  bad: '31', // red
  warn: '33', // yellow
  busy: '36', // cyan
  muted: '90', // bright black (grey)
  plain: '',
  dim: '2',
  bold: '1',
};

/** Wraps text in colour codes, or returns it unchanged when colour is off. */
export type Paint = (text: string, style: Tone | 'dim' | 'bold') => string;

/** A {@link Paint} that colours (`color` true) or leaves text alone. */
export function painter(color: boolean): Paint {
  if (!color) return (text) => text;
  return (text, style) => (SGR[style] && text ? `\u001b[${SGR[style]}m${text}\u001b[0m` : text);
}

/**
 * Symbol and tone per state word used by the ecsops kinds (phases, instance states, batch and
 * execution results, condition-derived words). Unknown words are shown plain with `?`.
 */
const STATES: Record<string, [string, Tone]> = {
  // done and good
  Succeeded: ['✔', 'ok'],
  Success: ['✔', 'ok'],
  Updated: ['✔', 'ok'],
  Installed: ['✔', 'ok'],
  Compliant: ['✔', 'ok'],
  Stable: ['✔', 'ok'],
  Ready: ['✔', 'ok'],
  Successful: ['✔', 'ok'],
  Open: ['●', 'ok'],
  // broken
  Failed: ['✖', 'bad'],
  PartiallyFailed: ['✖', 'bad'],
  NotReady: ['✖', 'bad'],
  Stalled: ['✖', 'bad'],
  Deleted: ['✖', 'bad'],
  // moving
  Running: ['◌', 'busy'],
  InProgress: ['◌', 'busy'],
  Progressing: ['◌', 'busy'],
  Patching: ['◌', 'busy'],
  Starting: ['◌', 'busy'],
  RollingBack: ['↺', 'busy'],
  Reconciling: ['◌', 'busy'],
  // needs a look
  Paused: ['‖', 'warn'],
  RolledBack: ['↺', 'warn'],
  Unreachable: ['⚠', 'warn'],
  NonCompliant: ['⚠', 'warn'],
  PendingReboot: ['⚠', 'warn'],
  Inconclusive: ['⚠', 'warn'],
  Suspended: ['‖', 'warn'],
  Deleting: ['⊘', 'warn'],
  // not yet / not any more
  Pending: ['○', 'muted'],
  Unscanned: ['○', 'muted'],
  Closed: ['○', 'muted'],
  Cancelled: ['⊘', 'muted'],
  Superseded: ['⊘', 'muted'],
  Ended: ['■', 'muted'],
  Unknown: ['?', 'muted'],
};

/** The {@link Status} cell of a state word (`Failed` → `✖ Failed`, red). */
export function statusOf(word: string | undefined): Status {
  const text = clean(word ?? '') || 'Unknown';
  const [symbol, tone] = STATES[text] ?? ['?', 'plain'];
  return { symbol, text, tone };
}

/**
 * Makes text from the API server safe and one-line for a terminal: control characters (ESC
 * included, so a host's output cannot move the cursor or change colours) and bidirectional
 * overrides become spaces, runs of whitespace collapse to one space.
 */
export function clean(text: string): string {
  return text.replace(UNSAFE, ' ').replace(/\s+/g, ' ').trim();
}

// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** `text` cut to `max` characters, with `…` as the last one when cut. */
export function truncate(text: string, max: number): string {
  if (max <= 0) return '';
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/** Columns `text` takes on a terminal (code points; colour codes excluded). */
export function visibleWidth(text: string): number {
  // eslint-disable-next-line no-control-regex
  return [...text.replace(/\u001b\[[0-9;]*m/g, '')].length;
}

/**
 * A duration in kubectl's style (`45s`, `3m10s`, `25m`, `4h12m`, `20h`, `3d4h`, `41d`), from
 * milliseconds. Negative durations (clock skew) read `0s`.
 */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const d = Math.floor(h / 24);
  if (s < 120) return `${s}s`;
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (h < 3) return `${m}m`;
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (d < 2) return `${h}h`;
  if (d < 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  return `${d}d`;
}

/** Age of an RFC 3339 `time` at `now` (`humanDuration`), or `''` when absent or unparsable. */
export function ageOf(time: string | undefined, now: Date): string {
  if (!time) return '';
  const t = Date.parse(time);
  return Number.isNaN(t) ? '' : humanDuration(now.getTime() - t);
}

/**
 * An RFC 3339 `time` with how far away it is: `2026-12-11T17:00:00Z (in 4d5h)` or
 * `… (3m ago)`; the text unchanged when unparsable.
 */
export function when(time: string, now: Date): string {
  const t = Date.parse(time);
  if (Number.isNaN(t)) return clean(time);
  const delta = t - now.getTime();
  return delta >= 0 ? `${time} (in ${humanDuration(delta)})` : `${time} (${humanDuration(-delta)} ago)`;
}
