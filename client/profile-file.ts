// Reading a host profile from YAML: syntax errors name the line, schema errors name the field.
// No error quotes the file: a path given by mistake (a key, /etc/shadow) must not end up in a log.
import { readFile } from 'node:fs/promises';
import { parseDocument, type YAMLError } from 'yaml';
import { parseProfile, ProfileError, type Profile } from '../lib/profile.js';

export async function loadProfile(path: string): Promise<Profile> {
  return parseProfile(await readYamlFile(path));
}

export function parseProfileText(text: string, source = 'profile'): Profile {
  return parseProfile(parseYaml(text, source));
}

/** A file that is not YAML; `where` says where each error is without words taken from the file. */
export class YamlSyntaxError extends ProfileError {
  constructor(
    problems: string[],
    readonly where: string[],
  ) {
    super(problems);
    this.name = 'YamlSyntaxError';
  }
}

/** The YAML document in `path` as plain data; unreadable files and syntax errors are ProfileErrors. */
export async function readYamlFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ProfileError([`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
  return parseYaml(text, path);
}

const position = (e: YAMLError) => (e.linePos ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : `offset ${e.pos[0]}`);

/** YAML text as plain data; syntax errors are YamlSyntaxErrors naming `source` and the position only. */
export function parseYaml(text: string, source: string): unknown {
  // logLevel 'error': yaml's warnings go to process.emitWarning (stderr, logs) and quote the file.
  const doc = parseDocument(text, { prettyErrors: true, logLevel: 'error' });
  if (doc.errors.length) {
    // prettyErrors appends " at line L, column C:" and a code frame quoting the source: keep
    // the parser's own words (they name at most a character, tag or anchor) and the position.
    // Some messages end in the offending text (": \"<a whole line>\"" for a stray scalar, a
    // block scalar's header): that tail goes too.
    const what = (e: YAMLError) => e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '').replace(/: .*$/, '');
    throw new YamlSyntaxError(
      doc.errors.map((e) => `${source}: YAML ${what(e)} at ${position(e)}`),
      doc.errors.map((e) => `${e.code} at ${position(e)}`),
    );
  }
  try {
    return doc.toJS();
  } catch (e) {
    // An alias without its anchor throws here, with the alias name in the message; so does a
    // document whose aliases expand past yaml's maxAliasCount (a "billion laughs").
    if (e instanceof Error && e.message.startsWith('Excessive alias count')) {
      throw new YamlSyntaxError([`${source}: YAML too many aliases (*name) to expand: a resource exhaustion attack?`], ['EXCESSIVE_ALIAS_COUNT']);
    }
    throw new YamlSyntaxError([`${source}: YAML an alias (*name) refers to no anchor (&name)`], ['UNRESOLVED_ALIAS']);
  }
}
