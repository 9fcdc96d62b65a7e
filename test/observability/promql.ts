import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

export const ROOT = join(import.meta.dirname, '..', '..');
export const RULES_FILE = join(ROOT, 'deploy', 'prometheus', 'rules', 'writebehind.yml');
export const DASHBOARD_FILE = join(ROOT, 'deploy', 'grafana', 'dashboards', 'writebehind.json');

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function alertRules(): AlertRule[] {
  const doc = parse(readFileSync(RULES_FILE, 'utf8')) as { groups: { rules: AlertRule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string; datasource?: { type: string; uid: string } }[];
  panels?: Panel[];
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; query: { query: string } | string; allValue?: string }[] };
}

export function dashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
}

/** Every panel, those inside collapsed rows included, in dashboard order. */
export function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/**
 * A panel query as Prometheus would get it from Grafana with every variable at "All" (`.*`) and the rate interval
 * at `rateInterval`.
 */
export function grafanaToPromQL(expr: string, rateInterval: string): string {
  return expr
    .replaceAll('$__rate_interval', rateInterval)
    .replaceAll('$__interval', rateInterval)
    .replaceAll('$__range', rateInterval)
    .replace(/\$\{?(\w+)\}?/g, '.*');
}

const COMPARISONS = ['==', '!=', '>=', '<=', '>', '<'];
const SET_OPERATORS = ['and', 'or', 'unless'];

interface Token {
  kind: 'comparison' | 'set';
  start: number;
  end: number;
}

/**
 * The binary comparison and set operators of `expr` at parenthesis depth `onlyDepth` (any depth when undefined),
 * outside label matchers, ranges and strings.
 */
function operators(expr: string, onlyDepth?: number): Token[] {
  const tokens: Token[] = [];
  let depth = 0;
  let braces = 0;
  let brackets = 0;
  let quote: string | undefined;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i] ?? '';
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'" || c === '`') quote = c;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '{') braces++;
    else if (c === '}') braces--;
    else if (c === '[') brackets++;
    else if (c === ']') brackets--;
    if (quote || braces > 0 || brackets > 0 || (onlyDepth !== undefined && depth !== onlyDepth)) continue;
    const comparison = COMPARISONS.find((op) => expr.startsWith(op, i));
    if (comparison) {
      tokens.push({ kind: 'comparison', start: i, end: i + comparison.length });
      i += comparison.length - 1;
      continue;
    }
    const word = SET_OPERATORS.find(
      (op) => expr.startsWith(op, i) && !/\w/.test(expr[i - 1] ?? ' ') && !/\w/.test(expr[i + op.length] ?? ' '),
    );
    if (word) {
      tokens.push({ kind: 'set', start: i, end: i + word.length });
      i += word.length - 1;
    }
  }
  return tokens;
}

/**
 * The expression with every comparison turned into its `bool` form: it then returns a 0/1 series for every input
 * series instead of filtering them out, so "returns series" can be asserted of an alert expression whether it
 * fires or not.
 */
export function withBoolComparisons(expr: string): string {
  let out = '';
  let last = 0;
  for (const token of operators(expr)) {
    if (token.kind !== 'comparison') continue;
    out += expr.slice(last, token.end);
    last = token.end;
    if (!/^\s*bool\b/.test(expr.slice(token.end))) out += ' bool';
  }
  return out + expr.slice(last);
}

/**
 * The operands of the top-level comparisons and set operators (`a > 0 and on (x) b == 0` gives `a`, `0`, `b`, `0`),
 * with the matching modifiers (`bool`, `on (...)`, `ignoring (...)`, `group_left (...)`) taken off: each must be a
 * series that is not NaN, which the `bool` form alone would hide (NaN > bool 1 is 0).
 */
export function topLevelOperands(expr: string): string[] {
  const trimmed = stripOuterParens(expr.trim());
  const pieces: string[] = [];
  let last = 0;
  for (const token of operators(trimmed, 0)) {
    pieces.push(trimmed.slice(last, token.start));
    last = token.end;
  }
  pieces.push(trimmed.slice(last));
  return pieces
    .map((piece) =>
      piece
        .trim()
        .replace(/^bool\b\s*/, '')
        .replace(/^(on|ignoring)\s*\([^)]*\)\s*/, '')
        .replace(/^(group_left|group_right)\s*(\([^)]*\))?\s*/, '')
        .trim(),
    )
    .filter((piece) => piece.length > 0);
}

function stripOuterParens(expr: string): string {
  if (!expr.startsWith('(') || !expr.endsWith(')')) return expr;
  let depth = 0;
  for (let i = 0; i < expr.length; i++) {
    if (expr[i] === '(') depth++;
    else if (expr[i] === ')') depth--;
    if (depth === 0 && i < expr.length - 1) return expr;
  }
  return stripOuterParens(expr.slice(1, -1).trim());
}

/** GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens. */
export function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}
