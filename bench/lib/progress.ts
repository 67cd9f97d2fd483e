/** Progress goes to stderr, so stdout carries only the report. */
export const progress = (line: string) => process.stderr.write(`[bench] ${line}\n`);
