/**
 * Plain-text tables for listings (`cog image ls`, `cog cache du`): columns padded to their widest
 * cell, three spaces apart, the last column left unpadded unless it is right-aligned.
 */

/** The rows (header first) as lines; columns in `rightAligned` are padded on the left. */
export function alignColumns(
  rows: readonly (readonly string[])[],
  rightAligned: ReadonlySet<number> = new Set(),
): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) =>
    row
      .map((cell, column) => {
        if (rightAligned.has(column)) return cell.padStart(widths[column]!);
        return column === row.length - 1 ? cell : cell.padEnd(widths[column]!);
      })
      .join('   ')
      .trimEnd(),
  );
}

/** An ISO time to the minute, as listings show it: `2026-11-23 12:48 UTC`. */
export function utcMinute(iso: string): string {
  return `${iso.slice(0, 16).replace('T', ' ')} UTC`;
}
