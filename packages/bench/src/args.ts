// Command-line flags of the bench's server processes (the relays): `--name value`.
export function flag(name: string, fallback?: string): string {
  const i = process.argv.indexOf(name);
  const value = i >= 0 ? process.argv[i + 1] : fallback;
  if (value === undefined) {
    process.stderr.write(`missing ${name}\n`);
    process.exit(2);
  }
  return value;
}
