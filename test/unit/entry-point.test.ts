import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkImageEntryPoint, schemaHasTrainer } from '../../src/cli/entry-point.js';
import { CogError } from '../../src/errors.js';

/** The parts of a run.cog.openapi_schema label the trainer check reads. */
const predictorOnly = {
  paths: { '/predictions': {} },
  components: { schemas: { Input: { type: 'object', properties: {} } } },
};
const withTrainer = {
  paths: { '/predictions': {}, '/trainings': {} },
  components: { schemas: { Input: { type: 'object' }, TrainingInput: { type: 'object' } } },
};

describe('checkImageEntryPoint', () => {
  test('cog train IMAGE refuses an image whose schema has no trainer, naming it', () => {
    assert.throws(
      () => checkImageEntryPoint('train', 'r.example/me/model:v1', predictorOnly),
      (err: unknown) => {
        assert.ok(err instanceof CogError);
        assert.equal(
          err.message,
          "r.example/me/model:v1 has no trainer: cog train runs the training function cog.yaml's 'train' names",
        );
        assert.match(err.hint ?? '', /the image was built without 'train' in cog\.yaml/);
        assert.match(err.hint ?? '', /train: "train\.py:train"/);
        assert.match(err.hint ?? '', /rebuild/);
        return true;
      },
    );
  });

  test('an image with a trainer, cog run, or an image without a schema label is not refused', () => {
    assert.doesNotThrow(() => checkImageEntryPoint('train', 'm', withTrainer));
    assert.doesNotThrow(() => checkImageEntryPoint('predict', 'm', predictorOnly));
    assert.doesNotThrow(() => checkImageEntryPoint('train', 'm', undefined));
  });

  test('either the /trainings path or the TrainingInput component marks a trainer', () => {
    assert.equal(schemaHasTrainer(predictorOnly), false);
    assert.equal(schemaHasTrainer({}), false);
    assert.equal(schemaHasTrainer({ paths: { '/trainings': {} } }), true);
    assert.equal(schemaHasTrainer({ components: { schemas: { TrainingInput: {} } } }), true);
  });
});
