/**
 * Whether what cog writes to `streams` may carry colour: all are terminals, and NO_COLOR and
 * COG_NO_COLOR (which --no-color sets) are unset.
 */
export function wantsColor(env: NodeJS.ProcessEnv, ...streams: readonly object[]): boolean {
  return (
    streams.every((stream) => (stream as { readonly isTTY?: boolean }).isTTY === true) &&
    (env.NO_COLOR ?? '') === '' &&
    (env.COG_NO_COLOR ?? '') === ''
  );
}
