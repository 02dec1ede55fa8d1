import yargs, { type Argv, type Options } from 'yargs';
import { CogError, NotImplementedError } from '../errors.js';
import { cogVersion } from '../version.js';
import { describeCommand, plannedCommands } from './commands.js';
import { debugLlb } from './debug-llb.js';
import { debugSolve } from './debug-solve.js';
import { debugPlan } from './debug-plan.js';
import { build } from './build.js';
import { warningLine } from './prepare-build.js';
import { init } from './init.js';
import { predict } from './predict.js';
import { serve } from './serve.js';
import { ProcessExitError, execCommand, splitExecArgv } from './exec.js';
import { registerLoginCommands } from './login-commands.js';
import {
  positionalsAfterDashes,
  repeatedOptionError,
  usageError,
  switchValue,
  writtenSwitches,
} from './arguments.js';
import { processIo } from './process-io.js';
import { sourceDateEpoch } from './timestamp-flag.js';
import type { TlsFlags } from '../buildkit/tls.js';

/** buildctl's TLS flags, for a tcp:// BUILDKIT_HOST. */
function withTlsOptions<T>(y: Argv<T>) {
  return y
    .option('tlscacert', { type: 'string', describe: 'CA certificate to verify buildkitd (tcp://)' })
    .option('tlscert', { type: 'string', describe: 'client certificate for buildkitd' })
    .option('tlskey', { type: 'string', describe: 'client key for buildkitd' })
    .option('tlsservername', { type: 'string', describe: 'server name to verify buildkitd as' })
    .option('tlsdir', {
      type: 'string',
      describe: 'directory with ca.pem, cert.pem, key.pem (or ca.crt, tls.crt, tls.key)',
    });
}

function tlsFlags(argv: TlsFlags): TlsFlags {
  return {
    tlscacert: argv.tlscacert,
    tlscert: argv.tlscert,
    tlskey: argv.tlskey,
    tlsservername: argv.tlsservername,
    tlsdir: argv.tlsdir,
  };
}

/** The base image flags of every command that builds the project (build, push, run, serve, exec). */
const baseImageOptions = {
  'use-cuda-base-image': {
    type: 'string',
    describe: 'false builds GPU models on python:X-slim (default: auto)',
  },
  'use-cog-base-image': {
    type: 'boolean',
    describe:
      'build on <registry>/cog-base:<tag> ($COG_REGISTRY_HOST, else r8.im); default: when it exists, true: required, false: never',
  },
} as const;

/** The base image flags on a command that builds the project before it runs it; `note` ends their help. */
function withBaseImageOptions<T>(y: Argv<T>, note = '') {
  return y
    .option('use-cuda-base-image', {
      ...baseImageOptions['use-cuda-base-image'],
      describe: `${baseImageOptions['use-cuda-base-image'].describe}${note}`,
    })
    .option('use-cog-base-image', {
      ...baseImageOptions['use-cog-base-image'],
      describe: `${baseImageOptions['use-cog-base-image'].describe}${note}`,
    });
}

/** -f/--file, which every command that reads cog.yaml takes (one value: `-f` alone is refused). */
const configFileOption = {
  alias: 'f',
  type: 'string',
  default: 'cog.yaml',
  describe: 'the config file',
} as const;

/**
 * --secret of every command that builds (build, push, run, predict, train, serve, exec, debug solve):
 * a secret for the steps that mount it, never in the image.
 */
const secretOption = {
  type: 'string',
  array: true,
  nargs: 1,
  default: [] as string[],
  describe:
    'id=NAME,src=FILE or id=NAME,env=VAR (src=FILE alone: id is the file name; id=NAME alone: $NAME if set, else the file NAME)',
} as const;

/** --progress of the commands whose output is the build (build, push, debug solve). */
const solveProgressOption = {
  type: 'string',
  describe: 'auto | tty | plain | rawjson | quiet (default: $BUILDKIT_PROGRESS, else auto)',
} as const;

/** `cog exec`'s options (the command and its arguments come after them, see splitExecArgv). */
function withExecOptions<T>(c: Argv<T>) {
  return withBaseImageOptions(withTlsOptions(c))
    .usage("$0 exec [options] <command> [args...]\n\nOptions after the command are the command's.")
    .option('publish', {
      alias: 'p',
      type: 'string',
      array: true,
      nargs: 1,
      default: [] as string[],
      describe: 'PORT, HOST:PORT or [IPV6]:PORT (implicit: the container shares the daemon host network)',
    })
    .option('env', envOption('command'))
    .option('file', configFileOption)
    .option('secret', secretOption)
    .option('gpus', containerGpusOption)
    .option('progress', runProgressOption);
}

/** `-e NAME=VALUE` (repeatable) of the commands that run the model, for `who` runs with it */
function envOption(who: string) {
  return {
    alias: 'e',
    type: 'string',
    array: true,
    nargs: 1,
    default: [] as string[],
    describe: `NAME=VALUE for the ${who}; NAME alone passes this shell's value`,
  } as const;
}

/** `--gpus` of serve and exec, which upstream's serve has: refused but for `none` (see model-container.ts) */
const containerGpusOption = {
  type: 'string',
  describe: 'none only: BuildKit cannot attach GPUs to the containers of serve and exec (cog run --gpus can)',
} as const;

/** --progress of the commands that build, then run the model (run, predict, train, serve, exec). */
const runProgressOption = {
  type: 'string',
  describe: 'build progress: auto | tty | plain | rawjson | quiet (default quiet)',
} as const;

/** The parsed flags that say how the project is built, declared on every command that builds it. */
interface ProjectBuildFlags extends TlsFlags {
  readonly file: string;
  readonly secret: string[];
  readonly progress: string | undefined;
  readonly 'use-cuda-base-image': string | undefined;
  readonly 'use-cog-base-image': boolean | undefined;
}

/**
 * How the project is built, from the flags build, push, run, predict, train, serve and exec all take:
 * -f, --secret, --progress, the TLS and the base image flags (debug plan and solve take only some).
 */
function projectBuildArgs(argv: ProjectBuildFlags) {
  return {
    file: argv.file,
    secrets: argv.secret,
    progress: argv.progress,
    tls: tlsFlags(argv),
    useCudaBaseImage: argv['use-cuda-base-image'],
    useCogBaseImage: argv['use-cog-base-image'],
  };
}

/** The build and container settings of the commands that run the model (run, predict, train, serve, exec). */
function modelRunArgs(argv: ProjectBuildFlags & { readonly gpus: string | undefined }) {
  return { ...projectBuildArgs(argv), gpus: argv.gpus };
}

/** The options `cog build` and `cog push` share: how the image is built. */
function withImageBuildOptions<T>(y: Argv<T>) {
  return withTlsOptions(y)
    .option('file', configFileOption)
    .option('secret', secretOption)
    .option('cache', {
      type: 'boolean',
      default: true,
      describe: 'use the build cache (--no-cache runs every step again)',
    })
    .option('progress', solveProgressOption)
    .option('openapi-schema', {
      type: 'string',
      describe: 'use this OpenAPI schema file instead of generating one',
    })
    .option('skip-schema-validation', {
      type: 'boolean',
      default: false,
      hidden: true,
      describe: 'build without an OpenAPI schema (no run.cog.openapi_schema label)',
    })
    .option('use-cuda-base-image', baseImageOptions['use-cuda-base-image'])
    .option('use-cog-base-image', baseImageOptions['use-cog-base-image'])
    .option('precompile', {
      type: 'boolean',
      default: false,
      describe: 'compile Python files to bytecode in the image',
    })
    .option('strip', {
      type: 'boolean',
      default: false,
      describe: 'strip debug symbols from Python extension modules',
    })
    .option('separate-weights', {
      type: 'boolean',
      default: false,
      describe: 'copy weight files (10 MiB or more, outside code directories) in an image layer of their own',
    })
    .option('timestamp', {
      type: 'string',
      describe:
        'seconds since 1970 to set every file time to, for reproducible images (SOURCE_DATE_EPOCH); -1: keep the times',
    })
    .option('dockerfile', {
      type: 'string',
      hidden: true,
      describe: 'build this Dockerfile (context: the project) instead of the one cog.yaml describes',
    })
    .option('platform', {
      type: 'string',
      describe:
        'linux/amd64 (default) or linux/arm64 for CPU models; linux/amd64,linux/arm64 builds one image index of both',
    });
}

/** The shared build settings from parsed `withImageBuildOptions` flags. */
function imageBuildArgs(
  argv: {
    cache: boolean;
    'openapi-schema': string | undefined;
    'skip-schema-validation': boolean;
    precompile: boolean;
    strip: boolean;
    'separate-weights': boolean;
    timestamp: string | undefined;
    dockerfile: string | undefined;
    platform: string | undefined;
  } & ProjectBuildFlags,
) {
  return {
    ...projectBuildArgs(argv),
    noCache: !argv.cache,
    openapiSchema: argv['openapi-schema'],
    skipSchema: argv['skip-schema-validation'],
    precompile: argv.precompile,
    strip: argv.strip,
    separateWeights: argv['separate-weights'],
    timestamp: sourceDateEpoch(argv.timestamp, process.env),
    dockerfile: argv.dockerfile,
    platform: argv.platform,
  };
}

/**
 * Every option declared `type: 'string'` that is not a list takes exactly one value (yargs's nargs 1),
 * for every command at once rather than `nargs: 1` on each declaration: given none, or followed by
 * another option, yargs refuses it and usageError names it and what it wants ('--dockerfile needs a
 * value (a Dockerfile)'), where yargs read it as an empty string and the command went on with that. A
 * value written empty (`--registry=`, `--tlsdir ''`) is still one, and so is `-` (`--json -` reads
 * stdin; without nargs yargs took the `-` for a positional). yargs declares through the instance's
 * option method for option(), options(), positional() and every command's builder (it reuses the
 * instance), so this wraps that one method.
 */
function stringOptionsTakeOneValue(cli: Argv): void {
  const declare = cli.option.bind(cli) as (...args: unknown[]) => Argv;
  const option = (...args: unknown[]) => {
    const [key, opt] = args as [unknown, Options | undefined];
    if (typeof key === 'string' && opt?.type === 'string' && opt.array !== true && opt.nargs === undefined)
      return declare(key, { ...opt, nargs: 1 });
    return declare(...args);
  };
  Object.assign(cli, { option });
}

/** Runs the CLI with the given arguments and resolves to the process exit code. */
/**
 * yargs renders a command's whole help text as soon as the command's handler starts, in case a later
 * failure wants to print it. That took ~40 ms of main-thread time inside every build, while the first
 * gRPC answers waited. Our handlers never print yargs's help after they start (failures are CogErrors
 * with their own hints), so the pre-render is skipped; `--help` and flag errors still render it.
 */
function skipHelpPrerender(cli: Argv): void {
  const internals = cli as unknown as {
    getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } };
  };
  const usage = internals.getInternalMethods?.().getUsageInstance?.();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => undefined;
}

export async function main(argv: readonly string[]): Promise<number> {
  // `cog help build` (cobra's form, which upstream's users type) is `cog build --help`
  if (argv[0] === 'help' && argv.length > 1) argv = [...argv.slice(1), '--help'];
  // no arguments at all: the root help on stdout, exit 0, as upstream's cobra CLI does
  if (argv.length === 0) argv = ['--help'];
  // `cog exec`: everything from the command on is the command's, options included
  let execArgv: string[] = [];
  // as the user wrote them, for naming a surplus argument (`cog exec`'s command is not its arguments)
  const written = argv[0] === 'exec' ? undefined : argv;
  if (argv[0] === 'exec') {
    // the options that take a value, as declared: cog's own and exec's (the command starts after them)
    const declared = declaredOptions(withExecOptions(withGlobalFlags(yargs([]), [])));
    const split = splitExecArgv(argv.slice(1), [...declared.string, ...declared.number]);
    execArgv = split.command;
    argv = ['exec', ...split.options];
  } else {
    try {
      argv = positionalsAfterDashes(argv);
    } catch (err) {
      return reportError(err, debugRequested(argv));
    }
  }
  const cli = yargs([...argv])
    .scriptName('cog')
    .usage('$0 <command> [options]\n\nPackage machine-learning models into container images with BuildKit.')
    .version(`cog version ${cogVersion()} (cog-ts)`)
    .alias('v', 'version')
    .help()
    .alias('h', 'help')
    .strict()
    .demandCommand(1, 'Name a command; `cog --help` lists them.')
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err) => {
      // yargs's own parse errors (a YError: an option given no value) are usage errors too
      if (err && err.name !== 'YError') throw err;
      throw usageError(msg ?? err?.message ?? '', argv, written ?? argv);
    });
  skipHelpPrerender(cli);
  stringOptionsTakeOneValue(cli);
  withGlobalFlags(cli, argv);
  cli.command('debug', describeCommand('debug'), (y) =>
    y
      .command(
        'llb',
        'Write an LLB Definition to stdout (readable by `buildctl debug dump-llb` and `buildctl build`)',
        (c) =>
          c
            .option('example', {
              type: 'string',
              demandOption: true,
              describe: 'name of a graph of the LLB corpus',
            })
            .option('format', {
              type: 'string',
              choices: ['definition', 'json'] as const,
              default: 'definition' as const,
            })
            .option('http-url', {
              type: 'string',
              default: 'http://127.0.0.1:5055/v2/',
              describe: 'URL for the http source',
            })
            .option('git-url', {
              type: 'string',
              default: 'git://127.0.0.1/repo.git',
              describe: 'URL for the git source',
            }),
        (argv) =>
          debugLlb(
            {
              example: argv.example,
              format: argv.format,
              httpUrl: argv['http-url'],
              gitUrl: argv['git-url'],
            },
            process.stdout,
          ),
      )
      .command(
        'solve',
        'Solve an LLB Definition with our BuildKit client, like `buildctl build` (no Docker)',
        (c) =>
          withTlsOptions(c)
            .option('example', { type: 'string', describe: 'name of a graph of the LLB corpus' })
            .option('llb', {
              type: 'string',
              describe: 'a Definition file written by `cog debug llb` (- = stdin)',
            })
            .option('output', {
              alias: 'o',
              type: 'string',
              array: true,
              nargs: 1,
              default: [] as string[],
              describe: 'type=image,name=REF,push=true | type=oci|docker|tar,dest=FILE | type=local,dest=DIR',
            })
            .option('local', {
              type: 'string',
              array: true,
              nargs: 1,
              default: [] as string[],
              describe: 'NAME=DIR',
            })
            .option('secret', secretOption)
            .option('metadata-file', { type: 'string', describe: 'write the exporter response as JSON' })
            .option('progress', solveProgressOption)
            .option('http-url', { type: 'string', default: 'http://127.0.0.1:5055/v2/' })
            .option('git-url', { type: 'string', default: 'git://127.0.0.1/repo.git' }),
        (argv) =>
          debugSolve(
            {
              example: argv.example,
              llb: argv.llb,
              outputs: argv.output,
              locals: argv.local,
              secrets: argv.secret,
              metadataFile: argv['metadata-file'],
              progress: argv.progress,
              tls: tlsFlags(argv),
              httpUrl: argv['http-url'],
              gitUrl: argv['git-url'],
            },
            processIo(),
          ),
      )
      .command(
        ['plan', '$0'],
        'Print what `cog build` would do for cog.yaml (the default)',
        (c) =>
          c
            .option('file', configFileOption)
            .option('format', {
              type: 'string',
              choices: ['text', 'json', 'llb'] as const,
              default: 'text' as const,
              describe: 'text: readable steps; json: input, plan and LLB ops; llb: the Definition bytes',
            })
            .option('use-cuda-base-image', {
              type: 'string',
              describe: 'as `cog build --use-cuda-base-image` (default: auto)',
            })
            .option('use-cog-base-image', {
              type: 'boolean',
              describe:
                'as `cog build --use-cog-base-image`: default: when it exists, true: required, false: never',
            })
            .option('separate-weights', {
              type: 'boolean',
              default: false,
              describe: 'plan the weight files in a layer of their own, as `cog build --separate-weights`',
            }),
        (argv) =>
          debugPlan(
            {
              file: argv.file,
              format: argv.format,
              useCudaBaseImage: argv['use-cuda-base-image'],
              useCogBaseImage: argv['use-cog-base-image'],
              separateWeights: argv['separate-weights'],
            },
            processIo(),
          ),
      ),
  );
  cli.command(
    'build',
    describeCommand('build'),
    (c) =>
      withImageBuildOptions(c)
        .option('tag', {
          alias: 't',
          type: 'string',
          describe: 'image name (default: cog.yaml image, model, or cog-<dir>)',
        })
        .option('push', {
          type: 'boolean',
          default: false,
          describe: 'push the image to the registry in its name',
        })
        .option('output', {
          alias: 'o',
          type: 'string',
          array: true,
          nargs: 1,
          default: [] as string[],
          describe:
            'type=oci|docker|tar,dest=FILE (- = stdout) | type=image,name=REF[,push=true], instead of the local image store',
        })
        .option('smoke-test', {
          type: 'boolean',
          default: false,
          describe: 'start the model server in the image and require READY before exporting',
        })
        .option('cache-from', {
          type: 'string',
          array: true,
          nargs: 1,
          default: [] as string[],
          describe: 'type=registry,ref=REF | type=local,src=DIR',
        })
        .option('cache-to', {
          type: 'string',
          array: true,
          nargs: 1,
          default: [] as string[],
          describe: 'type=registry,ref=REF,mode=max | type=local,dest=DIR | type=inline',
        })
        .option('metadata-file', { type: 'string', describe: 'write the build result as JSON' })
        .option('pull', {
          type: 'boolean',
          default: false,
          describe:
            'always solve on buildkitd, which looks base image tags up again (without it, a build with nothing changed since the last same command is answered from its record)',
        }),
    (parsed) =>
      build(
        {
          ...imageBuildArgs(parsed),
          tag: parsed.tag,
          push: parsed.push,
          outputs: parsed.output,
          smokeTest: parsed['smoke-test'],
          cacheFrom: parsed['cache-from'],
          cacheTo: parsed['cache-to'],
          metadataFile: parsed['metadata-file'],
          pull: parsed.pull,
          // the command line as typed keys the build record; options before `build` opt out
          ...(argv[0] === 'build' ? { recordArgv: argv.slice(1) } : {}),
        },
        processIo(),
      ),
  );
  cli.command(
    'init',
    describeCommand('init'),
    (c) => c,
    () => init(process.cwd(), process.stdout),
  );
  // upstream's `cog run`; `cog predict` still works, hidden, with upstream's deprecation warning
  const runBuilder = <T>(c: Argv<T>) =>
    withBaseImageOptions(withTlsOptions(c), '; for the project, not IMAGE')
      .positional('image', {
        type: 'string',
        describe: 'an image in the local image store, else a registry reference (default: build the project)',
      })
      .option('input', {
        alias: 'i',
        type: 'string',
        array: true,
        nargs: 1,
        default: [] as string[],
        describe: 'name=value; @file sends a file',
      })
      .option('json', { type: 'string', describe: 'all inputs as JSON, @file, or - for stdin' })
      .option('output', {
        alias: 'o',
        type: 'string',
        describe: 'where to write the output: a file, or DIR/ for files in DIR',
      })
      .option('env', envOption('model'))
      .option('setup-timeout', { type: 'number', default: 300, describe: 'seconds to wait for setup()' })
      .option('use-replicate-token', {
        type: 'boolean',
        default: false,
        describe: "send $REPLICATE_API_TOKEN in the request's context (context.replicate_api_token)",
      })
      .option('gpus', {
        type: 'string',
        describe: 'GPUs as CDI devices: all, a count, device=0,1 or none (default: all when build.gpu)',
      })
      .option('file', configFileOption)
      .option('secret', secretOption)
      .option('progress', runProgressOption);
  const runModel = (argv: Awaited<ReturnType<typeof runBuilder>['argv']>, mode: 'predict' | 'train') =>
    predict(
      {
        image: argv.image,
        mode,
        inputs: argv.input,
        json: argv.json,
        output: argv.output,
        env: argv.env,
        setupTimeout: argv['setup-timeout'],
        ...modelRunArgs(argv),
        useReplicateToken: argv['use-replicate-token'],
      },
      processIo(),
    );
  cli.command('run [image]', describeCommand('run'), runBuilder, (argv) => runModel(argv, 'predict'));
  const predictBuilder = <T>(c: Argv<T>) =>
    // hidden from the command list (false), so its help names it here
    runBuilder(c).usage(
      `$0 predict [image]\n\n${describeCommand('run')}. Deprecated: the old name of \`cog run\`; use that`,
    );
  cli.command('predict [image]', false, predictBuilder, (argv) => {
    process.stderr.write(warningLine('"cog predict" is deprecated, use "cog run"'));
    return runModel(argv, 'predict');
  });
  cli.command('train [image]', describeCommand('train'), runBuilder, (argv) => runModel(argv, 'train'));
  cli.command(
    'serve [image]',
    describeCommand('serve'),
    (c) =>
      withBaseImageOptions(withTlsOptions(c), '; for the project, not IMAGE')
        .positional('image', {
          type: 'string',
          describe:
            'an image in the local image store, else a registry reference (default: build the project and mount it at /src)',
        })
        .option('port', { alias: 'p', type: 'number', default: 8393, describe: 'the port to serve on' })
        .option('host', {
          type: 'string',
          default: '127.0.0.1',
          describe:
            'the IPv4 address to bind (on the buildkitd host, whose network the server shares); localhost is 127.0.0.1',
        })
        .option('upload-url', { type: 'string', describe: 'PUT file outputs to this URL' })
        .option('file', configFileOption)
        .option('secret', secretOption)
        .option('gpus', containerGpusOption)
        .option('progress', runProgressOption),
    (argv) =>
      serve(
        {
          image: argv.image,
          port: argv.port,
          host: argv.host,
          uploadUrl: argv['upload-url'],
          ...modelRunArgs(argv),
        },
        processIo(),
      ),
  );
  cli.command('exec', describeCommand('exec'), withExecOptions, (argv) =>
    execCommand(
      {
        command: execArgv,
        publish: argv.publish,
        env: argv.env,
        ...modelRunArgs(argv),
      },
      processIo(),
    ),
  );
  cli.command(
    'push [image]',
    describeCommand('push'),
    (c) =>
      withImageBuildOptions(c).positional('image', {
        type: 'string',
        describe:
          'where to push, e.g. r8.im/user/model (default: image in cog.yaml; not with model:, see COG_MODEL*)',
      }),
    async (argv) => {
      // the registry client loads only for the commands that use it (start-up time of every command)
      const { push } = await import('./push.js');
      await push({ ...imageBuildArgs(argv), image: argv.image }, processIo());
    },
  );
  cli.command(
    'inspect <image>',
    describeCommand('inspect'),
    (c) =>
      c
        .positional('image', {
          type: 'string',
          demandOption: true,
          describe: 'a name in the local image store, or a registry reference',
        })
        .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' })
        .option('local', { type: 'boolean', default: false, describe: 'only look in the local image store' })
        .option('remote', { type: 'boolean', default: false, describe: 'only look in the registry' })
        .option('platform', {
          type: 'string',
          describe:
            "the image to pick from a multi-platform index (default: linux/amd64, else the index's first image)",
        }),
    async (argv) =>
      (await import('./inspect.js')).inspect(
        {
          image: argv.image,
          json: argv.json,
          local: argv.local,
          remote: argv.remote,
          platform: argv.platform,
        },
        processIo(),
      ),
  );
  cli.command('image', describeCommand('image'), (c) =>
    c
      .command(
        'ls',
        'List the images in the local image store',
        (l) => l.option('json', { type: 'boolean', default: false, describe: 'print one JSON object' }),
        async (argv) => (await import('./images.js')).listImages({ json: argv.json }, processIo()),
      )
      .command(
        'rm <names..>',
        'Remove images from the local image store, and the blobs no other image uses',
        (r) =>
          // an array positional shows yargs's implicit `[default: []]`, which a required one never takes
          r.positional('names', {
            type: 'string',
            array: true,
            demandOption: true,
            default: undefined,
            describe: 'image names',
          }),
        async (argv) => (await import('./images.js')).removeImages({ names: argv.names }, processIo()),
      )
      .command(
        'prune',
        'Remove blobs no image in the local image store uses',
        (p) => p,
        async () => (await import('./images.js')).pruneImages(processIo()),
      )
      .demandCommand(1, 'name a subcommand: ls, rm or prune'),
  );
  const cacheFilterOption = {
    type: 'string',
    array: true,
    nargs: 1,
    default: [] as string[],
    describe:
      "BuildKit's record filter, e.g. type==exec.cachemount (repeatable: a record must match every one)",
  } as const;
  cli.command('cache', describeCommand('cache'), (c) =>
    c
      .command(
        'du',
        "Show what buildkitd's build cache holds, by record type",
        (d) =>
          withTlsOptions(d)
            .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' })
            .option('verbose', {
              type: 'boolean',
              default: false,
              describe: 'also list the records, largest first',
            })
            .option('filter', cacheFilterOption),
        async (argv) =>
          (await import('./cache.js')).showCacheUsage(
            { json: argv.json, verbose: argv.verbose, filter: argv.filter, tls: tlsFlags(argv) },
            processIo(),
          ),
      )
      .command(
        'prune',
        "Remove unused records from buildkitd's build cache (every client of the daemon loses them)",
        (p) =>
          withTlsOptions(p)
            .option('all', {
              alias: 'a',
              type: 'boolean',
              default: false,
              describe: 'also frontend and internal records',
            })
            .option('keep-duration', {
              type: 'string',
              describe: 'keep records used within this long, e.g. 24h, 7d, 1h30m',
            })
            .option('keep-storage', {
              type: 'string',
              describe: 'keep up to this much cache, e.g. 10GB (powers of 1024)',
            })
            .option('filter', cacheFilterOption)
            .option('force', {
              alias: 'f',
              type: 'boolean',
              default: false,
              describe: 'do not ask first (needed when stdin is not a terminal)',
            })
            .option('json', {
              type: 'boolean',
              default: false,
              describe: 'print what was removed as one JSON object',
            }),
        async (argv) =>
          (await import('./cache.js')).pruneCache(
            {
              all: argv.all,
              keepDuration: argv['keep-duration'],
              keepStorage: argv['keep-storage'],
              filter: argv.filter,
              force: argv.force,
              json: argv.json,
              tls: tlsFlags(argv),
            },
            processIo(),
          ),
      )
      .demandCommand(1, 'name a subcommand: du or prune'),
  );
  cli.command(
    'doctor',
    describeCommand('doctor'),
    (d) =>
      withTlsOptions(d).option('file', configFileOption).option('fix', {
        type: 'boolean',
        default: false,
        describe: 'apply the safe fixes (predict: to run:, removed imports)',
      }),
    async (argv) =>
      (await import('./doctor.js')).doctor(
        { file: argv.file, fix: argv.fix, tls: tlsFlags(argv) },
        processIo(),
      ),
  );
  registerLoginCommands(cli);
  const built = new Set([
    'debug',
    'build',
    'init',
    'run',
    'train',
    'serve',
    'exec',
    'push',
    'inspect',
    'image',
    'cache',
    'login',
    'logout',
    'doctor',
  ]);
  for (const command of plannedCommands.filter((c) => !built.has(c.name))) {
    cli.command(
      [command.name, ...(command.aliases ?? [])],
      command.describe,
      (y) => y.strict(false),
      () => {
        throw new NotImplementedError(command.name, command.issue);
      },
    );
  }
  try {
    await cli.parseAsync();
    return 0;
  } catch (err) {
    return reportError(err, debugRequested(argv));
  }
}

/** The options of the command being parsed, as yargs lists them (aliases included in each list). */
interface DeclaredOptions {
  readonly array: readonly string[];
  readonly string: readonly string[];
  readonly number: readonly string[];
  readonly boolean: readonly string[];
  readonly alias: Readonly<Record<string, readonly string[]>>;
}

function declaredOptions(cli: Argv): DeclaredOptions {
  // getOptions is yargs's (the command's options while it parses); its typings leave it out
  return (cli as unknown as { getOptions(): DeclaredOptions }).getOptions();
}

/** Every key yargs gives option `name` in the parsed arguments: its aliases, and their camelCase forms. */
function keysOf(name: string, alias: DeclaredOptions['alias']): string[] {
  const key = Object.keys(alias).find((k) => k === name || alias[k]?.includes(name)) ?? name;
  const names = [key, ...(alias[key] ?? [])];
  return [...names, ...names.map((n) => n.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()))];
}

/**
 * Upstream's global flags: `--debug`, `--no-color` (as NO_COLOR), hidden `--registry HOST` (as
 * COG_REGISTRY_HOST: the cog-base images' registry and r8.im's stand-in). They become the environment
 * the commands read, set before any command runs. Then the checks every command's parsed options go
 * through (`rawArgv`: what yargs read).
 */
function withGlobalFlags(cli: Argv, rawArgv: readonly string[]): Argv {
  return cli
    .option('debug', {
      type: 'boolean',
      default: false,
      describe: "on failure, also print the error's causes and stack trace",
    })
    .option('color', {
      type: 'boolean',
      default: true,
      describe: '--no-color: no colours in the progress view (also NO_COLOR, COG_NO_COLOR)',
    })
    .option('registry', { type: 'string', hidden: true, describe: 'the registry host (COG_REGISTRY_HOST)' })
    .middleware((parsed) => {
      // `--push=1` is on, as Go reads it (yargs read every value but `true` as off)
      const { boolean, alias } = declaredOptions(cli);
      for (const [name, value] of writtenSwitches(rawArgv, boolean))
        for (const key of keysOf(name, alias)) parsed[key] = value;
    }, true)
    .middleware((parsed) => {
      // `-t a -t b`: a list where the command expects one value (the options of the command run)
      const repeated = repeatedOptionError(parsed, declaredOptions(cli).array, rawArgv);
      if (repeated) throw repeated;
    })
    .middleware((argv) => {
      if (typeof argv.registry === 'string' && argv.registry !== '')
        process.env.COG_REGISTRY_HOST = argv.registry;
      if (argv.color === false) process.env.NO_COLOR = '1';
    }, true);
}

/** `--debug` among the CLI's own arguments (before `--`; exec's command was split off already). */
function debugRequested(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some(
    (a) => a === '--debug' || (a.startsWith('--debug=') && switchValue(a.slice(8)) === true),
  );
}

/** An error's stack trace, then each cause's (innermost last): what `--debug` adds to a failure. */
export function debugDetail(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && depth < 20; depth++) {
    const text =
      current instanceof Error ? (current.stack ?? `${current.name}: ${current.message}`) : String(current);
    parts.push(depth === 0 ? text : `caused by: ${text}`);
    current = (current as { cause?: unknown } | null)?.cause;
  }
  return `${parts.join('\n')}\n`;
}

function reportError(err: unknown, debug = false): number {
  // `cog exec`: the command's own exit code, which it has explained itself
  if (err instanceof ProcessExitError) return err.exitCode;
  if (err instanceof CogError) {
    process.stderr.write(`cog: error: ${err.message}\n`);
    if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
    if (debug) process.stderr.write(debugDetail(err));
    return err.exitCode;
  }
  process.stderr.write(
    `cog: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  return 70;
}
