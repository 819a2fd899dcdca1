// The `xlstm` command line (products layer). Commands: info, bench, help.
import * as path from "path";
import { backends } from "../index";
import { workloads } from "../bench";
import "../bench/all";
import { formatResult, readManifest, runFixture } from "../fixtures";

const usage = `Usage: xlstm <command> [options]

Commands:
  info                         the backends this machine and binary offer (CPU SIMD level, threads, CUDA)
  bench [--workload a,b] [--device cpu|cuda] [--reps N]
                               run benchmark workloads, one JSON line per result (default: every CPU workload)
  check-fixtures <dir> [--only <regex>] [--exclude <regex>] [--device cpu]
                               run every fixture of <dir>/manifest.json through the public API; one line per
                               fixture with its worst error/tolerance ratio; exit 1 if any fails or cannot run
  help                         this text
`;

function parseFlags(args: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; ++i) {
    const a = args[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument "${a}"\n\n${usage}`);
    const eq = a.indexOf("=");
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else {
      const v = args[i + 1];
      if (v === undefined || v.startsWith("--")) throw new Error(`option ${a} needs a value`);
      flags.set(a.slice(2), v);
      ++i;
    }
  }
  return flags;
}

async function bench(args: string[]): Promise<number> {
  const flags = parseFlags(args);
  for (const k of flags.keys()) if (!["workload", "device", "reps"].includes(k)) throw new Error(`bench: unknown option --${k}\n\n${usage}`);
  const device = flags.get("device") ?? "cpu";
  if (device !== "cpu" && device !== "cuda") throw new Error(`bench: --device must be cpu or cuda, got "${device}"`);
  const reps = Number(flags.get("reps") ?? 5);
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`bench: --reps must be a positive integer, got "${flags.get("reps")}"`);
  const all = workloads();
  let chosen = all.filter((w) => w.device === device);
  const wanted = flags.get("workload");
  if (wanted) {
    const ids = wanted.split(",").map((s) => s.trim()).filter(Boolean);
    const unknown = ids.filter((id) => !all.some((w) => w.id === id));
    if (unknown.length)
      throw new Error(`bench: unknown workload ${unknown.join(", ")}; available: ${all.map((w) => w.id).join(", ")}`);
    chosen = all.filter((w) => ids.includes(w.id));
  }
  if (chosen.length === 0) throw new Error(`bench: no ${device} workload is available in this version`);
  for (const w of chosen) for await (const row of w.run({ reps })) process.stdout.write(JSON.stringify(row) + "\n");
  return 0;
}

async function checkFixtures(args: string[]): Promise<number> {
  const dirArg = args[0];
  if (!dirArg || dirArg.startsWith("--")) throw new Error(`check-fixtures: the fixture directory is required\n\n${usage}`);
  const flags = parseFlags(args.slice(1));
  for (const k of flags.keys()) if (!["only", "exclude", "device"].includes(k)) throw new Error(`check-fixtures: unknown option --${k}`);
  const device = flags.get("device") ?? "cpu";
  if (device !== "cpu") throw new Error(`check-fixtures: --device ${device} is not supported by this version (cpu only)`);
  const re = (k: string) => {
    const v = flags.get(k);
    if (v === undefined) return null;
    try {
      return new RegExp(v);
    } catch {
      throw new Error(`check-fixtures: --${k} is not a valid regular expression: ${v}`);
    }
  };
  const only = re("only"), exclude = re("exclude");
  const dir = path.resolve(dirArg);
  const manifest = readManifest(dir);
  const selected = manifest.fixtures.filter((f) => (!only || only.test(f.name)) && !(exclude && exclude.test(f.name)));
  if (selected.length === 0) throw new Error(`check-fixtures: no fixture in ${dir} matches the selection`);
  let failed = 0;
  for (const f of selected) {
    const r = runFixture(f, dir);
    if (!r.ok) failed++;
    process.stdout.write(formatResult(r) + "\n");
  }
  process.stdout.write(`${selected.length - failed} passed, ${failed} failed\n`);
  return failed ? 1 : 0;
}

/** Runs the CLI with `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "info":
      process.stdout.write(JSON.stringify(backends(), null, 2) + "\n");
      return 0;
    case "bench":
      return bench(rest);
    case "check-fixtures":
      return checkFixtures(rest);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(usage);
      return 0;
    default:
      process.stderr.write(`xlstm: unknown command "${cmd}"\n\n${usage}`);
      return 2;
  }
}
