// The `pageref` command line. Usage errors print one line and exit 2;
// failures of the machine or of a file print one line and exit 1.

import { Command, CommanderError, Option } from 'commander';
import { CaptureError } from '../capture/capture-reader';
import { renderDoctor, runDoctor } from '../doctor/doctor';
import { collect, parseBytes, parseComm, parseCount, parseInteger, parsePfnRange, parsePid, parseSeconds, parseStacksMode, parseAttachMode, UsageError } from './arguments';
import { DEFAULT_BUFFER_BYTES, DEFAULT_MAX_PFNS, DEFAULT_STACK_ENTRIES, DEFAULT_STACK_SAMPLE, recordCommand, TraceScope } from './record-command';
import { DEFAULT_TOP_ROWS, MAX_TOP_DELAY_SEC, parseFilterOption, parseSpeed, parseView, topCommand } from './top-command';
import { reportCommand } from './report-command';
import { demoCommand } from './demo-command';
import { blameFile, blameLive } from './blame-command';
import { importCommand } from './import-command';
import { exportCommand } from './export-command';
import { serveCommand } from './serve-command';
import { DEFAULT_LISTEN, parseListen } from '../serve/http-server';
import { DEFAULT_CULPRIT_SERIES } from '../serve/serve-metrics';
import { DEFAULT_FLIGHT } from '../serve/flight-recorder';
import { DEFAULT_CULPRIT_WINDOW_SEC } from '../serve/serve-state';
import { DEFAULT_PFN_TRACKS } from '../export/perfetto-trace';
import type { StacksMode } from '../native/tracer';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

function buildProgram(argv: string[], setExit: (code: number) => void): Command {
  const program = new Command('pageref')
    .description('Which code path holds a reference on this page? Traces the kernel page_ref tracepoints with BPF.')
    .exitOverride()
    // Commander puts its suggestion on a line of its own ("(Did you mean --json?)"): joined, the error stays one line.
    .configureOutput({ outputError: (text, write) => write(`pageref: ${text.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')}\n`) })
    .showSuggestionAfterError(true);

  program
    .command('doctor')
    .description('check that this machine can trace page references, and say how to fix what is missing')
    .option('--json', 'print the checks as JSON')
    .action((options: { json?: boolean }) => {
      const report = runDoctor({ mountTracefs: true });
      process.stdout.write(options.json ? JSON.stringify(report, null, 2) + '\n' : renderDoctor(report));
      setExit(report.ok ? 0 : EXIT_FAILURE);
    });

  addTraceOptions(
    program
      .command('record')
      .description('record page reference events to a capture file')
      .requiredOption('-o, --output <file>', 'capture file to write (created 0600)')
      .option('-d, --duration <seconds>', 'stop after this many seconds (default: until SIGINT or SIGTERM)', (v) => parseSeconds(v, '--duration')),
  )
    .option('-f, --force', 'replace the output file if it exists')
    .option('--raw-pointers', 'keep the kernel\'s page->mapping pointers (default: a per-capture keyed hash, so the file reveals no kernel address)')
    .option('--max-drops <n>', 'stop (exit status 1, the capture finished) once the kernel has dropped more than N records', (v) => parseInteger(v, '--max-drops'))
    .action(async (options, command: Command) => {
      checkStacksOptions(command, traceScope(options).stacks);
      setExit(
        await recordCommand({
          output: options.output,
          maxDrops: options.maxDrops,
          durationSec: options.duration,
          ...traceScope(options),
          force: Boolean(options.force),
          rawPointers: Boolean(options.rawPointers),
          commandLine: ['pageref', ...argv.slice(2)],
        }),
      );
    });

  program
    .command('report')
    .description('summarise a capture: events, drops, isolation failures, the most-referenced pages')
    .argument('<file>', 'capture file')
    .option('--json', 'print JSON (the contract is in the README)')
    .addOption(new Option('--top <n>', 'rows of pages to show').default(20).argParser((v) => parseInteger(v, '--top')))
    .addOption(maxPfnsOption())
    .action((file: string, options: { json?: boolean; top: number; maxPfns: number }) => {
      process.stdout.write(reportCommand(file, { json: Boolean(options.json), top: options.top, maxPfns: options.maxPfns }));
    });

  program
    .command('import')
    .description('turn ftrace text (trace, trace_pipe, trace-cmd report) into a capture every command reads')
    .argument('<trace>', 'ftrace text file, or - for stdin')
    .requiredOption('-o, --output <file>', 'capture file to write (created 0600)')
    .option('--strict', 'a malformed line is fatal (default: a warning naming its line)')
    .option('--kernel <release>', 'the kernel release the text came from, e.g. 6.1.192 (header; names symbolic page flags)', parseKernelRelease)
    .option('--json', 'print what was imported as JSON (the contract is in the README)')
    .option('-f, --force', 'replace the output file if it exists')
    .action(async (trace: string, options: { output: string; strict?: boolean; kernel?: string; json?: boolean; force?: boolean }) => {
      setExit(
        await importCommand({
          trace,
          output: options.output,
          strict: Boolean(options.strict),
          force: Boolean(options.force),
          json: Boolean(options.json),
          kernelRelease: options.kernel,
          commandLine: ['pageref', ...argv.slice(2)],
        }),
      );
    });

  program
    .command('export')
    .description('write a capture for other tools: a pprof profile of who holds references, a Perfetto timeline')
    .argument('<file>', 'capture file')
    .option('--pprof <out>', 'gzipped pprof profile of holders and releasers (go tool pprof, speedscope, Pyroscope)')
    .option('--perfetto <out>', 'Perfetto trace: refcount tracks of the busiest pfns, isolation failures and CMA events (ui.perfetto.dev)')
    .addOption(new Option('--pfn-tracks <n>', '--perfetto: pfns with a refcount track, at most').default(DEFAULT_PFN_TRACKS).argParser((v) => parseInteger(v, '--pfn-tracks')))
    .option('--json', 'print what was written as JSON (the contract is in the README)')
    .option('-f, --force', 'replace output files that exist')
    .addOption(maxPfnsOption())
    .action((file: string, options: { pprof?: string; perfetto?: string; pfnTracks: number; maxPfns: number; json?: boolean; force?: boolean }, command: Command) => {
      if (command.getOptionValueSource('pfnTracks') === 'cli' && options.perfetto === undefined) throw new UsageError('--pfn-tracks is for --perfetto');
      process.stdout.write(
        exportCommand({ capture: file, pprof: options.pprof, perfetto: options.perfetto, pfnTracks: options.pfnTracks, maxPfns: options.maxPfns, json: Boolean(options.json), force: Boolean(options.force) }),
      );
    });

  program
    .command('blame')
    .description('say which code paths held the pages that isolation (CMA, migration) could not take')
    .argument('[file]', 'capture file; without one, record live first')
    .option('-d, --duration <seconds>', 'live: stop recording after this many seconds (default: until Ctrl-C)', (v) => parseSeconds(v, '--duration'))
    .option('--json', 'print JSON (the contract is in the README)')
    .option('--buffer-size <bytes>', 'live: ring buffer size, a power of two (default 16M)', (v) => parseBytes(v, '--buffer-size'))
    .addOption(maxPfnsOption())
    .action(async (file: string | undefined, options: { duration?: number; json?: boolean; bufferSize?: number; maxPfns: number }) => {
      if (file !== undefined && (options.duration !== undefined || options.bufferSize !== undefined)) {
        throw new UsageError('--duration and --buffer-size are for live blame, not for a capture file');
      }
      if (file !== undefined) process.stdout.write(blameFile(file, Boolean(options.json), options.maxPfns));
      else {
        const live = { durationSec: options.duration, bufferBytes: options.bufferSize ?? DEFAULT_BUFFER_BYTES, json: Boolean(options.json), maxPfns: options.maxPfns };
        setExit(await blameLive({ ...live, commandLine: ['pageref', ...argv.slice(2)] }));
      }
    });

  addTraceOptions(
    program
      .command('top')
      .description('a live, top-style view of who holds page references, which pages are stuck, and whether the tracer keeps up')
      .option('--replay <file>', 'play a capture instead of tracing live')
      .option('--speed <x>', '--replay: times the recorded pace; 0 or max: as fast as possible (default 1)', parseSpeed)
      .addOption(new Option('-d, --delay <seconds>', 'refresh interval (a replay: seconds of capture time)').default(1).argParser((v) => parseSeconds(v, '--delay', MAX_TOP_DELAY_SEC)))
      .option('-b, --batch [n]', 'print N plain-text snapshots, one per interval, then stop (default 1)', (v) => parseCount(v, '--batch'))
      .option('--json', 'print snapshots as JSON lines (the contract is in the README); N from --batch')
      .addOption(new Option('--view <view>', 'view to show: pages, holders or failures').default('pages').argParser(parseView))
      .option('--sort <column>', 'sort column of that view (as the s key cycles them)')
      .option('--filter <words>', 'show only pfn ranges, pfns or comms (as the / key)', parseFilterOption)
      .addOption(new Option('--rows <n>', 'batch and JSON: rows per view').default(DEFAULT_TOP_ROWS).argParser((v) => parseCount(v, '--rows'))),
    // The pages view has a migrate type column, which only the perf
    // tracepoint computes: top pays its cost unless told otherwise.
    { userTables: true, attachDefault: 'tracepoint' },
  ).action(async (options, command: Command) => {
    if (options.replay === undefined) checkStacksOptions(command, traceScope(options).stacks);
    setExit(
      await topCommand({
        replay: options.replay,
        speed: options.speed,
        delaySec: options.delay,
        batch: options.batch === undefined ? null : options.batch === true ? 1 : options.batch,
        json: Boolean(options.json),
        view: options.view,
        sort: options.sort,
        filter: options.filter,
        rows: options.rows,
        traceOptionsGiven: [...new Set(givenOptions(command).filter((g) => TRACE_OPTION_NAMES.includes(g.name)).map((g) => g.flag))],
        scope: traceScope(options),
        commandLine: ['pageref', ...argv.slice(2)],
      }),
    );
  });

  addTraceOptions(
    program
      .command('serve')
      .description('a long-running agent: traces at production overhead and serves Prometheus metrics, culprit stacks and a pprof profile of holders over HTTP')
      .addOption(new Option('--listen <host:port>', 'address to serve HTTP on').default(DEFAULT_LISTEN, `${DEFAULT_LISTEN.host}:${DEFAULT_LISTEN.port}`).argParser(parseListenOption))
      .option('--all-pfns', 'trace the page_ref events of every pfn (default: only those of the CMA areas, as --cma)')
      .addOption(new Option('--culprits <n>', 'culprit stack series on /metrics, at most').default(DEFAULT_CULPRIT_SERIES).argParser((v) => parseCount(v, '--culprits')))
      .addOption(new Option('--culprit-window <s>', 'culprits are the stacks of pages isolation failed on in the last S seconds').default(DEFAULT_CULPRIT_WINDOW_SEC).argParser((v) => parseSeconds(v, '--culprit-window')))
      .option('--log <file>', 'append log lines to FILE (SIGHUP reopens it) instead of stderr')
      .option('--flight-dir <dir>', 'flight recorder: keep recent records of the traced pfns in memory and write a capture here for each window of isolation failures and CMA busy retries (implies --stacks all unless --stacks is given)')
      .addOption(new Option('--flight-seconds <s>', 'flight recorder: seconds of records kept before a failure').default(DEFAULT_FLIGHT.seconds).argParser((v) => parseSeconds(v, '--flight-seconds')))
      .addOption(new Option('--flight-bytes <bytes>', 'flight recorder: bytes of records kept before a failure, at most (and after it)').default(DEFAULT_FLIGHT.bytes, '64M').argParser((v) => parseBytes(v, '--flight-bytes')))
      .addOption(new Option('--flight-after <s>', 'flight recorder: seconds recorded after the last failure of a window').default(DEFAULT_FLIGHT.afterSeconds).argParser((v) => parseSeconds(v, '--flight-after')))
      .addOption(new Option('--flight-max-files <n>', 'flight recorder: files in --flight-dir at most (oldest deleted first)').default(DEFAULT_FLIGHT.maxFiles).argParser((v) => parseCount(v, '--flight-max-files')))
      .addOption(new Option('--flight-max-bytes <bytes>', 'flight recorder: bytes of files in --flight-dir at most (oldest deleted first)').default(DEFAULT_FLIGHT.maxBytes, '1G').argParser((v) => parseBytes(v, '--flight-max-bytes'))),
    { stacksDefault: 'armed', userTables: true },
  ).action(async (options, command: Command) => {
    if (options.allPfns && options.cma) throw new UsageError('--all-pfns and --cma contradict each other');
    const flightOptionGiven = ['flightSeconds', 'flightBytes', 'flightAfter', 'flightMaxFiles', 'flightMaxBytes'].find((name) => command.getOptionValueSource(name) === 'cli');
    if (flightOptionGiven && !options.flightDir) throw new UsageError(`--${flightOptionGiven.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is for the flight recorder: it needs --flight-dir`);
    const flight = options.flightDir ? { dir: options.flightDir as string, seconds: options.flightSeconds, bytes: options.flightBytes, afterSeconds: options.flightAfter, maxFiles: options.flightMaxFiles, maxBytes: options.flightMaxBytes } : undefined;
    // The flight recorder keeps records, which --aggregate leaves out.
    if (flight && options.aggregate) throw new UsageError('--flight-dir needs page_ref records; --aggregate keeps totals instead');
    // A flight capture must show who took the references that made isolation
    // fail, and they are taken before the failure that would arm a pfn: the
    // recorder needs stacks from the start (--stacks all), unless asked otherwise.
    if (flight && command.getOptionValueSource('stacks') !== 'cli') options.stacks = 'all';
    const scope = traceScope(options);
    checkStacksOptions(command, scope.stacks);
    // Production defaults: stacks only once a page is armed by a failure (the
    // default of --stacks here), and per-pfn totals in the kernel instead of
    // records. Another --stacks mode wants records, so totals come with it
    // only when asked for (aggregation leaves them out, bpf/pageref.bpf.c).
    scope.aggregate = !flight && (Boolean(options.aggregate) || scope.stacks === 'armed');
    scope.cma = !options.allPfns;
    setExit(await serveCommand({ scope, listen: options.listen, culprits: options.culprits, culpritWindowSec: options.culpritWindow, log: options.log, flight, commandLine: ['pageref', ...argv.slice(2)] }));
  });

  program
    .command('demo')
    .description('boot a bundled test kernel in QEMU, block CMA allocations, record them and report')
    .option('--kernel <name>', 'which test kernel (a folder name under the kernels folder)')
    .option('--keep <dir>', 'keep the capture and logs in this folder')
    .action(async (options: { kernel?: string; keep?: string }) => {
      setExit(await demoCommand(options));
    });

  return program;
}

/**
 * The options of `record` that say what to trace and how much to keep; `top` and `serve` take the same.
 * `userTables`: the command keeps per-pfn tables that --max-pfns bounds too (record keeps none).
 */
function addTraceOptions(command: Command, settings: { stacksDefault?: StacksMode; userTables?: boolean; attachDefault?: TraceScope['attach'] } = {}): Command {
  const { stacksDefault = 'all', userTables = false, attachDefault = 'auto' } = settings;
  command
    .option('-p, --pid <pid>', 'only page_ref events of this process (repeatable)', collect(parsePid))
    .option('-c, --comm <name>', 'only page_ref events of tasks with this name (repeatable)', collect(parseComm))
    .option('--pfn <start-end>', 'only page_ref events on pfns START <= pfn < END (decimal or 0x hex; repeatable)', collect(parsePfnRange))
    .option('--cma', 'only page_ref events on the pfns of the CMA areas (read from debugfs)')
    .addOption(new Option('--stacks <mode>', 'kernel stacks: all | sampled (the records of 1 in --stack-sample pfns) | armed (records with stacks only for pages isolation failed on, from then on) | none').default(stacksDefault).argParser(parseStacksMode))
    .option('--no-stacks', 'do not record kernel stacks (same as --stacks none)')
    .addOption(new Option('--stack-sample <n>', '--stacks sampled: stacks for 1 in N pfns').default(DEFAULT_STACK_SAMPLE).argParser((v) => parseCount(v, '--stack-sample')))
    .addOption(new Option('--sample-pfn <n>', 'keep 1 in N pfns (by a hash of the pfn): whole histories of fewer pages').default(1).argParser((v) => parseCount(v, '--sample-pfn')))
    .addOption(new Option('--sample-events <n>', 'keep 1 in N page_ref events').default(1).argParser((v) => parseCount(v, '--sample-events')))
    .option('--aggregate', 'no per-event page_ref records: per-pfn totals kept in the kernel, read every second (isolation and CMA events are still recorded)')
    .addOption(
      userTables
        ? maxPfnsOption('; --aggregate: also the kernel\'s per-pfn slots (24 bytes of kernel memory each)')
        : new Option('--max-pfns <n>', '--aggregate: pfns with totals at most (24 bytes of kernel memory each)').default(DEFAULT_MAX_PFNS, '4M').argParser((v) => parseCount(v, '--max-pfns')),
    )
    .addOption(new Option('--buffer-size <bytes>', 'ring buffer size, a power of two (K, M, G suffixes)').default(DEFAULT_BUFFER_BYTES, '16M').argParser((v) => parseBytes(v, '--buffer-size')))
    .addOption(new Option('--stack-entries <n>', 'distinct stacks the kernel can keep').default(DEFAULT_STACK_ENTRIES).argParser((v) => parseInteger(v, '--stack-entries')))
    .addOption(new Option('--attach <how>', 'page_ref programs: btf (tp_btf, cheaper), tracepoint (perf tracepoint, with migrate type), or auto (btf where the kernel takes it)').default(attachDefault).argParser(parseAttachMode));
  return trackGivenOptions(command);
}

interface GivenOption {
  /** Commander's attribute name: "stacks" for both --stacks and --no-stacks. */
  name: string;
  /** The flag as the command line had it. */
  flag: string;
  value: unknown;
}

const givenByCommand = new WeakMap<Command, GivenOption[]>();

/**
 * Records each option as given, in order: commander keeps only the last
 * value of an option, so `--stacks sampled --no-stacks` would otherwise
 * pass as "none" without a word.
 */
function trackGivenOptions(command: Command): Command {
  const given: GivenOption[] = [];
  givenByCommand.set(command, given);
  for (const option of command.options) {
    command.on(`option:${option.name()}`, (value: unknown) => given.push({ name: option.attributeName(), flag: option.long ?? option.short ?? option.name(), value }));
  }
  return command;
}

function givenOptions(command: Command): GivenOption[] {
  return givenByCommand.get(command) ?? [];
}

/** Stack options that contradict each other, or that the stacks mode makes meaningless, are usage errors. */
function checkStacksOptions(command: Command, stacks: StacksMode): void {
  const given = givenOptions(command);
  const modes = [...new Set(given.filter((g) => g.name === 'stacks').map((g) => (g.flag === '--no-stacks' ? '--no-stacks' : `--stacks ${String(g.value)}`)))];
  if (modes.length > 1) throw new UsageError(`${modes.join(' and ')}: give one stacks mode`);
  if (given.some((g) => g.name === 'stackSample') && stacks !== 'sampled') throw new UsageError(`--stack-sample is for --stacks sampled (stacks here: ${stacks})`);
  if (given.some((g) => g.name === 'stackEntries') && stacks === 'none') throw new UsageError('--stack-entries sizes the stack map, which --stacks none does not have');
}

/**
 * --max-pfns: what bounds every per-pfn table, so that a huge host cannot
 * exhaust memory; beyond it the least recently touched pfns are evicted and
 * counted, and every command shows the count.
 */
function maxPfnsOption(more = ''): Option {
  return new Option('--max-pfns <n>', `pfns with per-pfn state at most; beyond, the least recently touched are evicted, and counted${more}`)
    .default(DEFAULT_MAX_PFNS, '4M')
    .argParser((v) => parseCount(v, '--max-pfns'));
}

/** Commander's names (camel case) of the options addTraceOptions adds. */
const TRACE_OPTION_NAMES = ['pid', 'comm', 'pfn', 'cma', 'stacks', 'stackSample', 'samplePfn', 'sampleEvents', 'aggregate', 'maxPfns', 'bufferSize', 'stackEntries', 'attach'];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function traceScope(options: Record<string, any>): TraceScope {
  return {
    pids: options.pid ?? [],
    comms: options.comm ?? [],
    pfnRanges: options.pfn ?? [],
    cma: Boolean(options.cma),
    stacks: options.stacks === false ? 'none' : options.stacks,
    stackSample: options.stackSample,
    samplePfn: options.samplePfn,
    sampleEvents: options.sampleEvents,
    aggregate: Boolean(options.aggregate),
    maxPfns: options.maxPfns,
    bufferBytes: options.bufferSize,
    stackEntries: options.stackEntries,
    attach: options.attach,
  };
}

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const program = buildProgram(argv, (code) => {
    exitCode = code;
  });
  if (argv.length <= 2) {
    process.stdout.write(program.helpInformation());
    return EXIT_USAGE;
  }
  // `help NAME` of a command that does not exist: commander would print the
  // whole help to stderr; parsed as NAME it is the one-line unknown command error.
  if (argv[2] === 'help' && argv.length === 4 && argv[3] !== 'help' && !program.commands.some((c) => c.name() === argv[3] || c.aliases().includes(argv[3]))) {
    argv = [argv[0], argv[1], argv[3]];
  }
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are not errors; commander already printed its one line.
      // `pageref help` asks for the help (exit code 0); help printed for an error has exit code 1.
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || (error.code === 'commander.help' && error.exitCode === 0) ? 0 : EXIT_USAGE;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`pageref: ${error.message}\n`);
      return EXIT_USAGE;
    }
    if (error instanceof CaptureError || isFileError(error)) {
      process.stderr.write(`pageref: ${(error as Error).message}\n`);
      return EXIT_FAILURE;
    }
    process.stderr.write(`pageref: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
    return EXIT_FAILURE;
  }
}

function parseListenOption(text: string): { host: string; port: number } {
  const listen = parseListen(text);
  if (!listen) throw new UsageError(`--listen: "${text}" is not HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464)`);
  return listen;
}

/** import --kernel: a release as `uname -r` prints it; it picks the page flag table, so a word that is none is a mistake. */
function parseKernelRelease(text: string): string {
  if (!/^\d+\.\d+(\.\d+)?([-+.~_][\w.+~-]*)?$/.test(text)) throw new UsageError(`--kernel: "${text}" is not a kernel release (as uname -r prints it, e.g. 6.1.192)`);
  return text;
}

function isFileError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) && typeof (error as NodeJS.ErrnoException).syscall === 'string';
}

export { EXIT_FAILURE, EXIT_USAGE };
