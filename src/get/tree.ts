/**
 * The drawing half of `ecsops get`: a {@link View} (header fields + a tree of nodes) becomes
 * lines of text, in the layout of `kubectl argo rollouts get rollout`:
 *
 *   Name:        web
 *   Status:      ↺ RollingBack
 *
 *   NAME                        KIND        STATUS         AGE  INFO
 *   web                         AppRelease  ↺ RollingBack  14m  version 1.5.0
 *   ├──# revision 6b441aee7925  Revision    ↺ RollingBack  62s  version 1.5.0, current, 1 failed
 *   │  └──≡ batch 0 (canary)    Batch       ✔ Succeeded    62s  1 instance(s), t-1937d9afe71da03c93
 *
 * Pure: the same view, time and options give the same lines.
 */
import { ageOf, clean, truncate, visibleWidth, type Paint, type Status } from './style.js';

/** One node of the tree. */
export interface TreeNode {
  /** One-character marker before the name (`#` revision, `≡` batch, `□` instance, ...). */
  icon?: string;
  name: string;
  /** KIND column (`Batch`, `Instance`, ...). */
  kind: string;
  status?: Status;
  /** RFC 3339 time the AGE column counts from. */
  time?: string;
  /** INFO column parts, joined with `, ` (already plain text; cleaned again when drawn). */
  info?: string[];
  children?: TreeNode[];
}

/**
 * A header line: `Label:  [status] value`. The status is drawn with its symbol and colour; the
 * value is plain text (cleaned, wrapped under itself on a narrow terminal).
 */
export interface HeaderField {
  label: string;
  status?: Status;
  value?: string;
}

/** What a kind's view function returns and {@link drawView} draws. */
export interface View {
  header: HeaderField[];
  tree: TreeNode;
}

/** Options of {@link drawView}. */
export interface DrawOptions {
  /** The time AGE and relative times are computed at. */
  now: Date;
  paint: Paint;
  /**
   * Terminal columns: INFO cells are cut to fit and header values wrapped. Undefined = no limit
   * (pipes and files get whole lines).
   */
  width?: number;
}

const GAP = '  ';

/** The cell of a status: `✔ Succeeded`. */
export function statusText(s: Status | undefined): string {
  return s ? `${s.symbol} ${s.text}` : '';
}

function paintStatus(s: Status | undefined, paint: Paint): string {
  return s ? paint(statusText(s), s.tone) : '';
}

/** Word-wraps `text` to lines of at most `width` columns (a longer word stays whole). */
function wrap(text: string, width: number | undefined): string[] {
  if (!width || width < 20 || visibleWidth(text) <= width) return [text];
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && visibleWidth(line) + 1 + visibleWidth(word) > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** The header block: one `Label:` column, values aligned (wrapped under themselves when long). */
export function drawHeader(fields: readonly HeaderField[], opts: DrawOptions): string[] {
  const labelWidth = Math.max(0, ...fields.map((f) => f.label.length + 1)) + 1;
  const out: string[] = [];
  for (const f of fields) {
    const label = `${f.label}:`.padEnd(labelWidth);
    const status = f.status ? statusText(f.status) : '';
    const text = [status, clean(f.value ?? '')].filter(Boolean).join(' ');
    const lines = wrap(text, opts.width ? opts.width - labelWidth : undefined);
    lines.forEach((l, i) => {
      // The status cell is the start of the first line: colour just that part.
      const shown = i === 0 && f.status ? paintStatus(f.status, opts.paint) + l.slice(status.length) : l;
      out.push(`${i === 0 ? label : ' '.repeat(labelWidth)}${shown}`.trimEnd());
    });
  }
  return out;
}

interface Row {
  guide: string;
  name: string;
  kind: string;
  status: Status | undefined;
  age: string;
  info: string;
}

function flatten(node: TreeNode, guide: string, childGuide: string, now: Date, rows: Row[]): void {
  rows.push({
    guide,
    name: `${node.icon ? `${node.icon} ` : ''}${clean(node.name)}`,
    kind: node.kind,
    status: node.status,
    age: ageOf(node.time, now),
    info: (node.info ?? []).map(clean).filter(Boolean).join(', '),
  });
  const children = node.children ?? [];
  children.forEach((c, i) => {
    const last = i === children.length - 1;
    flatten(c, `${childGuide}${last ? '└──' : '├──'}`, `${childGuide}${last ? '   ' : '│  '}`, now, rows);
  });
}

/** The tree as a table: NAME (with tree guides), KIND, STATUS, AGE, INFO. */
export function drawTree(root: TreeNode, opts: DrawOptions): string[] {
  const rows: Row[] = [];
  flatten(root, '', '', opts.now, rows);
  const w = {
    name: Math.max(4, ...rows.map((r) => visibleWidth(r.guide + r.name))),
    kind: Math.max(4, ...rows.map((r) => r.kind.length)),
    status: Math.max(6, ...rows.map((r) => visibleWidth(statusText(r.status)))),
    age: Math.max(3, ...rows.map((r) => r.age.length)),
  };
  const infoColumn = w.name + w.kind + w.status + w.age + GAP.length * 4;
  const room = opts.width ? opts.width - infoColumn : undefined;
  const pad = (s: string, n: number): string => s + ' '.repeat(Math.max(0, n - visibleWidth(s)));
  const { paint } = opts;
  const head = [pad('NAME', w.name), pad('KIND', w.kind), pad('STATUS', w.status), pad('AGE', w.age), 'INFO'];
  const lines = [paint(head.join(GAP), 'bold')];
  for (const r of rows) {
    const name = paint(r.guide, 'dim') + r.name;
    const info = room !== undefined && room >= 10 ? truncate(r.info, room) : r.info;
    const cells = [
      pad(name, w.name),
      pad(r.kind, w.kind),
      paintStatus(r.status, paint) + ' '.repeat(w.status - visibleWidth(statusText(r.status))),
      pad(r.age, w.age),
      info,
    ];
    lines.push(cells.join(GAP).trimEnd());
  }
  return lines;
}

/** Header, a blank line, then the tree. */
export function drawView(view: View, opts: DrawOptions): string[] {
  return [...drawHeader(view.header, opts), '', ...drawTree(view.tree, opts)];
}
