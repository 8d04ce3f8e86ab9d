/**
 * `connect completion bash|zsh|fish`: prints a shell completion script for the command tree commander knows, so
 * the script follows the commands and options as they are (nothing to keep in sync by hand).
 */

import type { Command } from 'commander';
import { ConnectError } from '@private-connect/protocol';
import type { Context } from '../context.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

interface Node {
  /** Words before this level: '' for the top, 'link' for `connect link ...`. */
  path: string;
  command: Command;
}

/** Every command with subcommands or options, top first. */
function walk(command: Command, path = ''): Node[] {
  return [{ path, command }, ...command.commands.filter((c) => !hidden(c)).flatMap((c) => walk(c, path ? `${path} ${c.name()}` : c.name()))];
}

const hidden = (c: Command) => (c as Command & { _hidden?: boolean })._hidden === true;
const subcommands = (c: Command) => c.commands.filter((s) => !hidden(s)).flatMap((s) => [s.name(), ...s.aliases()]);
const longOptions = (c: Command) => c.options.filter((o) => !o.hidden && o.long).map((o) => o.long!);

/** The words offered after `path`: its subcommands, its options and the global ones. */
function wordsAt(node: Node, program: Command): string[] {
  const own = [...subcommands(node.command), ...longOptions(node.command)];
  // --version only works before any command.
  const globals = longOptions(program).filter((o) => o !== '--version');
  return [...new Set(node.command === program ? [...own, '--help'] : [...own, ...globals, '--help'])];
}

function bash(program: Command): string {
  const nodes = walk(program);
  const entries = nodes.map((n) => `  [${JSON.stringify(n.path ? `_ ${n.path}` : '_')}]=${JSON.stringify(wordsAt(n, program).join(' '))}`);
  return [
    '# bash completion for connect. Load it now:  source <(connect completion bash)',
    '# or for good:  connect completion bash > ~/.local/share/bash-completion/completions/connect',
    'declare -gA _connect_words=(',
    ...entries,
    ')',
    '_connect_complete() {',
    '  local cur="${COMP_WORDS[COMP_CWORD]}" path=_ w i',
    '  for ((i = 1; i < COMP_CWORD; i++)); do',
    '    w="${COMP_WORDS[i]}"',
    '    [[ -n "${_connect_words["$path $w"]+x}" ]] && path="$path $w"',
    '  done',
    '  COMPREPLY=($(compgen -W "${_connect_words[$path]}" -- "$cur"))',
    '}',
    'complete -o default -F _connect_complete connect',
    '',
  ].join('\n');
}

function zsh(program: Command): string {
  const nodes = walk(program);
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  return [
    '#compdef connect',
    '# zsh completion for connect. Load it now (after compinit):  source <(connect completion zsh)',
    '# or for good:  connect completion zsh > "${fpath[1]}/_connect"',
    'typeset -gA _connect_table',
    '_connect_table=(',
    ...nodes.map((n) => `  ${quote(n.path ? `_ ${n.path}` : '_')} ${quote(wordsAt(n, program).join(' '))}`),
    ')',
    '_connect() {',
    '  local p=_ w i',
    '  for ((i = 2; i < CURRENT; i++)); do',
    '    w=${words[i]}',
    '    (( ${+_connect_table[$p $w]} )) && p="$p $w"',
    '  done',
    '  compadd -- ${=_connect_table[$p]}',
    '  _files',
    '}',
    'if (( $+functions[compdef] )); then compdef _connect connect; fi',
    '',
  ].join('\n');
}

function fish(program: Command): string {
  const q = (s: string) => `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  const lines = ['# fish completion for connect. Load it now:  connect completion fish | source', '# or for good:  connect completion fish > ~/.config/fish/completions/connect.fish', 'complete -c connect -f'];
  for (const o of program.options.filter((o) => !o.hidden && o.long)) lines.push(`complete -c connect -l ${o.long!.slice(2)} -d ${q(o.description)}`);
  for (const node of walk(program)) {
    const subs = node.command.commands.filter((s) => !hidden(s));
    const words = node.path.split(' ').filter(Boolean);
    const at = words.length === 0 ? '__fish_use_subcommand' : `__fish_seen_subcommand_from ${words.at(-1)}`;
    const notDeeper = subs.length ? `; and not __fish_seen_subcommand_from ${subcommands(node.command).join(' ')}` : '';
    for (const sub of subs) lines.push(`complete -c connect -n ${q(at + notDeeper)} -a ${sub.name()} -d ${q(sub.description())}`);
    if (node.command !== program) {
      for (const o of node.command.options.filter((o) => !o.hidden && o.long)) lines.push(`complete -c connect -n ${q(at)} -l ${o.long!.slice(2)} -d ${q(o.description)}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** The completion script for `shell`, made from `program`'s commands and options. */
export function completionScript(shell: Shell, program: Command): string {
  return shell === 'bash' ? bash(program) : shell === 'zsh' ? zsh(program) : fish(program);
}

export async function completion(_ctx: Context, shell: string, program: Command): Promise<number> {
  if (!(SHELLS as readonly string[]).includes(shell)) throw new ConnectError('BAD_REQUEST', `no completion for "${shell}"; pick one of: ${SHELLS.join(', ')} (e.g. source <(connect completion bash))`);
  // The script itself, even with --json: it is meant for `source <(...)`.
  process.stdout.write(completionScript(shell as Shell, program));
  return 0;
}
