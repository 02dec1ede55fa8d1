/** Reading a config file's text as written, for checks and fixes that must keep its layout. */

/** The top-level `predict:` line of a config text: its 1-based line and value, when there is one. */
export function topLevelPredict(text: string): { line: number; value: string } | undefined {
  const lines = text.split('\n');
  for (const [index, line] of lines.entries()) {
    const match = /^predict\s*:\s*(.*?)\s*(?:#.*)?$/.exec(line);
    if (match) return { line: index + 1, value: (match[1] ?? '').replace(/^(['"])(.*)\1$/, '$2') };
  }
  return undefined;
}
