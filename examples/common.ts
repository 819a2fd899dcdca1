// Helpers shared by the example scripts: the time-machine text as "Dive into Deep Learning" preprocesses it, a
// small command-line flag parser, and a plain-text table printer.
import * as fs from "fs";
import * as path from "path";

/**
 * d2l.read_time_machine + tokenize(lines, "char") + Vocab: every line lowercased with each run of non-letters replaced
 * by one space, the lines joined without separators; the vocabulary is <unk> first, then the characters by
 * descending frequency (ties in first-seen order, as Python's stable sort): 28 tokens.
 */
export function d2lTimeMachine(): { text: string; vocab: string[] } {
  const raw = fs.readFileSync(path.join(__dirname, "..", "data", "timemachine.txt"), "utf8");
  const text = raw
    .split("\n")
    .map((line) => line.replace(/[^A-Za-z]+/g, " ").trim().toLowerCase())
    .join("");
  const counts = new Map<string, number>();
  for (const ch of text) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  const vocab = ["<unk>", ...[...counts.entries()].sort((a, b) => b[1] - a[1]).map(([c]) => c)];
  return { text, vocab };
}

/** What a flag holds: an integer >= 0, a number >= 0, or a string. */
export type FlagKind = "int" | "number" | "string";

/**
 * Parse `--name value` flags against `spec` ({ name: [kind, default] }); `--help` prints `usage` and exits 0. A
 * missing value, a bad number or an unknown flag prints one line to stderr and exits 2.
 */
export function parseFlags<T extends Record<string, [FlagKind, number | string | null]>>(
  script: string,
  usage: string,
  spec: T,
  argv = process.argv.slice(2),
): { [K in keyof T]: T[K][1] } {
  const out: Record<string, number | string | null> = {};
  for (const [k, [, d]] of Object.entries(spec)) out[k] = d;
  const fail = (msg: string): never => {
    process.stderr.write(`${script}: ${msg}\n`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === "--help" || a === "-h") {
      process.stdout.write(usage.trim() + "\n");
      process.exit(0);
    }
    const name = a.startsWith("--") ? a.slice(2) : "";
    if (!Object.prototype.hasOwnProperty.call(spec, name)) fail(`unknown argument ${JSON.stringify(a)} (see --help)`);
    if (i + 1 >= argv.length) fail(`--${name} needs a value`);
    const v = argv[++i], kind = spec[name][0];
    if (kind === "string") out[name] = v;
    else {
      const x = Number(v);
      if (kind === "int" ? !(Number.isInteger(x) && x >= 0) : !(Number.isFinite(x) && x >= 0)) fail(`--${name} must be ${kind === "int" ? "a non-negative integer" : "a non-negative number"}, got ${JSON.stringify(v)}`);
      out[name] = x;
    }
  }
  return out as { [K in keyof T]: T[K][1] };
}

/** A table with a header row, columns padded to their widest cell (numbers right-aligned). */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const w = header.map((_, j) => Math.max(...cells.map((r) => (r[j] ?? "").length)));
  const right = header.map((_, j) => rows.length > 0 && rows.every((r) => typeof r[j] === "number" || /^[-+]?[\d.,]+%?$/.test(String(r[j]))));
  const line = (r: string[]) => r.map((c, j) => (right[j] ? c.padStart(w[j]) : c.padEnd(w[j]))).join("  ").trimEnd();
  return [line(cells[0]), w.map((n) => "-".repeat(n)).join("  "), ...cells.slice(1).map(line)].join("\n");
}
