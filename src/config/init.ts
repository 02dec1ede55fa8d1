// `cog init`: the starter files for a new project, and a writer that never overwrites.
// Like upstream Cog, the template uses the `run:` key and a BaseRunner subclass in run.py (the cog
// SDK on PyPI has BaseRunner; BasePredictor remains as an alias).
import { lstatSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CogError } from '../errors.js';

export interface InitFile {
  /** path relative to the project directory */
  path: string;
  content: string;
}

const COG_YAML = `# Configuration for Cog ⚙️
# Reference: https://cog.run/yaml

build:
  # true if the model needs a GPU (CUDA is then chosen from your torch / tensorflow pins)
  gpu: false

  # Ubuntu apt packages to install
  # system_packages:
  #   - "libgl1"
  #   - "libglib2.0-0"

  # Python version, "3.12" or "3.12.4" (3.10 or newer)
  python_version: "3.13"

  # pip requirements file, relative to this directory
  python_requirements: requirements.txt

  # shell commands run once the environment is installed
  # run:
  #   - "echo env is ready!"

# the class that runs your model: <file>.py:<class>
run: "run.py:Runner"
`;

const RUN_PY = `# Runner interface for Cog ⚙️
# https://cog.run/python

from cog import BaseRunner, Input, Path


class Runner(BaseRunner):
    def setup(self) -> None:
        """Load the model into memory once, so that each run is fast"""
        # self.model = torch.load("./weights.pth")

    def run(
        self,
        image: Path = Input(description="Grayscale input image"),
        scale: float = Input(description="Factor to scale image by", ge=0, le=10, default=1.5),
    ) -> Path:
        """Run a single prediction on the model"""
        # processed = preprocess(image)
        # output = self.model(processed, scale)
        # return postprocess(output)
`;

const REQUIREMENTS_TXT = `# Python packages your model needs, one per line, pinned, e.g.
# torch==2.7.0
# numpy==2.2.6
#
# Do not list cog here: the cog SDK is installed for you.
`;

const DOCKERIGNORE = `# Files left out of the image build context
# https://docs.docker.com/build/concepts/context/#dockerignore-files

# Cog's own build state
.cog

# Git
**/.git
**/.github
**/.gitignore

# Python tooling and caches
.python-version
__pycache__
.mypy_cache
.pytest_cache
.ruff_cache

# Virtual environment
/venv
`;

/** The files `cog init` writes, in the order it writes them. */
export function initTemplates(): InitFile[] {
  return [
    { path: 'cog.yaml', content: COG_YAML },
    { path: 'run.py', content: RUN_PY },
    { path: 'requirements.txt', content: REQUIREMENTS_TXT },
    { path: '.dockerignore', content: DOCKERIGNORE },
  ];
}

export interface InitResult {
  written: string[];
  /** files that already existed and were left alone */
  skipped: string[];
  /** names held by something that is no file (a directory, a link to nothing): left alone, nothing written */
  blocked: { path: string; what: string }[];
}

/** Write the templates into `dir`, skipping files that already exist and names held by anything else. */
export function writeInitFiles(dir: string, files: readonly InitFile[] = initTemplates()): InitResult {
  const result: InitResult = { written: [], skipped: [], blocked: [] };
  for (const file of files) {
    const target = join(dir, file.path);
    if (lstatSync(target, { throwIfNoEntry: false })) {
      // what the name leads to, through links (a link to nothing: 'wx' would refuse it too)
      const held = statSync(target, { throwIfNoEntry: false });
      if (held?.isFile()) result.skipped.push(file.path);
      else
        result.blocked.push({
          path: file.path,
          what: !held ? 'a link to nothing' : held.isDirectory() ? 'a directory' : 'no regular file',
        });
      continue;
    }
    try {
      // 'wx' fails rather than overwrite a file created since the check
      writeFileSync(target, file.content, { flag: 'wx' });
    } catch (err) {
      // all or nothing: the files this run wrote go again
      for (const written of result.written) rmSync(join(dir, written), { force: true });
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new CogError(`cannot write ${file.path} in ${dir} (${code}); nothing was written`, {
        hint: 'run cog init in a directory you can write to',
        cause: err,
      });
    }
    result.written.push(file.path);
  }
  return result;
}
