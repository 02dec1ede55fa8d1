/**
 * `--timestamp SECONDS` / SOURCE_DATE_EPOCH: the time every layer's files are set to, for reproducible
 * images. As upstream Cog: a whole number of seconds since the epoch, and `--timestamp -1` (upstream's
 * default) leaves the times alone, SOURCE_DATE_EPOCH included.
 */
import { CogError } from '../errors.js';

/**
 * The epoch to rewrite layer times to, or undefined for none: `flag` (as written) first, else
 * SOURCE_DATE_EPOCH (empty is unset). Anything but whole seconds is refused naming where it came from.
 * @throws CogError
 */
export function sourceDateEpoch(flag: string | undefined, env: NodeJS.ProcessEnv): number | undefined {
  if (flag !== undefined) {
    if (flag.trim() === '-1') return undefined;
    return seconds(
      flag,
      '--timestamp',
      "give whole seconds since 1970 (e.g. --timestamp 0), or -1 to keep the files' times",
    );
  }
  const variable = env.SOURCE_DATE_EPOCH;
  if (variable === undefined || variable === '') return undefined;
  return seconds(variable, 'SOURCE_DATE_EPOCH', 'set it to whole seconds since 1970 (e.g. 0), or unset it');
}

function seconds(text: string, name: string, hint: string): number {
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (Number.isSafeInteger(value)) return value;
  throw new CogError(`${name} ${JSON.stringify(text)} is not a time in whole seconds since 1970`, { hint });
}
