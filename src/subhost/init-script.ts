/** Quote one word for a POSIX shell. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_./@%+=:,-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The built-in init (SPEC boot step 8): start each START entry in order, each in
 * its own session when setsid exists, and say which ones failed. The reaper
 * starts `dummy_service` itself when no service is left running.
 * START entries were validated by the config reader; they are quoted anyway,
 * since this text goes to a shell.
 */
export function builtinInitScript(start: string[]): string {
  const lines = [
    'exec </dev/null',
    'if command -v setsid >/dev/null 2>&1; then ovb_s=setsid; else ovb_s=; fi',
  ];
  for (const entry of start) {
    const cmd = entry.startsWith('/') ? `${shellQuote(entry)} start` : `service ${shellQuote(entry)} start`;
    lines.push(`$ovb_s ${cmd} || echo ${shellQuote(`overlay-boot: ${cmd}: failed`)} "with status $?" >&2`);
  }
  lines.push('exit 0');
  return lines.join('\n') + '\n';
}

/** The stop commands for START entries, in reverse order (overlay-stop, reaper shutdown). */
export function stopCommands(start: string[]): string[] {
  return [...start].reverse().map((entry) =>
    entry.startsWith('/') ? `${shellQuote(entry)} stop` : `service ${shellQuote(entry)} stop`);
}
