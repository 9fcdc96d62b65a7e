import { readRepoFile } from './deploy-files.js';

export interface Instruction {
  /** Upper case: FROM, COPY, RUN... */
  keyword: string;
  args: string;
  stage: string;
}

export interface Stage {
  name: string;
  /** What it is built FROM: an image or an earlier stage. */
  base: string;
  instructions: Instruction[];
}

/**
 * The stages of the root Dockerfile and their instructions (continuation lines joined, comments dropped), enough
 * to check what a build would do without a Docker engine. `ARG`s before the first FROM are substituted in FROM.
 */
export function dockerfileStages(path = 'Dockerfile'): Stage[] {
  const text = readRepoFile(path).replace(/\\\n/g, ' ');
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const upper = keyword.toUpperCase();
    if (upper === 'ARG' && stages.length === 0) {
      const [name = '', value = ''] = args.split('=');
      globalArgs.set(name, value);
      continue;
    }
    if (upper === 'FROM') {
      const [, image = '', name = ''] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? [];
      const base = image.replace(/\$\{(\w+)\}/g, (_, arg: string) => globalArgs.get(arg) ?? '');
      stages.push({ name: name || String(stages.length), base, instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`${path}: ${upper} before the first FROM`);
    stage.instructions.push({ keyword: upper, args: args.replace(/\s+/g, ' '), stage: stage.name });
  }
  return stages;
}

/** A stage and every stage it is built FROM, the stage itself first. */
export function stageChain(stages: Stage[], name: string): Stage[] {
  const chain: Stage[] = [];
  for (let stage = stages.find((s) => s.name === name); stage; stage = stages.find((s) => s.name === stage?.base)) {
    chain.push(stage);
  }
  return chain;
}

/** The last instruction of a kind that applies to a stage (its own, or inherited from the stages below it). */
export function effective(stages: Stage[], name: string, keyword: string): Instruction | undefined {
  for (const stage of stageChain(stages, name)) {
    const found = stage.instructions.filter((i) => i.keyword === keyword).at(-1);
    if (found) return found;
  }
  return undefined;
}

/**
 * Whether `.dockerignore` lets a path into the build context: the last pattern matching the path or one of its
 * parent folders decides (Docker's rule), `!` re-includes, `*` stays in one path segment, `**` crosses them.
 */
export function inBuildContext(path: string, ignoreFile = '.dockerignore'): boolean {
  const patterns = readRepoFile(ignoreFile)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const segments = path.split('/');
  const candidates = segments.map((_, i) => segments.slice(0, i + 1).join('/'));
  let included = true;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    const body = (negated ? pattern.slice(1) : pattern).replace(/\/$/, '');
    const source = body.replace(/\*\*\/|\*\*|\*|[.+?^${}()|[\]\\]/g, (token) => {
      if (token === '**/') return '(?:.*/)?';
      if (token === '**') return '.*';
      if (token === '*') return '[^/]*';
      return `\\${token}`;
    });
    const regex = new RegExp(`^${source}$`);
    if (candidates.some((candidate) => regex.test(candidate))) included = negated;
  }
  return included;
}
