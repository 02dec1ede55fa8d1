/** Plan inputs for unit tests of the planner and compiler: a minimal CPU model, with overrides. */
import type { PlanInput } from '../../src/plan/types.js';

export function minimalPlanInput(overrides: Partial<PlanInput> = {}): PlanInput {
  return {
    pythonVersion: '3.11',
    gpu: false,
    baseImage: 'python:3.11-slim',
    baseKind: 'python-slim',
    environment: [],
    systemPackages: [],
    sdk: { kind: 'pypi' },
    runCommands: [],
    sourceExclude: [],
    labels: {},
    ...overrides,
  };
}
