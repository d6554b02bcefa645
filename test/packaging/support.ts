/** The public packages of the workspace and what `npm pack` makes of them. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));

export interface WorkspacePackage {
  readonly dir: string;
  readonly manifest: Record<string, unknown> & { name: string; version: string };
}

/** Every workspace that is not `private`: what a user can install. */
export function publicPackages(): WorkspacePackage[] {
  const root = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { workspaces: string[] };
  return root.workspaces
    .map((dir) => ({ dir, manifest: JSON.parse(readFileSync(join(REPO, dir, 'package.json'), 'utf8')) }))
    .filter((p) => p.manifest.private !== true);
}

/** `npm pack` of the given workspaces into `destination` (dry run: only lists); one entry per package. */
export function npmPack(
  dirs: readonly string[],
  destination: string | undefined,
): Array<{ name: string; filename: string; files: Array<{ path: string }> }> {
  const args = ['pack', '--json', '--ignore-scripts', ...dirs.flatMap((d) => ['-w', d])];
  if (destination === undefined) args.push('--dry-run');
  else args.push('--pack-destination', destination);
  const out = execFileSync('npm', args, { cwd: REPO, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(out);
}
