// Reading a host profile from YAML: syntax errors name the line, schema errors name the field.
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { parseProfile, ProfileError, type Profile } from '../lib/profile.js';

export async function loadProfile(path: string): Promise<Profile> {
  return parseProfile(await readYamlFile(path));
}

export function parseProfileText(text: string, source = 'profile'): Profile {
  return parseProfile(parseYaml(text, source));
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

function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) throw new ProfileError(doc.errors.map((e) => `${source}: YAML ${e.message.split('\n')[0]}`));
  return doc.toJS();
}
