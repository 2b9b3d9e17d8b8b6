/**
 * An integrator must be able to name every type the public declarations use: an options object
 * they build before a call, a result they store, a constructor argument. This walks the built
 * dist/*.d.ts of every exports entry with the TypeScript compiler and lists the named types
 * reachable from an exported declaration that no public entry exports. The few left
 * unexported on purpose (internals of exported classes, zod schema constants behind exported
 * types, helper types whose composite is exported) are listed below with the reason.
 */
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, PACKAGE_DIRS, repoRoot } from '../../scripts/ensure-built.js';

const INTERNAL = new Set([
  // connec-client: what an exported class's constructor takes from the client itself.
  'ClientContext', 'HttpKernel', 'HttpMethod', 'HttpRequest', 'HttpResponse', 'KernelOptions', 'ResolvedRetryPolicy', 'PageLoad', 'PageLoader',
  // sdk: the sync engine behind `SyncModule.engine`.
  'SyncEngine', 'ApplyOutcome', 'BatchOutcome', 'EngineDeps', 'GroupScope', 'Owner', 'RecordJobPayload', 'RecordJobResult', 'ResolvedSyncOptions', 'SubIdLink',
  // sdk: zod schema constants whose inferred types are exported by name.
  'AccountGroupSchema', 'AccountUserSchema', 'BillCreateSchema', 'BillSchema', 'RecurringBillCreateSchema', 'RecurringBillSchema', 'SubscriptionPlanSchema', 'strictMarketplace',
  // sdk: parts of the exported entity definitions and of the typed push (named by their composites).
  'EntityCommon', 'InboundFunctions', 'OutboundFunctions', 'Synchronous', 'DirectionMismatch', 'LocalOf', 'Named', 'OutboundOnly', 'PushableEntity', 'PushableEntityName', 'PushableObject', 'PushRecord', 'OneRecord', 'EveryOf',
  // adapter-prisma: `PrismaProvider` is exported, and is this type.
  'SqlProvider',
]);

interface Entry {
  specifier: string;
  file: string;
}

function publicEntries(): Entry[] {
  return PACKAGE_DIRS.flatMap((dir) => {
    const manifest = JSON.parse(readFileSync(join(repoRoot, 'packages', dir, 'package.json'), 'utf8')) as {
      name: string;
      exports: Record<string, string | Record<string, string>>;
    };
    return Object.entries(manifest.exports).flatMap(([subpath, target]) =>
      typeof target === 'object' && target.types
        ? [{ specifier: subpath === '.' ? manifest.name : `${manifest.name}/${subpath.slice(2)}`, file: join(repoRoot, 'packages', dir, target.types) }]
        : [],
    );
  });
}

/** `name <- exported declaration that uses it`, for each named type no public entry exports. */
function unexportedTypes(entries: Entry[]): string[] {
  const program = ts.createProgram(
    entries.map((e) => e.file),
    { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16, target: ts.ScriptTarget.ES2022, strict: true, skipLibCheck: true },
  );
  const checker = program.getTypeChecker();
  const resolve = (s: ts.Symbol | undefined) => (s && s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  const ours = (d: ts.Declaration) => /\/packages\/[^/]+\/dist\//.test(d.getSourceFile().fileName);
  const exported = new Map<ts.Symbol, string>();
  for (const entry of entries) {
    const source = program.getSourceFile(entry.file);
    const module = source && checker.getSymbolAtLocation(source);
    if (!module) throw new Error(`no declarations at ${relative(repoRoot, entry.file)}`);
    for (const s of checker.getExportsOfModule(module)) {
      const target = resolve(s);
      if (target) exported.set(target, `${entry.specifier} ${s.name}`);
    }
  }
  const missing = new Map<string, string>();
  const seen = new Set<ts.Symbol>();
  const walk = (symbol: ts.Symbol, via: string) => {
    if (seen.has(symbol)) return;
    seen.add(symbol);
    for (const declaration of symbol.declarations ?? []) {
      if (!ours(declaration)) continue;
      const visit = (node: ts.Node) => {
        const name = ts.isTypeReferenceNode(node) ? node.typeName : ts.isTypeQueryNode(node) ? node.exprName : ts.isExpressionWithTypeArguments(node) ? node.expression : undefined;
        const target = name && resolve(checker.getSymbolAtLocation(name));
        const top = target?.declarations?.find(ours);
        if (target && top && !(target.flags & ts.SymbolFlags.TypeParameter)) {
          const moduleLevel = ts.isSourceFile(top.parent) || ts.isVariableDeclarationList(top.parent);
          if (moduleLevel && !exported.has(target) && !INTERNAL.has(target.name) && !missing.has(target.name)) missing.set(target.name, via);
          walk(target, exported.get(target) ?? via);
        }
        ts.forEachChild(node, visit);
      };
      visit(declaration);
    }
  };
  for (const [symbol, via] of exported) walk(symbol, via);
  return [...missing].map(([name, via]) => `${name} <- ${via}`).sort();
}

describe('public type surface', () => {
  let entries: Entry[] = [];
  beforeAll(async () => {
    await ensureBuilt();
    entries = publicEntries();
  });

  it('exports every named type used by an exported declaration', () => {
    expect(unexportedTypes(entries)).toEqual([]);
  });
});
