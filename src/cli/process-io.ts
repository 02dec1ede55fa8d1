/** The process's own streams and environment, as the commands take them. */
import type { CommandIo } from './debug-solve.js';

export function processIo(): CommandIo {
  return {
    env: process.env,
    // process.stdin opens the stream when first read: only commands that read it pay for it
    get stdin() {
      return process.stdin;
    },
    stdout: process.stdout,
    stderr: process.stderr,
  };
}
