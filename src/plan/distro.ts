/** Which python3 a base image's distribution ships, from its /etc/os-release. */

const distroPythons: Readonly<Record<string, string>> = {
  'debian 11': '3.9',
  'debian 12': '3.11',
  'debian 13': '3.13',
  'ubuntu 20.04': '3.8',
  'ubuntu 22.04': '3.10',
  'ubuntu 24.04': '3.12',
  'ubuntu 25.04': '3.13',
};

/** Parses os-release text (KEY=value lines, values optionally quoted). */
export function parseOsRelease(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (!match?.[1]) continue;
    fields.set(match[1], (match[2] ?? '').replace(/^(["'])(.*)\1$/, '$2'));
  }
  return fields;
}

/** The major.minor of the distribution's python3 package, or undefined when we do not know it. */
export function distroPython(osRelease: string): string | undefined {
  const fields = parseOsRelease(osRelease);
  return distroPythons[`${fields.get('ID') ?? ''} ${fields.get('VERSION_ID') ?? ''}`];
}
